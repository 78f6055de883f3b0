import jax
import jax.numpy as jnp
import numpy as np
from conftest import tiny_config

from gan_jax import train


def leaves_equal(a, b):
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(x, y) for x, y in pairs)


def setup(config=None):
    trainer = train.make_trainer(config or tiny_config())
    return trainer, trainer.init(jax.random.PRNGKey(0))


def test_d_step_never_touches_g_and_g_step_never_touches_d():
    trainer, state = setup()
    after_d, _ = trainer.d_update(state)
    assert leaves_equal(after_d.g, state.g)
    assert not leaves_equal(after_d.d.params, state.d.params)
    assert (int(after_d.d_updates), int(after_d.step)) == (1, 0)
    after_g, _ = trainer.g_update(after_d)
    assert leaves_equal(after_g.d, after_d.d)
    assert not leaves_equal(after_g.g.params, after_d.g.params)
    assert (int(after_g.d_updates), int(after_g.step)) == (1, 1)


def test_d_gradient_with_respect_to_g_params_is_exactly_zero():
    # The D step's loss, seen as a function of G's params, must not depend on them at all
    # except through samples that are treated as data: its update of G is structurally absent.
    trainer, state = setup()

    def d_params_after(g_params):
        new_state, _ = trainer.d_update(state.replace(g=state.g.replace(params=g_params)))
        return new_state.g.params

    jac = jax.jacrev(lambda p: jax.tree.leaves(d_params_after(p))[0].sum())(state.g.params)
    np.testing.assert_array_equal(jax.tree.leaves(jac)[0], 1.0)  # identity, untouched


def test_steps_are_pure_and_deterministic():
    trainer, state = setup()
    a, metrics_a = trainer.iteration(state)
    b, metrics_b = trainer.iteration(state)
    assert leaves_equal(a, b) and leaves_equal(metrics_a, metrics_b)
    c, _ = trainer.iteration(trainer.init(jax.random.PRNGKey(1)))
    assert not leaves_equal(a.g.params, c.g.params)


def test_iteration_makes_k_d_updates_per_g_update():
    trainer, state = setup(tiny_config(d_steps=3))
    state, metrics = trainer.iteration(state)
    assert (int(state.d_updates), int(state.step)) == (3, 1)
    assert int(state.d.opt_state.count) == 3 and int(state.g.opt_state.count) == 1
    assert set(metrics) >= {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"}


def test_metrics_values_match_their_definitions():
    trainer, state = setup()
    _, metrics = trainer.d_update(state)
    assert 0.0 < float(metrics["d_real"]) < 1.0 and 0.0 < float(metrics["d_fake"]) < 1.0
    assert float(metrics["d_loss"]) > 0 and float(metrics["d_penalty"]) == 0.0
    assert jnp.isfinite(metrics["d_grad_norm"]) and float(metrics["d_grad_norm"]) > 0
