"""Pieces the generator and discriminator families share (`dense_nets`, `conv_nets`,
`resnet_nets`): G's output activations and their value ranges, the latent distributions,
initialisers, spectral normalisation, D's output heads (source logit, AC-GAN classes, the
semi-supervised K+1 head), batch norm under pmap, the hidden features a D sows for feature
matching, the conv nets' upsampling plan, and virtual batch norm's fixed reference batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

# G's last activation, matching the data's scale: tanh for [-1, 1], sigmoid for [0, 1];
# softmax over the last axis for one-hot text (the text G's fixed output, `text_nets`).
OUTPUT_ACTIVATIONS = {
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "linear": lambda v: v,
    "softmax": lambda v: jax.nn.softmax(v, axis=-1),
}
# The interval each activation's values lie in, ends included (the limits it approaches).
OUTPUT_RANGES = {
    "tanh": (-1.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "linear": (-math.inf, math.inf),
    "softmax": (0.0, 1.0),
}


def uniform_init(scale: float):
    """U[-scale, scale], pylearn2's `irange` initialisation used by the 2014 code."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


# ----------------------------------------------------------------------------- shared pieces

SPECTRAL = "spectral"  # the collection holding spectral norm's power-iteration state (u, sigma)


def normalised(layer: nn.Module, x, spectral_norm: bool, train: bool):
    """`layer(x)`, with the layer's weight divided by its largest singular value when
    `spectral_norm` (Miyato et al. 2018, eq. 8). sigma comes from one power-iteration step per
    call, warm-started from the `u` kept in the 'spectral' collection, which advances only when
    `train` (the D step owns it)."""
    if not spectral_norm:
        return layer(x)
    return nn.SpectralNorm(layer, collection_name=SPECTRAL)(x, update_stats=train)


def source_and_classes(out_BxN, aux_classes: int):
    """logits_B, or (logits_B, class_logits_BxK) for an AC-GAN head."""
    return out_BxN[:, 0] if not aux_classes else (out_BxN[:, 0], out_BxN[:, 1:])


def semi_supervised_head(class_logits_BxK):
    """(logsumexp_k l_k, class_logits_BxK): a K+1-class D whose fake class has its logit fixed
    at 0 (Salimans et al. 2016, Sec. 5), so D(x) = Z(x) / (Z(x) + 1) with Z(x) = sum_k exp l_k
    is sigmoid(log Z(x)): the first output is the logit the GAN losses take."""
    return jax.nn.logsumexp(class_logits_BxK, axis=-1), class_logits_BxK


def output_head(out_BxN, aux_classes: int, num_classes: int):
    """A D's last layer's outputs as the D's result: `semi_supervised_head` with `num_classes`
    K > 0 (N = K), else `source_and_classes` (N = 1 + aux_classes)."""
    if num_classes:
        return semi_supervised_head(out_BxN)
    return source_and_classes(out_BxN, aux_classes)


def batch_norm(train: bool, momentum: float, axis_name: str | None):
    """Batch norm (Ioffe & Szegedy 2015): batch statistics in training, running averages
    otherwise. Under pmap `axis_name` averages the statistics over devices, so a sharded batch
    is normalised exactly like the whole batch."""
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, axis_name=axis_name)


def sow_features(module: nn.Module, h):
    """Records a D's hidden layer output `h` (and returns it) in the 'intermediates' collection
    under 'features', layers in order, for feature matching (Salimans et al. 2016, Sec. 3.1);
    a no-op unless the caller makes 'intermediates' mutable (steps.apply_player's `features`)."""
    module.sow("intermediates", "features", h)
    return h


def sown_features(intermediates) -> tuple:
    """The hidden layers' outputs a D sowed (`sow_features`), first layer first, found at any
    depth (a conditional wrapper's inner D sows them). Raises ValueError when none were."""
    found = _find_features(intermediates)
    if not found:
        raise ValueError("this discriminator sows no hidden features (see net_parts.sow_features)")
    return found


def _find_features(tree) -> tuple:
    if "features" in tree:
        return tuple(tree["features"])
    for sub in tree.values():
        if isinstance(sub, Mapping) and (found := _find_features(sub)):
            return found
    return ()


def leaky_relu(x):
    """Leaky ReLU with slope 0.2 for negative inputs, DCGAN's D activation."""
    return nn.leaky_relu(x, negative_slope=0.2)  # Radford et al. 2016, Sec. 3: slope 0.2 in D


def upsampling_plan(size: int) -> tuple[int, int]:
    """(start, n) with start * 2**n == size, halving while the result stays >= 4: 28 -> (7, 2),
    32 -> (4, 3), 64 -> (4, 4). Conv nets grow from / shrink to start x start."""
    start, n = size, 0
    while start % 2 == 0 and start // 2 >= 4:
        start, n = start // 2, n + 1
    if n == 0:
        raise ValueError(f"image size {size} is not 2**n times a size >= 4 (n >= 1)")
    return start, n


# G's latent distribution: uniform on [-1, 1] (Goodfellow et al. 2014) or standard normal.
Z_DISTRIBUTIONS = ("uniform", "normal")
# Lasagne's DenseLayer default, the authors' G layers without weight normalisation of their own.
GLOROT_UNIFORM = nn.initializers.glorot_uniform()


VBN_REFERENCE = "vbn_reference"  # the collection holding a VBN generator's fixed reference z
FIXED_COLLECTIONS = (VBN_REFERENCE,)  # mutable collections whose values training never changes


def reference_z(key, size: int, z_dim: int, distribution: str) -> jax.Array:
    """z_RxZ, a VBN generator's reference batch: uniform on [-1, 1] (as the authors' reference
    z, openai/improved-gan imagenet/generator.py) or standard normal."""
    if distribution == "uniform":
        return jax.random.uniform(key, (size, z_dim), minval=-1.0, maxval=1.0)
    if distribution == "normal":
        return jax.random.normal(key, (size, z_dim))
    raise ValueError(f"unknown z distribution {distribution!r}; allowed: {Z_DISTRIBUTIONS}")


def with_vbn_reference(module: nn.Module, z_BxZ, size: int, distribution: str) -> jax.Array:
    """concat(z_ref, z)_(R+B)xZ for a VBN generator `module` (called in its compact method):
    z_ref (R = `size` rows, `reference_z`) is drawn with the 'params' key at init and kept in
    the 'vbn_reference' collection, so it is saved and restored with the state and never
    changes (Salimans et al. 2016, Sec. 3.5: a reference batch fixed at the start)."""
    z_ref = module.variable(
        VBN_REFERENCE,
        "z",
        lambda: reference_z(module.make_rng("params"), size, z_BxZ.shape[-1], distribution),
    ).value
    return jnp.concatenate([z_ref.astype(z_BxZ.dtype), z_BxZ])
