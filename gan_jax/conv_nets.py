"""Convolutional Gs and Ds: DCGAN (Radford et al. 2016) and the PatchGAN D (Isola et al. 2017).
How every G and D is called: `models`.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn

from gan_jax import layers
from gan_jax.net_parts import (
    OUTPUT_ACTIVATIONS,
    batch_norm,
    leaky_relu,
    normalised,
    output_head,
    sow_features,
    upsampling_plan,
    with_vbn_reference,
)

DCGAN_INIT = nn.initializers.normal(0.02)  # Radford et al. 2016, Sec. 4: N(0, 0.02)


GENERATOR_NORMS = ("batch", "vbn", "none")


class DCGANGenerator(nn.Module):
    """DCGAN G (Radford et al. 2016, Sec. 3 and Fig. 1): z projected to start x start x F,
    then n fractionally-strided 4x4 convs each doubling the size and halving the features,
    batch norm + ReLU after every layer but the last, tanh output. 28x28: 7 -> 14 -> 28;
    32x32: 4 -> 8 -> 16 -> 32. Batch statistics live in 'batch_stats' (the G step owns them).

    `norm` picks the normalisation: 'batch' (the default, when `use_batch_norm`), 'none', or
    'vbn', virtual batch norm (Salimans et al. 2016, Sec. 3.5; layers.VirtualBatchNorm): the net
    runs on concat(z_ref, z) and returns the rows of z, each normalised with the statistics of
    the reference batch G(z_ref) and its own, so a sample depends on its own z alone. z_ref
    (`vbn_reference_size` rows drawn from `vbn_reference_z`, 'uniform' or 'normal', with the
    'params' key at `init`) is kept in the 'vbn_reference' collection, so it is saved and
    restored with the rest of the state and never changes. `use_batch_norm=False` is 'none'
    (kept for existing configs); with norm 'vbn' it raises ValueError, as do unknown norms.
    """

    output_shape: Sequence[int] = (28, 28, 1)
    base_features: int = 64  # features of the last hidden layer; doubled per layer towards z
    kernel_size: int = 4
    use_batch_norm: bool = True
    bn_momentum: float = 0.9  # PyTorch's 0.1: running averages that keep up with training
    output_activation: str = "tanh"  # 'tanh', 'sigmoid' or 'linear'
    axis_name: str | None = None  # the pmap axis to average batch statistics over
    norm: str = "batch"  # 'batch', 'vbn' or 'none'
    vbn_reference_size: int = 64
    vbn_reference_z: str = "uniform"

    def _norm(self) -> str:
        if self.norm not in GENERATOR_NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; allowed: {GENERATOR_NORMS}")
        if not self.use_batch_norm:
            if self.norm == "vbn":
                raise ValueError("norm='vbn' contradicts use_batch_norm=False; set one of them")
            return "none"
        return self.norm

    @nn.compact
    def __call__(self, z_BxZ, train: bool = True):
        norm_kind = self._norm()
        height, width, channels = self.output_shape
        start, n = upsampling_plan(height)
        if upsampling_plan(width) != (start, n):
            raise ValueError(f"DCGAN G needs square images; got {tuple(self.output_shape)}")
        if norm_kind == "vbn":
            z_BxZ = with_vbn_reference(self, z_BxZ, self.vbn_reference_size, self.vbn_reference_z)

        def norm(h):
            if norm_kind == "vbn":
                return layers.VirtualBatchNorm(self.vbn_reference_size)(h)
            return batch_norm(train, self.bn_momentum, self.axis_name)(h)

        features = self.base_features * 2 ** (n - 1)
        bn = norm_kind != "none"
        h = nn.Dense(start * start * features, use_bias=not bn, kernel_init=DCGAN_INIT)(z_BxZ)
        h = h.reshape(z_BxZ.shape[0], start, start, features)
        h = nn.relu(norm(h) if bn else h)
        kernel = (self.kernel_size, self.kernel_size)
        for _ in range(n - 1):
            features //= 2
            h = layers.ConvTranspose(features, kernel, (2, 2), not bn, DCGAN_INIT)(h)
            h = nn.relu(norm(h) if bn else h)
        h = layers.ConvTranspose(channels, kernel, (2, 2), kernel_init=DCGAN_INIT)(h)
        out = OUTPUT_ACTIVATIONS[self.output_activation](h)
        return out[self.vbn_reference_size :] if norm_kind == "vbn" else out


class DCGANDiscriminator(nn.Module):
    """DCGAN D (Radford et al. 2016, Sec. 3): n strided 4x4 convs each halving the size and
    doubling the features, LeakyReLU(0.2), batch norm on all but the input layer, then one
    linear logit. Options: `spectral_norm` on every layer (Miyato et al. 2018; usually with
    `use_batch_norm=False`), `aux_classes` K > 0 for AC-GAN's class logits (Odena et al. 2017),
    `num_classes` K > 0 for a semi-supervised K+1-class D (`semi_supervised_head`)."""

    base_features: int = 64
    kernel_size: int = 4
    use_batch_norm: bool = True
    bn_momentum: float = 0.9
    spectral_norm: bool = False
    aux_classes: int = 0
    num_classes: int = 0
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x_BxHxWxC, train: bool = True):
        _, n = upsampling_plan(x_BxHxWxC.shape[1])
        kernel = (self.kernel_size, self.kernel_size)
        h, features = x_BxHxWxC, self.base_features
        for i in range(n):
            conv = layers.Conv(features, kernel, (2, 2), kernel_init=DCGAN_INIT)
            h = normalised(conv, h, self.spectral_norm, train)
            if i > 0 and self.use_batch_norm:  # Sec. 3: no batch norm at D's input layer
                h = batch_norm(train, self.bn_momentum, self.axis_name)(h)
            h, features = sow_features(self, leaky_relu(h)), features * 2
        h = h.reshape(h.shape[0], -1)
        dense = nn.Dense(self.num_classes or 1 + self.aux_classes, kernel_init=DCGAN_INIT)
        out = normalised(dense, h, self.spectral_norm, train)
        return output_head(out, self.aux_classes, self.num_classes)


class PatchDiscriminator(nn.Module):
    """PatchGAN D (Isola et al. 2017, Sec. 3.2.2 and App. 6.1.2): strided 4x4 convs
    (C64-C128-... with LeakyReLU 0.2, batch norm after the first), then a 4x4 conv to one
    channel: logits_BxPxP, one per overlapping input patch. The losses average over patches."""

    features: Sequence[int] = (64, 128)
    kernel_size: int = 4
    use_batch_norm: bool = True
    bn_momentum: float = 0.9
    spectral_norm: bool = False
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x_BxHxWxC, train: bool = True):
        kernel = (self.kernel_size, self.kernel_size)
        h = x_BxHxWxC
        for i, features in enumerate(self.features):
            conv = layers.Conv(features, kernel, (2, 2), kernel_init=DCGAN_INIT)
            h = normalised(conv, h, self.spectral_norm, train)
            if i > 0 and self.use_batch_norm:
                h = batch_norm(train, self.bn_momentum, self.axis_name)(h)
            h = sow_features(self, leaky_relu(h))
        out = nn.Conv(1, kernel, (1, 1), "SAME", kernel_init=DCGAN_INIT)
        return normalised(out, h, self.spectral_norm, train)[..., 0]
