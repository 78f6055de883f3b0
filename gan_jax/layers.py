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


class Conv1D(nn.Module):
    """flax.linen.Conv(features, (kernel_size,), padding='SAME') on x_BxLxC, the same parameters
    (kernel [k, C, F] initialised as flax's, bias [F]), computed as one matmul of the k shifted
    copies of x (im2col): [B, L, k*C] @ [k*C, F]. XLA's CPU convolution runs many times slower
    inside a lax.scan than dispatched alone, which made the text nets' scanned training chunks
    crawl; a matmul does not. Shapes: x_BxLxC -> y_BxLxF."""

    features: int
    kernel_size: int
    use_bias: bool = True
    kernel_init: Callable = nn.linear.default_kernel_init
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x_BxLxC):
        k, (_, length, c) = self.kernel_size, x_BxLxC.shape
        kernel = self.param("kernel", self.kernel_init, (k, c, self.features))
        before = (k - 1) // 2  # 'SAME' for stride 1, as lax pads it
        padded = jnp.pad(x_BxLxC, ((0, 0), (before, k - 1 - before), (0, 0)))
        cols_BxLxKC = jnp.concatenate([padded[:, t : t + length] for t in range(k)], axis=-1)
        y = cols_BxLxKC @ kernel.reshape(k * c, self.features)
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


# ----------------------------------------------------------------------------- Salimans et al. 2016


