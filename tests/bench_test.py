import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from gan_jax import bench, engine, hparams


class WorkClock:
    """The bench's clock, moved only by the work it times. In round r, training, the GEMMs and
    the matmuls after each take the seconds that give the GFLOP/s set for round r (round 0 is
    the warm-up); the burst's single matmuls run at the rate of the window before them. Nothing
    here is a timing, so every figure the bench reports is known exactly."""

    def __init__(self, **rates):
        self.rates = {kind: [1.0, *per_round] for kind, per_round in rates.items()}
        self.flops = {}  # per call of each kind of work, recorded as the bench finds them
        self.now, self.round, self.advances, self.last = 0.0, 0, 0, "train"

    def perf_counter(self) -> float:
        return self.now

    def run(self, kind: str, calls: int = 1) -> None:
        if kind == "matmul":
            rate = self.rates[f"matmul_after_{self.last}"][self.round]
        else:
            rate, self.last = self.rates[kind][self.round], kind
        self.now += calls * self.flops[kind] / (rate * 1e9)

    def train(self, iterations: int) -> None:
        """Training's first call is the warm-up (round 0); each later one starts a round."""
        self.round, self.advances = self.advances, self.advances + 1
        self.run("train", iterations)


# make test-all: a benchmark's arithmetic on the 2014 nets' real steps (not the engine's numbers).
@pytest.mark.slow
def test_bench_figures_are_the_rounds_medians_and_ranges_on_a_work_clock(monkeypatch):
    """Three rounds at 30, 10 and 16 GFLOP/s against matmul peaks of 40, 50 and 20: ratios
    0.75, 0.2 and 0.8, so the median ratio (0.75) is not the ratio of the medians (0.4) and the
    range is [0.2, 0.8]. The GEMMs alone run at 60, 45 and 72 against peaks (and bursts) of 48,
    25 and 60; the best training window over the best matmul window is 30/60. The bench
    compiles and runs the real steps; only its clock is replaced."""
    clock = WorkClock(
        train=[30, 10, 16],
        matmul_after_train=[40, 50, 20],
        gemm=[60, 45, 72],
        matmul_after_gemm=[48, 25, 60],
    )
    monkeypatch.setattr(bench, "time", clock)  # the bench's clock only, not JAX's

    real_steps, real_gemms, real_peak = bench.compiled_steps, bench.gemms_alone, bench.SquareMatmul
    real_advance = engine.advance

    def compiled_steps(*args):
        compile_s, clock.flops["train"] = real_steps(*args)
        return compile_s, clock.flops["train"]

    def gemms_alone(shapes):
        products, inputs = real_gemms(shapes)
        clock.flops["gemm"] = sum(bench.gemm_flops(*shape) for shape in shapes)
        return lambda x: clock.run("gemm") or products(x), inputs

    def square_matmul(n):
        peak = real_peak(n)  # its first timing reads the still clock: set the call time here
        clock.flops["matmul"], matmul = peak.flops, peak.matmul
        peak.matmul = lambda a: clock.run("matmul") or matmul(a)
        peak.call_s = peak.flops / 1e9
        return peak

    def advance(compiled, state, dataset, hp, num_iterations):
        out = real_advance(compiled, state, dataset, hp, num_iterations)
        clock.train(num_iterations)
        return out

    monkeypatch.setattr(bench, "compiled_steps", compiled_steps)
    monkeypatch.setattr(bench, "gemms_alone", gemms_alone)
    monkeypatch.setattr(bench, "SquareMatmul", square_matmul)
    monkeypatch.setattr(engine, "advance", advance)
    result = bench.bench("ring8", num_iterations=6, scan_steps=2, rounds=3, peak_size=256)

    assert clock.advances == 4  # the warm-up and 3 rounds
    assert result["experiment"] == "ring8" and result["rounds"] == 3
    assert result["iterations"] == 6 and result["scan_steps"] == 2  # 2 iterations a round
    assert result["batch_size"] == bench.load_config("ring8").train.batch_size
    flops, gemm_flops = clock.flops["train"], clock.flops["gemm"]
    assert result["gflop_per_iteration"] == round(flops / 1e9, 3)
    assert result["gemm_gflop_per_iteration"] == round(gemm_flops / 1e9, 3)
    assert 0 < gemm_flops <= flops
    assert result["iterations_per_s"] == pytest.approx(16e9 / flops, abs=0.006)
    assert result["achieved_gflops"] == 16.0
    assert result["matmul_peak_gflops"] == 40.0 and result["matmul_burst_gflops"] == 48.0
    assert result["fraction_of_peak"] == 0.75
    assert result["fraction_of_peak_range"] == [0.2, 0.8]
    assert result["fraction_of_burst"] == 0.4  # median of 30/48, 10/25, 16/60
    assert result["best_windows_fraction"] == 0.5
    assert result["gemm_only_iterations_per_s"] == pytest.approx(60e9 / gemm_flops, abs=0.006)
    assert result["gemm_only_fraction_of_peak"] == 1.25  # median of 60/48, 45/25, 72/60
    assert set(result["compile_s"]) == {"d_step", "g_step", "run_chunk"}


