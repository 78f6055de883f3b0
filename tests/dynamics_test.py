"""Training dynamics: the Dirac-GAN's equilibrium eigenvalues against Mescheder et al. 2018's
closed forms, and the matrix-free game Jacobian spectrum against the full matrix's eigenvalues."""

import math

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fresh_state, tiny_config

from gan_jax import engine, hparams, steps, theory
from gan_jax.dirac_gan import trajectory, update_jacobian
from gan_jax.game_spectrum import full_game_jacobian

# f'(0) of the paper's f: sigmoid losses f(t) = -log(1 + exp(-t)) -> 1/2; WGAN f(t) = t -> 1.
F1 = {"minimax": 0.5, "non_saturating": 0.5, "wgan": 1.0, "hinge": 1.0}
F2 = {"minimax": -0.25, "non_saturating": -0.25, "wgan": 0.0, "hinge": 0.0}  # f''(0)


def _pair(centre, disc):
    root = complex(disc) ** 0.5
    return np.sort_complex(np.array([centre - root, centre + root]))


def _expected(loss, penalty, gamma):
    """The paper's eigenvalues, written out here independently of gan_jax.dirac_gan."""
    a, b = F1[loss], F2[loss]
    if penalty == "none":  # Lemma 2.2
        return _pair(0.0, -(a**2))
    if penalty in ("r1", "r2"):  # Section 3, zero-centred gradient penalties
        return _pair(-gamma / 2, gamma**2 / 4 - a**2)
    if penalty == "instance_noise":  # Section 3, instance noise with std gamma
        return _pair(b * gamma**2, b**2 * gamma**4 - a**2)
    if penalty == "consensus":  # consensus optimisation
        return _pair(-gamma * a**2, -(a**2))
    raise AssertionError(penalty)


CASES = [
    (loss, penalty, gamma)
    for loss in ("minimax", "non_saturating", "wgan")
    for penalty, gamma in [
        ("none", 0.0),
        ("r1", 0.3),
        ("r1", 1.0),  # critical for the sigmoid losses: gamma = 2 f'(0), a double root
        ("r2", 3.0),  # overdamped: two real roots
        ("instance_noise", 0.7),
        ("instance_noise", 2.5),
        ("consensus", 0.3),
    ]
]


def test_equilibrium_eigenvalues_are_the_papers():
    with jax.enable_x64(True):
        for loss, penalty, gamma in CASES:
            jac_2x2, eig_2 = theory.equilibrium_jacobian(loss, penalty, gamma)
            got = np.sort_complex(np.asarray(eig_2))
            want = _expected(loss, penalty, gamma)
            # A double root moves by sqrt(perturbation); 1e-6 covers float64 at gamma = 2 f'(0).
            np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"{loss} {penalty} {gamma}")
            np.testing.assert_allclose(
                np.sort_complex(np.asarray(theory.closed_form_eigenvalues(loss, penalty, gamma))),
                want,
                atol=1e-6,
            )
            # The off-diagonal is +-f'(0) in every setting (the paper's psi is minus ours).
            assert abs(jac_2x2[0, 1]) == pytest.approx(F1[loss])


def test_unregularised_field_is_the_papers_and_wgan_gp_is_discontinuous_at_psi_0():
    field = jax.jit(theory.dirac_gan_vector_field, static_argnums=(2, 3))
    with jax.enable_x64(True):
        theta, psi = 0.7, -0.4
        # Paper (Sec. 2.2, psi negated): v = (psi f'(-psi theta), -theta f'(-psi theta)),
        # f'(t) = sigmoid(-t) for the minimax GAN.
        fp = 1.0 / (1.0 + math.exp(-psi * theta))
        np.testing.assert_allclose(
            field(theta, psi, "minimax", "none", 0.0), [psi * fp, -theta * fp]
        )
        # WGAN-GP, gamma/2 (|psi| - g0)^2: v_psi -> +-gamma (g0 - |psi|) away from psi = 0 on
        # either side, so (0, 0) attracts nothing; gan_jax's smoothed norm makes v(0, 0) = 0.
        gamma, g0 = 0.7, 1.0
        for p in (1e-3, -1e-3, 0.5, -0.5):
            v_2 = field(0.0, p, "wgan", "gp", gamma, gp_target=g0)
            np.testing.assert_allclose(v_2, [p, gamma * (g0 - abs(p)) * np.sign(p)], rtol=1e-6)
        np.testing.assert_allclose(field(0.0, 0.0, "wgan", "gp", gamma), 0)
        eig_2 = theory.equilibrium_jacobian("wgan", "gp", gamma)[1]
        assert np.max(eig_2.real) > 1e4  # a repelling point
        want_2 = theory.closed_form_eigenvalues("wgan", "gp", gamma)
        np.testing.assert_allclose(eig_2, want_2, rtol=1e-4)


@pytest.mark.parametrize("h", [0.1, 0.5])
def test_gradient_descent_update_eigenvalues(h):
    """Simultaneous GD: 1 +- i h a (modulus > 1); alternating: modulus 1 (Section 2.2)."""
    with jax.enable_x64(True):
        for loss, a in (("minimax", 0.5), ("wgan", 1.0)):
            sim = np.asarray(update_jacobian(loss, step_size=h, mode="simultaneous")[1])
            np.testing.assert_allclose(np.sort_complex(sim), [1 - 1j * h * a, 1 + 1j * h * a])
            alt = np.asarray(update_jacobian(loss, step_size=h, mode="alternating")[1])
            centre = 1 - (h * a) ** 2 / 2
            np.testing.assert_allclose(np.sort_complex(alt), _pair(centre, centre**2 - 1))
            np.testing.assert_allclose(np.abs(alt), 1.0)


