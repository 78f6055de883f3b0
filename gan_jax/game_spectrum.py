"""The Jacobian of the joint gradient field of a real G/D, and its leading eigenvalues.

The field is v(phi) = (-grad_G L_G, -grad_D L_D) at phi = (G's params, D's params), the direction
simultaneous gradient descent moves in (Mescheder et al. 2017, "The Numerics of GANs", Sec. 3).
Near a local equilibrium, eigenvalues of v' with a positive real part repel, those with a zero
real part and a large imaginary part make the players circle, and a penalty such as R1 moves them
to the left (Mescheder et al. 2018, Section 3). Both objectives are the engine's own: D's is
`steps.d_loss` (its loss and weighted penalty) on the real batch and the fakes G(z), G's mirrors
`steps.g_step`'s, on the same fakes; every random draw is fixed by `key`, so v is a deterministic
function of phi.

`game_jacobian_spectrum` never forms the N x N matrix: Arnoldi's method on Jacobian-vector
products (`jax.linearize`) builds an m-step Krylov basis, whose Hessenberg matrix's eigenvalues
(Ritz values) approximate the extremal eigenvalues of v' (Saad, "Numerical Methods for Large
Eigenvalue Problems", Sec. 6.2), each with its residual norm ||v' x - lambda x||. With m = N
they are all eigenvalues; `full_game_jacobian` forms the matrix by `jax.jacfwd` for small nets.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gan_jax import steps
from gan_jax.hparams import Hparams, gan_loss
from gan_jax.spec import Spec
from gan_jax.state import GANState


def _check_spec(spec: Spec, batch) -> Spec:
    """The spec the field is taken under: the batch's size, the penalty on every D update (its
    average strength: a lazy penalty scaled by its interval), one device."""
    if spec.conditioning != "none":
        raise ValueError(
            f"spec.conditioning = {spec.conditioning!r} is not supported; expected 'none'"
        )
    if spec.axis_name is not None:
        raise ValueError(f"spec.axis_name = {spec.axis_name!r}; expected None (one device)")
    x_real = batch[0]
    if x_real.shape[1:] != tuple(spec.data_shape):
        raise ValueError(
            f"batch rows have shape {x_real.shape[1:]}; expected spec.data_shape "
            f"{tuple(spec.data_shape)}"
        )
    return dataclasses.replace(spec, batch_size=x_real.shape[0], penalty_every=1)


def _g_loss(g_params, d_params, state: GANState, z_BxZ, keys, hparams: Hparams, spec: Spec):
    """G's objective on the fakes G(z): `steps.g_step`'s loss for an unconditional G."""
    key_g, key_d = keys
    ids = jnp.arange(z_BxZ.shape[0])
    x_fake, _ = steps.apply_player(state.g, g_params, z_BxZ, train=True, key=key_g, example_ids=ids)
    out, _ = steps.apply_player(state.d, d_params, x_fake, train=True, key=key_d, example_ids=ids)
    return gan_loss(spec.loss, hparams).g_loss(steps.split_outputs(out)[0])


def joint_field(state: GANState, batch, hparams: Hparams, *, spec: Spec, key):
    """(field, phi_N, unravel): v as a function of the flat params phi_N = (G's, D's), at the
    state's params (G's leaves first, then D's), and the map from a flat vector back to
    (G's params, D's params).

    `batch` = (x_real_Bx..., y_real_B or None) as `steps.d_batch` returns; z_BxZ and the
    players' dropout and penalty keys come from `key`. Raises ValueError for a conditional or
    pmap spec or a batch whose rows do not have spec.data_shape.
    """
    spec = _check_spec(spec, batch)
    key_z, key_g, key_d, key_penalty = jax.random.split(key, 4)
    z_BxZ = steps.sample_z(key_z, spec.batch_size, spec.z_dim, spec.z_dist)
    ids = jnp.arange(spec.batch_size)
    phi_N, unravel = ravel_pytree((state.g.params, state.d.params))

    def field(phi):
        g_params, d_params = unravel(phi)

        def d_objective(d_params, g_params):
            x_fake = steps.apply_player(
                state.g, g_params, z_BxZ, train=True, key=key_g, example_ids=ids
            )[0]
            # No stop_gradient on the fakes, unlike the D step: v's D rows depend on G's params.
            return steps.d_loss(
                d_params, state, batch, (x_fake, None), (key_d, key_penalty), hparams, spec=spec
            )[0]

        grad_g = jax.grad(_g_loss)(g_params, d_params, state, z_BxZ, (key_g, key_d), hparams, spec)
        grad_d = jax.grad(d_objective)(d_params, g_params)
        return -ravel_pytree((grad_g, grad_d))[0]

    return field, phi_N, unravel


@functools.partial(jax.jit, static_argnames=("spec",))
def full_game_jacobian(state: GANState, batch, hparams: Hparams, *, spec: Spec, key):
    """The N x N Jacobian v'(phi) by `jax.jacfwd`, rows and columns in `joint_field`'s order
    (G's params, then D's). For nets small enough to hold it; same arguments and errors."""
    field, phi_N, _ = joint_field(state, batch, hparams, spec=spec, key=key)
    return jax.jacfwd(field)(phi_N)


def _orthogonalise(q_MN, w_N):
    """w minus its projection on Q's rows, by classical Gram-Schmidt applied twice, which keeps
    Q orthonormal to working precision (Giraud et al. 2005); and the coefficients removed."""
    coef_M = q_MN @ w_N
    w_N = w_N - q_MN.T @ coef_M
    again_M = q_MN @ w_N
    return w_N - q_MN.T @ again_M, coef_M + again_M


def arnoldi(matvec, v0_N, num_steps: int, key=None):
    """Arnoldi's method: (Q_(m+1)xN, H_(m+1)xm) with A Q[:m].T = Q.T H and Q's rows orthonormal.

    When a step finds (nearly) no new direction (h_(j+1)j below 100 eps |A q_j|: the Krylov space
    is invariant), it records h_(j+1)j = 0 and continues from a random vector orthogonal to Q
    (drawn from `key`), so H stays block upper triangular and with m = N its eigenvalues are
    all of A's, to the precision of the matvec.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    n = v0_N.shape[0]
    tiny = 100 * jnp.finfo(v0_N.dtype).eps
    q_MN = jnp.zeros((num_steps + 1, n), v0_N.dtype).at[0].set(v0_N / jnp.linalg.norm(v0_N))
    h_MM = jnp.zeros((num_steps + 1, num_steps), v0_N.dtype)

    def step(j, carry):
        q_MN, h_MM = carry
        a_q_N = matvec(q_MN[j])
        w_N, coef_M = _orthogonalise(q_MN, a_q_N)  # rows after j are 0, so they add nothing
        beta = jnp.linalg.norm(w_N)
        invariant = beta <= tiny * jnp.linalg.norm(a_q_N)
        fresh_N = _orthogonalise(q_MN, jax.random.normal(jax.random.fold_in(key, j), (n,)))[0]
        w_N = jnp.where(invariant, fresh_N, w_N)
        h_MM = h_MM.at[:, j].set(coef_M.at[j + 1].set(jnp.where(invariant, 0.0, beta)))
        q_MN = q_MN.at[j + 1].set(w_N / jnp.linalg.norm(w_N))
        return q_MN, h_MM

    return jax.lax.fori_loop(0, num_steps, step, (q_MN, h_MM))


