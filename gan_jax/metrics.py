"""The numbers GAN papers report: Parzen log-likelihood, classifier-based scores, mode counts.

Every metric is a function of arrays (samples, features or logits); `compute_metrics` runs the
ones named in a list, sharing the classifier forward passes between them. Distances and kernels
over big sets run batched under `jit` so memory stays O(batch x N); the small dense statistics
(FD, KID) run on host in float64 because they subtract large, nearly equal numbers.

Registered metric names (`METRICS`) and the keys each adds to `compute_metrics`' result:

  parzen    parzen_sigma, parzen_ll, parzen_ll_stderr       Goodfellow et al. 2014, Sec. 5
  score     score, score_std                                 Salimans et al. 2016, on MNIST CNN
  fd        fd                                               Heusel et al. 2017, MNIST CNN feats
  kid       kid, kid_std                                     Binkowski et al. 2018
  pr        precision, recall (k=3)                          Kynkaanniemi et al. 2019
  dc        density, coverage (k=5)                          Naeem et al. 2020
  classes   classes_covered, classes_kl                      histogram of predicted digits
  accuracy  class_accuracy                                   a conditional G's digits, classified
  stacked   stacked_modes, stacked_kl                        Stacked MNIST (Metz et al. 2017)
  mixture   mixture_modes, mixture_high_quality_pct,         PacGAN / VEEGAN 2-D protocol
            mixture_reverse_kl
  ngram_js  js1, js2, js3, js4 (bits)                        Gulrajani et al. 2017, Sec. 5.2
  words     words_in_list, words_novel                       a word list's shares (text_metrics)

`MIN_SAMPLES` says how many generated samples each needs (score 10, fd and kid 2, pr 4, the
others 1); each function raises ValueError, naming the sizes, when given fewer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from gan_jax import classifier, data, text_metrics

HIGHEST = jax.lax.Precision.HIGHEST  # TPU/GPU default matmuls (bf16/tf32) ruin distances


def _to_key(key_or_seed) -> jax.Array:
    if isinstance(key_or_seed, int | np.integer):
        return jax.random.PRNGKey(int(key_or_seed))
    return key_or_seed


def _pad_rows(x_NxD, batch_size: int):
    """x zero-padded to a multiple of batch_size rows, reshaped [n_batches, batch_size, D]."""
    n = x_NxD.shape[0]
    n_batches = max(1, math.ceil(n / batch_size))
    x_NxD = jnp.pad(x_NxD, ((0, n_batches * batch_size - n), (0, 0)))
    return x_NxD.reshape(n_batches, batch_size, -1)


def _sq_dists(a_BxD, b_NxD, b_sq_N):
    """Squared Euclidean distances [B, N] via |a|^2 + |b|^2 - 2ab, clipped at 0."""
    cross_BxN = jnp.matmul(a_BxD, b_NxD.T, precision=HIGHEST)
    d2 = jnp.sum(a_BxD**2, axis=1)[:, None] + b_sq_N[None, :] - 2.0 * cross_BxN
    return jnp.maximum(d2, 0.0)


def _as_rows(x) -> jax.Array:
    x = jnp.asarray(x, jnp.float32)
    return x.reshape(x.shape[0], -1)


# ----------------------------------------------------------------------------- Parzen windows


@partial(jax.jit, static_argnames=("batch_size",))
def _parzen_ll(samples_NxD, x_MxD, sigmas_S, batch_size: int):
    n, d = samples_NxD.shape
    # Centring both sets on the samples' mean shrinks the norms, hence the float32 rounding of
    # the |a|^2 + |b|^2 - 2ab expansion.
    mean_D = jnp.mean(samples_NxD, axis=0)
    samples_NxD = samples_NxD - mean_D
    s_sq_N = jnp.sum(samples_NxD**2, axis=1)
    log_norm_S = jnp.log(n) + 0.5 * d * jnp.log(2 * jnp.pi * sigmas_S**2)

    def one_batch(x_BxD):
        d2_BxN = _sq_dists(x_BxD - mean_D, samples_NxD, s_sq_N)
        exps_SxBxN = -d2_BxN[None] / (2.0 * sigmas_S[:, None, None] ** 2)
        return jax.nn.logsumexp(exps_SxBxN, axis=2) - log_norm_S[:, None]

    ll_nbxSxB = jax.lax.map(one_batch, _pad_rows(x_MxD, batch_size))
    return jnp.moveaxis(ll_nbxSxB, 1, 0).reshape(sigmas_S.shape[0], -1)[:, : x_MxD.shape[0]]


def parzen_log_likelihood(samples_NxD, x_MxD, sigma, batch_size: int = 100) -> np.ndarray:
    """Per-example log-likelihood of x under a Gaussian Parzen window on the samples.

    log p(x) = logmeanexp_i(-|x - s_i|^2 / (2 sigma^2)) - D/2 log(2 pi sigma^2), as in
    Goodfellow et al. 2014 (Sec. 5, after Breuleux et al. 2011). Inputs are flattened to rows.
    A scalar sigma gives [M]; a 1-D array of sigmas gives [S, M] from one pass over distances.
    Raises ValueError for an empty set or a sigma <= 0.
    """
    if len(samples_NxD) < 1 or len(x_MxD) < 1:
        raise ValueError(
            f"parzen_log_likelihood needs at least 1 sample and 1 point to score; got"
            f" {len(samples_NxD)} and {len(x_MxD)}"
        )
    if not np.all(np.asarray(sigma) > 0):
        raise ValueError(f"sigma = {sigma!r} is not allowed; expected values > 0")
    sigmas_S = jnp.atleast_1d(jnp.asarray(sigma, jnp.float32))
    ll_SxM = _parzen_ll(_as_rows(samples_NxD), _as_rows(x_MxD), sigmas_S, batch_size)
    ll_SxM = np.asarray(ll_SxM, np.float64)
    return ll_SxM[0] if np.ndim(sigma) == 0 else ll_SxM


DEFAULT_SIGMAS = np.logspace(-1, 0, 10)


def parzen_select_sigma(samples, x_valid, sigmas=DEFAULT_SIGMAS, batch_size: int = 100) -> float:
    """The sigma of `sigmas` with the best mean log-likelihood of the validation set."""
    sigmas = np.asarray(sigmas, np.float64).reshape(-1)
    mean_ll_S = parzen_log_likelihood(samples, x_valid, sigmas, batch_size).mean(axis=1)
    return float(sigmas[int(np.argmax(mean_ll_S))])


def parzen_evaluate(
    samples, x_valid, x_test, sigmas=DEFAULT_SIGMAS, batch_size: int = 100
) -> dict[str, float]:
    """Goodfellow et al. 2014 protocol: sigma by validation, then mean and stderr on test.

    stderr = std / sqrt(n_test), with the population std as in the paper's code.
    """
    sigma = parzen_select_sigma(samples, x_valid, sigmas, batch_size)
    ll_M = parzen_log_likelihood(samples, x_test, sigma, batch_size)
    return {
        "sigma": sigma,
        "mean": float(ll_M.mean()),
        "stderr": float(ll_M.std() / np.sqrt(ll_M.shape[0])),
    }


# ----------------------------------------------------------------------------- classifier scores


SCORE_SPLITS = 10  # the Inception Score's 10 splits (Salimans et al. 2016)


def classifier_score(logits_NxK, n_splits: int = SCORE_SPLITS) -> tuple[float, float]:
    """The Inception score's formula (Salimans et al. 2016, Sec. 4) on a classifier's logits:
    exp(E_x KL(p(y|x) || p(y))) per split, then the mean and std over the `n_splits` splits.

    Follows the authors' code exactly (openai/improved-gan inception_score/model.py
    `get_inception_score`): 10 splits by default, split i holding rows [i N // n_splits,
    (i + 1) N // n_splits) (so when n_splits does not divide N the short splits come first),
    p(y) the mean of p(y|x) over the split, and np.std (population std) over the splits; here
    in float64 and log space, which also copes with probabilities that round to 0. With the
    MNIST classifier (`gan_jax.classifier`) it is the MNIST analogue of the Inception score,
    bounded by [1, K] (K = 10 digits): it is not comparable to Inception-score figures, which use
    the Inception network on ImageNet's 1000 classes. Raises ValueError unless 1 <= n_splits <=
    N (an empty split has no marginal).
    """
    logits_NxK = np.asarray(logits_NxK, np.float64)
    n = logits_NxK.shape[0]
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer) or n_splits < 1:
        raise ValueError(f"n_splits = {n_splits!r} is not allowed; expected a whole number >= 1")
    if n < n_splits:
        raise ValueError(
            f"classifier_score with n_splits={n_splits} needs at least {n_splits} samples (one"
            f" per split); got {n}"
        )
    logp_NxK = scipy.special.log_softmax(logits_NxK, axis=-1)
    scores = []
    for i in range(n_splits):
        logp_split = logp_NxK[i * n // n_splits : (i + 1) * n // n_splits]
        log_marginal_K = scipy.special.logsumexp(logp_split, axis=0) - np.log(len(logp_split))
        kl_N = np.sum(np.exp(logp_split) * (logp_split - log_marginal_K), axis=-1)
        scores.append(float(np.exp(np.mean(kl_N))))
    return float(np.mean(scores)), float(np.std(scores))


def gaussian_stats(feats_NxF) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of features, in float64."""
    feats_NxF = np.asarray(feats_NxF, np.float64)
    return feats_NxF.mean(axis=0), np.cov(feats_NxF, rowvar=False)


def _sqrtm_psd(cov_FxF: np.ndarray) -> np.ndarray:
    eigvals_F, eigvecs_FxF = np.linalg.eigh(cov_FxF)
    return (eigvecs_FxF * np.sqrt(np.clip(eigvals_F, 0.0, None))) @ eigvecs_FxF.T


def frechet_distance_from_stats(mu1_F, cov1_FxF, mu2_F, cov2_FxF) -> float:
    """|mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)) (Heusel et al. 2017, after Dowson 1982).

    Tr (C1 C2)^(1/2) = Tr (C1^(1/2) C2 C1^(1/2))^(1/2): the second matrix is symmetric PSD, so
    its square root comes from `eigh` and is real, where `scipy.linalg.sqrtm` of the
    non-symmetric C1 C2 can return complex noise for near-singular covariances.
    """
    mu1_F, mu2_F = np.asarray(mu1_F, np.float64), np.asarray(mu2_F, np.float64)
    cov1_FxF, cov2_FxF = np.asarray(cov1_FxF, np.float64), np.asarray(cov2_FxF, np.float64)
    sqrt1_FxF = _sqrtm_psd(cov1_FxF)
    middle_FxF = sqrt1_FxF @ cov2_FxF @ sqrt1_FxF
    tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle_FxF + middle_FxF.T) / 2), 0, None)))
    diff_F = mu1_F - mu2_F
    return float(diff_F @ diff_F + np.trace(cov1_FxF) + np.trace(cov2_FxF) - 2.0 * tr_sqrt)


