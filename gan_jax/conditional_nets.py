"""Conditional wrappers (Mirza & Osindero 2014): G(z, y) and D(x, y) around any G or D."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def default_labels(batch_size: int, num_classes: int) -> jax.Array:
    """y_i = i mod K: the labels used when none are given (initialisation, sample grids, where
    column c of a K-column grid then shows class c)."""
    return jnp.arange(batch_size) % num_classes


class ConditionalGenerator(nn.Module):
    """G(z, y) (Mirza & Osindero 2014, Sec. 3.2): the one-hot label is concatenated to z."""

    generator: nn.Module
    num_classes: int

    @nn.compact
    def __call__(self, z_BxZ, y_B=None, train: bool = True):
        y_B = default_labels(z_BxZ.shape[0], self.num_classes) if y_B is None else y_B
        y_BxK = jax.nn.one_hot(y_B, self.num_classes, dtype=z_BxZ.dtype)
        return self.generator(jnp.concatenate([z_BxZ, y_BxK], axis=-1), train=train)


class ConditionalDiscriminator(nn.Module):
    """D(x, y) (Mirza & Osindero 2014, Sec. 3.2): the one-hot label joins D's input, as extra
    constant channels of an image for a conv D (as in the DCGAN code's conditional MNIST), as
    extra features of the flattened input otherwise."""

    discriminator: nn.Module
    num_classes: int
    labels_as_channels: bool = False

    @nn.compact
    def __call__(self, x_Bx, y_B=None, train: bool = True, example_ids=None):
        """`example_ids` go to the inner D when it takes them (see `takes_example_ids`)."""
        y_B = default_labels(x_Bx.shape[0], self.num_classes) if y_B is None else y_B
        y_BxK = jax.nn.one_hot(y_B, self.num_classes, dtype=x_Bx.dtype)
        ids = {} if example_ids is None else {"example_ids": example_ids}
        if self.labels_as_channels:
            y_BxHxWxK = jnp.broadcast_to(y_BxK[:, None, None, :], (*x_Bx.shape[:3], y_BxK.shape[1]))
            x_in = jnp.concatenate([x_Bx, y_BxHxWxK], axis=-1)
        else:
            x_in = jnp.concatenate([x_Bx.reshape(x_Bx.shape[0], -1), y_BxK], axis=-1)
        return self.discriminator(x_in, train=train, **ids)
