"""Layers the nets share that Flax does not provide."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class RowDropout(nn.Module):
    """Inverted dropout whose mask on row r is drawn from the 'dropout' key folded with
    example_ids[r].

    A row gets the same mask whichever device holds it, so a pmap run matches a single-device
    run. The masks come from JAX's own generator: with masks hashed from (seed, row, column),
    which this replaced, the 2014 MNIST nets collapsed early in more of the seeds tried (README,
    Training on MNIST).
    """

    rate: float

    @nn.compact
    def __call__(self, x_BxN, deterministic: bool, example_ids_B=None):
        if deterministic or self.rate == 0.0:
            return x_BxN
        key = self.make_rng("dropout")
        rows_B = jnp.arange(x_BxN.shape[0]) if example_ids_B is None else example_ids_B

        def row_mask(row):
            return jax.random.bernoulli(
                jax.random.fold_in(key, row), 1.0 - self.rate, x_BxN.shape[1:]
            )

        keep_BxN = jax.vmap(row_mask)(rows_B)
        return jnp.where(keep_BxN, x_BxN / (1.0 - self.rate), 0.0)


def max_over_pieces(h_BxUxP):
    """`jnp.max(h, axis=-1)` whose gradient goes to the first maximal piece (argmax routing,
    as in PyTorch's `max(dim)`; `jnp.max` splits it among tied pieces, a measure-zero event
    here). The backward pass needs only the winners' indices: on XLA:CPU, `jnp.max`'s gradient
    (a tie count over the short minor axis, then the input again) took ~20% of the 2014 step."""
    return _max_routed(h_BxUxP.shape[-1], h_BxUxP)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _max_routed(pieces, h_BxUxP):
    del pieces
    return jnp.max(h_BxUxP, axis=-1)


def _index_dtype(pieces: int):
    return jnp.int8 if pieces <= 127 else jnp.int32  # a residual 4x smaller than argmax's


def _max_routed_fwd(pieces, h_BxUxP):
    winner_BxU = jnp.argmax(h_BxUxP, axis=-1).astype(_index_dtype(pieces))
    return jnp.max(h_BxUxP, axis=-1), winner_BxU


def _max_routed_bwd(pieces, winner_BxU, g_BxU):
    is_winner_BxUxP = jnp.arange(pieces, dtype=_index_dtype(pieces)) == winner_BxU[..., None]
    return (jnp.where(is_winner_BxUxP, g_BxU[..., None], 0.0),)


_max_routed.defvjp(_max_routed_fwd, _max_routed_bwd)

# XLA:CPU runs a strided conv's gradients and a transposed conv (convolutions with dilated
# inputs or with large windows) tens of times slower than a matmul of the same FLOPs: a DCGAN
# step took 2.2 s on 2 cores. The two layers below compute exactly flax's Conv / ConvTranspose
# with 'SAME' padding, with the same parameters, as one small stride-1 conv on a space-to-depth
# view of the input, itself done as a matmul.


def space_to_depth(x_BxHxWxC, s: int):
    """x_Bx(H/s)x(W/s)x(s*s*C): channel (r, q, c) of pixel (i, j) is x[s*i + r, s*j + q, c]."""
    b, h, w, c = x_BxHxWxC.shape
    x = x_BxHxWxC.reshape(b, h // s, s, w // s, s, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // s, w // s, s * s * c)


def _square(kernel_size: Sequence[int], strides: Sequence[int]) -> tuple[int, int, int]:
    """(k, s, k rounded up to a multiple of s) of a square kernel and equal strides."""
    (k, kw), (s, sw) = kernel_size, strides
    if (kw, sw) != (k, s) or k < 1 or s < 1:
        raise ValueError(
            f"kernel_size {tuple(kernel_size)}, strides {tuple(strides)}: expected a square "
            "kernel and equal strides, both >= 1"
        )
    return k, s, -(-k // s) * s


def _conv_valid(x_BxHxWxC, kernel_KxKxCxF):
    """A stride-1 'VALID' conv as one matmul of shifted views (im2col): its weight gradient is
    then a matmul too, where XLA:CPU's convolution with a large window is slow."""
    k = kernel_KxKxCxF.shape[0]
    h, w = x_BxHxWxC.shape[1] - k + 1, x_BxHxWxC.shape[2] - k + 1
    patches = [x_BxHxWxC[:, u : u + h, v : v + w] for u in range(k) for v in range(k)]
    return jnp.concatenate(patches, axis=-1) @ kernel_KxKxCxF.reshape(-1, kernel_KxKxCxF.shape[-1])


