"""Known cases and invariants of gan_jax.metrics."""

from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.special
import scipy.stats

from gan_jax import classifier, data, metrics

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared/data/mnist"


def _mixture_samples(seed, centers_Kx2, std, n):
    # numpy rather than data.sample_mixture: the same law without compiling jax ops per shape.
    rng = np.random.default_rng(seed)
    return centers_Kx2[rng.integers(len(centers_Kx2), size=n)] + std * rng.standard_normal((n, 2))


def _gaussian(seed, n, d, scale=1.0, shift=0.0):
    return shift + scale * np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


# ----------------------------------------------------------------------------- Parzen


def test_parzen_single_kernel_is_the_gaussian_log_density():
    center_1xD, x_MxD = _gaussian(0, 1, 5), _gaussian(1, 7, 5)
    sigma = 0.7
    ll_M = metrics.parzen_log_likelihood(center_1xD, x_MxD, sigma)
    expected_M = scipy.stats.multivariate_normal(center_1xD[0], sigma**2).logpdf(x_MxD)
    np.testing.assert_allclose(ll_M, expected_M, rtol=1e-5)


def test_parzen_many_kernels_at_one_point_equal_one_kernel():
    center_1xD, x_MxD = _gaussian(0, 1, 3), _gaussian(1, 9, 3)
    one = metrics.parzen_log_likelihood(center_1xD, x_MxD, 0.5, batch_size=4)
    many = metrics.parzen_log_likelihood(np.repeat(center_1xD, 50, axis=0), x_MxD, 0.5)
    np.testing.assert_allclose(many, one, rtol=1e-5)


def test_parzen_matches_direct_float64_formula_for_every_sigma():
    # Image-like data: norms ~ 100, the case where the distance expansion loses precision.
    rng = np.random.default_rng(0)
    samples_NxD = (rng.random((300, 784)) < 0.2).astype(np.float32)
    x_MxD = (rng.random((23, 784)) < 0.2).astype(np.float32)
    sigmas_S = np.array([0.2, 0.5, 1.0])
    ll_SxM = metrics.parzen_log_likelihood(samples_NxD, x_MxD, sigmas_S, batch_size=10)
    d2_MxN = scipy.spatial.distance.cdist(x_MxD, samples_NxD, "sqeuclidean")
    for s, sigma in enumerate(sigmas_S):
        expected_M = scipy.special.logsumexp(-d2_MxN / (2 * sigma**2), axis=1) - np.log(300)
        expected_M -= 784 / 2 * np.log(2 * np.pi * sigma**2)
        np.testing.assert_allclose(ll_SxM[s], expected_M, rtol=1e-5)


def test_parzen_of_a_gaussian_approaches_the_smoothed_gaussian_expectation():
    # With many kernels, the window estimate of N(0, s^2 I) is N(0, (s^2 + sigma^2) I), whose
    # expected log-density under N(0, s^2 I) is known in closed form.
    d, s, sigma = 2, 1.0, 0.3
    samples = _gaussian(0, 20000, d, s)
    x = _gaussian(1, 4000, d, s)
    ll = metrics.parzen_log_likelihood(samples, x, sigma, batch_size=500)
    v = s**2 + sigma**2
    expected = -d / 2 * np.log(2 * np.pi * v) - d / 2 * s**2 / v
    assert abs(ll.mean() - expected) < 4 * ll.std() / np.sqrt(len(ll)) + 0.01