def frechet_distance(feats1_NxF, feats2_MxF) -> float:
    """Frechet distance between Gaussian fits of two feature sets (FID on the MNIST CNN).

    Each set needs at least 2 rows (an unbiased covariance); raises ValueError otherwise. With
    fewer rows than feature dimensions the covariance is singular and FD is strongly biased
    upwards: compare only figures made from the same, large number of samples.
    """
    if len(feats1_NxF) < 2 or len(feats2_MxF) < 2:
        raise ValueError(
            "frechet_distance needs at least 2 feature rows on each side (a covariance); got"
            f" {len(feats1_NxF)} and {len(feats2_MxF)}"
        )
    return frechet_distance_from_stats(*gaussian_stats(feats1_NxF), *gaussian_stats(feats2_MxF))


def kernel_inception_distance(
    feats1_NxF, feats2_MxF, subset_size: int = 1000, n_subsets: int = 100, seed: int = 0
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): unbiased MMD^2 with k(a, b) = (a.b / F + 1)^3.

    Averaged over `n_subsets` pairs of random subsets of min(subset_size, N, M) rows, each drawn
    without replacement; returns (mean, std over subsets). Can be slightly negative. The
    unbiased within-set terms need 2 rows per subset: raises ValueError unless N, M and
    subset_size are >= 2 and n_subsets >= 1.
    """
    if subset_size < 2 or n_subsets < 1:
        raise ValueError(
            f"subset_size = {subset_size!r}, n_subsets = {n_subsets!r} are not allowed;"
            " expected subset_size >= 2 and n_subsets >= 1"
        )
    if len(feats1_NxF) < 2 or len(feats2_MxF) < 2:
        raise ValueError(
            "kernel_inception_distance needs at least 2 feature rows on each side (the unbiased"
            f" MMD leaves out the diagonal); got {len(feats1_NxF)} and {len(feats2_MxF)}"
        )
    x_NxF, y_MxF = np.asarray(feats1_NxF, np.float64), np.asarray(feats2_MxF, np.float64)
    dim = x_NxF.shape[1]
    m = min(subset_size, x_NxF.shape[0], y_MxF.shape[0])
    rng = np.random.default_rng(seed)
    kernel = lambda a, b: (a @ b.T / dim + 1.0) ** 3
    mmds = np.empty(n_subsets)
    for i in range(n_subsets):
        x = x_NxF[rng.choice(x_NxF.shape[0], m, replace=False)]
        y = y_MxF[rng.choice(y_MxF.shape[0], m, replace=False)]
        k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        mmds[i] = within - 2.0 * k_xy.mean()
    return float(mmds.mean()), float(mmds.std())


# ----------------------------------------------------------------------------- k-NN manifolds

PR_K = 3  # Kynkaanniemi et al. 2019
DC_K = 5  # Naeem et al. 2020's recommended value


def _check_k(name: str, k) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"{name}: k = {k!r} is not allowed; expected a whole number >= 1")


def _check_more_than_k(name: str, which: str, n: int, k: int) -> None:
    if n <= k:
        raise ValueError(
            f"{name} with k={k} needs more than k {which} points (a k-th nearest neighbour"
            f" besides the point itself); got {n}"
        )


def _rows64(x, name: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    x = x.reshape(x.shape[0], -1)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds non-finite values")
    return x


def _coarse_mean(x_NxD: np.ndarray) -> np.ndarray:
    """The rows' mean rounded to a multiple of 2^p, 2^p <= the largest deviation from it.

    As good a centre as the mean for the rounding of squared distances, and a short binary
    number: rows that are small multiples of a power of 2 (integer features, say) stay exact
    when it is subtracted, so the distance ties that decide a ball's boundary stay ties.
    """
    mean_D = x_NxD.mean(axis=0)
    deviation = float(np.max(np.abs(x_NxD - mean_D), initial=0.0))
    if deviation == 0.0:
        return mean_D
    step = np.ldexp(1.0, int(np.frexp(deviation)[1]) - 1)
    return np.round(mean_D / step) * step


def _power_of_two_exponent(*arrays) -> int:
    """e with 2^e > max |entry| >= 2^(e-1) (0 for all-zero arrays)."""
    biggest = max(float(np.max(np.abs(a), initial=0.0)) for a in arrays)
    return int(np.frexp(biggest)[1]) if biggest > 0 else 0


def _normalised_rows(real_NxD, fake_MxD):
    """(real, fake, fake_own): the rows minus the real rows' (coarse) mean (fake_own: minus
    the fake rows' own), divided by 2^e, as float32.

    Distances do not change under a shift, but float32's |a|^2 + |b|^2 - 2ab keeps its relative
    precision only when the norms are not much larger than the distances compared: features
    1000 + [0, 1, 3] lose the 0.001 that decides whether 1002.001 lies in a ball of radius 1;
    centred, they keep it. The means are taken and subtracted in float64, before the cast, and
    rounded to short binary numbers (`_coarse_mean`) so that exact ties stay ties.
    Dividing by a power of 2 is exact, so it changes no membership, and it keeps the squares of
    very large or very small features inside float32's range.
    """
    real_NxD, fake_MxD = _rows64(real_NxD, "real features"), _rows64(fake_MxD, "fake features")
    if real_NxD.shape[1] != fake_MxD.shape[1]:
        raise ValueError(
            f"real and generated features differ in size: {real_NxD.shape} and {fake_MxD.shape}"
        )
    centre_D = _coarse_mean(real_NxD)
    real_NxD, fake_own_MxD, fake_MxD = (
        real_NxD - centre_D,
        fake_MxD - _coarse_mean(fake_MxD),
        fake_MxD - centre_D,
    )
    e = _power_of_two_exponent(real_NxD, fake_MxD, fake_own_MxD)
    as_f32 = lambda x: jnp.asarray(np.ldexp(x, -e), jnp.float32)
    return as_f32(real_NxD), as_f32(fake_MxD), as_f32(fake_own_MxD)


@partial(jax.jit, static_argnames=("ks", "batch_size"))
def _knn_radii(x_NxD, ks: tuple[int, ...], batch_size: int) -> jax.Array:
    """[len(ks), N] squared k-th neighbour distances of (centred) rows, from one top_k pass."""
    x_sq_N = jnp.sum(x_NxD**2, axis=1)

    def one_batch(x_BxD):
        neg_top_BxK, _ = jax.lax.top_k(-_sq_dists(x_BxD, x_NxD, x_sq_N), max(ks) + 1)
        # Without the barrier XLA rewrites top_k-then-slice as a full sort, ~20x slower on CPU.
        neg_top_BxK = jax.lax.optimization_barrier(neg_top_BxK)
        return -neg_top_BxK[:, jnp.array(ks)].T  # column 0 is the point itself

    radii_nbxKxB = jax.lax.map(one_batch, _pad_rows(x_NxD, batch_size))
    return jnp.moveaxis(radii_nbxKxB, 1, 0).reshape(len(ks), -1)[:, : x_NxD.shape[0]]


def knn_radii(x_NxD, k: int | tuple[int, ...], batch_size: int = 500) -> jax.Array:
    """Squared distance from each row to its k-th nearest neighbour among the others.

    [N] for an int k; [len(k), N] for a tuple of ks, all from one top_k pass. The rows are
    centred first (see `_normalised_rows`). Raises ValueError unless 1 <= k < N.
    """
    ks = (k,) if isinstance(k, int | np.integer) else tuple(k)
    for each in ks:
        _check_k("knn_radii", each)
    x_NxD = _rows64(x_NxD, "knn_radii's rows")
    _check_more_than_k("knn_radii", "row", x_NxD.shape[0], max(ks))
    x_NxD = x_NxD - _coarse_mean(x_NxD)
    e = _power_of_two_exponent(x_NxD)
    radii_KxN = _knn_radii(
        jnp.asarray(np.ldexp(x_NxD, -e), jnp.float32), tuple(int(k) for k in ks), batch_size
    )
    radii_KxN = radii_KxN * 4.0**e  # exact: a power of 2
    return radii_KxN[0] if isinstance(k, int | np.integer) else radii_KxN


@partial(jax.jit, static_argnames=("strict", "batch_size"))
def _ball_counts(real_NxD, fake_MxD, real_r2_N, fake_r2_M, strict: bool, batch_size: int):
    """One pass over fake batches of the ball-membership tests behind PR and DC.

    A ball is a point's k-NN radius; `strict` counts a point on its boundary as outside.
    Returns per fake: the number of real balls holding it; per real: whether its ball holds a
    fake, and (when `fake_r2_M` is given, else None) whether it lies in some fake's ball.
    """
    m = fake_MxD.shape[0]
    inside = jnp.less if strict else jnp.less_equal
    real_sq_N = jnp.sum(real_NxD**2, axis=1)
    fake_nbxBxD = _pad_rows(fake_MxD, batch_size)
    valid_nbxB = (jnp.arange(fake_nbxBxD.shape[0] * batch_size) < m).reshape(-1, batch_size)
    with_fake_balls = fake_r2_M is not None
    r2_nbxB = _pad_rows((fake_r2_M if with_fake_balls else jnp.zeros(m))[:, None], batch_size)

    def step(carry, batch):
        covered_N, in_fake_ball_N = carry
        fake_BxD, fake_r2_B, valid_B = batch[0], batch[1][..., 0], batch[2]
        d2_BxN = _sq_dists(fake_BxD, real_NxD, real_sq_N)
        in_real_BxN = inside(d2_BxN, real_r2_N[None, :]) & valid_B[:, None]
        in_fake_BxN = inside(d2_BxN, fake_r2_B[:, None]) & valid_B[:, None]
        carry = (covered_N | in_real_BxN.any(0), in_fake_ball_N | in_fake_BxN.any(0))
        return carry, in_real_BxN.sum(1)

    n = real_NxD.shape[0]
    init = (jnp.zeros(n, bool), jnp.zeros(n, bool))
    (covered_N, in_fake_ball_N), count_nbxB = jax.lax.scan(
        step, init, (fake_nbxBxD, r2_nbxB, valid_nbxB)
    )
    return count_nbxB.reshape(-1)[:m], covered_N, in_fake_ball_N if with_fake_balls else None


def precision_recall(
    real_NxD, fake_MxD, k: int = PR_K, batch_size: int = 500
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019), k = 3 by default.

    A point's k-NN ball has the distance to its k-th nearest neighbour within its own set as
    radius. precision = fraction of fakes inside some real ball; recall = fraction of reals
    inside some fake ball. A point on a ball's boundary is inside (`<=`), as in the authors'
    code (kynkaat/improved-precision-and-recall-metric, `ManifoldEstimator.evaluate`).
    Features [N, ...] and [M, ...] are flattened to rows; membership does not depend on their
    common offset (see `_normalised_rows`). Raises ValueError unless N > k and M > k.
    """
    _check_k("precision_recall", k)
    _check_more_than_k("precision_recall", "real", len(real_NxD), k)
    _check_more_than_k("precision_recall", "generated", len(fake_MxD), k)
    real_NxD, fake_MxD, fake_own_MxD = _normalised_rows(real_NxD, fake_MxD)
    real_r2_N = _knn_radii(real_NxD, (int(k),), batch_size)[0]
    fake_r2_M = _knn_radii(fake_own_MxD, (int(k),), batch_size)[0]
    count_M, _, in_fake_ball_N = _ball_counts(
        real_NxD, fake_MxD, real_r2_N, fake_r2_M, strict=False, batch_size=batch_size
    )
    return float(np.mean(np.asarray(count_M) > 0)), float(np.mean(np.asarray(in_fake_ball_N)))