def _pad_kernel(kernel, k_padded: int):
    """Zero taps appended up to k_padded: they read only padding and change nothing."""
    extra = k_padded - kernel.shape[0]
    return jnp.pad(kernel, ((0, extra), (0, extra), (0, 0), (0, 0)))


class _SameConv(nn.Module):
    """The fields of flax's Conv / ConvTranspose that the two layers below take."""

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int] = (1, 1)
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros


class Conv(_SameConv):
    """flax.linen.Conv(features, kernel_size, strides, 'SAME'), same parameters: pad as 'SAME'
    does, fold each s x s block into channels, then a stride-1 conv whose kernel is the k x k
    one (zero-padded to a multiple of s) regrouped the same way."""

    @nn.compact
    def __call__(self, x_BxHxWxC):
        k, s, kp = _square(self.kernel_size, self.strides)
        c = x_BxHxWxC.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (k, k, c, self.features))
        x = x_BxHxWxC
        for axis in (1, 2):
            size = x.shape[axis]
            rows = (-(-size // s) - 1) * s + kp  # what the output reads, a multiple of s
            before = max(rows - kp + k - size, 0) // 2  # 'SAME', as lax computes it
            pads = [(0, 0)] * 4
            pads[axis] = (before, max(rows - size - before, 0))
            x = jax.lax.slice_in_dim(jnp.pad(x, pads), 0, rows, axis=axis)
        x = space_to_depth(x, s)
        grouped = _pad_kernel(kernel, kp).reshape(kp // s, s, kp // s, s, c, self.features)
        grouped = grouped.transpose(0, 2, 1, 3, 4, 5).reshape(kp // s, kp // s, -1, self.features)
        y = _conv_valid(x, grouped)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,))
        return y


class ConvTranspose(_SameConv):
    """flax.linen.ConvTranspose(features, kernel_size, strides, 'SAME') (kernel not flipped),
    same parameters: one stride-1 conv with s*s*features outputs, a group per output phase
    (a, b), interleaved into the s-times larger image."""

    @nn.compact
    def __call__(self, x_BxHxWxC):
        k, s, kp = _square(self.kernel_size, self.strides)
        b, h, w, c = x_BxHxWxC.shape
        f = self.features
        kernel = _pad_kernel(self.param("kernel", self.kernel_init, (k, k, c, f)), kp)
        pad_before = k - 1 if s > k - 1 else -(-(k + s - 2) // 2)  # lax.conv_transpose 'SAME'
        # Output row s*m + a reads kernel rows first[a] + s*u at input rows m + offset[a] + u.
        first = [(pad_before - a) % s for a in range(s)]
        offset = [(a + first[a] - pad_before) // s for a in range(s)]
        lo, hi = max(0, -min(offset)), max(0, max(offset) + kp // s - 1)
        x = jnp.pad(x_BxHxWxC, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
        phases = [kernel[first[a] :: s, first[q] :: s] for a in range(s) for q in range(s)]
        y = _conv_valid(x, jnp.concatenate(phases, axis=-1))

        def phase(a, q):
            i, j, g = offset[a] + lo, offset[q] + lo, a * s + q
            return y[:, i : i + h, j : j + w, g * f : (g + 1) * f]

        rows = [jnp.stack([phase(a, q) for q in range(s)], axis=3) for a in range(s)]
        y = jnp.stack(rows, axis=2).reshape(b, h * s, w * s, f)  # B x H x s x W x s x F
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (f,))
        return y
