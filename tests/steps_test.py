import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from conftest import tiny_config

from gan_jax import engine, hparams


def leaves_equal(a, b):
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(x, y) for x, y in pairs)


class Jitted(NamedTuple):
    """The engine's update functions of one config under plain `jax.jit` (no donation, so a
    test can reuse its inputs), with the config's Hparams: eager dispatch of these small nets
    costs seconds per call, a compile ~1 s."""

    init: Callable  # (rng, dataset=None) -> state
    d_update: Callable  # (state, dataset=None) -> (state, metrics)
    g_update: Callable
    iteration: Callable


def jitted_engine(config, dataset_size=None) -> Jitted:
    spec, hp = engine.make_spec(config, dataset_size), hparams.from_config(config)

    def bind(update):
        return jax.jit(lambda state, dataset=None: update(state, dataset, hp, spec=spec))

    init = jax.jit(lambda rng, dataset=None: engine.init(rng, hp, dataset, spec=spec))
    return Jitted(init, *map(bind, (engine.d_update, engine.g_update, engine.iteration)))


@functools.cache
def setup(d_steps=1, loss="non_saturating"):
    """The tiny ring8 engine, jitted, and its initial state; shared by the tests of a worker."""
    config = tiny_config(d_steps=d_steps)
    config.loss.name = loss
    jitted = jitted_engine(config)
    return jitted, jitted.init(jax.random.PRNGKey(0))


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


def test_d_step_is_blind_to_g_params_through_its_stop_gradient():
    # The D step treats G's samples as data: nothing it returns (D's new params, its loss)
    # carries a gradient back to G's params. Without the stop-gradient both would.
    trainer, state = setup()

    def d_step_outputs(g_params):
        new_state, metrics = trainer.d_update(state.replace(g=state.g.replace(params=g_params)))
        d_params = jax.tree.leaves(new_state.d.params)
        return metrics["d_loss"] + sum(jnp.sum(jnp.sin(p)) for p in d_params)

    grads = jax.grad(d_step_outputs)(state.g.params)
    for g in jax.tree.leaves(grads):
        np.testing.assert_array_equal(g, 0.0)

    # The same D loss on the same fakes, left differentiable in G, does depend on G's params.
    key = jax.random.fold_in(steps.stream_key(state.rng, steps.D_STREAM), state.d_updates)
    z = steps.sample_z(jax.random.split(key, 4)[0], 32, 2, "normal")

    def d_loss_through_g(g_params):
        x_fake = state.g.apply_fn({"params": g_params}, z, train=True)
        fake_logits = state.d.apply_fn({"params": state.d.params}, x_fake, train=True)
        return jnp.mean(jax.nn.softplus(fake_logits))

    live = jax.grad(d_loss_through_g)(state.g.params)
    assert all(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(live))


def test_steps_are_pure_and_deterministic():
    trainer, state = setup()
    a, metrics_a = trainer.iteration(state)
    b, metrics_b = trainer.iteration(state)
    assert leaves_equal(a, b) and leaves_equal(metrics_a, metrics_b)
    c, _ = trainer.iteration(trainer.init(jax.random.PRNGKey(1)))
    assert not leaves_equal(a.g.params, c.g.params)


