"""The training state: one immutable pytree with a named field per player.

G and D each carry their own params and optimizer state, so an update built from D's gradients
and D's optimizer can only ever produce a new `state.d`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class Player:
    """One network and its optimizer."""

    params: Any  # the network's 'params' collection
    opt_state: optax.OptState  # the player's own optimizer state (its count = its updates)
    model_state: Any  # the other mutable collections, e.g. {'batch_stats': ...}; {} if none
    apply_fn: Callable = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    # Running averages of `params` (gan_jax.averaging), None unless the config keeps them.
    history: Any = None  # the mean of all past params (historical averaging)
    ema: Any = None  # an exponential moving average (zero-started; averaging.ema_params)

    def apply_gradients(self, grads, model_state=None, hyperparams=None) -> Player:
        """One optimizer update. `hyperparams` (optim.hyperparams_at) replace the optimizer
        state's injected ones first, so this update uses them (a swept lr, a scheduled one)."""
        opt_state = self.opt_state
        if hyperparams is not None:
            opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams, **hyperparams})
        updates, opt_state = self.tx.update(grads, opt_state, self.params)
        return self.replace(
            params=optax.apply_updates(self.params, updates),
            opt_state=opt_state,
            model_state=self.model_state if model_state is None else model_state,
        )


@struct.dataclass
class GANState:
    """Everything that changes during training. `d_updates` is also the data position: D update
    i consumes real batch i, so a restored state draws the batches an unbroken run would."""

    step: jax.Array  # int32 []: completed iterations (d_steps D updates then 1 G update)
    d_updates: jax.Array  # int32 []: completed D updates
    rng: jax.Array  # uint32 [2]: the run's base key; per-update keys are fold_ins of it
    g: Player
    d: Player


def init_player(module: nn.Module, tx, key, example_input, train: bool = False) -> Player:
    """Initialises a network on an example input (in training mode when `train`: dropout and
    noise on, as a data-dependent init pass runs) and its optimizer."""
    key_params, key_dropout = jax.random.split(key)
    variables = module.init(
        {"params": key_params, "dropout": key_dropout}, example_input, train=train
    )
    variables = dict(variables)
    params = variables.pop("params")
    return Player(
        params=params,
        opt_state=tx.init(params),
        model_state=variables,
        apply_fn=module.apply,
        tx=tx,
    )


def init_state(
    key, generator, discriminator, g_tx, d_tx, z_dim: int, data_shape, d_examples=None
) -> GANState:
    """A fresh state: G and D initialised from independent keys derived from `key`; D on
    `d_examples` x_Nx... when given (a data-dependent init), else on one example of zeros.
    The data-dependent init runs D in training mode, its noise layers on, as the 2016 authors'
    init pass does (openai/improved-gan train_mnist_feature_matching.py: `deterministic=False,
    init=True`): the scales it fixes are those of the noisy activations D trains with."""
    key_g, key_d, key_run = jax.random.split(key, 3)
    z_1xZ = jnp.zeros((1, z_dim), jnp.float32)
    x_1x = jnp.zeros((1, *data_shape), jnp.float32) if d_examples is None else d_examples
    return GANState(
        step=jnp.zeros((), jnp.int32),
        d_updates=jnp.zeros((), jnp.int32),
        rng=key_run,
        g=init_player(generator, g_tx, key_g, z_1xZ),
        d=init_player(discriminator, d_tx, key_d, x_1x, train=d_examples is not None),
    )
