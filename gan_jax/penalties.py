"""Gradient penalties on the discriminator, each computed with `jax.grad` inside the D step.

`d_fn` maps a batch x_Bx... to logits_B (or critic values_B); penalties differentiate the sum of
its outputs, which gives each example's own input gradient when examples do not interact. A D
with batch norm in training mode couples them: its penalty is then that of the batch function,
each row's gradient including terms through the batch statistics (as in the DCGAN + R1 run).
"""

from __future__ import annotations

import dataclasses
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


@dataclasses.dataclass(frozen=True)
class Rows:
    """Where a device's rows sit in the global batch, so that under pmap the penalties' noise
    and DRAGAN's std are those of the global batch, as on one device. The default is one
    device holding the whole batch."""

    offset: jax.Array | int = 0
    global_batch: int | None = None
    axis_name: str | None = None

    def uniform(self, key, x_Bx, per_element: bool) -> jax.Array:
        """U[0, 1] per row (broadcast over the rest) or per element: drawn for every row of the
        global batch, then this device's rows are sliced out."""
        local = x_Bx.shape[0]
        rest = x_Bx.shape[1:] if per_element else (1,) * (x_Bx.ndim - 1)
        full = jax.random.uniform(key, (self.global_batch or local, *rest), x_Bx.dtype)
        return jax.lax.dynamic_slice_in_dim(full, self.offset, local)

    def std(self, x_Bx) -> jax.Array:
        """The standard deviation of all elements of the global batch."""
        if self.axis_name is None:
            return jnp.std(x_Bx)
        mean = jax.lax.pmean(jnp.mean(x_Bx), self.axis_name)
        mean_sq = jax.lax.pmean(jnp.mean(x_Bx**2), self.axis_name)
        return jnp.sqrt(jnp.maximum(mean_sq - mean**2, 0.0))


def gradient_penalty(
    d_fn: Callable, x_real, x_fake, key, target: float = 1.0, rows: Rows = Rows()
) -> jax.Array:
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): E[(||grad D(x_hat)|| - 1)^2] on interpolates."""
    eps = rows.uniform(key, x_real, per_element=False)
    x_hat = eps * x_real + (1.0 - eps) * x_fake
    return jnp.mean((_per_example_grad_norm(d_fn, x_hat) - target) ** 2)


def dragan_penalty(
    d_fn: Callable, x_real, key, scale: float = 0.5, target: float = 1.0, rows: Rows = Rows()
):
    """DRAGAN (Kodali et al. 2017): the GP around real data perturbed by scale*std(x)*U[0,1]."""
    key_noise, key_mix = jax.random.split(key)
    noise = scale * rows.std(x_real) * rows.uniform(key_noise, x_real, per_element=True)
    alpha = rows.uniform(key_mix, x_real, per_element=False)
    x_hat = x_real + alpha * noise
    return jnp.mean((_per_example_grad_norm(d_fn, x_hat) - target) ** 2)


def r1_penalty(d_fn: Callable, x_real) -> jax.Array:
    """R1 (Mescheder et al. 2018, eq. 9) without the gamma/2 factor: E||grad D(x_real)||^2."""
    return jnp.mean(_per_example_grad_sq_norm(d_fn, x_real))


def r2_penalty(d_fn: Callable, x_fake) -> jax.Array:
    """R2 (Mescheder et al. 2018): E||grad D(x_fake)||^2, the same on generated samples."""
    return jnp.mean(_per_example_grad_sq_norm(d_fn, x_fake))


def penalty(name: str, d_fn: Callable, x_real, x_fake, key, rows: Rows = Rows()) -> jax.Array:
    """The named penalty's value (0 for 'none'); its weight is applied by the caller. `rows`
    places a pmap device's rows in the global batch for the penalties that draw noise."""
    if name == "none":
        return jnp.zeros((), jnp.float32)
    if name == "gp":
        return gradient_penalty(d_fn, x_real, x_fake, key, rows=rows)
    if name == "dragan":
        return dragan_penalty(d_fn, x_real, key, rows=rows)
    if name == "r1":
        return r1_penalty(d_fn, x_real)
    if name == "r2":
        return r2_penalty(d_fn, jax.lax.stop_gradient(x_fake))
    raise ValueError(f"unknown penalty {name!r}; allowed: {PENALTIES}")


# ----------------------------------------------------------------------------- parameter penalties


def _check_same_structure(name: str, params, average_params) -> None:
    structure, average_structure = jax.tree.structure(params), jax.tree.structure(average_params)
    if structure != average_structure:
        raise ValueError(
            f"{name}: params and their average differ in structure: {structure} vs"
            f" {average_structure}"
        )
    for p, a in zip(jax.tree.leaves(params), jax.tree.leaves(average_params), strict=True):
        if jnp.shape(p) != jnp.shape(a):
            raise ValueError(
                f"{name}: a parameter of shape {jnp.shape(p)} has an average of shape"
                f" {jnp.shape(a)}"
            )


def historical_averaging(params, average_params) -> jax.Array:
    """Historical averaging (Salimans et al. 2016, Sec. 3.3): ||theta - theta_bar||^2, summed
    over every parameter of the pytree, theta_bar the running mean of the player's past
    parameters (`update_historical_average`). The paper adds it to a player's cost (weight
    chosen by the caller); its gradient is 2 (theta - theta_bar), and none reaches the average.
    The authors' public code has no implementation of it. Returns a float32 scalar. Raises
    ValueError if the two pytrees differ in structure or in a leaf's shape.
    """
    _check_same_structure("historical_averaging", params, average_params)
    average_params = jax.lax.stop_gradient(average_params)
    squares = jax.tree.map(lambda p, a: jnp.sum((p - a) ** 2), params, average_params)
    return sum(jax.tree.leaves(squares), jnp.zeros((), jnp.float32))


def update_historical_average(average_params, params, count):
    """The running mean after one more value: average + (params - average) / (count + 1), where
    `count` (an int or int array, >= 0) is how many past parameter values `average_params`
    already averages. With count = 0 it returns params; after values theta_1..theta_t added in
    turn with counts 0..t-1 it is (1/t) sum_i theta_i, the paper's theta_bar (Sec. 3.3).
    Raises ValueError if the pytrees differ in structure or a leaf's shape, or for a Python int
    count < 0.
    """
    _check_same_structure("update_historical_average", params, average_params)
    if isinstance(count, int) and count < 0:
        raise ValueError(
            f"update_historical_average: count = {count} is not allowed; expected >= 0"
        )
    weight = 1.0 / (jnp.asarray(count, jnp.float32) + 1.0)
    return jax.tree.map(lambda a, p: a + (p - a) * weight, average_params, params)
