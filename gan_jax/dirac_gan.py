"""The Dirac-GAN (Mescheder et al. 2018, Section 2): GAN training dynamics in two numbers.

G is a point mass at theta, the data a point mass at 0, and D's logit is D(x) = psi * x. The
players' objectives are gan_jax's own losses (`losses.get_loss`) and penalties (`penalties`)
evaluated on these one-point batches, so the field checks the library's code against the paper.

Conventions. gan_jax's logits are positive on real data; the paper's D_psi is positive on fakes
(its objective is f(D(G(z))) + f(-D(x)), D maximising), so our psi is minus the paper's: the
trajectories are mirrored in psi and the Jacobians are similar by diag(1, -1), with the same
eigenvalues. A penalty enters D's loss as gamma/2 times gan_jax's penalty value, the paper's
scaling (R1: gamma/2 E||grad D||^2, its eq. 9), so gan_jax's `loss.penalty_weight` is gamma/2.
In the paper's terms every loss here has f'(0) and f''(0) (`F_DERIVATIVES`): the sigmoid losses
f(t) = -log(1 + exp(-t)), f'(0) = 1/2, f''(0) = -1/4; WGAN f(t) = t, f'(0) = 1, f''(0) = 0 (hinge
is linear near the equilibrium, like WGAN).

Regularisers (`REGULARISERS`, strength `gamma`):
  'none'; 'r1', 'r2': gamma/2 E||grad D||^2 on real (eq. 9) / fake points (Section 3);
  'gp': WGAN-GP, gamma/2 E(||grad D(x_hat)|| - gp_target)^2 (Gulrajani et al. 2017, eq. 3);
  'instance_noise': N(0, gamma^2) noise added to real and fake points (Section 3), the
    expectation taken by Gauss-Hermite quadrature (exact for the equilibrium Jacobian);
  'consensus': v - gamma grad(|v|^2 / 2) (Mescheder et al. 2017, "The Numerics of GANs").
WGAN's weight clipping is not a term of the field but a projection after each D update: the
`clip` argument of `update`/`trajectory`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import losses, penalties

REGULARISERS = ("none", "r1", "r2", "gp", "instance_noise", "consensus")
MODES = ("simultaneous", "alternating")
# (f'(0), f''(0)) of the paper's f for each loss with a closed form (Mescheder et al. 2018, Sec. 2).
F_DERIVATIVES = {
    "minimax": (0.5, -0.25),
    "non_saturating": (0.5, -0.25),
    "wgan": (1.0, 0.0),
    "hinge": (1.0, 0.0),
}
# sqrt of the epsilon under penalties._per_example_grad_norm's square root: the smoothed |psi| at 0.
GP_NORM_AT_ZERO = 1e-6
NOISE_NODES = 20  # Gauss-Hermite nodes for instance noise: exact for polynomials of degree < 40


def check_setting(loss: str, regulariser: str, gamma=0.0) -> None:
    """Raises ValueError for a loss or regulariser gan_jax does not have, or a negative gamma."""
    if loss not in losses.LOSSES:
        raise ValueError(f"unknown loss {loss!r}; allowed: {sorted(losses.LOSSES)}")
    if regulariser not in REGULARISERS:
        raise ValueError(f"unknown regulariser {regulariser!r}; allowed: {REGULARISERS}")
    try:
        concrete = np.asarray(gamma)
    except jax.errors.TracerArrayConversionError:
        return  # traced (inside jit or vmap): checked where it was concrete
    if not np.all(concrete >= 0):
        raise ValueError(f"gamma = {gamma} is not allowed; expected a number >= 0")


def _noise_nodes(std):
    """Gauss-Hermite nodes eps_K and weights w_K (sum 1) for E over eps ~ N(0, std^2)."""
    nodes_K, weights_K = np.polynomial.hermite_e.hermegauss(NOISE_NODES)
    return std * jnp.asarray(nodes_K), jnp.asarray(weights_K / weights_K.sum())


def _objectives(theta, psi, loss: str, regulariser: str, gamma, gp_target):
    """(G's loss, D's loss incl. its penalty) of the Dirac-GAN at (theta, psi), both minimised."""
    gan_loss = losses.get_loss(loss)
    if regulariser == "instance_noise":
        eps_K, w_K = _noise_nodes(gamma)
    else:
        eps_K, w_K = jnp.zeros(1), jnp.ones(1)
    real_K, fake_K = eps_K, theta + eps_K
    # gan_jax's losses are means over a batch; a weighted sum of one-point losses is the
    # expectation under the nodes, since every loss is a sum of a real and a fake mean.
    g_K = jax.vmap(lambda f: gan_loss.g_loss(psi * f[None]))(fake_K)
    d_K = jax.vmap(lambda r, f: gan_loss.d_loss(psi * r[None], psi * f[None]))(real_K, fake_K)
    g, d = jnp.sum(w_K * g_K), jnp.sum(w_K * d_K)

    def d_fn(x_Bx1):
        return psi * x_Bx1[:, 0]

    x_real, x_fake = jnp.zeros((1, 1)), jnp.reshape(theta, (1, 1))
    if regulariser == "r1":
        d = d + 0.5 * gamma * penalties.r1_penalty(d_fn, x_real)
    elif regulariser == "r2":
        d = d + 0.5 * gamma * penalties.r2_penalty(d_fn, x_fake)
    elif regulariser == "gp":
        # The interpolation draw does not matter: in 1-D, grad D = psi everywhere.
        key = jax.random.PRNGKey(0)
        gp = penalties.gradient_penalty(d_fn, x_real, x_fake, key, target=gp_target)
        d = d + 0.5 * gamma * gp
    return g, d


def _gradient_field(theta, psi, loss, regulariser, gamma, gp_target):
    g_grad = jax.grad(lambda t: _objectives(t, psi, loss, regulariser, gamma, gp_target)[0])
    d_grad = jax.grad(lambda p: _objectives(theta, p, loss, regulariser, gamma, gp_target)[1])
    return jnp.stack([-g_grad(theta), -d_grad(psi)])


def dirac_gan_vector_field(
    theta, psi, loss: str = "non_saturating", penalty: str = "none", gamma=0.0, *, gp_target=1.0
) -> jax.Array:
    """v(theta, psi) = (-dL_G/dtheta, -dL_D/dpsi), the joint gradient field of the Dirac-GAN.

    Mescheder et al. 2018, Section 2.2: for the paper's objective this is
    (-psi f'(psi theta), theta f'(psi theta)) (with psi negated, see the module docstring).
    theta, psi: scalars (vmap for grids). `loss`: a key of `losses.LOSSES`; `penalty`: one of
    `REGULARISERS` with strength `gamma` (the noise std for 'instance_noise'); `gp_target` is
    WGAN-GP's g0. Returns the field as a (2,) array [v_theta, v_psi]. Raises ValueError for an
    unknown loss or regulariser or a negative gamma.
    """
    check_setting(loss, penalty, gamma)
    if penalty != "consensus":
        return _gradient_field(theta, psi, loss, penalty, gamma, gp_target)

    def field_2(w_2):
        return _gradient_field(w_2[0], w_2[1], loss, "none", 0.0, gp_target)

    w_2 = jnp.stack([jnp.asarray(theta, float), jnp.asarray(psi, float)])
    v_2, vjp = jax.vjp(field_2, w_2)
    # Consensus optimisation: both players also descend |v|^2 / 2, whose gradient is J^T v.
    return v_2 - gamma * vjp(v_2)[0]


def _field_2(w_2, loss, penalty, gamma, gp_target):
    return dirac_gan_vector_field(w_2[0], w_2[1], loss, penalty, gamma, gp_target=gp_target)


def equilibrium_jacobian(
    loss: str = "non_saturating", penalty: str = "none", gamma=0.0, *, gp_target=1.0
) -> tuple[jax.Array, np.ndarray]:
    """(J_2x2, eigenvalues_2): the Jacobian of `dirac_gan_vector_field` at the equilibrium
    theta = psi = 0 by `jax.jacfwd`, and its eigenvalues (numpy complex128, sorted by imaginary
    then real part).

    Compare with `closed_form_eigenvalues` (Mescheder et al. 2018, the lemmas of Sections 2.2
    and 3): a negative real part on both means local convergence of the continuous dynamics and of
    gradient descent with a small enough step. Same arguments and errors as the field.
    """
    check_setting(loss, penalty, gamma)
    jac_2x2 = _equilibrium_jacobian(loss, penalty, gamma, gp_target)
    return jac_2x2, _eigenvalues(jac_2x2)


@functools.partial(jax.jit, static_argnums=(0, 1, 3))
def _equilibrium_jacobian(loss, penalty, gamma, gp_target):
    return jax.jacfwd(_field_2)(jnp.zeros(2), loss, penalty, gamma, gp_target)


def _eigenvalues(jac_2x2) -> np.ndarray:
    """Eigenvalues of a 2x2 matrix (host, float64), sorted by imaginary then real part."""
    return _sort(np.linalg.eigvals(np.asarray(jac_2x2, np.float64)))


def _sort(eig_K) -> np.ndarray:
    eig_K = np.asarray(eig_K, np.complex128)
    return eig_K[np.lexsort((eig_K.real, eig_K.imag))]


def closed_form_eigenvalues(loss: str, penalty: str = "none", gamma: float = 0.0, gp_target=1.0):
    """The paper's eigenvalues of the Jacobian at the equilibrium: numpy complex128 (2,), sorted.

    With a = f'(0), b = f''(0) (`F_DERIVATIVES`), Mescheder et al. 2018:
      none (Lemma 2.2):                 +- i a
      r1, r2 (Section 3):               -gamma/2 +- sqrt(gamma^2/4 - a^2)
      instance noise std s (Section 3): b s^2 +- sqrt(b^2 s^4 - a^2)
      consensus (Section 3):            -gamma a^2 +- i a
      gp: the paper's field is discontinuous at psi = 0 (it tends to -+gamma g0 sign(psi) in v_psi,
        pointing away from psi = 0), so no Jacobian exists there. gan_jax's norm is
        sqrt(psi^2 + 1e-12), which makes (0, 0) a stationary point with
        J = [[0, a], [-a, c]], c = gamma (g0 / d - 1), d = 1e-6: c/2 +- sqrt(c^2/4 - a^2), a
        huge positive real part, i.e. a repelling point.
    Raises ValueError for a loss without a closed form (LSGAN) or an unknown regulariser.
    """
    check_setting(loss, penalty, gamma)
    if loss not in F_DERIVATIVES:
        raise ValueError(f"no closed form for loss {loss!r}; allowed: {sorted(F_DERIVATIVES)}")
    a, b = F_DERIVATIVES[loss]
    if penalty == "none":
        centre, disc = 0.0, -(a**2)
    elif penalty in ("r1", "r2"):
        centre, disc = -gamma / 2, gamma**2 / 4 - a**2
    elif penalty == "instance_noise":
        centre, disc = b * gamma**2, b**2 * gamma**4 - a**2
    elif penalty == "consensus":
        centre, disc = -gamma * a**2, -(a**2)
    else:  # gp
        c = gamma * (gp_target / GP_NORM_AT_ZERO - 1.0)
        centre, disc = c / 2, c**2 / 4 - a**2
    root = np.sqrt(complex(disc))
    return _sort([centre - root, centre + root])


def update(w_2, loss, penalty, gamma, *, step_size, mode, clip=None, gp_target=1.0):
    """One gradient step on w = (theta, psi) from the field: 'simultaneous' moves both players
    from w; 'alternating' moves D first and then G against the new D, gan_jax's order (one D step
    per G step). `clip` > 0 projects psi onto [-clip, clip] after D's move (WGAN clipping)."""

    def field(w):
        return _field_2(w, loss, penalty, gamma, gp_target)

    def project(psi):
        return psi if clip is None else jnp.clip(psi, -clip, clip)

    if mode == "simultaneous":
        v_2 = field(w_2)
        return jnp.stack([w_2[0] + step_size * v_2[0], project(w_2[1] + step_size * v_2[1])])
    psi = project(w_2[1] + step_size * field(w_2)[1])
    theta = w_2[0] + step_size * field(jnp.stack([w_2[0], psi]))[0]
    return jnp.stack([theta, psi])


