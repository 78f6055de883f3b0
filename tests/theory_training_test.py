"""The theory against real training: a neural D trained by the engine's own D step (G frozen)
converges to D* = p_data / (p_data + p_g) (Goodfellow et al. 2014, Proposition 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gan_jax import engine, hparams, steps, theory
from gan_jax.config import default_config
from gan_jax.data import GAUSSIAN_1D

# p_g = N(3, 0.5^2): the data's width, so log D*/(1 - D*) is linear in x and D* is a logistic
# curve that a small ReLU MLP can fit across the whole overlap. (With unequal widths the logit is
# quadratic and the D must also bend down in the thin tail of p_g, which needs far longer runs.)
G_MEAN, G_STD = 3.0, 0.5
D_STEPS = 2000
SEED = 0
MASS = 0.01  # compare only where both densities exceed this: elsewhere D* is barely constrained


def frozen_g_config():
    """gaussian_1d with an affine G(z) = G_STD z + G_MEAN of a normal z, so p_g is known exactly."""
    c = default_config()
    c.data.name = "gaussian_1d"
    c.model.z_dim = 1
    c.model.z_dist = "normal"
    c.model.generator_kwargs = {"hidden": (), "output_activation": "linear"}
    c.model.discriminator_kwargs = {"hidden": (32, 32)}
    # Large batches and a learning rate annealed 3e-3 -> 5e-5 over the run: the last updates
    # average out the minibatch noise instead of leaving D wherever the last batch pushed it.
    c.train.batch_size = 1024
    c.optim.d.update(lr=3e-3, lr_decay=1.002)
    return c


@pytest.fixture(scope="module")
def trained():
    """(initial state, state after D_STEPS D updates with G frozen)."""
    config = frozen_g_config()
    spec, hp = engine.make_spec(config), hparams.from_config(config)

    @jax.jit
    def run(key):
        state = engine.init(key, hp, spec=spec)
        g_params = {"Dense_0": {"kernel": jnp.full((1, 1), G_STD), "bias": jnp.full((1,), G_MEAN)}}
        state = state.replace(g=state.g.replace(params=g_params))
        # Only d_update: G's params, optimizer and step counter must come out untouched.
        final, _ = jax.lax.scan(
            lambda s, _: engine.d_update(s, None, hp, spec=spec), state, None, length=D_STEPS
        )
        return state, final

    return run(jax.random.PRNGKey(SEED))


def _densities(x_K):
    p_data_K = stats.norm.pdf(x_K, GAUSSIAN_1D["mean"], GAUSSIAN_1D["std"])
    return p_data_K, stats.norm.pdf(x_K, G_MEAN, G_STD)


def test_generator_is_the_chosen_affine_map_and_stays_frozen(trained):
    initial, final = trained
    x = steps.generate(final, jnp.array([[-1.0], [0.0], [1.0]]))
    np.testing.assert_allclose(x[:, 0], [G_MEAN - G_STD, G_MEAN, G_MEAN + G_STD], rtol=1e-6)
    assert int(final.step) == 0 and int(final.d_updates) == D_STEPS
    jax.tree.map(np.testing.assert_array_equal, initial.g, final.g)


def test_trained_discriminator_approaches_optimal_discriminator(trained):
    _, final = trained
    x_K = np.linspace(0.0, 7.0, 1401)
    p_data_K, p_g_K = _densities(x_K)
    d_K = np.asarray(jax.nn.sigmoid(steps.discriminate(final, jnp.asarray(x_K[:, None]))))
    d_star_K = np.asarray(theory.optimal_discriminator(p_data_K, p_g_K))

    support = (p_data_K > MASS) & (p_g_K > MASS)
    # The compared region must cover the whole S of D*, not just its flat middle.
    assert d_star_K[support].min() < 0.05 and d_star_K[support].max() > 0.95
    assert np.max(np.abs(d_K - d_star_K)[support]) < 0.05


def test_trained_discriminator_value_approaches_criterion(trained):
    """V(D, G) <= max_D V = C(G) = -log 4 + 2 JSD (eq. 4, Theorem 1), with equality at D*."""
    _, final = trained
    # 5 standard deviations past both means: the mass left outside is below 1e-6.
    x_K = np.linspace(0.5, 6.5, 1201)
    dx = x_K[1] - x_K[0]
    p_data_K, p_g_K = _densities(x_K)
    logits_K = np.asarray(steps.discriminate(final, jnp.asarray(x_K[:, None])), np.float64)
    with jax.enable_x64(True):
        # The sigmoid in float64, so that a confident D does not round to exactly 0 or 1.
        v = float(theory.value_function(p_data_K, p_g_K, jax.nn.sigmoid(logits_K), dx))
        c = float(theory.virtual_training_criterion(p_data_K, p_g_K, dx))
    # Pointwise D* maximises the integrand, so the Riemann sums keep the inequality exactly.
    assert 0.0 <= c - v < 2e-3
