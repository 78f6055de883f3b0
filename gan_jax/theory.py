"""Closed-form objects from the GAN papers, as differentiable jnp functions for checking the theory.

Distributions are probability vectors p_K over a common support of K points. Every reduction takes
an optional `dx` (a scalar or a K-vector of cell widths), so passing density values on a 1-D grid
turns the sums into Riemann integrals; with the default dx=1 the inputs are probability masses.
Points where a weight is 0 contribute 0 (0 log 0 = 0) and give finite, NaN-free gradients: every
log and division is taken of a `jnp.where`-guarded operand, so the unused branch stays finite.

References:
  Goodfellow et al. 2014, "Generative Adversarial Nets" (GAN).
  Mao et al. 2017, "Least Squares Generative Adversarial Networks" (LSGAN).
  Arjovsky et al. 2017, "Wasserstein GAN" (WGAN).
  Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (WGAN-GP).

Training dynamics (Mescheder et al. 2017, 2018) live in their own modules and are exposed here:
the Dirac-GAN's field and equilibrium Jacobian (`gan_jax.dirac_gan`) and the game Jacobian's
spectrum of a real G/D (`gan_jax.game_spectrum`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.dirac_gan import closed_form_eigenvalues as closed_form_eigenvalues
from gan_jax.dirac_gan import dirac_gan_vector_field as dirac_gan_vector_field
from gan_jax.dirac_gan import equilibrium_jacobian as equilibrium_jacobian
from gan_jax.game_spectrum import game_jacobian_spectrum as game_jacobian_spectrum


def _integrate(f_K, dx) -> jax.Array:
    return jnp.sum(f_K * dx)


def _xlogy(x, y) -> jax.Array:
    """x * log(y), defined as 0 wherever x == 0, with a zero (not NaN) gradient there."""
    positive = x > 0
    return jnp.where(positive, x * jnp.log(jnp.where(positive, y, 1.0)), 0.0)


def _safe_ratio(num, den, fill) -> jax.Array:
    """num / den where den > 0, else `fill`; the guarded denominator keeps gradients finite."""
    positive = den > 0
    return jnp.where(positive, num / jnp.where(positive, den, 1.0), fill)


# ----------------------------------------------------------------------------- original GAN


def value_function(p_data_K, p_g_K, d_K, dx=1.0) -> jax.Array:
    """V(D, G) = E_{p_data}[log D(x)] + E_{p_g}[log(1 - D(x))] (Goodfellow et al. 2014, eq. 1).

    `d_K` holds the discriminator's probabilities D(x) in (0, 1) at the support points.
    """
    return _integrate(_xlogy(p_data_K, d_K) + _xlogy(p_g_K, 1.0 - d_K), dx)


def optimal_discriminator(p_data_K, p_g_K) -> jax.Array:
    """D*(x) = p_data / (p_data + p_g) (Goodfellow et al. 2014, Proposition 1).

    Where both densities vanish D* is arbitrary (V does not depend on it); we return 1/2, the value
    it takes wherever p_data = p_g.
    """
    return _safe_ratio(p_data_K, p_data_K + p_g_K, 0.5)


def virtual_training_criterion(p_data_K, p_g_K, dx=1.0) -> jax.Array:
    """C(G) = max_D V(G, D) = V(D*, G) (Goodfellow et al. 2014, eq. 4).

    Written as E_{p_data} log(p_data / (p_data + p_g)) + E_{p_g} log(p_g / (p_data + p_g)), which
    is V(D*, G) with 1 - D* formed as p_g / (p_data + p_g) rather than by a cancelling subtraction.
    """
    s_K = p_data_K + p_g_K
    return _integrate(
        _xlogy(p_data_K, _safe_ratio(p_data_K, s_K, 1.0))
        + _xlogy(p_g_K, _safe_ratio(p_g_K, s_K, 1.0)),
        dx,
    )


def criterion_gradient(p_data_K, p_g_K) -> jax.Array:
    """dC/dp_g(x) = log(p_g / (p_data + p_g)) = log(1 - D*(x)), the analytic gradient of C(G).

    By the envelope theorem dV(D*, G)/dp_g = dV/dp_g at fixed D = D*, since dV/dD = 0 there.
    """
    return jnp.log(_safe_ratio(p_g_K, p_data_K + p_g_K, 1.0))


def kl_divergence(p_K, q_K, dx=1.0) -> jax.Array:
    """KL(p || q) = sum p log(p / q) in nats, 0 where p = 0 and +inf where p > 0 = q."""
    return _integrate(_xlogy(p_K, p_K) - _xlogy(p_K, q_K), dx)


def jensen_shannon(p_K, q_K, dx=1.0) -> jax.Array:
    """JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, in nats (<= log 2)."""
    m_K = 0.5 * (p_K + q_K)
    return 0.5 * kl_divergence(p_K, m_K, dx) + 0.5 * kl_divergence(q_K, m_K, dx)


# ----------------------------------------------------------------------------- LSGAN


def lsgan_discriminator_objective(p_data_K, p_g_K, d_K, a, b, dx=1.0) -> jax.Array:
    """V_LSGAN(D) = 1/2 E_{p_data}[(D(x) - b)^2] + 1/2 E_{p_g}[(D(x) - a)^2] (Mao et al., eq. 2).

    The discriminator minimises it; `d_K` holds its raw (unsquashed) outputs.
    """
    return 0.5 * _integrate(p_data_K * (d_K - b) ** 2 + p_g_K * (d_K - a) ** 2, dx)


def lsgan_optimal_discriminator(p_data_K, p_g_K, a, b) -> jax.Array:
    """D*(x) = (b p_data + a p_g) / (p_data + p_g) (Mao et al. 2017, eq. 4); (a+b)/2 off-support."""
    return _safe_ratio(b * p_data_K + a * p_g_K, p_data_K + p_g_K, 0.5 * (a + b))


def lsgan_generator_criterion(p_data_K, p_g_K, a, b, c, dx=1.0) -> jax.Array:
    """C(G) = 1/2 E_{p_data}[(D*(x) - c)^2] + 1/2 E_{p_g}[(D*(x) - c)^2] (Mao et al., Sec. 3.2.2).

    The p_data term does not depend on G (eq. 3); it is kept so that 2 C(G) becomes a divergence:
    2 C(G) = sum ((b - c)(p_data + p_g) - (b - a) p_g)^2 / (p_data + p_g)   (eq. 7).
    """
    err_K = lsgan_optimal_discriminator(p_data_K, p_g_K, a, b) - c
    return 0.5 * _integrate((p_data_K + p_g_K) * err_K**2, dx)


def pearson_chi2(p_K, q_K, dx=1.0) -> jax.Array:
    """Pearson chi^2(p, q) = sum (p - q)^2 / q; 0 where both vanish, +inf where p > 0 = q.

    Mao et al. 2017, eq. 8, write chi^2_Pearson(p_data + p_g || 2 p_g) for the integral of
    (2 p_g - (p_data + p_g))^2 / (p_data + p_g), i.e. with the first argument in the denominator;
    in this function's convention that is `pearson_chi2(2 * p_g, p_data + p_g)`.
    """
    diff_sq_K = (p_K - q_K) ** 2
    off_support = jnp.where(diff_sq_K > 0, jnp.inf, 0.0)
    return _integrate(_safe_ratio(diff_sq_K, q_K, off_support), dx)


# ----------------------------------------------------------------------------- WGAN


def _concrete(x):
    """x as a numpy array, or None when it is traced (its values unknown until run)."""
    try:
        return np.asarray(x)
    except jax.errors.TracerArrayConversionError:
        return None


def _check_weights(name: str, w, n: int) -> None:
    if w is None:
        return
    if jnp.shape(w) != (n,):
        raise ValueError(f"{name} has shape {jnp.shape(w)}; expected ({n},), one per sample")
    w = _concrete(w)
    if w is not None and (np.any(w < 0) or not np.sum(w) > 0 or not np.all(np.isfinite(w))):
        raise ValueError(f"{name} = {w} is not allowed; expected finite weights >= 0, sum > 0")


def wasserstein1_1d(x_N, y_M, x_weights_N=None, y_weights_M=None) -> jax.Array:
    """W1 between the (weighted) empirical distributions of two 1-D samples of any sizes.

    W1 = integral |F_x(t) - F_y(t)| dt, the L1 distance of the two CDFs, each sample's weights
    normalised to sum 1 (equal weights when None): the value scipy.stats.wasserstein_distance
    computes. In 1-D the optimal coupling is monotone, so for equal sizes and weights this is
    mean |x_(i) - y_(i)|, and in general it equals the Kantorovich-Rubinstein dual
    sup_{||f||_L <= 1} E_x f - E_y f that the WGAN critic estimates (Arjovsky et al. 2017).

    Both samples are sorted together with signed weights (+ for x, - for y), whose running sum
    is F_x - F_y between consecutive points. Differentiable in the points and the weights, and
    jit-able. Raises ValueError for samples that are not non-empty 1-D arrays, weights of
    another shape, or (when their values are known) negative, non-finite or zero-sum weights.
    """
    x_N, y_M = jnp.asarray(x_N), jnp.asarray(y_M)
    if x_N.ndim != 1 or y_M.ndim != 1 or x_N.shape[0] < 1 or y_M.shape[0] < 1:
        raise ValueError(f"need two non-empty 1-D samples, got shapes {x_N.shape} and {y_M.shape}")
    _check_weights("x_weights_N", x_weights_N, x_N.shape[0])
    _check_weights("y_weights_M", y_weights_M, y_M.shape[0])
    n, m = x_N.shape[0], y_M.shape[0]
    dtype = jnp.result_type(x_N, y_M, float)
    x_weights_N = None if x_weights_N is None else jnp.asarray(x_weights_N, dtype)
    y_weights_M = None if y_weights_M is None else jnp.asarray(y_weights_M, dtype)
    px_N = (
        jnp.full(n, 1.0 / n, dtype) if x_weights_N is None else x_weights_N / jnp.sum(x_weights_N)
    )
    py_M = (
        jnp.full(m, 1.0 / m, dtype) if y_weights_M is None else y_weights_M / jnp.sum(y_weights_M)
    )
    points_L = jnp.concatenate([x_N, y_M]).astype(dtype)
    order_L = jnp.argsort(points_L)
    sorted_L = points_L[order_L]
    cdf_gap_L = jnp.cumsum(jnp.concatenate([px_N, -py_M]).astype(dtype)[order_L])
    return jnp.sum(jnp.abs(cdf_gap_L[:-1]) * jnp.diff(sorted_L))


def _cdf_difference(p_K, q_K) -> jax.Array:
    """CDF_q - CDF_p at each grid point, for weights normalised to sum 1.

    Summed from the left below the mixture's median and as minus the right tail above it, so both
    tails keep their relative precision instead of resting on 1 - (1 - tiny) cancellations.
    """
    diff_K = q_K / jnp.sum(q_K) - p_K / jnp.sum(p_K)
    from_left_K = jnp.cumsum(diff_K)
    from_right_K = -jnp.append(jnp.cumsum(diff_K[::-1])[::-1][1:], 0.0)
    mixture_cdf_K = jnp.cumsum(0.5 * (p_K / jnp.sum(p_K) + q_K / jnp.sum(q_K)))
    return jnp.where(mixture_cdf_K <= 0.5, from_left_K, from_right_K)


def wasserstein1_1d_densities(p_K, q_K, grid_K) -> jax.Array:
    """W1 = integral |CDF_p(x) - CDF_q(x)| dx for weights on an ascending grid.

    p_K and q_K are non-negative weights at the grid points (densities on a uniform grid, or
    probability masses); each is normalised to sum 1, so the result is the exact W1 between the
    discrete measures sum_k p_k delta(x_k) and sum_k q_k delta(x_k), which is the left Riemann sum
    of the integral for densities.
    """
    delta_K = _cdf_difference(p_K, q_K)
    return jnp.sum(jnp.abs(delta_K[:-1]) * jnp.diff(grid_K))


def wgan_gp_optimal_gap_1d(p_K, q_K, rho_K, grid_K, gp_weight) -> jax.Array:
    """E_p f - E_q f of the best critic f under the soft gradient penalty, in 1-D.

    WGAN-GP (Gulrajani et al. 2017, eq. 3) maximises E_p f - E_q f - lambda E_rho (|f'| - 1)^2,
    with rho the density of the interpolates. In 1-D, E_p f - E_q f = int f' (CDF_q - CDF_p) dx,
    so the objective splits pointwise and |f'| = 1 + |CDF_q - CDF_p| / (2 lambda rho): the penalty
    is soft, and the optimal critic's gap exceeds W1 by int (CDF_q - CDF_p)^2 / (2 lambda rho) dx.
    p_K, q_K are weights on the ascending grid as in `wasserstein1_1d_densities`; rho_K is the
    interpolates' density (per unit x) at the grid points.
    """
    delta_K = _cdf_difference(p_K, q_K)
    # Where rho = 0 the penalty does not constrain f, so a nonzero CDF gap makes the sup infinite.
    unconstrained = jnp.where(delta_K**2 > 0, jnp.inf, 0.0)
    excess_K = _safe_ratio(delta_K**2, 2.0 * gp_weight * rho_K, unconstrained)
    return wasserstein1_1d_densities(p_K, q_K, grid_K) + jnp.sum(excess_K[:-1] * jnp.diff(grid_K))


# ----------------------------------------------------------------------------- generator losses


def saturating_generator_loss(logit) -> jax.Array:
    """log(1 - D(G(z))), D = sigmoid(logit): G's term in V (Goodfellow et al. 2014, eq. 1)."""
    return jax.nn.log_sigmoid(-logit)


def non_saturating_generator_loss(logit) -> jax.Array:
    """-log D(G(z)), the heuristic G loss of Goodfellow et al. 2014, Section 3."""
    return -jax.nn.log_sigmoid(logit)


def generator_gradients_wrt_logit(logit) -> tuple[jax.Array, jax.Array]:
    """(d/dl saturating loss, d/dl non-saturating loss), elementwise, by autodiff.

    Analytically these are -sigmoid(l) = -D and -(1 - sigmoid(l)) = -(1 - D): when D(G(z)) -> 0
    the saturating gradient vanishes while the non-saturating one tends to -1.
    """
    saturating = jax.grad(lambda z: jnp.sum(saturating_generator_loss(z)))(logit)
    non_saturating = jax.grad(lambda z: jnp.sum(non_saturating_generator_loss(z)))(logit)
    return saturating, non_saturating


def generator_gradient_ratio(d) -> jax.Array:
    """Non-saturating over saturating gradient at D(G(z)) = d, which equals (1 - d) / d."""
    logit = jnp.log(d) - jnp.log1p(-d)
    saturating, non_saturating = generator_gradients_wrt_logit(logit)
    return non_saturating / saturating


# ----------------------------------------------------------------------------- Proposition 2


def criterion_descent(p_data_K, logits_K, learning_rate: float, num_steps: int):
    """Gradient descent on softmax logits of p_g against C(G) (Goodfellow et al. 2014, Prop. 2).

    Proposition 2: with D kept at D*, updating p_g along the gradient of C(G) converges to
    p_g = p_data, since C is convex in p_g (here p_g = softmax(logits), whose descent still
    decreases C monotonically for a small enough step). Returns the final logits and, per step
    before each update, JSD(p_data || p_g)_T and C(G)_T.
    """

    def step(logits, _):
        p_g_K = jax.nn.softmax(logits)
        c, grad_K = jax.value_and_grad(
            lambda z: virtual_training_criterion(p_data_K, jax.nn.softmax(z))
        )(logits)
        return logits - learning_rate * grad_K, (jensen_shannon(p_data_K, p_g_K), c)

    logits_K, (jsd_T, c_T) = jax.lax.scan(step, logits_K, None, length=num_steps)
    return logits_K, jsd_T, c_T
