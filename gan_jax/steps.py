"""Pure D and G updates: `d_step(state, batch) -> (state, metrics)` and `g_step(state)`.

Hyperparameters are keyword-only and bound with `functools.partial` (see train.py), so the steps
stay pure functions of the state. Randomness comes from fold_in of the run's key with an update
counter, never from Python-side state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from gan_jax import penalties
from gan_jax.losses import GANLoss
from gan_jax.state import GANState, Player

Z_DISTRIBUTIONS = ("uniform", "normal")
DATA_STREAM, D_STREAM, G_STREAM = range(3)


def stream_key(rng, stream: int) -> jax.Array:
    """One of the run's independent key streams (data, D updates, G updates)."""
    return jax.random.split(rng, 3)[stream]


def sample_z(key, batch_size: int, z_dim: int, z_dist: str) -> jax.Array:
    """Latent codes z_BxZ: uniform on [-1, 1] (the 2014 paper) or standard normal."""
    if z_dist == "uniform":
        return jax.random.uniform(key, (batch_size, z_dim), minval=-1.0, maxval=1.0)
    if z_dist == "normal":
        return jax.random.normal(key, (batch_size, z_dim))
    raise ValueError(f"unknown z distribution {z_dist!r}; allowed: {Z_DISTRIBUTIONS}")


def shard(batch_size: int, axis_name: str | None):
    """(this device's first row in the global batch, rows per device); (0, B) off pmap."""
    if axis_name is None:
        return 0, batch_size
    local = batch_size // jax.lax.axis_size(axis_name)
    return jax.lax.axis_index(axis_name) * local, local


def local_rows(x_Bx, offset, local: int):
    return jax.lax.dynamic_slice_in_dim(x_Bx, offset, local)


def apply_player(player: Player, params, inputs, *, train: bool, key=None, example_ids=None):
    """Runs a player's network with `params`: (outputs, updated mutable collections).

    With `example_ids` (global row numbers), a net without batch statistics draws its dropout
    mask per example from fold_in(key, id), so masks do not depend on how the batch is split
    across devices. Nets with batch statistics see the batch at once.
    """
    variables = {"params": params, **player.model_state}
    if key is not None and example_ids is not None and not player.model_state:

        def one_example(x, example_id):
            rngs = {"dropout": jax.random.fold_in(key, example_id)}
            return player.apply_fn(variables, x[None], train=train, rngs=rngs)[0]

        return jax.vmap(one_example)(inputs, example_ids), player.model_state
    if key is not None and example_ids is not None:
        key = jax.random.fold_in(key, example_ids[0])  # a different key on each device
    rngs = {"dropout": key} if key is not None else {}
    if train and player.model_state:
        return player.apply_fn(
            variables, inputs, train=True, rngs=rngs, mutable=list(player.model_state)
        )
    return player.apply_fn(variables, inputs, train=train, rngs=rngs), player.model_state


def average_over_devices(tree, axis_name: str | None):
    """Mean over the pmap axis (identity off pmap): gradients, statistics, metrics."""
    return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def generate(state: GANState, z_BxZ, *, train: bool = False, key=None):
    """G(z) with the state's generator (inference mode unless `train`)."""
    return apply_player(state.g, state.g.params, z_BxZ, train=train, key=key)[0]


def discriminate(state: GANState, x_Bx, *, train: bool = False, key=None):
    """D's logits for x with the state's discriminator (inference mode unless `train`)."""
    return apply_player(state.d, state.d.params, x_Bx, train=train, key=key)[0]


def clip_params(params, bound: float):
    """WGAN's weight clipping to [-bound, bound] (Arjovsky et al. 2017, Algorithm 1)."""
    return jax.tree.map(lambda p: jnp.clip(p, -bound, bound), params)


