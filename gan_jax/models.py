"""Generator and discriminator networks (Flax linen). D returns logits; G returns samples.

Every G is called as `G(z_BxZ, train=...)` and returns x_Bx<data shape>; every D is called as
`D(x_Bx..., train=...)` and returns logits_B: D's raw outputs, a sigmoid's input for the
sigmoid losses and the value itself for LSGAN, WGAN and hinge. A PatchGAN D returns logits_BxPxP,
and an AC-GAN D returns (logits_B, class_logits_BxK), as does a semi-supervised D (K+1 classes,
Salimans et al. 2016), whose logits_B are the logsumexp of its K class logits. Every D sows its
hidden layers' outputs, in order, as 'intermediates'/'features' (feature matching). Conditional nets
(`ConditionalGenerator`, `ConditionalDiscriminator`) take the class labels y_B as a second
argument. Dropout draws from the 'dropout' RNG stream; batch statistics live in 'batch_stats'
and spectral-norm power iterates in 'spectral', both updated only when called with `train=True`
and made mutable.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax import layers, text_nets
from gan_jax.layers import RowDropout

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
        raise ValueError("this discriminator sows no hidden features (see models.sow_features)")
    return found


def _find_features(tree) -> tuple:
    if "features" in tree:
        return tuple(tree["features"])
    for sub in tree.values():
        if isinstance(sub, Mapping) and (found := _find_features(sub)):
            return found
    return ()


def leaky_relu(x):
    return nn.leaky_relu(x, negative_slope=0.2)  # Radford et al. 2016, Sec. 3: slope 0.2 in D


DCGAN_INIT = nn.initializers.normal(0.02)  # Radford et al. 2016, Sec. 4: N(0, 0.02)


def upsampling_plan(size: int) -> tuple[int, int]:
    """(start, n) with start * 2**n == size, halving while the result stays >= 4: 28 -> (7, 2),
    32 -> (4, 3), 64 -> (4, 4). Conv nets grow from / shrink to start x start."""
    start, n = size, 0
    while start % 2 == 0 and start // 2 >= 4:
        start, n = start // 2, n + 1
    if n == 0:
        raise ValueError(f"image size {size} is not 2**n times a size >= 4 (n >= 1)")
    return start, n


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


# ----------------------------------------------------------------------------- 2014 and MLPs


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
        return layers.max_over_pieces(h.reshape(x_BxN.shape[0], self.units, self.pieces))


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

    Dropout keeps inputs with probability 0.8 and hidden units with 0.5, as in mnist.yaml. Its
    masks are addressed by `example_ids` (rows of the global batch), so they do not depend on
    how the batch is split across devices (see layers.RowDropout).
    """

    units: int = 240
    pieces: int = 5
    init_scale: float = 0.005
    input_keep: float = 0.8
    hidden_keep: float = 0.5

    @nn.compact
    def __call__(self, x, train: bool = True, example_ids=None):
        h = x.reshape(x.shape[0], -1)
        h = RowDropout(1.0 - self.input_keep)(h, not train, example_ids)
        h = sow_features(self, Maxout(self.units, self.pieces, self.init_scale)(h))
        h = RowDropout(1.0 - self.hidden_keep)(h, not train, example_ids)
        h = sow_features(self, Maxout(self.units, self.pieces, self.init_scale)(h))
        h = RowDropout(1.0 - self.hidden_keep)(h, not train, example_ids)
        return nn.Dense(1, kernel_init=uniform_init(self.init_scale))(h)[:, 0]


MLP_GENERATOR_NORMS = ("none", "vbn")


