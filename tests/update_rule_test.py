"""The 2014 authors' update (goodfeli/adversarial AdversaryCost2): simultaneous D and G updates
from one shared sample, and D's objective halved; checked against plain gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import fresh_state, tiny_config

from gan_jax import engine, hparams, steps
from gan_jax.config import validate


def assert_close(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)


def simultaneous_config():
    config = tiny_config()
    config.train.update_rule = "simultaneous"
    return config


def test_simultaneous_step_d_half_is_d_step_and_g_half_is_the_gradient_at_the_old_d():
    config = simultaneous_config()
    # D's historical-averaging penalty and its averages move as d_step moves them.
    config.loss.update(historical_averaging="d", historical_averaging_weight=0.1)
    config.train.d_ema_decay = 0.9
    spec = engine.make_spec(config)
    hp = hparams.from_config(config)
    state = fresh_state(config)
    batch = steps.d_batch(state, None, spec=spec)
    # jitted whole: op-by-op dispatch would compile each of the steps' many small ops apart.
    new, metrics = jax.jit(functools.partial(steps.simultaneous_step, spec=spec))(state, batch, hp)
    after_d_step, _ = jax.jit(functools.partial(steps.d_step, spec=spec))(state, batch, hp)
    for field in ("params", "history", "ema"):
        assert_close(getattr(new.d, field), getattr(after_d_step.d, field))

    # G's half by hand: the z d_step drew, D at its params before the update, and the
    # non-saturating loss mean(softplus(-D(G(z)))).
    key = jax.random.fold_in(steps.stream_key(state.rng, steps.D_STREAM), state.d_updates)
    z = steps.sample_z(jax.random.split(key, 4)[0], spec.batch_size, spec.z_dim, spec.z_dist)

    def g_objective(g_params):
        x_fake = state.g.apply_fn({"params": g_params}, z, train=True)
        logits = state.d.apply_fn({"params": state.d.params}, x_fake, train=True)
        return jnp.mean(jax.nn.softplus(-logits))

    value, grads = jax.value_and_grad(g_objective)(state.g.params)
    hyper = state.g.opt_state.hyperparams
    expected = state.g.apply_gradients(grads, state.g.model_state, hyper)
    np.testing.assert_allclose(metrics["g_loss"], value, rtol=1e-6)
    np.testing.assert_allclose(metrics["g_grad_norm"], optax.tree.norm(grads), rtol=1e-5)
    assert_close(new.g.params, expected.params)
    assert (int(new.step), int(new.d_updates)) == (1, 1)


def test_half_the_d_objective_is_half_an_sgd_step():
    config = tiny_config()
    config.optim.d.update(name="sgd", lr=0.1, momentum=0.0)
    spec = engine.make_spec(config)
    state = fresh_state(config)
    batch = steps.d_batch(state, None, spec=spec)
    deltas = []
    for scale in (1.0, 0.5):
        config.loss.d_objective_scale = scale
        new, _ = steps.d_step(state, batch, hparams.from_config(config), spec=spec)
        deltas.append(jax.tree.leaves(jax.tree.map(jnp.subtract, new.d.params, state.d.params)))
    for full, half in zip(*deltas, strict=True):
        np.testing.assert_allclose(half, 0.5 * full, rtol=1e-5, atol=2e-7)  # float32 differences
    assert any(np.abs(full).max() > 0 for full in deltas[0])


def test_the_authors_variant_runs_through_the_engine_in_lockstep():
    config = simultaneous_config()
    config.loss.d_objective_scale = 0.5
    state, metrics = engine.make_train(config)(jax.random.PRNGKey(0), hparams.from_config(config))
    assert int(state.step) == int(state.d_updates) == config.train.num_steps
    assert np.all(np.isfinite(metrics["g_loss"]))
    np.testing.assert_array_equal(metrics["d_fake"], metrics["d_fake_for_g"])


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.update_rule", "both", "config.train.update_rule = 'both' is not allowed"),
        ("train.d_steps", 2, "config.train.d_steps = 2 is not allowed; expected 1 with train"),
        ("loss.d_objective_scale", 0.0, "config.loss.d_objective_scale = 0.0 is not allowed"),
    ],
)
def test_bad_update_rule_settings_are_refused(key, value, message):
    config = simultaneous_config()
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        validate(config)
