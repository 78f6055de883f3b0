import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from gan_jax import bench, train


def test_bench_reports_an_experiment_s_throughput_against_the_peak():
    """One round: the ratio is the achieved GFLOP/s over the measured peak (the timings
    themselves are not checked here: they belong to `make bench`)."""
    result = bench.bench("ring8", num_iterations=4, scan_steps=2, rounds=1, peak_size=256)
    assert result["experiment"] == "ring8" and result["iterations"] == 4
    assert result["gflop_per_iteration"] > 0
    achieved = result["gflop_per_iteration"] * result["iterations_per_s"]
    assert result["achieved_gflops"] == pytest.approx(achieved, rel=0.01, abs=0.1)
    ratio = result["achieved_gflops"] / result["matmul_peak_gflops"]
    assert result["fraction_of_peak"] == pytest.approx(ratio, rel=0.01, abs=0.002)
    assert 0 < result["gemm_gflop_per_iteration"] <= result["gflop_per_iteration"]
    assert result["gemm_only_iterations_per_s"] > 0


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
    trainer = train.make_trainer(tiny_config(d_steps=3))
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    _, flops = bench.compiled_steps(trainer, state, None)

    def unrolled(state):
        for _ in range(3):
            state, _ = trainer.d_update(state)
        return trainer.g_update(state)

    expected = bench.compiled_flops(jax.jit(unrolled).lower(state).compile())
    assert flops == pytest.approx(expected, rel=0.02)