def test_iteration_makes_k_d_updates_per_g_update():
    trainer, state = setup(d_steps=3)
    state, metrics = trainer.iteration(state)
    assert (int(state.d_updates), int(state.step)) == (3, 1)
    assert int(state.d.opt_state.count) == 3 and int(state.g.opt_state.count) == 1
    assert set(metrics) >= {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"}


def test_metrics_values_match_their_definitions():
    # Recomputed by hand from the same params and keys: update i of D draws real batch i of the
    # data stream and its z from fold_in(D stream, i); D(x) = sigmoid(logit), and
    # d_loss = -E log D(x) - E log(1 - D(G(z))).
    trainer, state = setup()
    state = state.replace(d_updates=jnp.int32(3))  # the keys must follow the update counter
    _, metrics = trainer.d_update(state)

    data_key = jax.random.split(state.rng, 3)[0]
    x_real = data.sample_toy("ring8", jax.random.fold_in(data_key, 3), 32)
    key = jax.random.fold_in(jax.random.split(state.rng, 3)[1], 3)
    key_z, key_g, key_d, _ = jax.random.split(key, 4)
    x_fake = state.g.apply_fn(
        {"params": state.g.params}, jax.random.normal(key_z, (32, 2)), train=True,
        rngs={"dropout": key_g},
    )  # fmt: skip

    def d_loss_and_logits(d_params):
        def d(x):
            return state.d.apply_fn({"params": d_params}, x, train=True, rngs={"dropout": key_d})

        real, fake = d(x_real), d(x_fake)
        loss = -jnp.mean(jnp.log(jax.nn.sigmoid(real))) - jnp.mean(
            jnp.log(1.0 - jax.nn.sigmoid(fake))
        )
        return loss, (real, fake)

    (d_loss, (real, fake)), grads = jax.value_and_grad(d_loss_and_logits, has_aux=True)(
        state.d.params
    )
    np.testing.assert_allclose(metrics["d_real"], jnp.mean(jax.nn.sigmoid(real)), rtol=1e-5)
    np.testing.assert_allclose(metrics["d_fake"], jnp.mean(jax.nn.sigmoid(fake)), rtol=1e-5)
    np.testing.assert_allclose(metrics["d_loss"], d_loss, rtol=1e-5)
    grad_norm = np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree.leaves(grads)))
    np.testing.assert_allclose(metrics["d_grad_norm"], grad_norm, rtol=1e-4)
    assert float(metrics["d_penalty"]) == 0.0
    # A different update's keys give different numbers: the check above is not vacuous.
    _, other = trainer.d_update(state.replace(d_updates=jnp.int32(4)))
    assert not np.isclose(other["d_loss"], d_loss, rtol=1e-5)


# ----------------------------------------------------------------------------- after 2014

import dataclasses  # noqa: E402

import optax  # noqa: E402
import pytest  # noqa: E402

from gan_jax import conv_nets, data, dense_nets, models, steps  # noqa: E402
from gan_jax import state as state_lib  # noqa: E402
from gan_jax.config import default_config  # noqa: E402


def image_config(generator="dcgan", discriminator="dcgan", **model):
    """MNIST-shaped nets small enough to compile in seconds."""
    c = default_config()
    c.data.update(name="mnist", scale="symmetric")  # the nets' default tanh output
    c.model.update(generator=generator, discriminator=discriminator, z_dim=4, **model)
    c.model.generator_kwargs = {"base_features": 2} if generator == "dcgan" else {"hidden": (4,)}
    c.model.discriminator_kwargs = (
        {"base_features": 2} if discriminator == "dcgan" else {"hidden": (4,)}
    )
    c.train.update(batch_size=8, num_steps=4, scan_steps=2, log_every=2, sample_every=0)
    return c


def image_dataset(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 28, 28, 1)).astype(np.float32)
    return data.make_dataset(x, np.arange(n) % 10)


@pytest.fixture(scope="module")
def conv_steps():
    """One D and one G update of DCGAN nets with batch norm in G and D, spectral norm in D and
    an AC-GAN head: (state, after D update, after G update, D metrics)."""
    config = image_config(conditioning="acgan", num_classes=10, spectral_norm=True)
    trainer, dataset = jitted_engine(config, 16), image_dataset()
    state = trainer.init(jax.random.PRNGKey(0), dataset)
    after_d, d_metrics = trainer.d_update(state, dataset)
    after_g, _ = trainer.g_update(after_d, dataset)
    return state, after_d, after_g, d_metrics