def _check_mode(mode: str, step_size, clip) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {MODES}")
    if not step_size > 0:
        raise ValueError(f"step_size = {step_size} is not allowed; expected a number > 0")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip = {clip} is not allowed; expected None or a number > 0")


def update_jacobian(
    loss="non_saturating", penalty="none", gamma=0.0, *, step_size, mode, gp_target=1.0
) -> tuple[jax.Array, np.ndarray]:
    """(F'_2x2, eigenvalues_2) of one `update` at the equilibrium, by `jax.jacfwd`.

    Gradient descent converges locally iff every eigenvalue has modulus < 1 (Mescheder et al.
    2018, Appendix A). Unregularised, with a = f'(0) and h the step: simultaneous 1 +- i h a
    (modulus sqrt(1 + h^2 a^2) > 1: it spirals out); alternating 1 - h^2 a^2 / 2 +-
    sqrt((1 - h^2 a^2 / 2)^2 - 1), modulus 1 for h a <= 2: it circles (the paper's Section 2.2).
    Raises ValueError for a bad setting, mode or step size.
    """
    check_setting(loss, penalty, gamma)
    _check_mode(mode, step_size, None)
    step = functools.partial(
        update,
        loss=loss,
        penalty=penalty,
        gamma=gamma,
        step_size=step_size,
        mode=mode,
        gp_target=gp_target,
    )
    jac_2x2 = jax.jit(jax.jacfwd(step))(jnp.zeros(2))
    return jac_2x2, _eigenvalues(jac_2x2)


