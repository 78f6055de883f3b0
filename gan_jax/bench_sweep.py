"""Sweep benchmark (not a test): `python -m gan_jax.bench_sweep` (`make bench-sweep`).

Prints one JSON object with three parts:

- `ring8`: member-iterations per second (K members x iterations / seconds) of the ring demo's
  nets and batch for K = 1, 8, 64 seeds run as one sweep program (sweep.compile_program's
  `run_chunk` on sweep.member_devices(K), what `gan-jax sweep` runs: like it, this benchmark
  first asks for one CPU device per core, parallel.one_cpu_device_per_core; `--one-device`
  keeps XLA's single CPU device), against the same K members run one after another in this
  process on the first device, as `gan-jax train` runs (engine.jit_steps + engine.advance with
  each member's Hparams, the same iterations each). Compiles are excluded (each program runs
  once before the clock starts); `speedup` is the sweep's rate over the sequential one (issue
  17's target: >= 1.0).
- `gan2014_mnist`: the same sweep rates for the 2014 MNIST nets on random on-device data of
  MNIST's shape (bench.random_data_run), K = 1, 4, 8, and the fraction of the float32 matmul
  peak they reach: K x one member's XLA FLOP count per iteration (bench.compiled_steps) times
  iterations/s, over the peak sustained by back-to-back matmuls in a window as long, right
  after (bench.SquareMatmul), as `make bench` measures a solo run; and
  `gemm_only_fraction_of_peak`, the same for the K members' matrix products alone, batched as
  the sweep's step has them, on one device: the ceiling if all the step's other work were free.
- `user`: what a user waits for: `gan-jax sweep --seeds K` of the ring demo as a subprocess
  against K `gan-jax train` subprocesses of the same members (seed config.seed + i), wall time
  including start-up, compile and outputs. The sequential side runs `--sequential N` of the K
  processes and scales their total by K / N (`extrapolated_from: N`), since 64 processes take
  about a quarter of an hour here.

`--member-batch N` gives the in-process sweeps config.train.member_batch = N (each device's
members N at a time, sweep.member_loop; default 0: sweep.members_per_call's platform choice,
one at a time on CPUs, all in one vmapped call on accelerators); the JSON records the flag,
and each K's `members_per_call`, how many members one call of a device's step computed.

Every rate is a median over `--rounds` rounds; in the ring's rounds the sweep and the sequential
runs alternate (their order flipping each round) so both see the same machine.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

from gan_jax import bench, engine, parallel, sweep
from gan_jax import hparams as hparams_lib

RING_KS = (1, 8, 64)
MNIST_KS = (1, 4, 8)


def timed(fn) -> float:
    """Seconds that `fn()` takes, its outputs ready."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