def d_step(
    state: GANState,
    batch,
    *,
    loss: GANLoss,
    batch_size: int,
    z_dim: int,
    z_dist: str,
    penalty: str = "none",
    penalty_weight: float = 0.0,
    clip_weights: float = 0.0,
    axis_name: str | None = None,
):
    """One D update on a real batch (x_real, y_real) and a fresh batch from G.

    `batch_size` is the global batch; under pmap (`axis_name`) `batch` holds this device's rows,
    and gradients are averaged across devices once, here.
    """
    x_real = batch[0]
    offset, local = shard(batch_size, axis_name)
    ids = offset + jnp.arange(local)
    key = jax.random.fold_in(stream_key(state.rng, D_STREAM), state.d_updates)
    key_z, key_g, key_d, key_penalty = jax.random.split(key, 4)
    z = local_rows(sample_z(key_z, batch_size, z_dim, z_dist), offset, local)
    # G's own batch statistics belong to the G step; here G only supplies samples.
    x_fake = apply_player(state.g, state.g.params, z, train=True, key=key_g, example_ids=ids)[0]
    x_fake = jax.lax.stop_gradient(x_fake)
    both_ids = jnp.concatenate([ids, batch_size + ids])
    if axis_name is not None:  # penalties draw per-batch noise: one stream per device
        key_penalty = jax.random.fold_in(key_penalty, jax.lax.axis_index(axis_name))

    def loss_fn(params):
        logits_2b, model_state = apply_player(
            state.d,
            params,
            jnp.concatenate([x_real, x_fake]),
            train=True,
            key=key_d,
            example_ids=both_ids,
        )
        real_logits, fake_logits = jnp.split(logits_2b, 2)
        d_fn = lambda x: apply_player(state.d, params, x, train=True, key=key_d, example_ids=ids)[0]
        reg = penalties.penalty(penalty, d_fn, x_real, x_fake, key_penalty)
        value = loss.d_loss(real_logits, fake_logits) + penalty_weight * reg
        return value, (model_state, real_logits, fake_logits, reg)

    grads, (model_state, real_logits, fake_logits, reg) = jax.grad(loss_fn, has_aux=True)(
        state.d.params
    )
    grads, model_state = average_over_devices((grads, model_state), axis_name)
    d = state.d.apply_gradients(grads, model_state)
    if clip_weights:
        d = d.replace(params=clip_params(d.params, clip_weights))
    metrics = {
        "d_loss": loss.d_loss(real_logits, fake_logits),
        "d_penalty": reg,
        "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
        "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
    }
    metrics = average_over_devices(metrics, axis_name)
    metrics["d_grad_norm"] = optax.tree.norm(grads)
    return state.replace(d=d, d_updates=state.d_updates + 1), metrics


def g_step(
    state: GANState,
    batch=None,
    *,
    loss: GANLoss,
    batch_size: int,
    z_dim: int,
    z_dist: str,
    axis_name: str | None = None,
):
    """One G update against the current D; increments `state.step`."""
    del batch  # G's losses here need no real data
    offset, local = shard(batch_size, axis_name)
    ids = offset + jnp.arange(local)
    key = jax.random.fold_in(stream_key(state.rng, G_STREAM), state.step)
    key_z, key_g, key_d = jax.random.split(key, 3)
    z = local_rows(sample_z(key_z, batch_size, z_dim, z_dist), offset, local)

    def loss_fn(params):
        x_fake, model_state = apply_player(
            state.g, params, z, train=True, key=key_g, example_ids=ids
        )
        # D runs in training mode (dropout on, as in the 2014 code) but its statistics
        # belong to the D step, so its mutable collections are dropped.
        fake_logits = apply_player(
            state.d, state.d.params, x_fake, train=True, key=key_d, example_ids=ids
        )[0]
        return loss.g_loss(fake_logits), (model_state, fake_logits)

    (value, (model_state, fake_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.g.params
    )
    grads, model_state = average_over_devices((grads, model_state), axis_name)
    g = state.g.apply_gradients(grads, model_state)
    metrics = {"g_loss": value, "d_fake_for_g": jnp.mean(jax.nn.sigmoid(fake_logits))}
    metrics = average_over_devices(metrics, axis_name)
    metrics["g_grad_norm"] = optax.tree.norm(grads)
    return state.replace(g=g, step=state.step + 1), metrics
