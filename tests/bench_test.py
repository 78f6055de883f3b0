import pytest

from gan_jax import bench


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
