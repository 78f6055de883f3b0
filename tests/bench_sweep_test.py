"""gan_jax.bench_sweep's in-process figures on a scripted clock: the real programs compile and
run (tiny K and iterations), only the seconds they take are set, so every rate is known."""

import functools
import types

import jax
import pytest

from gan_jax import bench, bench_sweep, engine


class ScriptedClock:
    """`perf_counter` whose timed windows (a start and an end call each) last the given
    seconds, in the order the windows are timed."""

    def __init__(self, durations):
        self.durations, self.now, self.calls = list(durations), 0.0, 0

    def perf_counter(self) -> float:
        if self.calls % 2:
            self.now += self.durations[(self.calls // 2) % len(self.durations)]
        self.calls += 1
        return self.now


# make test-all, like the peak-fraction test: a benchmark's arithmetic, not the engine's numbers.
@pytest.mark.slow
def test_ring_rates_are_member_iterations_over_median_seconds(monkeypatch):
    """Rounds alternate sweep, sequential / sequential, sweep / sweep, sequential, so windows
    of 1, 3, 5, 4, 2, 8 s give the sweep 1, 4, 2 (median 2) and the sequential runs 3, 5, 8
    (median 5): K x 4 iterations over those, and a speedup of 5 / 2."""
    clock = ScriptedClock([1, 3, 5, 4, 2, 8])
    monkeypatch.setattr(bench_sweep, "time", clock)  # this module's clock only, not JAX's
    result = bench_sweep.ring_rates("ring8", [3], iterations=4, scan_steps=2, rounds=3)
    assert clock.calls == 2 * 6  # 6 windows
    assert result["iterations"] == 4 and result["rounds"] == 3
    assert set(result["per_K"]) == {"K=3"}
    figures = result["per_K"]["K=3"]
    assert figures["sweep_member_iterations_per_s"] == pytest.approx(3 * 4 / 2)
    assert figures["sequential_member_iterations_per_s"] == pytest.approx(3 * 4 / 5)
    assert figures["speedup"] == 2.5


@pytest.mark.slow  # make test-all: a benchmark's bookkeeping, on two compiles of the ring
def test_members_sweep_and_sequential_runs_advance_every_member_equally():
    """Both sides run every member the same iterations: 2 chunks of 2 after the warm-up's
    one chunk leave every member's step counter at 6."""
    members = bench_sweep.Members("ring8", 3, scan_steps=2)
    state_K = members.run_sweep(4)
    solo = members.run_sequential(4)
    assert int(state_K.step) == 6 and [int(s.step) for s in solo] == [6, 6, 6]
    assert state_K.rng.shape[0] == 3 and members.seeds == [0, 1, 2]


@pytest.mark.slow  # make test-all: a benchmark's arithmetic, on a second compile of the ring
def test_peak_fraction_counts_k_times_one_member_s_flops(monkeypatch):
    """K = 2 members, 4 iterations each in 0.5 s (8 it/s each, 16 member-it/s), against a
    fixed 10 GFLOP/s peak: the fraction is 2 x (one member's XLA FLOPs per iteration) x
    8 it/s / 10 GFLOP/s."""
    monkeypatch.setattr(bench_sweep, "time", ScriptedClock([0.5, 0.25]))  # sweep, GEMMs
    peak = types.SimpleNamespace(sustained_gflops=lambda seconds: 10.0)
    monkeypatch.setattr(bench, "SquareMatmul", lambda n: peak)
    result = bench_sweep.peak_fractions("ring8", [2], iterations=4, scan_steps=2, rounds=1)
    _, spec, hp, dataset = bench.random_data_run("ring8", 2)
    state = engine.jit_steps(spec).init(jax.random.PRNGKey(0), hp, dataset)
    _, flops = bench.compiled_steps(spec, hp, state, dataset)
    figures = result["per_K"]["K=2"]
    assert figures["fraction_of_peak"] > 0.01  # large enough for its rounding to see a factor 2
    assert figures["sweep_member_iterations_per_s"] == 16.0
    assert figures["matmul_peak_gflops"] == 10.0
    assert figures["fraction_of_peak"] == round(2 * flops * 8 / 1e9 / 10.0, 3)
    assert result["gflop_per_member_iteration"] == float(f"{flops / 1e9:.4g}")
    # The GEMMs alone: vmap batches the products without changing their FLOPs, so K = 2
    # members' are twice one solo iteration's, at 4 iterations per 0.25 s.
    solo_shapes = bench.gemm_shapes(
        functools.partial(engine.iteration, spec=spec), state, dataset, hp
    )
    gemm_flops = 2 * sum(bench.gemm_flops(*shape) for shape in solo_shapes)
    expected = gemm_flops * 4 / 0.25 / 1e9 / 10.0
    assert expected > 0.01  # its rounding sees a factor 2
    assert figures["gemm_only_fraction_of_peak"] == round(expected, 3)


@pytest.mark.parametrize(
    ("ks", "iterations", "scan_steps", "bad"),
    [([], 4, 2, "--ks"), ([0], 4, 2, "--ks"), ([1], 5, 2, "--iterations 5")],
)
def test_bad_counts_are_refused_before_any_compile(ks, iterations, scan_steps, bad):
    with pytest.raises(ValueError, match=bad):
        bench_sweep.ring_rates("ring8", ks, iterations, scan_steps, rounds=1)


def test_sequential_count_must_fit_k():
    with pytest.raises(ValueError, match="--sequential 5"):
        bench_sweep.user_wall_times(4, 100, 5, "/nonexistent")


@pytest.mark.slow  # make test-all: a benchmark's bookkeeping, on two compiles of the ring
def test_gemms_are_batched_as_each_device_batches_its_members():
    """K = 16 members on 8 devices with member_batch 4, at least a device's 2 members: all of
    a device's vmapped, so the products are 8 devices' batches of 2 (operands [2, ...]), not
    batches of 4 or one of 16."""
    members = bench_sweep.Members("ring8", 16, 2, member_batch=4)
    assert members.num_devices == 8 and members.call_size() == 2
    _, inputs, flops = members.batched_gemms()
    assert {a.shape[0] for a, _ in inputs} == {2} and {a.ndim for a, _ in inputs} == {3}
    solo = bench_sweep.Members("ring8", 1, 2)
    _, solo_inputs, solo_flops = solo.batched_gemms()
    assert len(inputs) == 8 * len(solo_inputs) and flops == 16 * solo_flops


@pytest.mark.slow  # make test-all: a benchmark's bookkeeping, on three compiles of the ring
@pytest.mark.parametrize("member_batch", [1, 2])
def test_gemms_of_a_member_loop_are_its_batches_products(member_batch):
    """With config.train.member_batch = 1 or 2, K = 3 members on one device have their
    products traced as the looped step runs them (one member's unbatched, or a batch of 2 and
    one of 1): the same FLOPs as the vmapped step's (member_batch 3), and operands of rank 2
    only where a member runs alone."""
    members = bench_sweep.Members("ring8", 3, 2, one_device=True, member_batch=member_batch)
    vmapped = bench_sweep.Members("ring8", 3, 2, one_device=True, member_batch=3)
    assert (members.call_size(), vmapped.call_size()) == (member_batch, 3)
    _, inputs, flops = members.batched_gemms()
    _, vmapped_inputs, vmapped_flops = vmapped.batched_gemms()
    assert flops == vmapped_flops > 0
    ranks = {a.ndim for a, _ in inputs}
    assert ranks == ({2} if member_batch == 1 else {2, 3})
    assert {a.ndim for a, _ in vmapped_inputs} == {3}
    batches = {1: 3, 2: 2}[member_batch]  # calls of the looped step per iteration
    assert len(inputs) == batches * len(vmapped_inputs)


def test_a_negative_member_batch_is_refused(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["bench_sweep", "--member-batch", "-1", "--one-device"])
    with pytest.raises(SystemExit):
        bench_sweep.main()
    assert "--member-batch -1: expected a number >= 0" in capsys.readouterr().err