class GameSpectrum(NamedTuple):
    """Leading eigenvalues of the game Jacobian (complex; `residuals` >= 0, 0 for exact ones)."""

    eigenvalues: np.ndarray  # complex128 [M]: Ritz values (all N for 'full'), |.| descending
    residuals: np.ndarray  # float64 [M]: ||v' x - lambda x|| of each unit Ritz vector x
    largest_modulus: complex  # the eigenvalue of largest |lambda|
    largest_real: complex  # the eigenvalue of largest real part
    largest_imag: complex  # the eigenvalue of largest |imaginary part|
    num_params: int  # N, the dimension of phi


def _summary(eig_M, residual_M, num_params: int) -> GameSpectrum:
    order = np.argsort(-np.abs(eig_M), kind="stable")
    eig_M, residual_M = eig_M[order], residual_M[order]
    return GameSpectrum(
        eigenvalues=eig_M,
        residuals=residual_M,
        largest_modulus=eig_M[0],
        largest_real=eig_M[np.argmax(eig_M.real)],
        largest_imag=eig_M[np.argmax(np.abs(eig_M.imag))],
        num_params=num_params,
    )


@functools.partial(jax.jit, static_argnames=("spec", "num_steps"))
def _krylov(state, batch, hparams, key, *, spec, num_steps):
    """Arnoldi's Hessenberg matrix H_(m+1)xm of the field's Jacobian, one compile per spec."""
    field, phi_N, _ = joint_field(state, batch, hparams, spec=spec, key=key)
    _, jvp = jax.linearize(field, phi_N)
    v0_N = jax.random.normal(jax.random.fold_in(key, 1), phi_N.shape, phi_N.dtype)
    return arnoldi(jvp, v0_N, num_steps)[1]


def game_jacobian_spectrum(
    state: GANState,
    batch,
    hparams: Hparams,
    *,
    spec: Spec,
    key,
    num_steps: int = 64,
    method: str = "arnoldi",
) -> GameSpectrum:
    """Leading eigenvalues of the Jacobian of the joint gradient field of a real G/D.

    method='arnoldi' (matrix-free): `num_steps` Arnoldi steps, each one Jacobian-vector product
    of `jax.linearize`'d field, from a start vector drawn from `key`; the Ritz values whose
    residual is small relative to |lambda| have converged (the largest-modulus ones first).
    method='full': all N eigenvalues of `full_game_jacobian` by `jnp.linalg.eigvals`.
    `batch`, `key` as in `joint_field`. Raises ValueError for a bad method or num_steps (which
    must be in [1, N]) and for the specs `joint_field` rejects.
    """
    if method not in ("arnoldi", "full"):
        raise ValueError(f"unknown method {method!r}; allowed: ('arnoldi', 'full')")
    field, phi_N, _ = joint_field(state, batch, hparams, spec=spec, key=key)
    n = phi_N.shape[0]
    if method == "full":
        jac_NxN = full_game_jacobian(state, batch, hparams, spec=spec, key=key)
        return _summary(np.linalg.eigvals(np.asarray(jac_NxN, np.float64)), np.zeros(n), n)
    if not 1 <= num_steps <= n:
        raise ValueError(f"num_steps = {num_steps} is not allowed; expected 1 <= num_steps <= {n}")
    h_MM = _krylov(state, batch, hparams, key, spec=spec, num_steps=num_steps)
    h_MM = np.asarray(h_MM, np.float64)
    eig_M, vec_MM = np.linalg.eig(h_MM[:num_steps])
    # ||A Q^T y - lambda Q^T y|| = |h_{m+1,m}| |y_m| for a unit eigenvector y of H (Saad 6.2).
    residual_M = np.abs(h_MM[num_steps, num_steps - 1]) * np.abs(vec_MM[-1])
    return _summary(eig_M, residual_M, n)
