"""Throughput benchmark (not a test): `python -m gan_jax.bench [--experiment gan2014_mnist]`.

Prints one JSON object: iterations/s of an experiment's nets at its batch size on random
on-device data (one iteration = d_steps D updates + 1 G update), compile seconds of the D and G
steps, the GFLOP/s achieved (XLA's FLOP counts of one iteration's steps times iterations/s), this
machine's float32 matmul peak, and their ratio: medians over `--rounds` rounds; also the D and
G steps compiled together in the `lax.scan` chunk that training runs (`compile_s.run_chunk`).

The peak is measured in windows as long as the training's: each timed window of training is
followed by a window of back-to-back 2048x2048 matmuls as long as it, and each round's ratio
compares the two. On a shared machine whose speed swings by tens of percent from one second
to the next, the best single matmul (reported too, as `matmul_burst_gflops`) catches a quiet
moment that a window several seconds long never sees, so a ratio to it measures the machine's
noise as much as the step. `best_windows_fraction` compares the fastest training window with
the fastest matmul window (of all the rounds' matmul windows), peak with peak at about the same
length, and `fraction_of_peak_range` gives the rounds' lowest and highest ratios.
`--scan-steps 10 --rounds 100` interleaves the windows ten times more finely.

It also times the iteration's own matrix products alone (`gemm_only_*`: every dot_general of
one iteration, same shapes, on random inputs, in one jitted call): the most the step could
reach with all its other work free, since small matmuls do not reach the large-matmul peak.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jax_core

from gan_jax import data, engine, hparams
from gan_jax.config import load_experiment_file


def load_config(experiment: str):
    """The default config of `experiments/<experiment>.py`."""
    path = os.path.join(os.path.dirname(__file__), "..", "experiments", f"{experiment}.py")
    return load_experiment_file(path)


def timed(fn, *args):
    """(fn(*args), seconds of wall time until its outputs are ready)."""
    start = time.perf_counter()
    out = fn(*args)
    jax.block_until_ready(out)
    return out, time.perf_counter() - start


class SquareMatmul:
    """float32 n x n matmuls, the practical peak of this machine."""

    def __init__(self, n: int = 2048):
        self.flops = 2 * n**3
        self.a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
        self.matmul = jax.jit(lambda x: x @ x)
        timed(self.matmul, self.a)  # compile
        _, self.call_s = timed(self.matmul, self.a)

    def burst_gflops(self, repeats: int = 10) -> float:
        """The best single call's rate."""
        return self.flops / min(timed(self.matmul, self.a)[1] for _ in range(repeats)) / 1e9

    def sustained_gflops(self, seconds: float) -> float:
        """The rate of back-to-back calls over a window about `seconds` long."""
        calls = max(1, round(seconds / self.call_s))
        start = time.perf_counter()
        for _ in range(calls):
            out = self.matmul(self.a)
        jax.block_until_ready(out)
        self.call_s = (time.perf_counter() - start) / calls
        return self.flops / self.call_s / 1e9


def timed_window(run, iterations: int, peak: SquareMatmul) -> tuple[float, float]:
    """Iterations/s of `run()`, which runs `iterations` iterations, and the matmul peak
    sustained over a window as long, right after it."""
    _, seconds = timed(run)
    return iterations / seconds, peak.sustained_gflops(seconds)


def compiled_flops(compiled) -> float:
    """XLA's FLOP count of a compiled program (`cost_analysis()['flops']`); a scanned loop's
    body is counted once, however many times it runs."""
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis["flops"])


def compiled_steps(spec, hp, state, dataset) -> tuple[dict, float]:
    """Compile seconds of the D and G steps alone, and XLA's FLOP count of one iteration, summed
    over its steps: XLA counts a loop's body once, which would undercount an iteration whose
    d_steps > 1 D updates run in a lax.scan."""
    compile_s, flops = {}, {}
    for name, fn in (("d_step", engine.d_update), ("g_step", engine.g_update)):
        start = time.perf_counter()
        step = engine.jit_step(functools.partial(fn, spec=spec))
        compiled = step.lower(state, dataset, hp).compile()
        compile_s[name] = round(time.perf_counter() - start, 3)
        flops[name] = compiled_flops(compiled)
    return compile_s, spec.d_steps * flops["d_step"] + flops["g_step"]