class MLPGenerator(nn.Module):
    """Plain MLP G; the defaults are the Keras tutorial's 100 -> 256 -> 512 -> 1024 -> 784 tanh.

    `norm='vbn'` puts virtual batch norm (Salimans et al. 2016, Sec. 3.5; layers.
    VirtualBatchNorm) after each hidden dense layer, before its ReLU (the dense layers then have
    no bias, which the normalisation would remove): as DCGANGenerator's 'vbn', the net runs on
    concat(z_ref, z) with z_ref (`vbn_reference_size` rows from `vbn_reference_z`) fixed at
    init in the 'vbn_reference' collection (`with_vbn_reference`), so row i of G(z) depends on
    z_i and z_ref alone. Raises ValueError for a norm other than MLP_GENERATOR_NORMS.
    """

    output_shape: Sequence[int] = (28, 28, 1)
    hidden: Sequence[int] = (256, 512, 1024)
    output_activation: str = "tanh"  # 'tanh', 'sigmoid' or 'linear'
    norm: str = "none"  # 'none' or 'vbn'
    vbn_reference_size: int = 64
    vbn_reference_z: str = "uniform"

    @nn.compact
    def __call__(self, z_BxZ, train: bool = True):
        if self.norm not in MLP_GENERATOR_NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; allowed: {MLP_GENERATOR_NORMS}")
        vbn = self.norm == "vbn"
        h = z_BxZ
        if vbn:
            h = with_vbn_reference(self, z_BxZ, self.vbn_reference_size, self.vbn_reference_z)
        for width in self.hidden:
            h = nn.Dense(width, use_bias=not vbn)(h)
            h = nn.relu(layers.VirtualBatchNorm(self.vbn_reference_size)(h) if vbn else h)
        out = nn.Dense(math.prod(self.output_shape))(h)
        out = OUTPUT_ACTIVATIONS[self.output_activation](out)
        out = out[self.vbn_reference_size :] if vbn else out
        return out.reshape((-1, *self.output_shape))


class MLPDiscriminator(nn.Module):
    """Plain MLP D; with the defaults, the Keras tutorial's 784 -> 512 -> 256 -> 1 logit.

    `spectral_norm` normalises every layer (Miyato et al. 2018); `aux_classes` = K > 0 adds K
    class logits for AC-GAN (Odena et al. 2017); `num_classes` = K > 0 makes it the K+1-class D
    of semi-supervised learning (`semi_supervised_head`). `minibatch_discrimination` = number of
    kernels (0: off) inserts layers.MinibatchDiscrimination (Salimans et al. 2016, Sec. 3.2;
    kernel dim `minibatch_kernel_dim`) between the last hidden layer and the output layer, as
    the authors' models place it; its T is not spectrally normalised, and its sum over rows runs
    over the global batch under pmap (`axis_name`). Raises ValueError for a negative number of
    kernels.
    """

    hidden: Sequence[int] = (512, 256)
    spectral_norm: bool = False
    aux_classes: int = 0
    num_classes: int = 0
    minibatch_discrimination: int = 0
    minibatch_kernel_dim: int = 5
    axis_name: str | None = None  # the pmap axis minibatch discrimination sums over

    @nn.compact
    def __call__(self, x, train: bool = True):
        if self.minibatch_discrimination < 0:
            raise ValueError(
                f"minibatch_discrimination = {self.minibatch_discrimination}: must be >= 0"
                " (the number of kernels; 0: off)"
            )
        h = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            h = sow_features(
                self, nn.relu(normalised(nn.Dense(width), h, self.spectral_norm, train))
            )
        if self.minibatch_discrimination:
            h = layers.MinibatchDiscrimination(
                self.minibatch_discrimination, self.minibatch_kernel_dim, self.axis_name
            )(h)
        outputs = self.num_classes or 1 + self.aux_classes
        out = normalised(nn.Dense(outputs), h, self.spectral_norm, train)
        return output_head(out, self.aux_classes, self.num_classes)


# ----------------------------------------------------------------------------- DCGAN


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


# ----------------------------------------------------------------------------- conditioning


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


GENERATORS = {"gan2014": Gan2014Generator, "mlp": MLPGenerator, "dcgan": DCGANGenerator}
# Generators whose sigmoid layer named 'output' can take its bias from the data's marginals.
OUTPUT_BIAS_GENERATORS = ("gan2014",)
# The last activation of generators that have no `output_activation` option.
FIXED_OUTPUT_ACTIVATIONS = {"gan2014": "sigmoid"}
DISCRIMINATORS = {
    "gan2014": Gan2014Discriminator,
    "mlp": MLPDiscriminator,
    "dcgan": DCGANDiscriminator,
    "patch": PatchDiscriminator,
}
CONV_NETS = ("dcgan", "patch")  # nets that need image data [H, W, C]
SPECTRAL_NORM_DISCRIMINATORS = ("mlp", "dcgan", "patch")
AUX_DISCRIMINATORS = ("mlp", "dcgan")  # those with an AC-GAN class head
CONDITIONING = ("none", "concat", "acgan")
# G's latent distribution: uniform on [-1, 1] (Goodfellow et al. 2014) or standard normal.
Z_DISTRIBUTIONS = ("uniform", "normal")


