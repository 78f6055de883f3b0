"""Generator and discriminator networks (Flax linen). D returns logits; G returns samples.

Every G is called as `G(z_BxZ, train=...)` and returns x_Bx<data shape>; every D is called as
`D(x_Bx..., train=...)` and returns logits_B. Dropout draws from the 'dropout' RNG stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def uniform_init(scale: float):
    """U[-scale, scale], pylearn2's `irange` initialisation used by the 2014 code."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


class Maxout(nn.Module):
    """Maxout layer (Goodfellow et al. 2013): the max over `pieces` affine maps per unit."""

    units: int
    pieces: int
    init_scale: float

    @nn.compact
    def __call__(self, x_BxN):
        h = nn.Dense(
            self.units * self.pieces,
            kernel_init=uniform_init(self.init_scale),
            bias_init=nn.initializers.zeros,
        )(x_BxN)
        return jnp.max(h.reshape(x_BxN.shape[0], self.units, self.pieces), axis=-1)


class Gan2014Generator(nn.Module):
    """2014 MNIST G: z -> 1200 ReLU -> 1200 ReLU -> 784 sigmoid (goodfeli/adversarial mnist.yaml).

    The 2014 code starts the sigmoid layer's bias at the data's pixel marginals: see
    `with_output_bias`.
    """

    output_shape: Sequence[int] = (28, 28, 1)
    hidden: int = 1200
    init_scale: float = 0.05

    @nn.compact
    def __call__(self, z_BxZ, train: bool = True):
        init = uniform_init(self.init_scale)
        h = nn.relu(nn.Dense(self.hidden, kernel_init=init)(z_BxZ))
        h = nn.relu(nn.Dense(self.hidden, kernel_init=init)(h))
        logits = nn.Dense(math.prod(self.output_shape), kernel_init=init, name="output")(h)
        return nn.sigmoid(logits).reshape((-1, *self.output_shape))


class Gan2014Discriminator(nn.Module):
    """2014 MNIST D: maxout 240x5 -> maxout 240x5 -> 1 logit, with dropout on each layer's input.

    Dropout keeps inputs with probability 0.8 and hidden units with 0.5, as in mnist.yaml.
    """

    units: int = 240
    pieces: int = 5
    init_scale: float = 0.005
    input_keep: float = 0.8
    hidden_keep: float = 0.5

    @nn.compact
    def __call__(self, x, train: bool = True):
        h = x.reshape(x.shape[0], -1)
        h = nn.Dropout(1.0 - self.input_keep, deterministic=not train)(h)
        h = Maxout(self.units, self.pieces, self.init_scale)(h)
        h = nn.Dropout(1.0 - self.hidden_keep, deterministic=not train)(h)
        h = Maxout(self.units, self.pieces, self.init_scale)(h)
        h = nn.Dropout(1.0 - self.hidden_keep, deterministic=not train)(h)
        return nn.Dense(1, kernel_init=uniform_init(self.init_scale))(h)[:, 0]


class MLPGenerator(nn.Module):
    """Plain MLP G; the defaults are the Keras tutorial's 100 -> 256 -> 512 -> 1024 -> 784 tanh."""

    output_shape: Sequence[int] = (28, 28, 1)
    hidden: Sequence[int] = (256, 512, 1024)
    output_activation: str = "tanh"  # 'tanh', 'sigmoid' or 'linear'

    @nn.compact
    def __call__(self, z_BxZ, train: bool = True):
        h = z_BxZ
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        out = nn.Dense(math.prod(self.output_shape))(h)
        out = {"tanh": jnp.tanh, "sigmoid": nn.sigmoid, "linear": lambda v: v}[
            self.output_activation
        ](out)
        return out.reshape((-1, *self.output_shape))


class MLPDiscriminator(nn.Module):
    """Plain MLP D; with the defaults, the Keras tutorial's 784 -> 512 -> 256 -> 1 logit."""

    hidden: Sequence[int] = (512, 256)

    @nn.compact
    def __call__(self, x, train: bool = True):
        h = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        return nn.Dense(1)(h)[:, 0]


GENERATORS = {"gan2014": Gan2014Generator, "mlp": MLPGenerator}
DISCRIMINATORS = {"gan2014": Gan2014Discriminator, "mlp": MLPDiscriminator}


def make_generator(model_config, data_shape) -> nn.Module:
    """The generator a config names, producing samples of `data_shape`."""
    name = model_config.generator
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; allowed: {sorted(GENERATORS)}")
    kwargs = dict(model_config.get("generator_kwargs", {}))
    return GENERATORS[name](output_shape=tuple(data_shape), **kwargs)


def make_discriminator(model_config) -> nn.Module:
    """The discriminator a config names."""
    name = model_config.discriminator
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}; allowed: {sorted(DISCRIMINATORS)}")
    return DISCRIMINATORS[name](**dict(model_config.get("discriminator_kwargs", {})))


def sigmoid_bias_from_marginals(x_Nx, eps: float = 1e-3) -> jax.Array:
    """Inverse sigmoid of the mean pixel, so an untrained sigmoid G outputs the data's marginals
    (pylearn2's init_sigmoid_bias_from_marginals)."""
    mean = jnp.clip(jnp.mean(x_Nx.reshape(x_Nx.shape[0], -1), axis=0), eps, 1.0 - eps)
    return jnp.log(mean) - jnp.log1p(-mean)


def with_output_bias(g_params, bias):
    """G params with the output layer's bias replaced (the layer must be named 'output')."""
    if "output" not in g_params:
        raise ValueError(f"generator has no layer named 'output'; layers: {sorted(g_params)}")
    output = dict(g_params["output"], bias=jnp.asarray(bias, jnp.float32))
    return dict(g_params, output=output)
