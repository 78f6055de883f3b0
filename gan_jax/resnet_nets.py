"""The ResNet G and D of Gulrajani et al. 2017 (WGAN-GP, CIFAR-10) and Miyato et al. 2018
(SNGAN). How every G and D is called: `models`.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.net_parts import (
    GLOROT_UNIFORM,
    OUTPUT_ACTIVATIONS,
    batch_norm,
    normalised,
    output_head,
    sow_features,
    upsampling_plan,
)

# The residual convs of both papers' code start U[-a, a] with variance 4 / (fan_in + fan_out):
# tflib's Conv2D with he_init (igul222/improved_wgan_training) and chainer's GlorotUniform(sqrt 2)
# (pfnet-research/sngan_projection). Shortcut convs, dense layers and G's last conv start
# Glorot-uniform (sngan_projection; tflib starts its dense layers LeCun-uniform).
RESNET_INIT = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")
RESNET_POOLING = ("mean", "sum")  # D's global pooling: Gulrajani et al. 2017 / Miyato et al. 2018


def upsample_2x(x_BxHxWxC):
    """Nearest-neighbour upsampling: x_Bx(2H)x(2W)xC, each pixel a 2x2 block (tflib's
    UpsampleConv's depth_to_space of 4 copies; chainer's unpooling_2d)."""
    return jnp.repeat(jnp.repeat(x_BxHxWxC, 2, axis=1), 2, axis=2)


def mean_pool_2x2(x_BxHxWxC):
    """2x2 average pooling, stride 2: x_Bx(H/2)x(W/2)xC. H and W must be even."""
    b, h, w, c = x_BxHxWxC.shape
    return x_BxHxWxC.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def same_conv(features: int, kernel: int, init, name: str | None = None) -> nn.Module:
    """A stride-1 'SAME' conv. flax's own: for these stride-1 3x3 convs it ran a ResNet G+D
    gradient faster on XLA:CPU than `layers.Conv` (0.060 against 0.069 s a step at 16 features,
    batch 8; 2.6 against 3.7 s at 128, batch 16; a busy 2-core CPU), and compiled faster;
    `layers.Conv` pays off for strided and transposed convs."""
    return nn.Conv(features, (kernel, kernel), (1, 1), "SAME", kernel_init=init, name=name)


class ResBlockUp(nn.Module):
    """G's residual block of the CIFAR-10 ResNets of Gulrajani et al. 2017 and Miyato et al.
    2018 (as coded in gan_cifar_resnet.py and sngan_projection's resblocks.py):
    BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus a 1x1 conv of the upsampled input.
    x_BxHxWxC -> x_Bx(2H)x(2W)xF. `norm` False drops the batch norms."""

    features: int
    norm: bool = True
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x_BxHxWxC, train: bool = True):
        def bn(h):
            return batch_norm(train, self.bn_momentum, self.axis_name)(h) if self.norm else h

        # A 1x1 conv commutes with nearest upsampling: convolving first is 4x cheaper.
        shortcut = same_conv(self.features, 1, GLOROT_UNIFORM, "shortcut")(x_BxHxWxC)
        h = same_conv(self.features, 3, RESNET_INIT, "conv1")(upsample_2x(nn.relu(bn(x_BxHxWxC))))
        h = same_conv(self.features, 3, RESNET_INIT, "conv2")(nn.relu(bn(h)))
        return upsample_2x(shortcut) + h


class ResBlockDown(nn.Module):
    """D's residual block of the CIFAR-10 ResNets of Gulrajani et al. 2017 and Miyato et al.
    2018 (as coded in gan_cifar_resnet.py and sngan_projection's resblocks.py):
    ReLU-conv3x3-ReLU-conv3x3(-mean pool 2x2), plus the input (-mean pooled) through a 1x1 conv,
    or the input itself when neither the size nor the width changes. With `first`, the first
    block after the image: no ReLU on its input (the authors' OptimizedBlock /
    OptimizedResBlockDisc1). x_BxHxWxC -> x_Bx(H/2)x(W/2)xF (x_BxHxWxF without `downsample`).
    `spectral_norm` normalises every conv (`normalised`)."""

    features: int
    downsample: bool = True
    first: bool = False
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x_BxHxWxC, train: bool = True):
        def conv(h, features, kernel, init, name):
            layer = same_conv(features, kernel, init, name)
            return normalised(layer, h, self.spectral_norm, train)

        pool = mean_pool_2x2 if self.downsample else (lambda v: v)
        hidden = self.features if self.first else x_BxHxWxC.shape[-1]
        h = x_BxHxWxC if self.first else nn.relu(x_BxHxWxC)
        h = nn.relu(conv(h, hidden, 3, RESNET_INIT, "conv1"))
        h = conv(h, self.features, 3, RESNET_INIT, "conv2")
        shortcut = x_BxHxWxC
        if self.downsample or x_BxHxWxC.shape[-1] != self.features:
            # A 1x1 conv commutes with mean pooling: pooling first is 4x cheaper.
            shortcut = conv(pool(x_BxHxWxC), self.features, 1, GLOROT_UNIFORM, "shortcut")
        return shortcut + pool(h)


class ResNetGenerator(nn.Module):
    """The CIFAR-10 ResNet G of Gulrajani et al. 2017 (appendix; gan_cifar_resnet.py, 128
    features) and Miyato et al. 2018 (appendix; sngan_projection resnet_32.py, 256
    features): z -> dense 4x4xF -> `ResBlockUp` x n (4 -> 8 -> 16 -> 32 for 32x32; n from
    `upsampling_plan`, so 64x64 gets 4 blocks) -> BN-ReLU -> conv3x3 to C -> tanh.
    z_BxZ -> x_BxHxWxC. Batch statistics live in 'batch_stats' (`norm` 'batch'; 'none' drops
    them). Raises ValueError for non-square images or an unknown norm."""

    output_shape: Sequence[int] = (32, 32, 3)
    base_features: int = 128
    norm: str = "batch"  # 'batch' or 'none'
    bn_momentum: float = 0.9
    output_activation: str = "tanh"
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z_BxZ, train: bool = True):
        if self.norm not in ("batch", "none"):
            raise ValueError(f"unknown norm {self.norm!r}; allowed: ['batch', 'none']")
        height, width, channels = self.output_shape
        start, n = upsampling_plan(height)
        if upsampling_plan(width) != (start, n):
            raise ValueError(f"ResNet G needs square images; got {tuple(self.output_shape)}")
        features, bn = self.base_features, self.norm == "batch"
        h = nn.Dense(start * start * features, kernel_init=GLOROT_UNIFORM)(z_BxZ)
        h = h.reshape(z_BxZ.shape[0], start, start, features)
        for _ in range(n):
            h = ResBlockUp(features, bn, self.bn_momentum, self.axis_name)(h, train)
        if bn:
            h = batch_norm(train, self.bn_momentum, self.axis_name)(h)
        h = same_conv(channels, 3, GLOROT_UNIFORM)(nn.relu(h))
        return OUTPUT_ACTIVATIONS[self.output_activation](h)


class ResNetDiscriminator(nn.Module):
    """The CIFAR-10 ResNet D (critic) of Gulrajani et al. 2017 (gan_cifar_resnet.py) and Miyato
    et al. 2018 (snresnet_32.py): `ResBlockDown` x `down_blocks` (the first without an input
    ReLU; 32 -> 16 -> 8), `ResBlockDown` x `plain_blocks` at that size, ReLU, global `pooling`
    over positions ('mean': Gulrajani et al.'s critic; 'sum': Miyato et al.'s D), then a dense
    logit (no bias with `output_bias=False`, as sngan_projection's SNLinear). No batch norm, so
    a row's output is its own (the gradient penalty's requirement). Options: `spectral_norm` on
    every layer (Miyato et al. 2018), `aux_classes` K > 0 for AC-GAN class logits,
    `num_classes` K > 0 for a semi-supervised K+1-class D. Every block's output is sown as
    'features'. x_BxHxWxC -> logits_B. Raises ValueError for an unknown pooling, block counts
    < 1 / < 0, or images that `down_blocks` halvings do not divide."""

    features: int = 128
    down_blocks: int = 2
    plain_blocks: int = 2
    pooling: str = "mean"
    output_bias: bool = True
    spectral_norm: bool = False
    aux_classes: int = 0
    num_classes: int = 0

    @nn.compact
    def __call__(self, x_BxHxWxC, train: bool = True):
        if self.pooling not in RESNET_POOLING:
            raise ValueError(f"unknown pooling {self.pooling!r}; allowed: {list(RESNET_POOLING)}")
        if self.down_blocks < 1 or self.plain_blocks < 0:
            raise ValueError(
                f"down_blocks = {self.down_blocks}, plain_blocks = {self.plain_blocks}: expected"
                " down_blocks >= 1 and plain_blocks >= 0"
            )
        size = x_BxHxWxC.shape[1:3]
        if any(s % 2**self.down_blocks for s in size):
            raise ValueError(
                f"images {tuple(size)} cannot be halved {self.down_blocks} times (down_blocks)"
            )
        h = x_BxHxWxC
        for i in range(self.down_blocks + self.plain_blocks):
            down = i < self.down_blocks
            block = ResBlockDown(self.features, down, i == 0, self.spectral_norm)
            h = sow_features(self, block(h, train))
        h = nn.relu(h)
        h = jnp.mean(h, axis=(1, 2)) if self.pooling == "mean" else jnp.sum(h, axis=(1, 2))
        dense = nn.Dense(
            self.num_classes or 1 + self.aux_classes,
            use_bias=self.output_bias,
            kernel_init=GLOROT_UNIFORM,
        )
        out = normalised(dense, h, self.spectral_norm, train)
        return output_head(out, self.aux_classes, self.num_classes)