@functools.partial(
    jax.jit, static_argnames=("loss", "penalty", "mode", "num_steps", "clip", "gp_target")
)
def _trajectory(start_2, gamma, step_size, *, loss, penalty, mode, num_steps, clip, gp_target):
    def body(w_2, _):
        w_2 = update(
            w_2,
            loss,
            penalty,
            gamma,
            step_size=step_size,
            mode=mode,
            clip=clip,
            gp_target=gp_target,
        )
        return w_2, w_2

    _, path_Tx2 = jax.lax.scan(body, start_2, None, length=num_steps)
    return jnp.concatenate([start_2[None], path_Tx2])


def trajectory(
    start,
    loss="non_saturating",
    penalty="none",
    gamma=0.0,
    *,
    step_size: float,
    num_steps: int,
    mode: str = "alternating",
    clip: float | None = None,
    gp_target: float = 1.0,
) -> jax.Array:
    """(theta, psi) over `num_steps` gradient steps from `start` (the paper's Figures 2-4).

    Returns path_Tx2 with T = num_steps + 1, row 0 the start (psi clipped first with `clip`).
    Raises ValueError for a bad setting, mode, step size, clip or start.
    """
    check_setting(loss, penalty, gamma)
    _check_mode(mode, step_size, clip)
    start_2 = jnp.asarray(start, float)
    if start_2.shape != (2,):
        raise ValueError(f"start has shape {start_2.shape}; expected (2,), (theta, psi)")
    if clip is not None:
        start_2 = start_2.at[1].set(jnp.clip(start_2[1], -clip, clip))
    return _trajectory(
        start_2,
        gamma,
        step_size,
        loss=loss,
        penalty=penalty,
        mode=mode,
        num_steps=num_steps,
        clip=clip,
        gp_target=gp_target,
    )