def density_coverage(
    real_NxD, fake_MxD, k: int = DC_K, batch_size: int = 500
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), k = 5 by default (their recommended value).

    Real k-NN balls as in `precision_recall`. density = mean over fakes of (number of real balls
    holding it) / k; coverage = fraction of reals whose ball holds some fake. A point on a
    ball's boundary is outside (strict `<`), as in the authors' prdc package
    (clovaai/generative-evaluation-prdc, `compute_prdc`). Only real balls are used, so the fakes
    need no k-NN radius: any M >= 1 works. Membership does not depend on the features' common
    offset. Raises ValueError unless N > k and M >= 1.
    """
    _check_k("density_coverage", k)
    _check_more_than_k("density_coverage", "real", len(real_NxD), k)
    if len(fake_MxD) < 1:
        raise ValueError("density_coverage needs at least 1 generated point; got 0")
    real_NxD, fake_MxD, _ = _normalised_rows(real_NxD, fake_MxD)
    real_r2_N = _knn_radii(real_NxD, (int(k),), batch_size)[0]
    count_M, covered_N, _ = _ball_counts(
        real_NxD, fake_MxD, real_r2_N, None, strict=True, batch_size=batch_size
    )
    density = float(np.sum(np.asarray(count_M, np.int64)) / (k * fake_MxD.shape[0]))
    return density, float(np.mean(np.asarray(covered_N)))


def prdc(
    real_NxD, fake_MxD, k_pr: int = PR_K, k_dc: int = DC_K, batch_size: int = 500
) -> dict[str, float]:
    """`precision_recall` with k_pr and `density_coverage` with k_dc, as one dict."""
    precision, recall = precision_recall(real_NxD, fake_MxD, k_pr, batch_size)
    density, coverage = density_coverage(real_NxD, fake_MxD, k_dc, batch_size)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


# ----------------------------------------------------------------------------- mode histograms


def histogram_stats(labels_N, num_modes: int, min_count: int = 1) -> dict:
    """Counts per mode, modes with >= min_count samples, and KL(histogram || uniform).

    The KL uses 0 log 0 = 0 and is nan when there are no labels.
    """
    counts_K = np.bincount(np.asarray(labels_N, np.int64).reshape(-1), minlength=num_modes)
    total = counts_K.sum()
    if total == 0:
        kl = float("nan")
    else:
        p_K = counts_K[counts_K > 0] / total
        kl = float(np.sum(p_K * np.log(p_K * num_modes)))
    return {"counts": counts_K, "covered": int(np.sum(counts_K >= min_count)), "kl": kl}


def class_accuracy(logits_NxK, labels_N) -> float:
    """Fraction of samples classified as the class they were generated for (conditional G)."""
    return float(np.mean(np.argmax(np.asarray(logits_NxK), axis=-1) == np.asarray(labels_N)))


def class_histogram(logits_NxK, min_count: int = 1) -> dict:
    """Histogram of predicted classes, number of classes covered, KL(histogram || uniform)."""
    logits_NxK = np.asarray(logits_NxK)
    return histogram_stats(np.argmax(logits_NxK, axis=-1), logits_NxK.shape[-1], min_count)


# ----------------------------------------------------------------------------- Stacked MNIST


def stacked_mnist(key_or_seed, images, labels_N, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n Stacked MNIST images [n, 28, 28, 3]: three uniformly drawn digits as channels.

    Mode label = 100 * d0 + 10 * d1 + d2 with d_c the digit in channel c (Metz et al. 2017,
    used by VEEGAN and PacGAN). Images keep their dtype and range; see `data.stack_digits`.
    """
    images = np.asarray(images)
    images_NxHxW = images.reshape(images.shape[0], *images.shape[1:3])
    return data.stack_digits(_to_key(key_or_seed), images_NxHxW, labels_N, n)


