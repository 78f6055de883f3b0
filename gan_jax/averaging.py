"""Running averages of a player's params, kept in its `Player` so they checkpoint and resume with
the run: the mean of all past params (historical averaging, Salimans et al. 2016, Sec. 3.3) and
an exponential moving average of D's params (how openai/improved-gan evaluates its
semi-supervised D: train_mnist_feature_matching.py, `disc_param_avg`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gan_jax import penalties
from gan_jax.state import Player


def init(player: Player, history: bool, ema: bool) -> Player:
    """`player` with its averages started: `history` the mean of the params seen so far (the
    initial ones), `ema` zeros (the authors' start; `ema_params` removes the bias this gives)."""
    return player.replace(
        history=player.params if history else None,
        ema=jax.tree.map(jnp.zeros_like, player.params) if ema else None,
    )


def update(player: Player, ema_decay=None) -> Player:
    """The averages after an update that produced `player.params`, the player's
    `player.opt_state.count`-th (counted after the update): the mean then covers the initial
    params and every update's. `ema_decay` (float32 [], Hparams.d_ema_decay) is needed only by
    a player that keeps an EMA (D's; G keeps none)."""
    history, ema = player.history, player.ema
    if history is not None:
        history = penalties.update_historical_average(
            history, player.params, player.opt_state.count
        )
    if ema is not None:
        ema = jax.tree.map(lambda a, p: a + (1.0 - ema_decay) * (p - a), ema, player.params)
    return player.replace(history=history, ema=ema)


def ema_params(player: Player, ema_decay):
    """The player's params averaged with `ema_decay`, bias-corrected: the zero-started average
    divided by 1 - decay^t after t updates (Adam's correction, Kingma & Ba 2015, Sec. 3), so the
    average is usable from the first updates on; after the authors' 180,000 updates at decay
    0.9999 the correction is a factor 1 + 2e-8. Raises ValueError if the player keeps no EMA."""
    if player.ema is None:
        raise ValueError("this player keeps no moving average: set config.train.d_ema_decay > 0")
    t = player.opt_state.count.astype(jnp.float32)
    correction = 1.0 - jnp.asarray(ema_decay, jnp.float32) ** jnp.maximum(t, 1.0)
    return jax.tree.map(lambda a: a / correction, player.ema)
