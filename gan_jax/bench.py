"""Throughput benchmark (not a test): `python -m gan_jax.bench [--experiment gan2014_mnist]`.

Prints one JSON object: iterations/s of an experiment's nets at its batch size on random
on-device data (one iteration = d_steps D updates + 1 G update), compile seconds of the D and G
steps, the matmul GFLOP/s achieved (XLA's FLOP count of one iteration times iterations/s), this
machine's measured float32 matmul peak, and their ratio: medians over `--rounds` rounds that
alternate training and the peak's measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data, train


def load_config(experiment: str):
    path = os.path.join(os.path.dirname(__file__), "..", "experiments", f"{experiment}.py")
    spec = importlib.util.spec_from_file_location(experiment, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    jax.block_until_ready(out)
    return out, time.perf_counter() - start


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best-of float32 n x n matmul throughput, the practical peak of this machine."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    jax.block_until_ready(matmul(a))
    best = min(timed(matmul, a)[1] for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def iteration_flops(trainer, state, dataset) -> float:
    compiled = train.jit_step(trainer.iteration).lower(state, dataset).compile()
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis["flops"])


def bench(
    experiment: str, num_iterations: int, scan_steps: int, rounds: int = 5, peak_size: int = 2048
) -> dict:
    config = load_config(experiment)
    config.train.scan_steps = scan_steps
    shape = data.data_shape(config.data)
    n = 10 * config.train.batch_size
    low = -1.0 if config.data.scale == "symmetric" else 0.0
    x = np.random.default_rng(0).uniform(low, 1.0, (n, *shape)).astype(np.float32)
    dataset = None if config.data.name in data.TOY_DATASETS else data.make_dataset(x)
    trainer = train.make_trainer(config, n)
    jitted = train.jit_trainer(trainer)
    state = jitted.init(jax.random.PRNGKey(0), dataset)

    compile_s = {}
    for name, fn, args in (
        ("d_step", trainer.d_update, (state, dataset)),
        ("g_step", trainer.g_update, (state, dataset)),
    ):
        start = time.perf_counter()
        train.jit_step(fn).lower(*args).compile()
        compile_s[name] = round(time.perf_counter() - start, 3)
    flops = iteration_flops(trainer, state, dataset)

    state, _ = train.advance(jitted, state, dataset, scan_steps)  # compile and warm up
    jax.block_until_ready(state)
    # This machine's speed drifts (shared cores, clock changes), so training and the matmul
    # peak are timed in alternating rounds and each round's ratio is taken under the same
    # conditions; the medians are reported.
    rounds_its, rounds_peak = [], []
    per_round = max(scan_steps, num_iterations // rounds // scan_steps * scan_steps)
    for _ in range(rounds):
        start = time.perf_counter()
        state, _ = train.advance(jitted, state, dataset, per_round)
        jax.block_until_ready(state)
        rounds_its.append(per_round / (time.perf_counter() - start))
        rounds_peak.append(matmul_peak_gflops(peak_size))
    its, peak = np.median(rounds_its), np.median(rounds_peak)
    fraction = np.median(np.array(rounds_its) * flops / 1e9 / np.array(rounds_peak))
    achieved = flops * its / 1e9
    return {
        "experiment": experiment,
        "batch_size": config.train.batch_size,
        "iterations": per_round * rounds,
        "scan_steps": scan_steps,
        "iterations_per_s": round(float(its), 2),
        "compile_s": compile_s,
        "gflop_per_iteration": round(flops / 1e9, 3),
        "achieved_gflops": round(float(achieved), 1),
        "matmul_peak_gflops": round(float(peak), 1),
        "fraction_of_peak": round(float(fraction), 3),
        "rounds": rounds,
        "backend": jax.default_backend(),
        "devices": len(jax.devices()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="gan2014_mnist")
    parser.add_argument("--iterations", type=int, default=500, help="over all rounds")
    parser.add_argument("--scan-steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = bench(args.experiment, args.iterations, args.scan_steps, args.rounds)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