def stacked_mnist_predict(params, x_Nx28x28x3, value_range: str = "unit", batch_size: int = 1000):
    """Predicted mode labels [N] of Stacked MNIST images, one classifier call per channel."""
    x_Nx28x28x3 = np.asarray(x_Nx28x28x3)
    n = x_Nx28x28x3.shape[0]
    channels_3Nx28x28 = np.moveaxis(x_Nx28x28x3, -1, 0).reshape(3 * n, 28, 28)
    logits = classifier.classify(params, channels_3Nx28x28, value_range, batch_size)
    digits_3xN = np.asarray(jnp.argmax(logits, axis=-1)).reshape(3, n)
    return (np.array([100, 10, 1]) @ digits_3xN).astype(np.int32)


def stacked_mnist_modes(
    params, x_Nx28x28x3, value_range: str = "unit", batch_size: int = 1000, min_count: int = 1
) -> dict[str, float]:
    """Modes covered out of 1000 and KL(mode histogram || uniform) of Stacked MNIST samples.

    A mode is covered when at least `min_count` samples fall in it (1, as in VEEGAN/PacGAN).
    """
    stats = histogram_stats(
        stacked_mnist_predict(params, x_Nx28x28x3, value_range, batch_size), 1000, min_count
    )
    return {"modes": stats["covered"], "kl": stats["kl"]}


