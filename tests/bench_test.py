import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from gan_jax import bench, engine, hparams


def test_bench_reports_an_experiment_s_throughput_against_the_peak():
    """One round, as a smoke test of the report (the timings themselves are not checked here:
    they belong to `make bench`); the FLOP counts it rests on are checked by hand below."""
    result = bench.bench("ring8", num_iterations=4, scan_steps=2, rounds=1, peak_size=256)
    assert result["experiment"] == "ring8" and result["iterations"] == 4
    assert result["scan_steps"] == 2 and result["rounds"] == 1
    assert result["batch_size"] == bench.load_config("ring8").train.batch_size
    assert 0 < result["gemm_gflop_per_iteration"] <= result["gflop_per_iteration"]
    for key in (
        "iterations_per_s",
        "matmul_peak_gflops",
        "matmul_burst_gflops",
        "gemm_only_iterations_per_s",
        "fraction_of_burst",
        "best_windows_fraction",
    ):
        assert result[key] > 0
    low, high = result["fraction_of_peak_range"]
    assert low == result["fraction_of_peak"] == high  # one round: its ratio is all three
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