def test_parzen_sigma_selection_and_evaluate():
    samples, x_valid, x_test = _gaussian(0, 200, 1), _gaussian(1, 500, 1), _gaussian(2, 300, 1)
    sigmas = np.logspace(-1, 0, 10)
    sigma = metrics.parzen_select_sigma(samples, x_valid, sigmas)
    per_sigma = [metrics.parzen_log_likelihood(samples, x_valid, s).mean() for s in sigmas]
    assert sigma == pytest.approx(sigmas[int(np.argmax(per_sigma))])
    assert sigmas[0] < sigma < sigmas[-1]  # 200 points: neither the smallest nor the largest
    out = metrics.parzen_evaluate(samples, x_valid, x_test, sigmas)
    ll_test = metrics.parzen_log_likelihood(samples, x_test, out["sigma"])
    assert out["sigma"] == sigma
    assert out["mean"] == pytest.approx(ll_test.mean(), rel=1e-6)
    assert out["stderr"] == pytest.approx(ll_test.std() / np.sqrt(300), rel=1e-6)


# ----------------------------------------------------------------------------- FD and KID


def test_frechet_distance_is_zero_for_identical_features():
    feats = _gaussian(0, 500, 16)
    assert abs(metrics.frechet_distance(feats, feats)) < 1e-8 * np.trace(np.cov(feats.T))


def test_frechet_distance_of_shifted_features_is_the_squared_shift():
    feats = _gaussian(0, 500, 16)
    shift_F = np.linspace(-1, 1, 16).astype(np.float32)
    fd = metrics.frechet_distance(feats, feats + shift_F)
    assert fd == pytest.approx(float(np.sum(shift_F.astype(np.float64) ** 2)), rel=1e-4)