def gemm_shapes(fn, *args) -> list[tuple]:
    """(lhs shape, rhs shape, dimension numbers) of each dot_general that one call of `fn`
    runs, nested calls included; a dot inside a `lax.scan` counts once per scan step (every
    branch of a `lax.cond` is counted, a `while_loop`'s body once)."""
    found = []

    def walk(jaxpr, times):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                lhs, rhs = (v.aval.shape for v in eqn.invars)
                found.extend([(lhs, rhs, eqn.params["dimension_numbers"])] * times)
            repeat = times * eqn.params["length"] if eqn.primitive.name == "scan" else times
            for param in eqn.params.values():
                for sub in param if isinstance(param, tuple | list) else (param,):
                    if isinstance(sub, jax_core.ClosedJaxpr):
                        walk(sub.jaxpr, repeat)
                    elif isinstance(sub, jax_core.Jaxpr):
                        walk(sub, repeat)

    walk(jax.make_jaxpr(fn)(*args).jaxpr, 1)
    return found


def gemm_flops(lhs, rhs, dimension_numbers) -> int:
    """2 x (contracted x batch x free sizes): the FLOPs of one `lax.dot_general` of operand
    shapes `lhs` and `rhs` under `dimension_numbers` ((contract, contract), (batch, batch))."""
    (lhs_contract, rhs_contract), (lhs_batch, _) = dimension_numbers
    free_lhs = [d for i, d in enumerate(lhs) if i not in (*lhs_contract, *lhs_batch)]
    free_rhs = [d for i, d in enumerate(rhs) if i not in (*rhs_contract, *lhs_batch)]
    sizes = [lhs[i] for i in (*lhs_contract, *lhs_batch)] + free_lhs + free_rhs
    return 2 * int(np.prod(sizes))


def gemms_alone(shapes):
    """A jitted function running the given matrix products on fixed random inputs, and those
    inputs. The products are independent, so XLA may overlap them as it may in the step."""
    keys = jax.random.split(jax.random.PRNGKey(1), 2 * len(shapes))
    inputs = [
        (jax.random.normal(keys[2 * i], lhs), jax.random.normal(keys[2 * i + 1], rhs))
        for i, (lhs, rhs, _) in enumerate(shapes)
    ]

    def products(inputs):
        return [
            jax.lax.dot_general(a, b, dims)
            for (a, b), (_, _, dims) in zip(inputs, shapes, strict=True)
        ]

    return engine.jit_step(products), inputs


def random_data_run(experiment: str, scan_steps: int):
    """(config, spec, hparams, dataset): the experiment's program and numbers, and random
    on-device data of its shape (10 batches)."""
    config = load_config(experiment)
    config.train.scan_steps = scan_steps
    shape = data.data_shape(config.data)
    n = 10 * config.train.batch_size
    low = -1.0 if config.data.scale == "symmetric" else 0.0
    x = np.random.default_rng(0).uniform(low, 1.0, (n, *shape)).astype(np.float32)
    dataset = None if config.data.name in data.TOY_DATASETS else data.make_dataset(x)
    return config, engine.make_spec(config, n), hparams.from_config(config), dataset


def paired_option(experiment: str, option: str, value, scan_steps: int, rounds: int) -> dict:
    """Iterations/s of the scanned chunk compiled with the steps' XLA options and with `option`
    set to `value`, timed in alternating chunks (the order flips every round) so both see the
    same machine; `median_speedup`, the median over rounds of the changed option's speed over
    the steps' own, and whether the two runs' states are still bit-identical at the end."""
    _, spec, hp, dataset = random_data_run(experiment, scan_steps)
    chunk = functools.partial(engine.run_chunk, spec=spec, num_iterations=scan_steps)
    init = jax.jit(functools.partial(engine.init, spec=spec))
    variants = {"steps": engine.compiler_options()}
    variants[f"{option}={json.dumps(value)}"] = {**variants["steps"], option: value}
    fns, states, seconds = {}, {}, {name: [] for name in variants}
    for name, options in variants.items():
        fns[name] = jax.jit(chunk, donate_argnums=0, compiler_options=options)
        states[name] = fns[name](init(jax.random.PRNGKey(0), hp, dataset), dataset, hp)[0]
        jax.block_until_ready(states[name])
    for r in range(rounds):
        for name in variants if r % 2 == 0 else list(variants)[::-1]:
            (states[name], _), elapsed = timed(fns[name], states[name], dataset, hp)
            seconds[name].append(elapsed)
    base, changed = (np.array(seconds[name]) for name in variants)
    leaves = [jax.tree.leaves(states[name]) for name in variants]
    return {
        "experiment": experiment,
        "iterations_per_s": {n: round(scan_steps * rounds / sum(t), 2) for n, t in seconds.items()},
        "median_speedup": round(float(np.median(base / changed)), 3),
        "bit_identical": all(np.array_equal(a, b) for a, b in zip(*leaves, strict=True)),
        "rounds": rounds,
        "scan_steps": scan_steps,
    }


