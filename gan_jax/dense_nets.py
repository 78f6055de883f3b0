"""Fully connected Gs and Ds: the maxout nets of Goodfellow et al. 2014, the MLPs of the toy and
Keras-style experiments, and the semi-supervised MNIST nets of Salimans et al. 2016. How every
G and D is called: `models`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn

from gan_jax import layers
from gan_jax.layers import RowDropout
from gan_jax.net_parts import (
    GLOROT_UNIFORM,
    OUTPUT_ACTIVATIONS,
    normalised,
    output_head,
    sow_features,
    uniform_init,
    with_vbn_reference,
)


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
    kernel dim `minibatch_kernel_dim`, T parametrised as `minibatch_parametrisation` says:
    'paper' or 'authors') between the last hidden layer and the output layer, as the authors'
    models place it; its T is not spectrally normalised, and its sum over rows runs over the
    global batch under pmap (`axis_name`). Raises ValueError for a negative number of kernels.
    """

    hidden: Sequence[int] = (512, 256)
    spectral_norm: bool = False
    aux_classes: int = 0
    num_classes: int = 0
    minibatch_discrimination: int = 0
    minibatch_kernel_dim: int = 5
    minibatch_parametrisation: str = "paper"  # layers.MINIBATCH_PARAMETRISATIONS
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
                self.minibatch_discrimination,
                self.minibatch_kernel_dim,
                self.axis_name,
                parametrisation=self.minibatch_parametrisation,
            )(h)
        outputs = self.num_classes or 1 + self.aux_classes
        out = normalised(nn.Dense(outputs), h, self.spectral_norm, train)
        return output_head(out, self.aux_classes, self.num_classes)


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
    runs over the global batch under pmap (`axis_name`). `minibatch_parametrisation='authors'`
    is their layer's T (weight-normalised, a learned log-scale and a bias per kernel), set from
    data at init along with the rest of the net when `data_init`.
    """

    hidden: Sequence[int] = (1000, 500, 250, 250, 250)
    input_noise: float = 0.3
    hidden_noise: float = 0.5
    num_classes: int = 10
    minibatch_discrimination: int = 0
    minibatch_kernel_dim: int = 5
    minibatch_parametrisation: str = "paper"  # layers.MINIBATCH_PARAMETRISATIONS
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
            authors = self.minibatch_parametrisation == "authors"
            h = layers.MinibatchDiscrimination(
                self.minibatch_discrimination,
                self.minibatch_kernel_dim,
                self.axis_name,
                parametrisation=self.minibatch_parametrisation,
                data_init=self.data_init and authors,
            )(h)
        out = layers.WeightNormDense(max(self.num_classes, 1), data_init=self.data_init)(h)
        return output_head(out, 0, self.num_classes)