def test_each_step_updates_only_its_own_batch_and_spectral_statistics(conv_steps):
    state, after_d, after_g, d_metrics = conv_steps
    assert set(state.g.model_state) == {"batch_stats"}
    assert set(state.d.model_state) == {"batch_stats", "spectral"}
    assert leaves_equal(after_d.g, state.g)  # G's batch statistics untouched by the D step
    for collection in ("batch_stats", "spectral"):
        assert not leaves_equal(after_d.d.model_state[collection], state.d.model_state[collection])
    assert leaves_equal(after_g.d, after_d.d)  # D's statistics untouched by the G step
    assert not leaves_equal(after_g.g.model_state, after_d.g.model_state)
    assert np.isfinite(float(d_metrics["d_class_loss"])) and float(d_metrics["d_class_loss"]) > 0


def test_lazy_penalty_is_applied_every_n_updates_scaled_by_n():
    # StyleGAN2's lazy R1: on every 2nd update the penalty's gradient counts twice, else not at
    # all. With SGD(lr=1) a D update is minus the gradient, so the parts can be compared.
    config = tiny_config()
    config.model.discriminator_kwargs = {"hidden": ()}  # linear D: grad_x D = w
    config.optim.d.update(name="sgd", lr=1.0)
    config.loss.update(penalty="r1", penalty_weight=0.5)
    spec, hp = engine.make_spec(config), hparams.from_config(config)
    state = engine.init(jax.random.PRNGKey(0), hp, spec=spec)
    step = functools.partial(steps.d_step, hparams=hp)
    batch = data.real_batch("ring8", None, steps.stream_key(state.rng, 0), 0, 32)

    @jax.jit
    def changes(state):
        def change(d_step, d_updates):
            start = state.replace(d_updates=jnp.int32(d_updates))
            after, metrics = d_step(start, batch)
            return jax.tree.map(jnp.subtract, after.d.params, start.d.params), metrics

        plain = functools.partial(step, spec=dataclasses.replace(spec, penalty="none"))
        every_2 = functools.partial(step, spec=dataclasses.replace(spec, penalty_every=2))
        step_1 = functools.partial(step, spec=spec)
        runs = ((plain, 0), (step_1, 0), (every_2, 0), (every_2, 1), (plain, 1))
        return [change(f, n) for f, n in runs]

    results = changes(state)
    (plain, _), (every_1, metrics), (every_2, _), (skipped, skipped_metrics) = results[:4]
    # R1 of a linear D is ||w||^2 exactly (Mescheder et al. 2018, eq. 9 without gamma/2).
    w = np.asarray(state.d.params["Dense_0"]["kernel"])
    np.testing.assert_allclose(metrics["d_penalty"], np.sum(w**2), rtol=1e-5)
    trees = (plain, every_1, every_2, skipped, results[4][0])
    for p, one, two, skip, plain_1 in zip(*map(jax.tree.leaves, trees), strict=True):
        np.testing.assert_allclose(two - p, 2 * (one - p), atol=1e-6)
        np.testing.assert_array_equal(skip, plain_1)  # update 1: the same as no penalty
    assert float(skipped_metrics["d_penalty"]) == 0.0


def test_concat_conditioning_feeds_real_labels_and_the_sampler_gives_classes():
    config = image_config("mlp", "mlp", conditioning="concat", num_classes=10)
    trainer = jitted_engine(config, 16)
    state = trainer.init(jax.random.PRNGKey(0))
    d_update = trainer.d_update
    a, _ = d_update(state, image_dataset())
    relabelled = image_dataset().replace(y=(image_dataset().y + 1) % 10)
    b, _ = d_update(state, relabelled)
    assert not leaves_equal(a.d.params, b.d.params)  # D(x, y) saw the batch's labels
    x, y = steps.sample_classes(state, jax.random.PRNGKey(3), [3, 7], 2, z_dim=4, z_dist="normal")
    np.testing.assert_array_equal(y, [3, 3, 7, 7])
    z = steps.sample_z(jax.random.PRNGKey(3), 4, 4, "normal")
    np.testing.assert_allclose(x, steps.generate(state, z, jnp.array([3, 3, 7, 7])), rtol=1e-6)
    assert not np.allclose(x, steps.generate(state, z, jnp.array([7, 7, 3, 3])))
    # No labels (the host loop's sample grid): y_i = i mod 10, so column c shows class c.
    np.testing.assert_allclose(
        steps.generate(state, z), steps.generate(state, z, jnp.arange(4)), rtol=1e-6
    )


