"""Adversarial losses, computed from D's logits so that no log of a rounded sigmoid is taken.

With D(x) = sigmoid(l): log D = -softplus(-l) and log(1 - D) = -softplus(l). Each loss is a pair
of functions to *minimise*: `d_loss(real_logits_B, fake_logits_B)` and `g_loss(fake_logits_B)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


def log_sigmoid(logits):
    """log D(x)."""
    return -jax.nn.softplus(-logits)


def log_one_minus_sigmoid(logits):
    """log(1 - D(x))."""
    return -jax.nn.softplus(logits)


def value_function(real_logits_B, fake_logits_B):
    """Minibatch estimate of V(D, G) = E log D(x) + E log(1 - D(G(z))) (Goodfellow 2014, eq. 1)."""
    return jnp.mean(log_sigmoid(real_logits_B)) + jnp.mean(log_one_minus_sigmoid(fake_logits_B))


def minimax_d_loss(real_logits_B, fake_logits_B, real_label: float = 1.0):
    """D maximises V, so it minimises -V. `real_label` < 1 is one-sided label smoothing
    (Salimans et al. 2016): the target for real data becomes `real_label`."""
    return -(
        real_label * jnp.mean(log_sigmoid(real_logits_B))
        + (1.0 - real_label) * jnp.mean(log_one_minus_sigmoid(real_logits_B))
        + jnp.mean(log_one_minus_sigmoid(fake_logits_B))
    )


def saturating_g_loss(fake_logits_B):
    """The paper's minimax G: minimise E log(1 - D(G(z)))."""
    return jnp.mean(log_one_minus_sigmoid(fake_logits_B))


def non_saturating_g_loss(fake_logits_B):
    """The paper's practical G (Section 3): maximise E log D(G(z)), i.e. minimise its negative."""
    return -jnp.mean(log_sigmoid(fake_logits_B))


class GANLoss(NamedTuple):
    d_loss: Callable  # (real_logits_B, fake_logits_B) -> scalar
    g_loss: Callable  # (fake_logits_B) -> scalar


LOSSES = {
    "minimax": GANLoss(minimax_d_loss, saturating_g_loss),
    "non_saturating": GANLoss(minimax_d_loss, non_saturating_g_loss),
}


def get_loss(name: str, **kwargs) -> GANLoss:
    """The named loss pair, with keyword hyperparameters bound to its D loss."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; allowed: {sorted(LOSSES)}")
    loss = LOSSES[name]
    if not kwargs:
        return loss
    d_loss = lambda real, fake: loss.d_loss(real, fake, **kwargs)
    return GANLoss(d_loss, loss.g_loss)