def _accepts(module_cls, field: str) -> bool:
    return field in module_cls.__dataclass_fields__


def net_options(module_cls) -> list[str]:
    """The keyword options a config's `*_kwargs` may set for a net (not the ones the config
    sets through other keys)."""
    set_elsewhere = {"output_shape", "axis_name", "spectral_norm", "aux_classes", "parent", "name"}
    return sorted(set(module_cls.__dataclass_fields__) - set_elsewhere)


def _with_axis(module_cls, kwargs: dict, axis_name: str | None) -> dict:
    """The kwargs plus the pmap axis for nets with batch norm (the others do not take one)."""
    return {**kwargs, "axis_name": axis_name} if _accepts(module_cls, "axis_name") else kwargs


def make_generator(model_config, data_shape, axis_name: str | None = None) -> nn.Module:
    """The generator a config names, producing samples of `data_shape`; G(z, y) when the config
    conditions on labels ('concat' or 'acgan'). `axis_name` is the pmap axis for batch norm."""
    name = model_config.generator
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; allowed: {sorted(GENERATORS)}")
    kwargs = _with_axis(GENERATORS[name], dict(model_config.get("generator_kwargs", {})), axis_name)
    generator = GENERATORS[name](output_shape=tuple(data_shape), **kwargs)
    if model_config.get("conditioning", "none") == "none":
        return generator
    return ConditionalGenerator(generator, model_config.num_classes)


def make_discriminator(model_config, axis_name: str | None = None) -> nn.Module:
    """The discriminator a config names: D(x, y) for 'concat' conditioning, an extra K class
    logits for 'acgan', spectrally normalised when `model.spectral_norm`."""
    name = model_config.discriminator
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}; allowed: {sorted(DISCRIMINATORS)}")
    cls = DISCRIMINATORS[name]
    kwargs = _with_axis(cls, dict(model_config.get("discriminator_kwargs", {})), axis_name)
    conditioning = model_config.get("conditioning", "none")
    if model_config.get("spectral_norm", False):
        if not _accepts(cls, "spectral_norm"):
            raise ValueError(f"discriminator {name!r} has no spectral-norm option")
        kwargs["spectral_norm"] = True
    if conditioning == "acgan":
        if not _accepts(cls, "aux_classes"):
            raise ValueError(f"discriminator {name!r} has no AC-GAN class head")
        kwargs["aux_classes"] = model_config.num_classes
    discriminator = cls(**kwargs)
    if conditioning == "concat":
        return ConditionalDiscriminator(
            discriminator, model_config.num_classes, labels_as_channels=name in CONV_NETS
        )
    return discriminator


def sigmoid_bias_from_marginals(x_Nx, eps: float = 1e-3) -> jax.Array:
    """Inverse sigmoid of the mean pixel, so an untrained sigmoid G outputs the data's marginals
    (pylearn2's init_sigmoid_bias_from_marginals)."""
    mean = jnp.clip(jnp.mean(x_Nx.reshape(x_Nx.shape[0], -1), axis=0), eps, 1.0 - eps)
    return jnp.log(mean) - jnp.log1p(-mean)


def with_output_bias(g_params, bias):
    """G params with the output layer's bias replaced: the layer named 'output', at the top or
    inside a wrapper (e.g. a conditional G's inner net)."""
    if "output" in g_params:
        output = dict(g_params["output"], bias=jnp.asarray(bias, jnp.float32))
        return dict(g_params, output=output)
    for name, sub in g_params.items():
        if isinstance(sub, dict) and _has_output_layer(sub):
            return dict(g_params, **{name: with_output_bias(sub, bias)})
    raise ValueError(f"generator has no layer named 'output'; layers: {sorted(g_params)}")


def _has_output_layer(params) -> bool:
    return "output" in params or any(
        isinstance(sub, dict) and _has_output_layer(sub) for sub in params.values()
    )


def takes_example_ids(apply_fn) -> bool:
    """Whether a module's `apply` accepts `example_ids` (nets whose randomness is per row),
    looking through the conditional wrapper to the D it wraps."""
    return _module_takes_example_ids(getattr(apply_fn, "__self__", None))


def _module_takes_example_ids(module) -> bool:
    if isinstance(module, ConditionalDiscriminator):
        return _module_takes_example_ids(module.discriminator)
    return module is not None and "example_ids" in inspect.signature(module.__call__).parameters


