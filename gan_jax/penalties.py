"""Gradient penalties on the discriminator, each computed with `jax.grad` inside the D step.

`d_fn` maps a batch x_Bx... to logits_B (or critic values_B); penalties differentiate the sum of
its outputs, which gives each example's own input gradient because examples do not interact.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

PENALTIES = ("none", "gp", "dragan", "r1", "r2")


def _per_example_grad_norm(d_fn: Callable, x_Bx) -> jax.Array:
    grad_Bx = jax.grad(lambda x: jnp.sum(d_fn(x)))(x_Bx)
    flat_BxN = grad_Bx.reshape(grad_Bx.shape[0], -1)
    # sqrt has an infinite gradient at 0; the epsilon keeps the penalty's gradient finite there.
    return jnp.sqrt(jnp.sum(flat_BxN**2, axis=1) + 1e-12)


def _per_example_grad_sq_norm(d_fn: Callable, x_Bx) -> jax.Array:
    grad_Bx = jax.grad(lambda x: jnp.sum(d_fn(x)))(x_Bx)
    return jnp.sum(grad_Bx.reshape(grad_Bx.shape[0], -1) ** 2, axis=1)


def _broadcast_uniform(key, x_Bx) -> jax.Array:
    shape = (x_Bx.shape[0],) + (1,) * (x_Bx.ndim - 1)
    return jax.random.uniform(key, shape, x_Bx.dtype)


def gradient_penalty(d_fn: Callable, x_real, x_fake, key, target: float = 1.0) -> jax.Array:
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): E[(||grad D(x_hat)|| - 1)^2] on interpolates."""
    eps = _broadcast_uniform(key, x_real)
    x_hat = eps * x_real + (1.0 - eps) * x_fake
    return jnp.mean((_per_example_grad_norm(d_fn, x_hat) - target) ** 2)


def dragan_penalty(d_fn: Callable, x_real, key, scale: float = 0.5, target: float = 1.0):
    """DRAGAN (Kodali et al. 2017): the GP around real data perturbed by scale*std(x)*U[0,1]."""
    key_noise, key_mix = jax.random.split(key)
    noise = scale * jnp.std(x_real) * jax.random.uniform(key_noise, x_real.shape, x_real.dtype)
    alpha = _broadcast_uniform(key_mix, x_real)
    x_hat = x_real + alpha * noise
    return jnp.mean((_per_example_grad_norm(d_fn, x_hat) - target) ** 2)


def r1_penalty(d_fn: Callable, x_real) -> jax.Array:
    """R1 (Mescheder et al. 2018, eq. 9) without the gamma/2 factor: E||grad D(x_real)||^2."""
    return jnp.mean(_per_example_grad_sq_norm(d_fn, x_real))


def r2_penalty(d_fn: Callable, x_fake) -> jax.Array:
    """R2 (Mescheder et al. 2018): E||grad D(x_fake)||^2, the same on generated samples."""
    return jnp.mean(_per_example_grad_sq_norm(d_fn, x_fake))


def penalty(name: str, d_fn: Callable, x_real, x_fake, key) -> jax.Array:
    """The named penalty's value (0 for 'none'); its weight is applied by the caller."""
    if name == "none":
        return jnp.zeros((), jnp.float32)
    if name == "gp":
        return gradient_penalty(d_fn, x_real, x_fake, key)
    if name == "dragan":
        return dragan_penalty(d_fn, x_real, key)
    if name == "r1":
        return r1_penalty(d_fn, x_real)
    if name == "r2":
        return r2_penalty(d_fn, jax.lax.stop_gradient(x_fake))
    raise ValueError(f"unknown penalty {name!r}; allowed: {PENALTIES}")