def test_frechet_distance_of_diagonal_gaussians_is_analytic():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    var1, var2 = rng.uniform(0.1, 2, 6), rng.uniform(0.1, 2, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    fd = metrics.frechet_distance_from_stats(mu1, np.diag(var1), mu2, np.diag(var2))
    assert fd == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_on_full_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((8, 8)), rng.standard_normal((8, 8))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(8), b @ b.T + 0.1 * np.eye(8)
    mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
    covmean = scipy.linalg.sqrtm(cov1 @ cov2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * covmean)
    fd = metrics.frechet_distance_from_stats(mu1, cov1, mu2, cov2)
    assert fd == pytest.approx(expected, rel=1e-8)


def _mmd2_unbiased_loops(x, y):
    k = lambda a, b: (np.dot(a, b) / x.shape[1] + 1.0) ** 3
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    return xx + yy - 2 * xy


def test_kid_with_full_subsets_is_the_unbiased_mmd():
    # Subsets of all rows are permutations, and MMD^2_u does not depend on order.
    x, y = _gaussian(0, 15, 4), _gaussian(1, 15, 4, shift=0.5)
    kid, kid_std = metrics.kernel_inception_distance(x, y, subset_size=15, n_subsets=3)
    assert kid == pytest.approx(
        _mmd2_unbiased_loops(x.astype(np.float64), y.astype(np.float64)), rel=1e-9
    )
    assert kid_std < 1e-9 * abs(kid)


def test_kid_is_near_zero_for_identical_features_and_positive_for_shifted():
    feats = _gaussian(0, 2000, 32)
    kid_same, _ = metrics.kernel_inception_distance(feats, feats, subset_size=500, n_subsets=20)
    kid_shift, _ = metrics.kernel_inception_distance(
        feats, feats + 0.5, subset_size=500, n_subsets=20
    )
    assert kid_shift > 0
    assert abs(kid_same) < 0.01 * kid_shift


# ----------------------------------------------------------------------------- PR / DC


def test_knn_radii_match_brute_force():
    x = _gaussian(0, 70, 3)
    d2 = scipy.spatial.distance.cdist(x, x, "sqeuclidean")
    expected = np.sort(d2, axis=1)[:, 3]  # column 0 is the point itself
    np.testing.assert_allclose(metrics.knn_radii(x, 3, batch_size=16), expected, rtol=1e-4)


def _pr_brute_force(real, fake, k):
    """Kynkaanniemi et al.'s definitions in float64, boundary inside (`<=`) as in their code."""
    d_fr = scipy.spatial.distance.cdist(fake, real)
    r_N = np.sort(scipy.spatial.distance.cdist(real, real), 1)[:, k]
    f_M = np.sort(scipy.spatial.distance.cdist(fake, fake), 1)[:, k]
    return np.mean((d_fr <= r_N[None]).any(1)), np.mean((d_fr <= f_M[:, None]).any(0))


def _dc_brute_force(real, fake, k):
    """Naeem et al.'s definitions in float64, boundary outside (`<`) as in their prdc package."""
    d_fr = scipy.spatial.distance.cdist(fake, real)
    r_N = np.sort(scipy.spatial.distance.cdist(real, real), 1)[:, k]
    return np.sum(d_fr < r_N[None]) / (k * len(fake)), np.mean((d_fr < r_N[None]).any(0))


def test_prdc_matches_brute_force():
    real, fake = _gaussian(0, 120, 4), _gaussian(1, 90, 4, scale=1.3, shift=0.3)
    out = metrics.prdc(real, fake, k_pr=3, k_dc=5, batch_size=32)
    real64, fake64 = real.astype(np.float64), fake.astype(np.float64)
    expected = (*_pr_brute_force(real64, fake64, 3), *_dc_brute_force(real64, fake64, 5))
    assert (out["precision"], out["recall"], out["density"], out["coverage"]) == expected


# The example: 1002.001 lies 1.001 from the real point 1001, whose 1-NN ball has radius
# 1, and inside only the ball of 1003; float32's |a|^2 + |b|^2 - 2ab at norms ~1000 loses it.
DC_REAL = np.array([[0.0], [1.0], [3.0]])
DC_FAKE = np.array([[2.001], [20.0], [30.0]])
# Just outside the 1-NN balls of 1000 + [0, 1, 3] (radii 1, 1, 2): only 1002 is inside one.
PR_OUTSIDE = np.array([[5.001], [-1.001], [2.0]])


@pytest.mark.parametrize("offset", [0.0, 1000.0, -1e5])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_knn_ball_membership_is_exact_at_any_offset_and_scale(offset, scale):
    real, fake = offset + scale * DC_REAL, offset + scale * DC_FAKE
    assert metrics.density_coverage(real, fake, k=1) == (1 / 3, 1 / 3)
    outside = offset + scale * PR_OUTSIDE
    assert metrics.precision_recall(real, outside, k=1) == (1 / 3, 1.0)
    assert metrics.precision_recall(outside, real, k=1) == (1.0, 1 / 3)
    # The features' own large offset in D = 64 dimensions: the same answers as the brute force.
    rng = np.random.default_rng(0)
    real_NxD = offset + scale * rng.standard_normal((40, 64))
    fake_MxD = offset + scale * (0.2 + rng.standard_normal((30, 64)))
    expected = (*_pr_brute_force(real_NxD, fake_MxD, 3), *_dc_brute_force(real_NxD, fake_MxD, 5))
    out = metrics.prdc(real_NxD, fake_MxD, batch_size=16)
    assert (out["precision"], out["recall"], out["density"], out["coverage"]) == expected


@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_boundaries_follow_each_papers_code(offset):
    # Naeem et al.'s prdc: a point on a ball's boundary is outside. Real = fake = [0, 1, 3, 6]
    # with k = 1 (radii 1, 1, 2, 3): each fake lies in its own ball only, density 1 (2 with <=).
    x = offset + np.array([[0.0], [1.0], [3.0], [6.0]])
    assert metrics.density_coverage(x, x, k=1) == (1.0, 1.0)
    # Kynkaanniemi et al.: on the boundary is inside. 5 and -1 lie on the balls of 3 and 0.
    real = offset + np.array([[0.0], [1.0], [3.0]])
    fake = offset + np.array([[5.0], [-1.0], [10.0]])
    assert metrics.precision_recall(real, fake, k=1) == (2 / 3, 1.0)


def test_density_coverage_need_no_fake_neighbours():
    # Fewer fakes than k: density and coverage use only the real balls (the fake set's k-NN
    # radius, which they never read, once failed in top_k here).
    real, fake = _gaussian(0, 50, 3), _gaussian(1, 2, 3, scale=0.5)
    density, coverage = metrics.density_coverage(real, fake, k=5)
    assert (density, coverage) == _dc_brute_force(real.astype(np.float64), fake, 5)
    with pytest.raises(ValueError, match=r"k=5 needs more than k real points.*got 5"):
        metrics.density_coverage(real[:5], fake, k=5)
    with pytest.raises(ValueError, match=r"k=3 needs more than k generated points.*got 3"):
        metrics.precision_recall(real, _gaussian(1, 3, 3), k=3)
    with pytest.raises(ValueError, match=r"k = 0 is not allowed"):
        metrics.precision_recall(real, real, k=0)


def test_prdc_identical_sets_and_disjoint_sets():
    real = _gaussian(0, 300, 8)
    same = metrics.prdc(real, real, batch_size=64)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    far = metrics.prdc(real, real + 100.0, batch_size=64)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


# ----------------------------------------------------------------------------- histograms


def test_histogram_stats_known_cases():
    uniform = metrics.histogram_stats(np.arange(40) % 10, 10)
    assert uniform["covered"] == 10 and uniform["kl"] == pytest.approx(0.0, abs=1e-12)
    single = metrics.histogram_stats(np.full(7, 3), 10)
    assert single["covered"] == 1 and single["kl"] == pytest.approx(np.log(10))
    assert metrics.histogram_stats(np.array([0, 0, 1]), 4, min_count=2)["covered"] == 1


def test_class_accuracy_counts_samples_classified_as_their_label():
    logits_NxK = np.eye(10)[np.array([0, 1, 2, 3, 3])]
    assert metrics.class_accuracy(logits_NxK, np.array([0, 1, 2, 3, 4])) == pytest.approx(0.8)
    out = metrics.compute_metrics(
        "accuracy",
        np.zeros((4, 28, 28, 1), np.float32),
        labels=np.arange(4),
        classifier_params=classifier.load_classifier(),
    )
    assert out["class_accuracy"] in (0.0, 0.25)  # one blank image, at most one class right
    with pytest.raises(ValueError, match="needs `labels`"):
        metrics.compute_metrics("accuracy", np.zeros((4, 28, 28, 1), np.float32))


def _score_improved_gan(p_NxK, splits):
    """openai/improved-gan's inception_score formula, on probabilities, in plain numpy."""
    scores = []
    n = p_NxK.shape[0]
    for i in range(splits):
        part = p_NxK[(i * n // splits) : ((i + 1) * n // splits), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return np.mean(scores), np.std(scores)


def test_classifier_score_splits_as_the_original_code():
    p_NxK = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5]])
    mean, std = metrics.classifier_score(np.log(p_NxK), n_splits=2)
    assert (mean, std) == pytest.approx((1.0536, 0.0536), abs=5e-5)
    assert (mean, std) == pytest.approx(_score_improved_gan(p_NxK, 2), rel=1e-12)
    rng = np.random.default_rng(0)
    p_NxK = scipy.special.softmax(2 * rng.standard_normal((23, 10)), axis=1)
    assert metrics.classifier_score(np.log(p_NxK), 10) == pytest.approx(
        _score_improved_gan(p_NxK, 10), rel=1e-12
    )
    # The authors' default: 10 splits, here of 37 rows (splits of 3 and 4 rows).
    p_NxK = scipy.special.softmax(2 * rng.standard_normal((37, 10)), axis=1)
    assert metrics.classifier_score(np.log(p_NxK)) == pytest.approx(
        _score_improved_gan(p_NxK, 10), rel=1e-12
    )