def bench(
    experiment: str, num_iterations: int, scan_steps: int, rounds: int = 10, peak_size: int = 2048
) -> dict:
    """Times `experiment`'s D and G steps on random on-device data: about `num_iterations`
    iterations in `rounds` rounds of whole `scan_steps` chunks, each round's training window
    followed by a window of `peak_size`^2 float32 matmuls as long, then the iteration's own
    GEMMs alone and their window. Returns the JSON dict of `make bench` (medians over rounds:
    iterations/s, GFLOP/s by XLA's count, fraction of the windowed peak and of the best single
    matmul, compile seconds per step)."""
    config, spec, hp, dataset = random_data_run(experiment, scan_steps)
    compiled = engine.jit_steps(spec)
    state = compiled.init(jax.random.PRNGKey(0), hp, dataset)

    compile_s, flops = compiled_steps(spec, hp, state, dataset)
    shapes = gemm_shapes(functools.partial(engine.iteration, spec=spec), state, dataset, hp)
    gemm_flops_per_iteration = sum(gemm_flops(*shape) for shape in shapes)
    gemms, gemm_inputs = gemms_alone(shapes)
    jax.block_until_ready(gemms(gemm_inputs))

    start = time.perf_counter()  # the program training runs: `scan_steps` iterations, scanned
    compiled.run_chunk.lower(state, dataset, hp).compile()
    compile_s["run_chunk"] = round(time.perf_counter() - start, 3)
    state, _ = engine.advance(compiled, state, dataset, hp, scan_steps)  # warm up
    jax.block_until_ready(state)
    peak = SquareMatmul(peak_size)
    per_round = max(scan_steps, num_iterations // rounds // scan_steps * scan_steps)

    def train_round():
        nonlocal state
        state, _ = engine.advance(compiled, state, dataset, hp, per_round)
        return state

    def gemm_round():
        for _ in range(per_round):
            out = gemms(gemm_inputs)
        return out

    rows = [  # each round: training, the peak, the GEMMs alone, the peak, the burst peak
        (
            *timed_window(train_round, per_round, peak),
            *timed_window(gemm_round, per_round, peak),
            peak.burst_gflops(),
        )
        for _ in range(rounds)
    ]
    its, peaks, gemm_its, gemm_peaks, bursts = map(np.array, zip(*rows, strict=True))
    achieved = flops * its / 1e9
    gemm_achieved = gemm_flops_per_iteration * gemm_its / 1e9
    return {
        "experiment": experiment,
        "batch_size": config.train.batch_size,
        "iterations": per_round * rounds,
        "scan_steps": scan_steps,
        "iterations_per_s": round(float(np.median(its)), 2),
        "compile_s": compile_s,
        "gflop_per_iteration": round(flops / 1e9, 3),
        "achieved_gflops": round(float(np.median(achieved)), 1),
        "matmul_peak_gflops": round(float(np.median(peaks)), 1),
        "fraction_of_peak": round(float(np.median(achieved / peaks)), 3),
        "fraction_of_peak_range": [round(float(f), 3) for f in np.sort(achieved / peaks)[[0, -1]]],
        "gemm_gflop_per_iteration": round(gemm_flops_per_iteration / 1e9, 3),
        "gemm_only_iterations_per_s": round(float(np.median(gemm_its)), 2),
        "gemm_only_fraction_of_peak": round(float(np.median(gemm_achieved / gemm_peaks)), 3),
        "best_windows_fraction": round(
            float(achieved.max() / max(peaks.max(), gemm_peaks.max())), 3
        ),
        "matmul_burst_gflops": round(float(np.median(bursts)), 1),
        "fraction_of_burst": round(float(np.median(achieved / bursts)), 3),
        "rounds": rounds,
        "backend": jax.default_backend(),
        "devices": len(jax.devices()),
    }


def main() -> None:
    """`make bench`: prints the JSON of `bench` for the chosen experiment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="gan2014_mnist")
    parser.add_argument("--iterations", type=int, default=1000, help="over all rounds")
    parser.add_argument("--scan-steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--paired-option",
        metavar="NAME=JSON",
        help="instead of the bench: time the steps' XLA options against the same with NAME set "
        "to the JSON value, in alternating chunks (e.g. "
        "xla_cpu_copy_insertion_use_region_analysis=false --scan-steps 10 --rounds 100)",
    )
    args = parser.parse_args()
    for flag in ("iterations", "scan_steps", "rounds"):
        if getattr(args, flag) < 1:
            parser.error(
                f"--{flag.replace('_', '-')} = {getattr(args, flag)}: expected a number >= 1"
            )
    if args.paired_option:
        name, _, value = args.paired_option.partition("=")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"--paired-option {args.paired_option!r}: expected NAME=JSON, e.g. x=true")
        result = paired_option(args.experiment, name, value, args.scan_steps, args.rounds)
    else:
        result = bench(args.experiment, args.iterations, args.scan_steps, args.rounds)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