# ----------------------------------------------------------------------------- 2-D mixtures


def mixture_metrics(
    samples_Nx2, centers_Kx2, std: float, n_std: float = 3.0, min_count: int = 1
) -> dict[str, float]:
    """Mode metrics of the 2-D ring / grid experiments (VEEGAN, Srivastava et al. 2017; PacGAN,
    Lin et al. 2018, Table 1).

    Each sample is assigned to its nearest centre and is high quality when it lies within
    `n_std` standard deviations of it. A mode is captured when at least `min_count` high-quality
    samples are assigned to it; VEEGAN and PacGAN's code use 1 (any nonzero count). Returns the
    modes captured, the percentage of high-quality samples and the reverse KL
    KL(histogram of high-quality samples over modes || uniform), nan without such samples.
    The 3-std disc holds 1 - exp(-9/2) = 98.89% of a 2-D Gaussian, so samples of the true
    mixture score ~98.9% high quality, not 100%.
    """
    samples_Nx2, centers_Kx2 = np.asarray(samples_Nx2), np.asarray(centers_Kx2)
    d2_NxK = np.sum((samples_Nx2[:, None, :] - centers_Kx2[None, :, :]) ** 2, axis=-1)
    high_quality_N = np.sqrt(d2_NxK.min(axis=1)) < n_std * std
    nearest_N = np.argmin(d2_NxK, axis=1)
    stats = histogram_stats(nearest_N[high_quality_N], len(centers_Kx2), min_count)
    return {
        "modes": stats["covered"],
        "high_quality_pct": 100.0 * float(high_quality_N.mean()),
        "reverse_kl": stats["kl"],
    }


