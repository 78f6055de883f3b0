"""Hyperparameters as data: every number a researcher sweeps, as arrays in one pytree.

`Hparams` holds what only changes numbers (learning rates, betas, momentum, penalty weight, clip
value, label values, LSGAN's a/b/c, AC-GAN's weight, D's objective scale, the historical-averaging
weight, D's EMA decay); what shapes the program (nets, loss family, batch size, d_steps, dataset,
penalty kind) is the static `spec.Spec`. The steps read these numbers at run time, so `jax.vmap`
over a stacked `Hparams` trains one GAN per value in one compiled program (PureJaxRL's pattern).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gan_jax import losses


def _scalar(value) -> np.ndarray:
    return np.asarray(value, np.float32)


@struct.dataclass
class OptHparams:
    """One player's optimizer numbers, each float32 [] (or [K] stacked over K members)."""

    lr: jax.Array  # base learning rate
    lr_factor: jax.Array  # per-update lr multiplier, 1 / config lr_decay (1: constant lr)
    min_lr: jax.Array  # floor of the decayed lr
    b1: jax.Array  # Adam
    b2: jax.Array  # Adam
    momentum: jax.Array  # SGD: the momentum, or the ramp's start value
    final_momentum: jax.Array  # SGD: the ramp's end value (= momentum without a ramp)
    decay: jax.Array  # RMSProp
    eps: jax.Array  # Adam and RMSProp: added outside the square root
    eps_root: jax.Array  # Adam: added inside the square root (optax's eps_root)


@struct.dataclass
class Hparams:
    """All swept numbers of a run: each leaf float32 [] for one run, [K] for K members."""

    g: OptHparams
    d: OptHparams
    penalty_weight: jax.Array  # the gradient penalty's weight (lambda, gamma)
    clip_weights: jax.Array  # WGAN's clip bound (used when spec.clip_weights)
    real_label: jax.Array  # the real target of the sigmoid losses (< 1: label smoothing)
    lsgan_a: jax.Array  # LSGAN's fake label
    lsgan_b: jax.Array  # LSGAN's real label
    lsgan_c: jax.Array  # LSGAN's G target
    aux_weight: jax.Array  # AC-GAN's class cross-entropy weight
    d_objective_scale: jax.Array  # D's GAN objective times this (0.5 in the 2014 authors' code)
    historical_averaging_weight: jax.Array  # Salimans et al. 2016, Sec. 3.3
    d_ema_decay: jax.Array  # the decay of D's params' moving average (when spec.d_ema)


def _opt_hparams(opt) -> OptHparams:
    final = opt.get("final_momentum", None)
    return OptHparams(
        lr=_scalar(opt.lr),
        # Divided in float64 here, as optax did with the Python float, so decayed rates match.
        lr_factor=_scalar(1.0 / opt.get("lr_decay", 1.0)),
        min_lr=_scalar(opt.get("min_lr", 0.0)),
        b1=_scalar(opt.get("b1", 0.9)),
        b2=_scalar(opt.get("b2", 0.999)),
        momentum=_scalar(opt.momentum),
        final_momentum=_scalar(opt.momentum if final is None else final),
        decay=_scalar(opt.get("decay", 0.9)),
        eps=_scalar(opt.get("eps", 1e-8)),
        eps_root=_scalar(opt.get("eps_root", 0.0)),
    )


def from_config(config) -> Hparams:
    """The numeric hyperparameters of a (validated) config, as float32 scalars."""
    loss = config.loss
    return Hparams(
        g=_opt_hparams(config.optim.g),
        d=_opt_hparams(config.optim.d),
        penalty_weight=_scalar(loss.penalty_weight),
        clip_weights=_scalar(loss.clip_weights),
        real_label=_scalar(loss.real_label),
        lsgan_a=_scalar(loss.lsgan_a),
        lsgan_b=_scalar(loss.lsgan_b),
        lsgan_c=_scalar(loss.lsgan_c),
        aux_weight=_scalar(loss.aux_weight),
        d_objective_scale=_scalar(loss.d_objective_scale),
        historical_averaging_weight=_scalar(loss.historical_averaging_weight),
        d_ema_decay=_scalar(config.train.d_ema_decay),
    )


def stack(members: list[Hparams]) -> Hparams:
    """K members' Hparams as one with a leading member axis of size K on every leaf."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)


def gan_loss(name: str, hp: Hparams) -> losses.GANLoss:
    """The named loss with its hyperparameters (real label, LSGAN a/b/c) taken from `hp`, as
    arrays, so they can differ between vmapped members."""
    keys = losses.CONFIG_KEYS.get(name, {})
    return losses.get_loss(name, **{kw: getattr(hp, key) for key, kw in keys.items()})
