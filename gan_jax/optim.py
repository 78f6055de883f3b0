"""Optimizers from config, with the 2014 paper's schedules expressed as optax schedules."""

from __future__ import annotations

import optax

OPTIMIZERS = ("sgd", "adam", "rmsprop")


def learning_rate(opt_config):
    """Constant, or multiplied by 1/`lr_decay` per update down to `min_lr` (pylearn2's
    ExponentialDecay, as in the 2014 mnist.yaml: decay 1.000004, floor 1e-6)."""
    decay = opt_config.get("lr_decay", 1.0)
    if decay == 1.0:
        return opt_config.lr
    return optax.exponential_decay(
        opt_config.lr,
        transition_steps=1,
        decay_rate=1.0 / decay,
        end_value=opt_config.get("min_lr", 0.0),
    )


def momentum(opt_config, updates_per_epoch: int):
    """Constant, or rising linearly from `momentum` at epoch `momentum_start_epoch` to
    `final_momentum` at `momentum_saturate_epoch` (pylearn2's MomentumAdjustor)."""
    final = opt_config.get("final_momentum", None)
    if final is None or final == opt_config.momentum:
        return opt_config.momentum
    start = opt_config.get("momentum_start_epoch", 1) * updates_per_epoch
    saturate = opt_config.momentum_saturate_epoch * updates_per_epoch
    return optax.linear_schedule(opt_config.momentum, final, saturate - start, start)


def make_optimizer(opt_config, updates_per_epoch: int = 1) -> optax.GradientTransformation:
    """The optimizer a config names. Hyperparameters are injected into the optimizer state so
    they can be read, logged and swept as arrays."""
    name = opt_config.name
    lr = learning_rate(opt_config)
    if name == "sgd":
        tx = optax.inject_hyperparams(optax.sgd)(
            learning_rate=lr, momentum=momentum(opt_config, updates_per_epoch)
        )
    elif name == "adam":
        tx = optax.inject_hyperparams(optax.adam)(
            learning_rate=lr, b1=opt_config.get("b1", 0.9), b2=opt_config.get("b2", 0.999)
        )
    elif name == "rmsprop":
        tx = optax.inject_hyperparams(optax.rmsprop)(
            learning_rate=lr, decay=opt_config.get("decay", 0.9), eps=opt_config.get("eps", 1e-8)
        )
    else:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {OPTIMIZERS}")
    return tx