# ----------------------------------------------------------------------------- registry


@dataclasses.dataclass
class EvalInputs:
    """What the registered metrics may read, with the classifier passes cached between them.

    samples: generated images [N, 28, 28(, 1)] (or [N, 28, 28, 3] for 'stacked') in
      `value_range`, or points [N, D] for 'parzen' / 'mixture'.
    real: reference images in `value_range` for fd / kid / pr / dc.
    parzen_valid, parzen_test: data for 'parzen' (images in `value_range`, or points); images
      are scored in [0, 1] pixel space as in Goodfellow et al. 2014.
    mixture: 'ring8' or 'grid25' (see `gan_jax.data.mixture_spec`) for 'mixture'.
    labels: the class each sample was generated for, for 'accuracy'.
    real_tokens, train_tokens: text's held-out and training sequences, int token ids [M, L]
      and [K, L], for 'ngram_js' (against the held-out ones) and 'words' (the list is both);
      the samples are then G's softmax rows [N, L, V] (or ids [N, L]).
    classifier_params: MNIST CNN params; loaded from the committed weights when None.
    """

    samples: np.ndarray
    value_range: str = "unit"
    real: np.ndarray | None = None
    parzen_valid: np.ndarray | None = None
    parzen_test: np.ndarray | None = None
    mixture: str | None = None
    labels: np.ndarray | None = None
    real_tokens: np.ndarray | None = None
    train_tokens: np.ndarray | None = None
    classifier_params: dict | None = None
    seed: int = 0
    batch_size: int = 500
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    def params(self):
        """The classifier's parameters (the shipped MNIST classifier unless given), loaded once."""
        if self.classifier_params is None:
            self.classifier_params = classifier.load_classifier()
        return self.classifier_params

    def embed(self, which: str):
        """(logits, feats) of 'samples' or 'real', computed once."""
        if which not in self._cache:
            x = self.samples if which == "samples" else self.require("real")
            self._cache[which] = classifier.logits_and_features(
                self.params(), x, self.value_range, self.batch_size
            )
        return self._cache[which]

    def require(self, field: str):
        """The named input; ValueError naming it when this evaluation was not given it."""
        value = getattr(self, field)
        if value is None:
            raise ValueError(f"this metric needs `{field}`")
        return value

    def unit_rows(self, x):
        """Images mapped to [0, 1] and flattened; points [N, D] as they are."""
        x = np.asarray(x)
        if x.ndim == 2:
            return x.astype(np.float32)
        return np.asarray(classifier.to_unit_range(x, self.value_range)).reshape(x.shape[0], -1)