class Members:
    """K seeds of one experiment (config.seed + 0..K-1, the members `gan-jax sweep --seeds K`
    makes) on random on-device data of its shape, with the sweep's vmapped program (on the
    first local device) and the solo steps, both compiled and run once (so the timed calls
    compile nothing).

    `run_sweep(iterations)` and `run_sequential(iterations)` run every member `iterations`
    iterations (a multiple of scan_steps): all at once, or one after another.
    """

    def __init__(
        self,
        experiment: str,
        num_members: int,
        scan_steps: int,
        one_device=False,
        member_batch: int = 0,
    ):
        config, _, _, dataset = bench.random_data_run(experiment, scan_steps)
        size = None if dataset is None else dataset.x.shape[0]
        self.members = sweep.build_members(config, {}, num_members)
        self.spec = engine.make_spec(config, size)
        self.scan_steps = scan_steps
        self.hparams = [hparams_lib.from_config(m.config) for m in self.members]
        self.seeds = [m.seed for m in self.members]
        # The devices gan-jax sweep would use (or the solo runs' one device with one_device).
        devices = jax.local_devices()[:1] if one_device else sweep.member_devices(num_members)
        mesh = sweep.member_mesh(devices)
        self.num_devices = len(devices)
        self.mesh, self.member_batch = mesh, member_batch
        program = sweep.compile_program(self.spec, self.hparams[0], dataset, mesh, member_batch)
        self.program = program
        self.dataset = jax.device_put(dataset, program.replicated)
        self.hparams_K = jax.device_put(hparams_lib.stack(self.hparams), program.members)
        seeds_K = jax.device_put(np.array(self.seeds, np.int32), program.members)
        self.state_K = program.init(seeds_K, self.hparams_K, self.dataset)
        self.run_sweep(scan_steps)  # compile
        self.solo = engine.jit_steps(self.spec)
        self.solo_states = [
            self.solo.init(jax.random.PRNGKey(seed), hp, self.dataset)
            for seed, hp in zip(self.seeds, self.hparams, strict=True)
        ]
        jax.block_until_ready(self.run_sequential(scan_steps))  # compile

    def run_sweep(self, iterations: int):
        """Advances all K members `iterations` steps as one program; returns the stacked state."""
        for _ in range(iterations // self.scan_steps):
            self.state_K, _ = self.program.run_chunk(self.state_K, self.dataset, self.hparams_K)
        return self.state_K

    def run_sequential(self, iterations: int):
        """Advances each member `iterations` steps alone, one after another; returns the states."""
        for i, hp in enumerate(self.hparams):
            self.solo_states[i], _ = engine.advance(
                self.solo, self.solo_states[i], self.dataset, hp, iterations
            )
            jax.block_until_ready(self.solo_states[i])  # one run, then the next
        return self.solo_states

    def call_size(self) -> int:
        """How many members one call of the sweep's step computes on a device."""
        return sweep.call_size(self.member_batch, self.mesh, len(self.seeds))

    def batched_gemms(self):
        """The matrix products of one iteration of all K members as each device's step
        traces them (bench.gemm_shapes: batched over the device's members, or over
        sweep.members_per_call of them at a time, one member's unbatched), as a jitted
        function of random inputs on the first device (bench.gemms_alone), those inputs, and
        their FLOPs: the iteration's cost if everything but its matmuls were free."""
        axes = engine.member_axes(self.state_K)
        per_device = len(self.seeds) // self.num_devices
        batch = self.call_size()
        shapes = []
        for size, calls in ((batch, per_device // batch), (per_device % batch, 1)):
            times = calls * self.num_devices
            if size == 0:
                continue
            step = functools.partial(engine.iteration, spec=self.spec)
            if size == 1:
                first, hparams = sweep.member_state(self.state_K, axes, 0), self.hparams[0]
            else:
                step = jax.vmap(step, in_axes=(axes, None, 0))
                first = jax.tree.map(
                    lambda a, x, size=size: x if a is None else x[:size],
                    axes,
                    self.state_K,
                    is_leaf=lambda a: a is None,
                )
                hparams = jax.tree.map(lambda x, size=size: x[:size], self.hparams_K)
            shapes += times * bench.gemm_shapes(step, first, self.dataset, hparams)
        gemms, inputs = bench.gemms_alone(shapes)
        jax.block_until_ready(gemms(inputs))  # compile
        return gemms, inputs, sum(bench.gemm_flops(*shape) for shape in shapes)

    def flops_per_member_iteration(self) -> float:
        """XLA's FLOP count of one member's iteration (bench.compiled_steps)."""
        _, flops = bench.compiled_steps(
            self.spec, self.hparams[0], self.solo_states[0], self.dataset
        )
        return flops


def check_counts(ks, iterations: int, scan_steps: int, rounds: int) -> None:
    """Raises ValueError naming a bad K list, iteration count, chunk length or round count."""
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"--ks {list(ks)}: expected whole numbers >= 1")
    if scan_steps < 1 or rounds < 1:
        raise ValueError(f"--scan-steps {scan_steps}, --rounds {rounds}: expected numbers >= 1")
    if iterations < 1 or iterations % scan_steps:
        raise ValueError(
            f"--iterations {iterations}: expected a positive multiple of --scan-steps {scan_steps}"
        )


def ring_rates(
    experiment: str,
    ks,
    iterations: int,
    scan_steps: int,
    rounds: int,
    one_device=False,
    member_batch: int = 0,
) -> dict:
    """For each K: member-iterations/s of the sweep and of the K members run one after
    another (medians over `rounds`, alternating), and the sweep's speedup over the latter."""
    check_counts(ks, iterations, scan_steps, rounds)
    out = {}
    for k in ks:
        members = Members(experiment, k, scan_steps, one_device, member_batch)
        seconds = {"sweep": [], "sequential": []}
        for r in range(rounds):
            for name in ("sweep", "sequential") if r % 2 == 0 else ("sequential", "sweep"):
                run = getattr(members, f"run_{name}")
                seconds[name].append(timed(lambda run=run: run(iterations)))
        sweep_rate, seq_rate = (k * iterations / statistics.median(seconds[n]) for n in seconds)
        out[f"K={k}"] = {
            "sweep_devices": members.num_devices,
            "members_per_call": members.call_size(),
            "sweep_member_iterations_per_s": round(sweep_rate, 1),
            "sequential_member_iterations_per_s": round(seq_rate, 1),
            "speedup": round(sweep_rate / seq_rate, 3),
        }
    return {"experiment": experiment, "iterations": iterations, "rounds": rounds, "per_K": out}


def peak_fractions(
    experiment: str,
    ks,
    iterations: int,
    scan_steps: int,
    rounds: int,
    peak_size: int = 2048,
    one_device=False,
    member_batch: int = 0,
) -> dict:
    """For each K: the sweep's member-iterations/s and its fraction of the matmul peak
    (K x one member's FLOPs per iteration x iterations/s over the peak sustained in a window as
    long, right after each round), medians over `rounds` of the rounds' figures; and the same
    fraction for the K members' matrix products alone, batched as the sweep's step has them, on
    one device (`Members.batched_gemms`): the ceiling the step would reach if its other work
    (optimizer updates, activations, dropout masks) were free."""
    check_counts(ks, iterations, scan_steps, rounds)
    peak = bench.SquareMatmul(peak_size)
    out = {}
    for k in ks:
        members = Members(experiment, k, scan_steps, one_device, member_batch)
        flops = members.flops_per_member_iteration()
        gemms, gemm_inputs, gemm_flops = members.batched_gemms()

        def gemm_iterations(gemms=gemms, gemm_inputs=gemm_inputs):
            for _ in range(iterations):
                out = gemms(gemm_inputs)  # only the last outputs are kept (and waited for)
            return out

        rates, fractions, peaks, gemm_fractions = [], [], [], []
        for _ in range(rounds):
            seconds = timed(lambda members=members: members.run_sweep(iterations))
            rates.append(k * iterations / seconds)
            peaks.append(peak.sustained_gflops(seconds))
            fractions.append(flops * rates[-1] / 1e9 / peaks[-1])
            gemm_seconds = timed(gemm_iterations)
            gemm_gflops = gemm_flops * iterations / gemm_seconds / 1e9
            gemm_fractions.append(gemm_gflops / peak.sustained_gflops(gemm_seconds))
        out[f"K={k}"] = {
            "sweep_devices": members.num_devices,
            "members_per_call": members.call_size(),
            "sweep_member_iterations_per_s": round(statistics.median(rates), 1),
            "matmul_peak_gflops": float(f"{statistics.median(peaks):.4g}"),
            "fraction_of_peak": round(statistics.median(fractions), 3),
            "gemm_only_fraction_of_peak": round(statistics.median(gemm_fractions), 3),
        }
    return {
        "experiment": experiment,
        "iterations": iterations,
        "rounds": rounds,
        "gflop_per_member_iteration": float(f"{flops / 1e9:.4g}"),
        "per_K": out,
    }


def _run(args: list[str]) -> float:
    """Wall seconds of `python -m gan_jax ARGS` (raises CalledProcessError with its stderr)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gan_jax", *args], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start


def user_wall_times(num_members: int, steps: int, sequential: int, workdir: str) -> dict:
    """Wall seconds of `gan-jax sweep --seeds K` of the ring demo against K `gan-jax train`
    processes of the same members (seed 0 + i), `sequential` of them run and scaled by
    K / sequential. Both write their usual outputs into fresh dirs under `workdir`."""
    if not 1 <= sequential <= num_members:
        raise ValueError(f"--sequential {sequential}: expected 1 <= N <= K = {num_members}")
    config = os.path.join(os.path.dirname(__file__), "..", "experiments", "ring8.py")
    common = ["--config", config, f"--config.train.num_steps={steps}"]
    sweep_s = _run(
        ["sweep", *common, "--workdir", os.path.join(workdir, "sweep"), "--seeds", str(num_members)]
    )
    seed = bench.load_config("ring8").seed
    solo_s = [
        _run(
            ["train", *common, "--workdir", os.path.join(workdir, f"solo{i}")]
            + [f"--config.seed={seed + i}"]
        )
        for i in range(sequential)
    ]
    sequential_s = sum(solo_s) * num_members / sequential
    return {
        "members": num_members,
        "steps": steps,
        "sweep_wall_s": round(sweep_s, 1),
        "sequential_wall_s": round(sequential_s, 1),
        "extrapolated_from": sequential,
        "solo_wall_s": [round(s, 1) for s in solo_s],
        "sweep_over_sequential": round(sweep_s / sequential_s, 3),
    }


def _ks(text: str) -> list[int]:
    try:
        return [int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected K values like 1,8,64") from None


def main() -> None:
    """`make bench-sweep`: prints the JSON of the sweep benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=_ks, default=list(RING_KS), help="ring K values")
    parser.add_argument("--iterations", type=int, default=200, help="ring, per member a round")
    parser.add_argument("--mnist-ks", type=_ks, default=list(MNIST_KS))
    parser.add_argument("--mnist-iterations", type=int, default=100, help="per member a round")
    parser.add_argument("--scan-steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="ring rounds")
    parser.add_argument("--mnist-rounds", type=int, default=1)
    parser.add_argument("--skip-mnist", action="store_true", help="skip the 2014 MNIST nets")
    parser.add_argument("--skip-user", action="store_true", help="skip the subprocess part")
    parser.add_argument(
        "--one-device", action="store_true", help="sweeps on XLA's one CPU device, not per core"
    )
    parser.add_argument(
        "--member-batch",
        type=int,
        default=0,
        help="config.train.member_batch of the in-process sweeps (N: each device's members"
        " N at a time; 0: one at a time on CPUs, all in one vmapped call on accelerators)",
    )
    parser.add_argument("--user-members", type=int, default=64)
    parser.add_argument("--user-steps", type=int, default=500, help="train.num_steps")
    parser.add_argument(
        "--sequential", type=int, default=4, help="gan-jax train processes actually run"
    )
    args = parser.parse_args()
    if not args.one_device:
        parallel.one_cpu_device_per_core()  # as gan-jax sweep does, before JAX starts
    try:
        check_counts(args.ks, args.iterations, args.scan_steps, args.rounds)
        check_counts(args.mnist_ks, args.mnist_iterations, args.scan_steps, args.mnist_rounds)
        if args.member_batch < 0:
            raise ValueError(f"--member-batch {args.member_batch}: expected a number >= 0")
        if not 1 <= args.sequential <= args.user_members:
            raise ValueError(f"--sequential {args.sequential}: expected 1..{args.user_members}")
    except ValueError as err:
        parser.error(str(err))
    result = {
        "backend": jax.default_backend(),
        "devices": len(jax.devices()),
        "cpu_count": os.cpu_count(),
        "member_batch": args.member_batch,
        "ring8": ring_rates(
            "ring8",
            args.ks,
            args.iterations,
            args.scan_steps,
            args.rounds,
            args.one_device,
            args.member_batch,
        ),
    }
    if not args.skip_mnist:
        result["gan2014_mnist"] = peak_fractions(
            "gan2014_mnist",
            args.mnist_ks,
            args.mnist_iterations,
            args.scan_steps,
            args.mnist_rounds,
            one_device=args.one_device,
            member_batch=args.member_batch,
        )
    if not args.skip_user:
        with tempfile.TemporaryDirectory() as workdir:
            result["user"] = user_wall_times(
                args.user_members, args.user_steps, args.sequential, workdir
            )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