def rows_independent(apply_fn) -> bool:
    """Whether a D's training-mode output on each row depends on that row alone, so that real
    and fake rows may share one call. Only nets known to be per-row say yes: a net with a
    batch-coupled layer (batch norm, minibatch discrimination), or one not listed here, says no."""
    module = getattr(apply_fn, "__self__", None)
    if isinstance(module, ConditionalDiscriminator):
        module = module.discriminator
    if isinstance(module, Gan2014Discriminator | text_nets.TextDiscriminator):
        return True
    if isinstance(module, MLPDiscriminator | ImprovedGANMNISTDiscriminator):
        return not module.minibatch_discrimination
    if isinstance(module, DCGANDiscriminator | PatchDiscriminator):
        return not module.use_batch_norm
    if isinstance(module, ResNetDiscriminator):
        return True
    return False


# ----------------------------------------------------------------------------- Salimans et al. 2016

# Lasagne's DenseLayer default, the authors' G layers without weight normalisation of their own.
GLOROT_UNIFORM = nn.initializers.glorot_uniform()


class ImprovedGANMNISTGenerator(nn.Module):
    """The authors' semi-supervised MNIST G (Salimans et al. 2016, Sec. 5.1; openai/improved-gan
    mnist_svhn_cifar10/train_mnist_feature_matching.py): z_100 -> 500 -> 500 -> 784 sigmoid.

    Each hidden layer is a bias-free dense layer, batch norm with an offset and no scale
    (epsilon 1e-6, the authors' `nn.batch_norm(..., g=None)`), then softplus; the output layer is
    weight-normalised (`layers.WeightNormDense`, trainable scale, the authors' `nn.l2normalize`).
    Kernels start Glorot-uniform, Lasagne's default. The authors draw z ~ U[0, 1]^100; batch
    norm after the first (bias-free) layer removes z's offset and scale, so U[-1, 1] trains the
    same net. Batch statistics live in 'batch_stats' (running averages for `train=False`; the
    authors always sample with batch statistics). `axis_name` averages them over pmap devices.
    """

    output_shape: Sequence[int] = (28, 28, 1)
    hidden: Sequence[int] = (500, 500)
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z_BxZ, train: bool = True):
        h = z_BxZ
        for width in self.hidden:
            h = nn.Dense(width, use_bias=False, kernel_init=GLOROT_UNIFORM)(h)
            h = nn.BatchNorm(
                use_running_average=not train,
                momentum=self.bn_momentum,
                epsilon=1e-6,
                use_scale=False,
                axis_name=self.axis_name,
            )(h)
            h = nn.softplus(h)
        out = layers.WeightNormDense(
            math.prod(self.output_shape), epsilon=1e-6, kernel_init=GLOROT_UNIFORM, name="output"
        )(h)
        return nn.sigmoid(out).reshape((-1, *self.output_shape))


class ImprovedGANMNISTDiscriminator(nn.Module):
    """The authors' semi-supervised MNIST D (Salimans et al. 2016, Sec. 5.1; openai/improved-gan
    mnist_svhn_cifar10/train_mnist_feature_matching.py): Gaussian noise (std 0.3) on the input,
    then 1000-500-250-250-250 weight-normalised ReLU layers, each followed by noise (std 0.5),
    then a weight-normalised linear layer of K = `num_classes` class logits.

    The hidden layers' weight-norm scale is fixed and the output layer's trained, weights start
    N(0, 0.1) (the authors' `nn.DenseLayer`); `data_init` is their data-dependent init (see
    `layers.WeightNormDense`: `init` must then see a real batch; they use 500 training images).
    Noise is active only when `train`, drawn from the 'dropout' RNG stream per example id (see
    `layers.GaussianNoise`).

    Outputs: with K > 0, (logsumexp(l)_B, l_BxK): the (K+1)-class D whose fake class has its
    logit fixed at 0 (Sec. 5), so with Z(x) = sum_k exp(l_k(x)), D(x) = Z / (Z + 1) =
    sigmoid(logsumexp(l)) and the sigmoid losses apply to the first output as they are. K = 0
    gives a plain logit_B. Each hidden layer's output (after ReLU, before noise) is sown in
    order as 'intermediates'/'features', so `features[-1]` is the last hidden layer, the one the
    authors' feature matching uses (`layers[-3]`).

    `minibatch_discrimination` = number of kernels (0: off) inserts `layers.
    MinibatchDiscrimination` (kernel dim `minibatch_kernel_dim`, 5 as the authors') just before
    the output layer, where the authors' minibatch-discrimination models put it (train_cifar_
    and train_svhn_minibatch_discrimination.py; their repository has no MNIST one). Its sum
    runs over the global batch under pmap (`axis_name`).
    """

    hidden: Sequence[int] = (1000, 500, 250, 250, 250)
    input_noise: float = 0.3
    hidden_noise: float = 0.5
    num_classes: int = 10
    minibatch_discrimination: int = 0
    minibatch_kernel_dim: int = 5
    data_init: bool = False
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True, example_ids=None):
        if self.num_classes < 0 or self.minibatch_discrimination < 0:
            raise ValueError(
                f"num_classes = {self.num_classes}, minibatch_discrimination ="
                f" {self.minibatch_discrimination}: both must be >= 0"
            )
        h = x.reshape(x.shape[0], -1)
        h = layers.GaussianNoise(self.input_noise)(h, not train, example_ids)
        for width in self.hidden:
            dense = layers.WeightNormDense(width, train_scale=False, data_init=self.data_init)
            h = sow_features(self, nn.relu(dense(h)))
            h = layers.GaussianNoise(self.hidden_noise)(h, not train, example_ids)
        if self.minibatch_discrimination:
            h = layers.MinibatchDiscrimination(
                self.minibatch_discrimination, self.minibatch_kernel_dim, self.axis_name
            )(h)
        out = layers.WeightNormDense(max(self.num_classes, 1), data_init=self.data_init)(h)
        return output_head(out, 0, self.num_classes)


