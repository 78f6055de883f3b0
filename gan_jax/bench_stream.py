"""Streaming benchmark (not a test): `python -m gan_jax.bench_stream` (`make bench-stream`).

Writes a CIFAR-shaped random npz (`--images` uint8 images 32x32x3 with labels) and prints one
JSON object: the cache's build time (the npz decoded and written as an entry: what a set's first
run pays) and reuse times (the entry read into memory for in-device batching, and memory-mapped
for streaming), then iterations/s of `experiments/dcgan_cifar10.py` with its nets narrowed
(`--base-features`) and its batch size, with the training set on the device and streamed from
the host (stream.HostStream), timed in alternating windows of `--iterations` iterations (the
order flips every round; medians over `--rounds`), and the host pipeline alone (rows/s that
`HostStream.read_chunk` reads and gathers, no training). Both runs start from one state and
must end equal bit for bit (`bit_identical`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

import jax
import numpy as np

from gan_jax import data, data_cache, engine, hparams, image_sets, stream
from gan_jax.bench import load_config


def write_set(folder: str, num_images: int) -> str:
    """A random CIFAR-shaped npz (x uint8 [N, 32, 32, 3], y in [0, 10)); its path."""
    rng = np.random.default_rng(0)
    path = os.path.join(folder, "cifar_shaped.npz")
    x = rng.integers(0, 256, (num_images, 32, 32, 3), dtype=np.uint8)
    np.savez(path, x=x, y=rng.integers(0, 10, num_images))
    return path


def cache_times(data_config) -> dict:
    """Seconds to build the set's cache entry, to read it back, and to map it."""
    start = time.perf_counter()
    image_sets.load_images(data_config)
    build = time.perf_counter() - start
    start = time.perf_counter()
    image_sets.load_images(data_config)
    reuse = time.perf_counter() - start
    start = time.perf_counter()
    data_cache.load(image_sets.cache_entry(data_config), mmap_mode="r")
    mapped = time.perf_counter() - start
    return {
        "build_s": round(build, 3),
        "reuse_read_s": round(reuse, 4),
        "reuse_map_s": round(mapped, 4),
    }


def bench(num_images: int, iterations: int, scan_steps: int, rounds: int, base_features: int):
    """The JSON object of the module docstring; the npz and its cache live in a temporary
    folder, removed at the end."""
    folder = tempfile.mkdtemp(prefix="gan_jax_bench_stream_")
    try:
        return _bench(folder, num_images, iterations, scan_steps, rounds, base_features)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bench(folder, num_images, iterations, scan_steps, rounds, base_features) -> dict:
    config = load_config("dcgan_cifar10")
    config.data.update(name="npz", dir=write_set(folder, num_images), cache_dir=folder)
    config.model.generator_kwargs = {"base_features": base_features, "output_activation": "tanh"}
    config.model.discriminator_kwargs = {"base_features": base_features}
    config.train.update(scan_steps=scan_steps, num_steps=iterations * (rounds + 1))
    cache = cache_times(config.data)

    spec, hp = engine.make_spec(config, num_images), hparams.from_config(config)
    compiled = engine.jit_steps(spec)
    state0 = jax.device_get(compiled.init(jax.random.PRNGKey(0), hp, None))
    on_device = data.load_dataset(config.data)
    host = stream.load_host_images(config.data)
    feed = stream.HostStream(host, spec, state0, config.train.num_steps)
    states = {"device": jax.device_put(state0), "host": jax.device_put(state0)}
    feeds = {"device": on_device, "host": feed}
    seconds = {name: [] for name in states}

    def window(name):
        start = time.perf_counter()
        states[name], metrics = engine.advance(compiled, states[name], feeds[name], hp, iterations)
        jax.block_until_ready((states[name], metrics))
        return time.perf_counter() - start

    for name in states:  # compiles, and warms the stream's prefetch
        window(name)
    for r in range(rounds):
        for name in states if r % 2 == 0 else list(states)[::-1]:
            seconds[name].append(window(name))

    probe = stream.HostStream(host, spec, state0, config.train.num_steps)
    start = time.perf_counter()
    chunks = max(1, rounds)
    for c in range(chunks):
        probe.read_chunk(c)
    read_s = time.perf_counter() - start
    rows = chunks * scan_steps * spec.d_steps * spec.batch_size

    leaves = [jax.tree.leaves(jax.device_get(states[n])) for n in states]
    rate = {n: round(float(np.median(iterations / np.array(t))), 2) for n, t in seconds.items()}
    return {
        "images": num_images,
        "batch_size": spec.batch_size,
        "base_features": base_features,
        "scan_steps": scan_steps,
        "iterations_per_window": iterations,
        "rounds": rounds,
        "cache": cache,
        "iterations_per_s": rate,
        "host_over_device": round(rate["host"] / rate["device"], 3),
        "host_read_rows_per_s": round(rows / read_s),
        "bit_identical": all(np.array_equal(a, b) for a, b in zip(*leaves, strict=True)),
        "backend": jax.default_backend(),
    }


def main() -> None:
    """Prints the JSON of the streamed-data benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--iterations", type=int, default=100, help="per timed window")
    parser.add_argument("--scan-steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--base-features", type=int, default=16, help="the papers': 64")
    args = parser.parse_args()
    if args.iterations % args.scan_steps:
        parser.error(
            f"--iterations {args.iterations} is not a multiple of --scan-steps {args.scan_steps}"
        )
    result = bench(args.images, args.iterations, args.scan_steps, args.rounds, args.base_features)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