def test_metrics_name_their_fewest_samples():
    with pytest.raises(ValueError, match=r"n_splits=10 needs at least 10 samples .*got 8"):
        metrics.classifier_score(np.zeros((8, 10)), n_splits=10)
    with pytest.raises(ValueError, match=r"frechet_distance needs at least 2 .*got 1 and 5"):
        metrics.frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"kernel_inception_distance needs at least 2 .*got 5"):
        metrics.kernel_inception_distance(np.zeros((5, 4)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"k=5 needs more than k row points.*got 5"):
        metrics.knn_radii(np.zeros((5, 2)), 5)
    with pytest.raises(ValueError, match=r"at least 1 sample and 1 point to score; got 0 and 3"):
        metrics.parzen_log_likelihood(np.zeros((0, 2)), np.zeros((3, 2)), 0.5)
    too_few = metrics.too_few_samples(["parzen", "score", "pr", "dc"], 3)
    assert too_few == {
        "score": "score needs >= 10 samples (one per split of its 10 splits); got 3",
        "pr": "pr needs >= 4 samples (recall's k-NN balls, k=3, need a k-th neighbour besides"
        " each point); got 3",
    }


def test_registered_metrics_run_at_their_fewest_samples_and_stop_below():
    # MIN_SAMPLES is what each registered metric really needs: finite at the minimum, a
    # ValueError one below it.
    rng = np.random.default_rng(0)
    images = rng.random((20, 28, 28, 1)).astype(np.float32)
    inputs = dict(
        real=images,
        parzen_valid=images[:3],
        parzen_test=images[3:6],
        classifier_params=classifier.load_classifier(),
        batch_size=32,
    )
    for name in ("parzen", "score", "fd", "kid", "pr", "dc", "classes"):
        fewest = metrics.MIN_SAMPLES[name][0]
        out = metrics.compute_metrics(name, images[:fewest], **inputs)
        assert all(np.isfinite(v) for v in out.values()), (name, out)
        if fewest > 1:
            with pytest.raises(ValueError, match=rf"got (\d+ and )?{fewest - 1}$"):
                metrics.compute_metrics(name, images[: fewest - 1], **inputs)

    confident_NxK = 50.0 * np.eye(10)[np.arange(100) % 10]
    assert metrics.classifier_score(confident_NxK)[0] == pytest.approx(10.0, rel=1e-4)
    collapsed_NxK = 50.0 * np.eye(10)[np.zeros(100, int)]
    assert metrics.classifier_score(collapsed_NxK)[0] == pytest.approx(1.0, rel=1e-4)
    mean, std = metrics.classifier_score(confident_NxK, n_splits=5)
    assert mean == pytest.approx(10.0, rel=1e-4) and std < 1e-3


# ----------------------------------------------------------------------------- Stacked MNIST


def test_stacked_mnist_labels_match_channels():
    labels_N = np.arange(30) % 10
    images_Nx28x28 = np.broadcast_to(np.arange(30, dtype=np.uint8)[:, None, None], (30, 28, 28))
    x, modes = metrics.stacked_mnist(0, images_Nx28x28, labels_N, 4000)
    assert x.shape == (4000, 28, 28, 3) and x.dtype == np.uint8
    digits_nx3 = labels_N[x[:, 0, 0, :]]  # each image's pixels are its own row index
    np.testing.assert_array_equal(modes, digits_nx3 @ np.array([100, 10, 1]))
    assert len(np.unique(modes)) > 950  # 4000 uniform draws of 1000 modes miss ~2%
    again, _ = metrics.stacked_mnist(jax.random.PRNGKey(0), images_Nx28x28, labels_N, 4000)
    np.testing.assert_array_equal(again, x)


# ----------------------------------------------------------------------------- 2-D mixtures


P_WITHIN_3STD_2D = 1.0 - np.exp(-4.5)  # chi-squared with 2 dof below 9


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_metrics_on_the_true_mixture(name):
    centers, std = data.mixture_spec(name)
    samples = _mixture_samples(1, centers, std, 2500)
    out = metrics.mixture_metrics(samples, centers, std)
    assert out["modes"] == len(centers)
    # The 3-std disc holds 98.9% of a 2-D Gaussian: the true data is the reference value.
    tolerance = 4 * 100 * np.sqrt(P_WITHIN_3STD_2D * (1 - P_WITHIN_3STD_2D) / 2500)
    assert abs(out["high_quality_pct"] - 100 * P_WITHIN_3STD_2D) < tolerance
    assert out["reverse_kl"] < 0.02


def test_mixture_metrics_on_three_ring_modes():
    centers, std = data.mixture_spec("ring8")
    samples = _mixture_samples(2, centers[[0, 3, 5]], std, 3000)
    out = metrics.mixture_metrics(samples, centers, std)
    assert out["modes"] == 3
    assert out["reverse_kl"] == pytest.approx(np.log(8 / 3), abs=0.01)
    far = metrics.mixture_metrics(samples + 10 * std, centers, std)
    assert far["high_quality_pct"] == 0.0 and far["modes"] == 0 and np.isnan(far["reverse_kl"])


# ----------------------------------------------------------------------------- registry


def test_compute_metrics_by_name():
    params = classifier.load_classifier()
    real = np.random.default_rng(0).random((64, 28, 28, 1)).astype(np.float32)
    out = metrics.compute_metrics(
        "fd,classes", real, real=real, classifier_params=params, batch_size=32
    )
    assert abs(out["fd"]) < 1e-3
    predicted = np.argmax(classifier.classify(params, real, "unit"), -1)
    assert out["classes_covered"] == len(np.unique(predicted))
    centers, std = data.mixture_spec("ring8")
    points = _mixture_samples(0, centers, std, 500)
    out = metrics.compute_metrics(["mixture"], points, mixture="ring8")
    assert out["mixture_modes"] == 8
    # Points exactly on k of the 8 centres (repeated unevenly) capture exactly those k modes.
    for k in (1, 3, 6):
        on_centres = np.repeat(centers[:k], np.arange(1, k + 1), axis=0)
        out = metrics.compute_metrics("mixture", on_centres, mixture="ring8")
        assert out["mixture_modes"] == k and out["mixture_high_quality_pct"] == 100.0
    with pytest.raises(ValueError, match="unknown metrics"):
        metrics.parse_metric_names("fd,bogus")
    with pytest.raises(ValueError, match="needs `real`"):
        metrics.compute_metrics("kid", real, classifier_params=params)


@pytest.mark.skipif(not MNIST_DIR.exists(), reason="real MNIST not available")
def test_stacked_mnist_modes_of_real_digits_are_recovered():
    images, labels = data.load_mnist_idx(str(MNIST_DIR), "test")
    x, modes = metrics.stacked_mnist(0, images, labels, 1000)
    params = classifier.load_classifier()
    predicted = metrics.stacked_mnist_predict(params, x, value_range="uint8")
    assert np.mean(predicted == modes) > 0.97  # 0.993^3 per-digit accuracy cubed
    out = metrics.stacked_mnist_modes(params, x, value_range="uint8")
    assert out["modes"] == len(np.unique(predicted)) and out["kl"] > 0


@pytest.mark.skipif(not MNIST_DIR.exists(), reason="real MNIST not available")
def test_classes_of_real_digits_of_three_classes():
    images, labels = data.load_mnist_idx(str(MNIST_DIR), "test")
    rows = np.concatenate([np.flatnonzero(labels == c)[:20] for c in (1, 4, 7)])
    x = data.scale_images(images[rows], "unit")
    out = metrics.compute_metrics("classes", x, classifier_params=classifier.load_classifier())
    assert out["classes_covered"] == 3
    # 20 of each of 3 classes: KL(uniform on 3 || uniform on 10) = log(10 / 3).
    assert out["classes_kl"] == pytest.approx(np.log(10 / 3), abs=1e-6)
    two = metrics.compute_metrics("classes", x[:40], classifier_params=classifier.load_classifier())
    assert two["classes_covered"] == 2