def test_new_losses_reach_the_steps_with_raw_outputs():
    # LSGAN, WGAN and hinge read D's raw output: d_real is its mean, not a sigmoid of it.
    for name in ("lsgan", "wgan", "hinge"):
        trainer, state = setup(loss=name)
        _, metrics = trainer.d_update(state)
        batch = data.real_batch("ring8", None, steps.stream_key(state.rng, 0), 0, 32)
        raw = steps.discriminate(state, batch[0], train=True)
        np.testing.assert_allclose(metrics["d_real"], jnp.mean(raw), rtol=1e-5)
        assert not np.isclose(metrics["d_real"], jnp.mean(jax.nn.sigmoid(raw)), rtol=1e-3)


@pytest.mark.parametrize(
    "discriminator",
    [
        dense_nets.Gan2014Discriminator(units=8, pieces=3),  # dropout drawn per row
        dense_nets.MLPDiscriminator(hidden=(8,), aux_classes=3),  # AC-GAN: (logits, classes)
    ],
)
def test_a_per_row_d_sees_real_and_fake_stacked_with_the_same_outputs_and_gradients(
    discriminator,
):
    player = state_lib.init_player(
        discriminator, optax.sgd(0.1), jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1))
    )
    x_real, x_fake = jax.random.uniform(jax.random.PRNGKey(1), (2, 6, 28, 28, 1))
    call = functools.partial(
        steps.discriminate_real_and_fake,
        player,
        real_inputs=(x_real,),
        fake_inputs=(x_fake,),
        key=jax.random.PRNGKey(2),
        real_ids=jnp.arange(6),
        fake_ids=100 + jnp.arange(6),
    )

    def outputs(params, stacked):
        real_out, fake_out, _ = call(params, stacked=stacked)
        return jax.tree.leaves((real_out, fake_out))

    def objective(params, stacked):  # any scalar mixing real and fake outputs
        return sum(jnp.sum(jnp.sin(o) * (i + 1)) for i, o in enumerate(outputs(params, stacked)))

    outputs_jit = jax.jit(outputs, static_argnums=1)
    for stacked_out, apart_out in zip(
        outputs_jit(player.params, True), outputs_jit(player.params, False), strict=True
    ):
        np.testing.assert_allclose(stacked_out, apart_out, rtol=1e-5, atol=1e-6)
    grad = jax.jit(jax.grad(objective), static_argnums=1)
    grads_stacked, grads_apart = (grad(player.params, s) for s in (True, False))
    for a, b in zip(jax.tree.leaves(grads_stacked), jax.tree.leaves(grads_apart), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # so d_step stacks them (stacked=None)
    assert models.rows_independent(player.apply_fn) and not player.model_state


def test_a_batch_norm_d_sees_real_and_fake_apart_and_threads_its_statistics():
    discriminator = conv_nets.DCGANDiscriminator(base_features=2)
    player = state_lib.init_player(
        discriminator, optax.sgd(0.1), jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1))
    )
    x_real, x_fake = jax.random.uniform(jax.random.PRNGKey(1), (2, 6, 28, 28, 1))
    real_out, fake_out, model_state = steps.discriminate_real_and_fake(
        player,
        player.params,
        (x_real,),
        (x_fake,),
        key=None,
        real_ids=jnp.arange(6),
        fake_ids=6 + jnp.arange(6),
    )
    # Each batch is normalised with its own statistics: outputs equal those of separate calls.
    alone_real, after_real = steps.apply_player(player, player.params, x_real, train=True)
    alone_fake, after_fake = steps.apply_player(
        player.replace(model_state=after_real), player.params, x_fake, train=True
    )
    np.testing.assert_array_equal(real_out, alone_real)
    np.testing.assert_array_equal(fake_out, alone_fake)
    assert leaves_equal(model_state, after_fake)
