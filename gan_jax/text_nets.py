"""The 1-D convolutional residual nets of the WGAN-GP language model (Gulrajani et al. 2017,
Sec. 5.2 and App. C; igul222/improved_wgan_training gan_language.py).

Sequences are one-hot (real) or softmax (G's) vectors over the V token ids at each of L
positions, x_BxLxV, laid out length-major (NWC) as flax convolutions expect; the authors' code
is channels-first, which only permutes G's first dense layer's outputs. Both nets are sized by
`dim` (the authors' DIM = 512) and the data's (L, V); neither has batch norm, so each row's
output depends on that row alone (the gradient penalty is per example).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from gan_jax.layers import Conv1D


class ResBlock1D(nn.Module):
    """x + scale * conv(ReLU(conv(ReLU(x)))): two width-`kernel_size` 'same' convolutions of
    `dim` features, the residual branch scaled by 0.3 as in the authors' ResBlock."""

    dim: int
    kernel_size: int = 5
    scale: float = 0.3

    @nn.compact
    def __call__(self, x_BxLxD):
        # Named as flax names nn.Conv layers, so checkpoints of either form restore.
        h = Conv1D(self.dim, self.kernel_size, name="Conv_0")(nn.relu(x_BxLxD))
        h = Conv1D(self.dim, self.kernel_size, name="Conv_1")(nn.relu(h))
        return x_BxLxD + self.scale * h


class TextGenerator(nn.Module):
    """G(z) = softmax over V per position: z -> dense L * dim -> [L, dim] -> `num_blocks`
    residual blocks -> width-1 conv to V logits -> softmax over V. `output_shape` = (L, V)."""

    output_shape: Sequence[int] = (32, 96)
    dim: int = 512
    num_blocks: int = 5
    kernel_size: int = 5
    residual_scale: float = 0.3

    @nn.compact
    def __call__(self, z_BxZ, train: bool = True):
        length, vocab = self.output_shape
        h = nn.Dense(length * self.dim)(z_BxZ).reshape(-1, length, self.dim)
        for _ in range(self.num_blocks):
            h = ResBlock1D(self.dim, self.kernel_size, self.residual_scale)(h)
        logits_BxLxV = Conv1D(vocab, 1, name="output")(h)
        return jax.nn.softmax(logits_BxLxV, axis=-1)


class TextDiscriminator(nn.Module):
    """The critic: x_BxLxV -> width-1 conv to `dim` -> `num_blocks` residual blocks -> flatten
    -> dense to one raw output per row (logits_B). Each block's output is sown as a hidden
    feature (`net_parts.sow_features`' collection, for feature matching)."""

    dim: int = 512
    num_blocks: int = 5
    kernel_size: int = 5
    residual_scale: float = 0.3

    @nn.compact
    def __call__(self, x_BxLxV, train: bool = True):
        h = Conv1D(self.dim, 1, name="Conv_0")(x_BxLxV)
        for _ in range(self.num_blocks):
            h = ResBlock1D(self.dim, self.kernel_size, self.residual_scale)(h)
            self.sow("intermediates", "features", h)
        return nn.Dense(1)(h.reshape(h.shape[0], -1))[:, 0]