GENERATORS["improved_gan_mnist"] = ImprovedGANMNISTGenerator
FIXED_OUTPUT_ACTIVATIONS["improved_gan_mnist"] = "sigmoid"
DISCRIMINATORS["improved_gan_mnist"] = ImprovedGANMNISTDiscriminator


# ----------------------------------------------------------------------------- ResNet GANs

# The residual convs of both papers' code start U[-a, a] with variance 4 / (fan_in + fan_out):
# tflib's Conv2D with he_init (igul222/improved_wgan_training) and chainer's GlorotUniform(sqrt 2)
# (pfnet-research/sngan_projection). Shortcut convs, dense layers and G's last conv start
# Glorot-uniform (sngan_projection; tflib starts its dense layers LeCun-uniform).
RESNET_INIT = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")
GLOROT_INIT = nn.initializers.glorot_uniform()
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
        shortcut = same_conv(self.features, 1, GLOROT_INIT, "shortcut")(x_BxHxWxC)
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
            shortcut = conv(pool(x_BxHxWxC), self.features, 1, GLOROT_INIT, "shortcut")
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
        h = nn.Dense(start * start * features, kernel_init=GLOROT_INIT)(z_BxZ)
        h = h.reshape(z_BxZ.shape[0], start, start, features)
        for _ in range(n):
            h = ResBlockUp(features, bn, self.bn_momentum, self.axis_name)(h, train)
        if bn:
            h = batch_norm(train, self.bn_momentum, self.axis_name)(h)
        h = same_conv(channels, 3, GLOROT_INIT)(nn.relu(h))
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
            kernel_init=GLOROT_INIT,
        )
        out = normalised(dense, h, self.spectral_norm, train)
        return output_head(out, self.aux_classes, self.num_classes)


GENERATORS["resnet"] = ResNetGenerator
DISCRIMINATORS["resnet"] = ResNetDiscriminator
CONV_NETS = (*CONV_NETS, "resnet")
SPECTRAL_NORM_DISCRIMINATORS = (*SPECTRAL_NORM_DISCRIMINATORS, "resnet")
AUX_DISCRIMINATORS = (*AUX_DISCRIMINATORS, "resnet")

# The WGAN-GP language model's nets (Gulrajani et al. 2017, Sec. 5.2) for one-hot text [L, V].
GENERATORS["text_resnet"] = text_nets.TextGenerator
FIXED_OUTPUT_ACTIVATIONS["text_resnet"] = "softmax"
DISCRIMINATORS["text_resnet"] = text_nets.TextDiscriminator
TEXT_GENERATORS = ("text_resnet",)  # a softmax over the vocabulary at each position
TEXT_DISCRIMINATORS = ("text_resnet", "mlp")  # nets that read sequences [L, V]
TEXT_ONLY_NETS = ("text_resnet",)  # nets that fit text alone