def _check_positive_int(layer: str, field: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{layer}: {field} = {value!r} is not allowed; expected an int >= 1")


def _row_normals(key, shape_BxN, rows_B):
    """N(0, 1) noise whose row r is drawn from `key` folded with rows_B[r] (see RowDropout)."""
    return jax.vmap(lambda row: jax.random.normal(jax.random.fold_in(key, row), shape_BxN[1:]))(
        rows_B
    )


class GaussianNoise(nn.Module):
    """x + N(0, std^2) noise in training, x unchanged otherwise (`deterministic`): the noise
    layers of the authors' semi-supervised MNIST D (Salimans et al. 2016, Sec. 5;
    openai/improved-gan mnist_svhn_cifar10/nn.py `GaussianNoiseLayer`).

    The noise comes from the 'dropout' RNG stream, row r's from the key folded with
    example_ids[r] (as RowDropout's masks), so a row gets the same noise whichever device holds
    it and whether or not it shares a call with other rows. x_Bx... -> x_Bx.... Raises
    ValueError for a negative std.
    """

    std: float

    @nn.compact
    def __call__(self, x_Bx, deterministic: bool, example_ids_B=None):
        if not self.std >= 0.0:
            raise ValueError(f"GaussianNoise: std = {self.std!r} is not allowed; expected >= 0")
        if deterministic or self.std == 0.0:
            return x_Bx
        key = self.make_rng("dropout")
        rows_B = jnp.arange(x_Bx.shape[0]) if example_ids_B is None else example_ids_B
        return x_Bx + self.std * _row_normals(key, x_Bx.shape, rows_B).astype(x_Bx.dtype)


def _constant(value_F):
    """A flax initialiser returning a value computed beforehand (data-dependent init)."""
    return lambda *_: value_F


class WeightNormDense(nn.Module):
    """A dense layer with weight normalisation (Salimans & Kingma 2016, eq. 2): y = g * (x v) /
    ||v|| + b, each output unit's weight vector v_j divided by its L2 norm, times a scale g_j.

    As the authors' `nn.DenseLayer` (D, v ~ N(0, 0.1), g = 1 held fixed in the hidden layers,
    `train_scale=False`) and `nn.l2normalize` (G's output layer, trainable g, epsilon 1e-6 inside
    the square root) in openai/improved-gan mnist_svhn_cifar10/nn.py. A g that is not trained
    gets a zero gradient (stop_gradient), so Adam leaves it where it was initialised.

    `data_init`: the authors' data-dependent initialisation (Salimans & Kingma 2016, Sec. 2.2):
    when the module is *initialised* (`init`) on a batch x, g = 1 / std(x v / ||v||) and
    b = -mean / std per unit, so that the initial pre-activations of that batch have mean 0 and
    std 1 (the authors use 500 training images). It needs a real batch of >= 2 rows at `init`
    (a batch of zeros would give std 0 and infinite g); without it g = 1 and b = 0. Shapes:
    x_BxA (more dims are flattened) -> y_BxF. Raises ValueError for features < 1, or for
    `data_init` on fewer than 2 rows.
    """

    features: int
    train_scale: bool = True
    data_init: bool = False
    epsilon: float = 0.0
    kernel_init: Callable = nn.initializers.normal(0.1)

    @nn.compact
    def __call__(self, x_BxA):
        _check_positive_int("WeightNormDense", "features", self.features)
        if self.data_init and self.is_initializing() and x_BxA.shape[0] < 2:
            raise ValueError(
                f"WeightNormDense with data_init needs a batch of >= 2 rows at init to take a"
                f" std over; got {x_BxA.shape[0]}"
            )
        x_BxA = x_BxA.reshape(x_BxA.shape[0], -1)
        v_AxF = self.param("kernel", self.kernel_init, (x_BxA.shape[1], self.features))
        direction_AxF = v_AxF / jnp.sqrt(self.epsilon + jnp.sum(v_AxF**2, axis=0))
        pre_BxF = x_BxA @ direction_AxF
        scale_init, bias_init = nn.initializers.ones, nn.initializers.zeros
        if self.data_init and self.is_initializing():
            mean_F = jnp.mean(pre_BxF, axis=0)
            std_F = jnp.sqrt(jnp.mean((pre_BxF - mean_F) ** 2, axis=0))
            scale_init, bias_init = _constant(1.0 / std_F), _constant(-mean_F / std_F)
        g_F = self.param("scale", scale_init, (self.features,))
        b_F = self.param("bias", bias_init, (self.features,))
        if not self.train_scale:
            g_F = jax.lax.stop_gradient(g_F)
        return pre_BxF * g_F + b_F


MINIBATCH_PARAMETRISATIONS = ("paper", "authors")  # MinibatchDiscrimination's T


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, Sec. 3.2): features f_BxA ->
    concat(f, o)_Bx(A+num_kernels).

    M_i = f(x_i) T with T an A x B x C tensor (B = num_kernels, C = kernel_dim), c_b(x_i, x_j) =
    exp(-||M_i,b - M_j,b||_L1) and o(x_i)_b = sum_j c_b(x_i, x_j). The sum leaves out j = i, as
    the authors' `nn.MinibatchLayer` does (it adds 1e6 to the diagonal's distances): that term
    is exp(0) = 1 for every row whatever the input, so it carries no information and would only
    shift o by one; without it o counts how close the *other* rows are. T starts as N(0, 0.05),
    the authors' init of its direction.

    `parametrisation`: 'paper' learns T itself, as above. 'authors' is the authors' layer
    (openai/improved-gan mnist_svhn_cifar10/nn.py `MinibatchLayer`): T = theta * exp(s) /
    ||theta||, each kernel row (b, c) of theta normalised over the A inputs and scaled by a
    learned log-scale s_BxC (init 0), and o(x_i)_b + bias_b with a learned bias (init -1).
    With `data_init` (which needs 'authors'), the module's `init` on a real batch sets them from
    it, as the authors' init pass: s_b = -log(m_b), m_b half the batch mean of each row's
    smallest L1 distance to another row under kernel b, and bias_b = -(batch mean of o_b), so
    the initial o + bias has zero batch mean.

    With `axis_name` (pmap, or a mapped axis), j runs over the global batch: M of every device
    is gathered (`jax.lax.all_gather`), so a sharded batch gives the outputs of the whole batch
    on one device; gradients reach the gathered rows' owners through the gather's transpose.
    Inputs with more than 2 dims are flattened. Raises ValueError for num_kernels or kernel_dim
    < 1, an input with fewer than 2 dims, an unknown parametrisation, or `data_init` with
    'paper' or at init on fewer than 2 rows.
    """

    num_kernels: int
    kernel_dim: int = 5
    axis_name: str | None = None
    kernel_init: Callable = nn.initializers.normal(0.05)
    parametrisation: str = "paper"
    data_init: bool = False

    @nn.compact
    def __call__(self, f_BxA):
        _check_positive_int("MinibatchDiscrimination", "num_kernels", self.num_kernels)
        _check_positive_int("MinibatchDiscrimination", "kernel_dim", self.kernel_dim)
        if f_BxA.ndim < 2:
            raise ValueError(
                f"MinibatchDiscrimination needs features of shape [B, ...]; got {f_BxA.shape}"
            )
        if self.parametrisation not in MINIBATCH_PARAMETRISATIONS:
            raise ValueError(
                f"MinibatchDiscrimination: parametrisation = {self.parametrisation!r} is not"
                f" allowed; expected one of {MINIBATCH_PARAMETRISATIONS}"
            )
        initialising = self.data_init and self.is_initializing()
        if self.data_init and self.parametrisation != "authors":
            raise ValueError(
                "MinibatchDiscrimination: data_init needs parametrisation='authors'; got"
                f" {self.parametrisation!r}"
            )
        if initialising and f_BxA.shape[0] < 2:  # later calls may see any batch
            raise ValueError(
                "MinibatchDiscrimination: data_init needs a batch of >= 2 rows at init; got"
                f" {f_BxA.shape[0]}"
            )
        f_BxA = f_BxA.reshape(f_BxA.shape[0], -1)
        shape = (f_BxA.shape[1], self.num_kernels, self.kernel_dim)
        t_AxBxC = self.param("kernel", self.kernel_init, shape)
        if self.parametrisation == "authors":
            direction_AxBxC = t_AxBxC / jnp.sqrt(jnp.sum(t_AxBxC**2, axis=0))
            scale_init = nn.initializers.zeros
            if initialising:  # the distances at s = 0 set s
                l1_NxGxB, is_self_NxG = self._l1_distances(f_BxA, direction_AxBxC)
                masked = jnp.where(is_self_NxG[..., None], jnp.inf, l1_NxGxB)
                half_mean_B = 0.5 * jnp.mean(jnp.min(masked, axis=1), axis=0)
                scale_init = _constant(jnp.broadcast_to(-jnp.log(half_mean_B)[:, None], shape[1:]))
            log_scale_BxC = self.param("log_scale", scale_init, shape[1:])
            t_AxBxC = direction_AxBxC * jnp.exp(log_scale_BxC)
        l1_NxGxB, is_self_NxG = self._l1_distances(f_BxA, t_AxBxC)
        o_NxB = jnp.sum(jnp.where(is_self_NxG[..., None], 0.0, jnp.exp(-l1_NxGxB)), axis=1)
        if self.parametrisation == "authors":
            bias_init = nn.initializers.constant(-1.0)
            if initialising:
                bias_init = _constant(-jnp.mean(o_NxB, axis=0))
            o_NxB = o_NxB + self.param("bias", bias_init, shape[1:2])
        return jnp.concatenate([f_BxA, o_NxB], axis=-1)

    def _l1_distances(self, f_NxA, t_AxBxC):
        """(||M_i,b - M_j,b||_L1 [N, G, B] for the N local rows against all G rows of the batch,
        the mask [N, G] of each row's own column)."""
        m_NxBxC = jnp.einsum("na,abc->nbc", f_NxA, t_AxBxC)
        local = m_NxBxC.shape[0]
        if self.axis_name is None:
            all_m_GxBxC, offset = m_NxBxC, 0
        else:
            all_m_GxBxC = jax.lax.all_gather(m_NxBxC, self.axis_name, tiled=True)
            offset = jax.lax.axis_index(self.axis_name) * local
        l1_NxGxB = jnp.sum(jnp.abs(m_NxBxC[:, None] - all_m_GxBxC[None]), axis=-1)
        is_self_NxG = (offset + jnp.arange(local))[:, None] == jnp.arange(all_m_GxBxC.shape[0])
        return l1_NxGxB, is_self_NxG


def _vbn_scale_init(key, shape, dtype=jnp.float32):
    """N(1, 0.02), the authors' gamma init (openai/improved-gan imagenet/model.py `VBN`)."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalisation (Salimans et al. 2016, Sec. 3.5), as the authors'
    openai/improved-gan imagenet/model.py `VBN`.

    Called on x_Bx...xC whose first `reference_size` R rows are the reference batch. Statistics
    are per feature (the last axis), taken over rows and, for [B, H, W, C], over positions. The
    reference rows are normalised with the reference statistics (mean mu_ref and mean of squares
    s_ref over the R rows); every other row x with mu = mu_x / (R + 1) + R mu_ref / (R + 1) (and
    the same for s), mu_x being x's own mean over its positions (x itself on [B, F]), so each
    row's output depends on the reference batch and that row alone. Then
    (x - mu) / sqrt(s - mu^2 + epsilon) * gamma + beta, gamma ~ N(1, 0.02) and beta = 0 learned
    (the authors' init). Gradients flow through the reference statistics, as in the authors'
    code, where the reference batch goes through the current net on every step. There are no
    running averages: training and inference normalise alike. Shapes: x_Bx...xC -> the same.
    Raises ValueError unless 1 <= R <= B and x has >= 2 dims.
    """

    reference_size: int
    epsilon: float = 1e-5
    scale_init: Callable = _vbn_scale_init
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x_BxC):
        _check_positive_int("VirtualBatchNorm", "reference_size", self.reference_size)
        if x_BxC.ndim < 2 or x_BxC.shape[0] < self.reference_size:
            raise ValueError(
                f"VirtualBatchNorm with reference_size {self.reference_size} needs an input"
                f" [B, ..., C] with B >= {self.reference_size} (reference rows first); got"
                f" {x_BxC.shape}"
            )
        r = self.reference_size
        positions = tuple(range(1, x_BxC.ndim - 1))
        own_mean_BxC = jnp.mean(x_BxC, axis=positions)
        own_sq_BxC = jnp.mean(x_BxC**2, axis=positions)
        # Every row has as many positions, so the reference's mean over rows and positions is
        # the mean of its rows' own means.
        ref_mean_C, ref_sq_C = jnp.mean(own_mean_BxC[:r], 0), jnp.mean(own_sq_BxC[:r], 0)
        is_ref_Bx1 = (jnp.arange(x_BxC.shape[0]) < r)[:, None]
        new = 1.0 / (r + 1.0)
        mean_BxC = jnp.where(is_ref_Bx1, ref_mean_C, new * own_mean_BxC + (1 - new) * ref_mean_C)
        sq_BxC = jnp.where(is_ref_Bx1, ref_sq_C, new * own_sq_BxC + (1 - new) * ref_sq_C)
        var_BxC = jnp.maximum(sq_BxC - mean_BxC**2, 0.0)  # rounding can take it below 0
        inv_std_BxC = jax.lax.rsqrt(var_BxC + self.epsilon)
        expand = (slice(None), *([None] * len(positions)), slice(None))
        y = (x_BxC - mean_BxC[expand]) * inv_std_BxC[expand]
        features = x_BxC.shape[-1]
        gamma_C = self.param("scale", self.scale_init, (features,))
        beta_C = self.param("bias", self.bias_init, (features,))
        return y * gamma_C + beta_C