def test_the_sustained_peak_is_back_to_back_calls_over_the_window(monkeypatch):
    """A window of 0.05 s at a last-known 0.01 s per call runs 5 calls; the rate is the FLOPs
    of the calls made over the window's elapsed time, which becomes the next call time. The
    calls are counted and the clock is faked: nothing here is a timing."""
    peak = bench.SquareMatmul(64)
    calls, matmul = [], peak.matmul
    peak.matmul = lambda a: calls.append(1) or matmul(a)
    clock = iter([10.0, 10.08])  # the window's start and end: 5 calls took 0.08 s
    fake_time = types.SimpleNamespace(perf_counter=lambda: next(clock))
    monkeypatch.setattr(bench, "time", fake_time)  # the bench's clock only, not JAX's
    peak.call_s = 0.01
    gflops = peak.sustained_gflops(0.05)
    assert len(calls) == 5
    assert peak.call_s == pytest.approx(0.08 / 5)
    assert gflops == pytest.approx(5 * 2 * 64**3 / 0.08 / 1e9)
    calls.clear()
    clock = iter([0.0, 0.1])
    peak.sustained_gflops(0.0)  # never an empty window
    assert len(calls) == 1


def test_the_burst_peak_is_the_fastest_single_call(monkeypatch):
    peak = bench.SquareMatmul(64)
    clock = iter([0.0, 0.3, 1.0, 1.1, 2.0, 2.2])  # three calls of 0.3, 0.1 and 0.2 s
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    assert peak.burst_gflops(repeats=3) == pytest.approx(2 * 64**3 / 0.1 / 1e9)


def test_gemm_flops_are_two_m_n_k_counted_by_hand():
    m, k, n, b = 6, 7, 5, 3
    plain = (((1,), (0,)), ((), ()))  # (M, K) @ (K, N)
    assert bench.gemm_flops((m, k), (k, n), plain) == 2 * 6 * 7 * 5
    transposed = (((0,), (1,)), ((), ()))  # (K, M)^T @ (N, K)^T
    assert bench.gemm_flops((k, m), (n, k), transposed) == 2 * 6 * 7 * 5
    batched = (((2,), (1,)), ((0,), (0,)))  # (B, M, K) @ (B, K, N)
    assert bench.gemm_flops((b, m, k), (b, k, n), batched) == 2 * 3 * 6 * 7 * 5
    # The shapes a traced einsum reports give the same count.
    x, y = jnp.ones((b, m, k)), jnp.ones((b, k, n))
    (shape,) = bench.gemm_shapes(lambda x, y: jnp.einsum("bmk,bkn->bmn", x, y), x, y)
    assert bench.gemm_flops(*shape) == 2 * 3 * 6 * 7 * 5


def test_compiled_flops_of_a_plain_matmul():
    m, k, n = 32, 48, 16
    a, b = jnp.ones((m, k)), jnp.ones((k, n))
    compiled = jax.jit(jnp.matmul).lower(a, b).compile()
    assert bench.compiled_flops(compiled) == pytest.approx(2 * m * k * n, rel=0.01)


def test_gemm_shapes_finds_every_product_and_counts_scan_steps():
    def fn(w, x):
        h = jnp.tanh(x @ w)  # (4, 3) @ (3, 5)
        h, _ = jax.lax.scan(lambda h, _: (h @ jnp.eye(5), None), h, None, length=3)
        return jax.grad(lambda w: jnp.sum(x @ w))(w) + jnp.einsum("bi,bj->ij", x, h)

    w, x = jnp.ones((3, 5)), jnp.ones((4, 3))
    shapes = bench.gemm_shapes(jax.jit(fn), w, x)
    # forward, 3 scan steps, the gradient's forward and its transpose, the einsum.
    assert len(shapes) == 7
    flops = [bench.gemm_flops(*s) for s in shapes]
    assert flops.count(2 * 4 * 3 * 5) == 4 and flops.count(2 * 4 * 5 * 5) == 3
    products, inputs = bench.gemms_alone(shapes)
    for out, (a, b), (_, _, dims) in zip(products(inputs), inputs, shapes, strict=True):
        np.testing.assert_allclose(out, jax.lax.dot_general(a, b, dims), rtol=1e-6)


def test_an_iteration_s_flops_count_every_d_step():
    """XLA counts a scanned loop's body once; the bench's count must equal XLA's count of the
    same iteration written out without a loop (3 D updates, then the G update)."""
    config = tiny_config(d_steps=3)
    spec, hp = engine.make_spec(config), hparams.from_config(config)
    state = engine.jit_steps(spec).init(jax.random.PRNGKey(0), hp)
    _, flops = bench.compiled_steps(spec, hp, state, None)

    def unrolled(state, hp):
        for _ in range(3):
            state, _ = engine.d_update(state, None, hp, spec=spec)
        return engine.g_update(state, None, hp, spec=spec)

    expected = bench.compiled_flops(jax.jit(unrolled).lower(state, hp).compile())
    assert flops == pytest.approx(expected, rel=0.02)


# make test-all: a benchmark's option comparison (benchmarks are not part of the default run).
@pytest.mark.slow
def test_a_paired_option_run_reports_whether_the_numbers_moved():
    """Region analysis only drops copies: the states stay bit-identical. Fast math changes the
    arithmetic, a live control that the comparison can see a difference."""
    kept = bench.paired_option(
        "ring8", "xla_cpu_copy_insertion_use_region_analysis", False, scan_steps=2, rounds=2
    )
    assert kept["bit_identical"] and kept["median_speedup"] > 0
    assert set(kept["iterations_per_s"]) == {
        "steps",
        "xla_cpu_copy_insertion_use_region_analysis=false",
    }
    moved = bench.paired_option("ring8", "xla_cpu_enable_fast_math", True, scan_steps=2, rounds=2)
    assert not moved["bit_identical"]