def test_trajectories_circle_diverge_or_converge():
    start = [1.0, -1.0]
    kwargs = {"step_size": 0.2, "num_steps": 500}
    norm = {
        name: np.linalg.norm(np.asarray(trajectory(start, *setting, **kwargs, mode=mode)), axis=1)
        for name, setting, mode in [
            ("sim", ("minimax", "none", 0.0), "simultaneous"),
            ("alt", ("minimax", "none", 0.0), "alternating"),
            ("r1", ("minimax", "r1", 0.3), "alternating"),
            ("noise", ("minimax", "instance_noise", 0.7), "alternating"),
        ]
    }
    assert norm["sim"][-1] > 2.0 * norm["sim"][0]  # spirals out
    assert 0.95 < norm["alt"].min() / norm["alt"][0] and norm["alt"].max() / norm["alt"][0] < 1.1
    assert norm["r1"][-1] < 1e-6 and norm["noise"][-1] < 1e-4
    clipped = np.asarray(trajectory(start, "wgan", **kwargs, clip=0.3))
    assert np.max(np.abs(clipped[:, 1])) <= 0.3


def test_dirac_gan_rejects_bad_settings():
    with pytest.raises(ValueError, match="unknown loss 'gan'.*allowed"):
        theory.dirac_gan_vector_field(0.0, 0.0, "gan")
    with pytest.raises(ValueError, match="unknown regulariser 'r3'.*allowed"):
        theory.equilibrium_jacobian("minimax", "r3")
    with pytest.raises(ValueError, match="gamma = -1.0 is not allowed"):
        theory.equilibrium_jacobian("minimax", "r1", -1.0)
    with pytest.raises(ValueError, match="no closed form for loss 'lsgan'"):
        theory.closed_form_eigenvalues("lsgan")
    with pytest.raises(ValueError, match="unknown mode 'joint'"):
        trajectory([1.0, 1.0], step_size=0.1, num_steps=3, mode="joint")
    with pytest.raises(ValueError, match=r"start has shape \(3,\)"):
        trajectory([1.0, 1.0, 1.0], step_size=0.1, num_steps=3)


# ----------------------------------------------------------------------------- real nets


@pytest.fixture(scope="module")
def tiny_game():
    """A minimax ring8 GAN with 4-unit MLPs (N = 39 params) and R1: state, batch, Hparams, spec."""
    c = tiny_config(batch_size=16)
    c.model.generator_kwargs = {"hidden": (4,), "output_activation": "linear"}
    c.model.discriminator_kwargs = {"hidden": (4,)}
    c.loss.update(name="minimax", penalty="r1", penalty_weight=1.0)
    spec = engine.make_spec(c)
    state = fresh_state(c)
    return state, steps.d_batch(state, None, spec=spec), hparams.from_config(c), spec


def test_matrix_free_spectrum_matches_full_eigvals(tiny_game):
    state, batch, hp, spec = tiny_game
    key = jax.random.PRNGKey(3)
    jac_NxN = full_game_jacobian(state, batch, hp, spec=spec, key=key)
    n = jac_NxN.shape[0]
    # The minimax GAN is zero-sum between the players (R1 involves D alone), so the coupling
    # blocks are J_gd = -J_dg^T; each diagonal block is minus a Hessian, so it is symmetric.
    n_g = jax.flatten_util.ravel_pytree(state.g.params)[0].shape[0]
    j_gg, j_gd = jac_NxN[:n_g, :n_g], jac_NxN[:n_g, n_g:]
    j_dg, j_dd = jac_NxN[n_g:, :n_g], jac_NxN[n_g:, n_g:]
    assert float(jnp.max(jnp.abs(j_gd))) > 1e-3
    np.testing.assert_allclose(j_gd, -j_dg.T, atol=1e-6)
    np.testing.assert_allclose(j_gg, j_gg.T, atol=1e-6)
    np.testing.assert_allclose(j_dd, j_dd.T, atol=1e-6)

    exact_N = np.linalg.eigvals(np.asarray(jac_NxN, np.float64))
    spectrum = theory.game_jacobian_spectrum(state, batch, hp, spec=spec, key=key, num_steps=n)
    assert spectrum.num_params == n == 39
    got_N = np.asarray(spectrum.eigenvalues)
    scale = np.max(np.abs(exact_N))
    # Every exact eigenvalue has a Ritz value next to it, and the other way round.
    gap_NxN = np.abs(exact_N[:, None] - got_N[None, :])
    assert gap_NxN.min(axis=1).max() < 1e-4 * scale and gap_NxN.min(axis=0).max() < 1e-4 * scale
    for name, pick in (("largest_modulus", np.abs), ("largest_real", np.real)):
        want = exact_N[np.argmax(pick(exact_N))]
        assert abs(complex(getattr(spectrum, name)) - want) < 1e-4 * scale, name
    with pytest.raises(ValueError, match="num_steps = 40 is not allowed"):
        theory.game_jacobian_spectrum(state, batch, hp, spec=spec, key=key, num_steps=40)
    with pytest.raises(ValueError, match=r"batch rows have shape \(1,\); expected"):
        theory.game_jacobian_spectrum(state, (batch[0][:, :1], None), hp, spec=spec, key=key)
    with pytest.raises(ValueError, match="unknown method 'dense'"):
        theory.game_jacobian_spectrum(state, batch, hp, spec=spec, key=key, method="dense")
