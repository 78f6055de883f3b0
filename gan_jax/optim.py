"""Optimizers from config. The numbers (learning rate, betas, momentum) live in `Hparams`; the
2014 paper's schedules are functions of the update count applied to those numbers at run time.

`make_optimizer(opt_spec)` builds the optax transformation with its hyperparameters injected into
its state (`optax.inject_hyperparams`); every update first writes `hyperparams_at(...)` there, so
a learning rate given as an array (one per sweep member) is the one used, schedule or not.
"""

from __future__ import annotations

import dataclasses
import functools

import jax.numpy as jnp
import optax

OPTIMIZERS = ("sgd", "adam", "rmsprop")

# The optimizer state's injected hyperparameters per optimizer, and the Hparams field of each.
INJECTED = {
    "sgd": {"learning_rate": "lr", "momentum": "momentum"},
    "adam": {"learning_rate": "lr", "b1": "b1", "b2": "b2", "eps": "eps", "eps_root": "eps_root"},
    "rmsprop": {"learning_rate": "lr", "decay": "decay", "eps": "eps"},
}
_FACTORIES = {"sgd": optax.sgd, "adam": optax.adam, "rmsprop": optax.rmsprop}


@dataclasses.dataclass(frozen=True)
class OptSpec:
    """What shapes one player's optimizer: its name and the momentum ramp's place in updates
    (`momentum_steps` 0: constant momentum)."""

    name: str
    momentum_begin: int = 0
    momentum_steps: int = 0


def opt_spec(opt_config, updates_per_epoch: int) -> OptSpec:
    """The static part of `config.optim.<player>`. The momentum ramp (pylearn2's
    MomentumAdjustor) is counted in epochs of `updates_per_epoch` updates."""
    if opt_config.name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {opt_config.name!r}; allowed: {OPTIMIZERS}")
    final = opt_config.get("final_momentum", None)
    if final is None or final == opt_config.momentum:
        return OptSpec(opt_config.name)
    begin = opt_config.get("momentum_start_epoch", 1) * updates_per_epoch
    saturate = opt_config.momentum_saturate_epoch * updates_per_epoch
    return OptSpec(opt_config.name, begin, saturate - begin)


@functools.cache
def make_optimizer(spec: OptSpec) -> optax.GradientTransformation:
    """The optimizer `spec` names, its hyperparameters injected into its state (placeholder
    zeros: the steps write `hyperparams_at` before each update). Cached, so equal specs give the
    same transformation and states built from them have equal tree structures."""
    placeholders = {name: 0.0 for name in INJECTED[spec.name]}
    return optax.inject_hyperparams(_FACTORIES[spec.name])(**placeholders)


def learning_rate(opt_hp, count):
    """lr / lr_decay^count, floored at min_lr (pylearn2's ExponentialDecay, as in the 2014
    mnist.yaml: decay 1.000004, floor 1e-6); the constant lr when lr_factor = 1. The arithmetic
    is optax.exponential_decay's, so runs match those made with it."""
    decayed = jnp.where(count <= 0, opt_hp.lr, opt_hp.lr * jnp.power(opt_hp.lr_factor, count / 1))
    return jnp.maximum(decayed, opt_hp.min_lr)


def momentum(spec: OptSpec, opt_hp, count):
    """Constant, or rising linearly from `momentum` at update `momentum_begin` to
    `final_momentum` `momentum_steps` updates later (optax.linear_schedule's arithmetic)."""
    if not spec.momentum_steps:
        return opt_hp.momentum
    count = jnp.clip(count - spec.momentum_begin, 0, spec.momentum_steps)
    frac = 1 - count / spec.momentum_steps
    return (opt_hp.momentum - opt_hp.final_momentum) * frac + opt_hp.final_momentum


def hyperparams_at(spec: OptSpec, opt_hp, count) -> dict:
    """The injected hyperparameters for the update after `count` updates, from the player's
    `OptHparams` (scalars, or arrays under vmap)."""
    values = {
        "lr": learning_rate(opt_hp, count),
        "momentum": momentum(spec, opt_hp, count),
        "b1": opt_hp.b1,
        "b2": opt_hp.b2,
        "decay": opt_hp.decay,
        "eps": opt_hp.eps,
        "eps_root": opt_hp.eps_root,
    }
    # Copies: a value passed through unchanged (b1, a constant momentum) would otherwise be
    # forwarded by jit as the Hparams' own buffer into the state, which the steps donate.
    injected = INJECTED[spec.name]
    return {
        key: jnp.array(values[field], jnp.float32, copy=True) for key, field in injected.items()
    }