def _parzen(inp: EvalInputs) -> dict[str, float]:
    out = parzen_evaluate(
        inp.unit_rows(inp.samples),
        inp.unit_rows(inp.require("parzen_valid")),
        inp.unit_rows(inp.require("parzen_test")),
    )
    return {
        "parzen_sigma": out["sigma"],
        "parzen_ll": out["mean"],
        "parzen_ll_stderr": out["stderr"],
    }


def _score(inp: EvalInputs) -> dict[str, float]:
    mean, std = classifier_score(inp.embed("samples")[0], n_splits=SCORE_SPLITS)
    return {"score": mean, "score_std": std}


def _fd(inp: EvalInputs) -> dict[str, float]:
    return {"fd": frechet_distance(inp.embed("real")[1], inp.embed("samples")[1])}


def _kid(inp: EvalInputs) -> dict[str, float]:
    mean, std = kernel_inception_distance(
        inp.embed("real")[1], inp.embed("samples")[1], seed=inp.seed
    )
    return {"kid": mean, "kid_std": std}


def _pr(inp: EvalInputs) -> dict[str, float]:
    precision, recall = precision_recall(inp.embed("real")[1], inp.embed("samples")[1], PR_K)
    return {"precision": precision, "recall": recall}


def _dc(inp: EvalInputs) -> dict[str, float]:
    density, coverage = density_coverage(inp.embed("real")[1], inp.embed("samples")[1], DC_K)
    return {"density": density, "coverage": coverage}


def _classes(inp: EvalInputs) -> dict[str, float]:
    stats = class_histogram(inp.embed("samples")[0])
    return {"classes_covered": stats["covered"], "classes_kl": stats["kl"]}


def _accuracy(inp: EvalInputs) -> dict[str, float]:
    return {"class_accuracy": class_accuracy(inp.embed("samples")[0], inp.require("labels"))}


def _stacked(inp: EvalInputs) -> dict[str, float]:
    out = stacked_mnist_modes(inp.params(), inp.samples, inp.value_range, inp.batch_size)
    return {"stacked_modes": out["modes"], "stacked_kl": out["kl"]}


def _mixture(inp: EvalInputs) -> dict[str, float]:
    centers_Kx2, std = data.mixture_spec(inp.require("mixture"))
    out = mixture_metrics(inp.samples, centers_Kx2, std)
    return {f"mixture_{k}": v for k, v in out.items()}


def _ngram_js(inp: EvalInputs) -> dict[str, float]:
    return text_metrics.ngram_js_all(inp.samples, inp.require("real_tokens"))


def _words(inp: EvalInputs) -> dict[str, float]:
    train = inp.require("train_tokens")
    word_list = np.concatenate([train, inp.require("real_tokens")])
    return text_metrics.word_shares(inp.samples, word_list, train)


METRICS: dict[str, Callable[[EvalInputs], dict[str, float]]] = {
    "parzen": _parzen,
    "score": _score,
    "fd": _fd,
    "kid": _kid,
    "pr": _pr,
    "dc": _dc,
    "classes": _classes,
    "accuracy": _accuracy,
    "stacked": _stacked,
    "mixture": _mixture,
    "ngram_js": _ngram_js,
    "words": _words,
}


# The fewest generated samples each registered metric can use, and why. The reference sets
# (10,000 test images, the true mixture) are far larger; the functions check them too.
MIN_SAMPLES: dict[str, tuple[int, str]] = {
    "parzen": (1, "a window needs a sample"),
    "score": (SCORE_SPLITS, f"one per split of its {SCORE_SPLITS} splits"),
    "fd": (2, "a covariance needs 2 rows; far more give a less biased FD"),
    "kid": (2, "the unbiased MMD needs 2 rows per subset"),
    "pr": (PR_K + 1, f"recall's k-NN balls, k={PR_K}, need a k-th neighbour besides each point"),
    "dc": (1, "only the real set's k-NN balls are used"),
    "classes": (1, "a histogram needs a sample"),
    "accuracy": (1, "a fraction needs a sample"),
    "stacked": (1, "a histogram needs a sample"),
    "mixture": (1, "a histogram needs a sample"),
    "ngram_js": (1, "n-gram counts need a sequence"),
    "words": (1, "a share needs a sample"),
}


def too_few_samples(names: Sequence[str], num_samples: int) -> dict[str, str]:
    """name -> why, for the named metrics that `num_samples` generated samples are too few for."""
    return {
        name: f"{name} needs >= {MIN_SAMPLES[name][0]} samples ({MIN_SAMPLES[name][1]})"
        f"; got {num_samples}"
        for name in names
        if num_samples < MIN_SAMPLES[name][0]
    }


def parse_metric_names(names: str | Sequence[str]) -> list[str]:
    """'parzen,fd' or ['parzen', 'fd'] -> checked list of registered names."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; allowed: {sorted(METRICS)}")
    return list(names)


def compute_metrics(names: str | Sequence[str], samples, **inputs) -> dict[str, float]:
    """Runs the named metrics (see the module docstring) and merges their flat results.

    `inputs` are the other fields of `EvalInputs` (value_range, real, parzen_valid, ...).
    """
    inp = EvalInputs(samples=samples, **inputs)
    results: dict[str, float] = {}
    for name in parse_metric_names(names):
        results.update(METRICS[name](inp))
    return results
