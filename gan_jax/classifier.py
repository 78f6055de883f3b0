"""A small CNN whose predictions and penultimate features feed the evaluation metrics.

The network takes images [B, H, W, C] with pixels in [0, 1] (MNIST's [B, 28, 28, 1] by
default; H and W multiples of 4) and has as many class logits as its last layer's bias has
entries, so one set of functions serves MNIST and any labelled image set. The batched helpers
(`classify`, `features`, `logits_and_features`) take an explicit `value_range` so that
generator outputs in [-1, 1] or raw uint8 pixels are mapped to [0, 1] in one visible place.

Committed MNIST weights live in `gan_jax/assets/mnist_classifier.msgpack`; they are written by
`experiments/mnist_classifier.py`. Other datasets' classifiers are trained by
`experiments/train_classifier.py` (see `gan_jax.dataset_classifier`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

WEIGHTS_PATH = Path(__file__).resolve().parent / "assets" / "mnist_classifier.msgpack"
VALUE_RANGES = ("unit", "symmetric", "uint8")  # [0, 1], [-1, 1], [0, 255]
NUM_CLASSES = 10
FEATURE_DIM = 128
MNIST_SHAPE = (28, 28, 1)


def max_pool_2x2(x_BxHxWxC):
    """2x2 max pooling, stride 2, written with jnp.maximum.

    Same values as nn.max_pool; its gradient is elementwise selects, where the select-and-scatter
    of nn.max_pool's gradient is ~15x slower on XLA:CPU. Tied maxima share the gradient.
    """
    b, h, w, c = x_BxHxWxC.shape
    x = x_BxHxWxC.reshape(b, h // 2, 2, w // 2, 2, c)
    top = jnp.maximum(x[:, :, 0, :, 0], x[:, :, 0, :, 1])
    return jnp.maximum(top, jnp.maximum(x[:, :, 1, :, 0], x[:, :, 1, :, 1]))


class MnistCNN(nn.Module):
    """conv32-pool-conv64-pool-dense128-dense K (3x3 'SAME' convs); returns logits and features.

    (logits_BxK, feats_Bx128), K = `num_classes`; the features are the ReLU activations of the
    128-unit layer, taken before dropout.
    """

    dropout: float = 0.25
    num_classes: int = NUM_CLASSES

    @nn.compact
    def __call__(self, x_BxHxWxC, train: bool = False):
        h = max_pool_2x2(nn.relu(nn.Conv(32, (3, 3))(x_BxHxWxC)))
        h = max_pool_2x2(nn.relu(nn.Conv(64, (3, 3))(h)))
        feats_BxF = nn.relu(nn.Dense(FEATURE_DIM)(h.reshape(h.shape[0], -1)))
        h = nn.Dropout(self.dropout, deterministic=not train)(feats_BxF)
        return nn.Dense(self.num_classes)(h), feats_BxF


MODEL = MnistCNN()


@functools.cache
def model_for(num_classes: int) -> MnistCNN:
    """The classifier net for `num_classes` outputs (the shipped MNIST model's for 10)."""
    return MODEL if num_classes == NUM_CLASSES else MnistCNN(num_classes=num_classes)


def num_classes_of(params) -> int:
    """K, the class logits of a `MnistCNN`'s params (a static shape under jit)."""
    return params["Dense_1"]["bias"].shape[0]


@functools.partial(jax.jit, static_argnames=("shape", "num_classes"))
def _init(key, shape=MNIST_SHAPE, num_classes=NUM_CLASSES):
    return model_for(num_classes).init(key, jnp.zeros((1, *shape)))["params"]


def init_params(seed: int = 0, shape=MNIST_SHAPE, num_classes: int = NUM_CLASSES):
    """Freshly initialised `MnistCNN` params for images of `shape` [H, W, C] and K classes."""
    return _init(jax.random.PRNGKey(seed), tuple(shape), num_classes)


def as_images(x):
    """x [N, H, W, C] as given; [N, H, W] with a channel axis added; MNIST rows [N, 784] as
    [N, 28, 28, 1]. Raises ValueError for other ranks or H, W not multiples of 4 (the two
    2x2 poolings)."""
    if x.ndim == 2 and x.shape[1] == math.prod(MNIST_SHAPE):
        x = x.reshape(-1, *MNIST_SHAPE)
    elif x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1] % 4 or x.shape[2] % 4:
        raise ValueError(
            f"classifier inputs of shape {tuple(x.shape)} are not allowed; expected images"
            " [N, H, W(, C)] with H and W multiples of 4, or MNIST rows [N, 784]"
        )
    return x


def to_unit_range(x, value_range: str):
    """Images in `value_range` (see `as_images`) to float32 [B, H, W, C] in [0, 1]."""
    if value_range not in VALUE_RANGES:
        raise ValueError(f"unknown value_range {value_range!r}; allowed: {VALUE_RANGES}")
    x = as_images(jnp.asarray(x, jnp.float32))
    if value_range == "symmetric":
        return (x + 1.0) * 0.5
    if value_range == "uint8":
        return x / 255.0
    return x


# ----------------------------------------------------------------------------- inference


@functools.partial(jax.jit, static_argnames=("value_range",))
def _apply(params, x_Bx, value_range: str):
    model = model_for(num_classes_of(params))
    return model.apply({"params": params}, to_unit_range(x_Bx, value_range))


def map_batches(fn: Callable, x_Nx, batch_size: int):
    """fn over x in batches of `batch_size`, outputs concatenated along axis 0.

    The last batch is zero-padded to full size so a jitted `fn` compiles once.
    """
    n = x_Nx.shape[0]
    outs = []
    for start in range(0, n, batch_size):
        batch = x_Nx[start : start + batch_size]
        valid = batch.shape[0]
        if valid < batch_size and n > batch_size:
            pad = [(0, batch_size - valid)] + [(0, 0)] * (batch.ndim - 1)
            batch = jnp.pad(jnp.asarray(batch), pad)
        outs.append(jax.tree.map(lambda o, v=valid: o[:v], fn(batch)))
    return jax.tree.map(lambda *os: jnp.concatenate(os, axis=0), *outs)


def logits_and_features(params, x, value_range: str = "unit", batch_size: int = 1000):
    """(logits_NxK, feats_Nx128) of images x [N, H, W(, C)] (MNIST: [N, 28, 28(, 1)]) given in
    `value_range`."""
    if value_range not in VALUE_RANGES:
        raise ValueError(f"unknown value_range {value_range!r}; allowed: {VALUE_RANGES}")
    # Batches are converted on device one at a time, so uint8 inputs stay uint8 on the host.
    apply = functools.partial(_apply, params, value_range=value_range)
    return map_batches(apply, as_images(np.asarray(x)), batch_size)


def classify(params, x, value_range: str = "unit", batch_size: int = 1000) -> jax.Array:
    """Logits_NxK of images x [N, H, W(, C)] given in `value_range`."""
    return logits_and_features(params, x, value_range, batch_size)[0]


def features(params, x, value_range: str = "unit", batch_size: int = 1000) -> jax.Array:
    """Penultimate features_Nx128 of images x [N, H, W(, C)] given in `value_range`."""
    return logits_and_features(params, x, value_range, batch_size)[1]


def accuracy(params, x, labels_N, value_range: str = "unit", batch_size: int = 1000) -> float:
    """The share of images x [N, H, W, C] (in `value_range`) whose argmax class equals
    labels_N [N], in [0, 1]; classified `batch_size` at a time."""
    logits_Nx10 = classify(params, x, value_range, batch_size)
    return float(jnp.mean(jnp.argmax(logits_Nx10, axis=-1) == jnp.asarray(labels_N)))


# ----------------------------------------------------------------------------- training


def random_shift(key, x_BxHxWxC, max_shift: int):
    """Translates each image by an independent integer offset in [-max_shift, max_shift]^2."""
    if max_shift == 0:
        return x_BxHxWxC
    s = max_shift
    padded = jnp.pad(x_BxHxWxC, ((0, 0), (s, s), (s, s), (0, 0)))
    offsets_Bx2 = jax.random.randint(key, (x_BxHxWxC.shape[0], 2), 0, 2 * s + 1)
    crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), x_BxHxWxC.shape[1:])
    return jax.vmap(crop)(padded, offsets_Bx2)


@functools.cache
def _adam_cosine(learning_rate: float, total_steps: int) -> optax.GradientTransformation:
    # Cached so equal settings give the same (hashable) object and `_train_step` compiles once.
    return optax.adam(optax.cosine_decay_schedule(learning_rate, total_steps))


@functools.partial(jax.jit, static_argnames=("optimizer", "max_shift"), donate_argnums=(0, 1))
def _train_step(params, opt_state, x_BxHxWxC, y_B, key_epoch, step, optimizer, max_shift):
    key_shift, key_drop = jax.random.split(jax.random.fold_in(key_epoch, step))
    x_BxHxWxC = random_shift(key_shift, x_BxHxWxC, max_shift)
    model = model_for(num_classes_of(params))

    def loss_fn(p):
        logits, _ = model.apply({"params": p}, x_BxHxWxC, True, rngs={"dropout": key_drop})
        return optax.softmax_cross_entropy_with_integer_labels(logits, y_B).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


@functools.partial(jax.jit, static_argnames=("n",))
def _epoch_plan(key_train, epoch, n: int):
    """(shuffled row order [n], key of the epoch's steps) for epoch number `epoch`."""
    key_perm, key_epoch = jax.random.split(jax.random.fold_in(key_train, epoch))
    return jax.random.permutation(key_perm, n), key_epoch


def train_classifier(
    x_NxHxWxC,
    labels_N,
    *,
    num_classes: int = NUM_CLASSES,
    seed: int = 0,
    epochs: int = 8,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    max_shift: int = 2,
    params=None,
    on_epoch: Callable | None = None,
):
    """Adam with cosine decay on cross-entropy, random shifts as augmentation.

    x must be float in [0, 1], images as `as_images` takes them (MNIST's by default); labels in
    [0, num_classes). Deterministic given `seed`: init, shuffling, shifts and dropout all derive
    from one PRNG key. Starts from `params` when given (fine-tuning), else from a fresh init.
    `on_epoch(epoch, params, mean_loss)` is called after each epoch.
    """
    x_NxHxWxC = as_images(np.asarray(x_NxHxWxC, np.float32))
    labels_N = np.asarray(labels_N, np.int32)
    n = x_NxHxWxC.shape[0]
    steps_per_epoch = n // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"need at least batch_size={batch_size} examples, got {n}")
    optimizer = _adam_cosine(learning_rate, epochs * steps_per_epoch)

    key_init, key_train = jax.random.split(jax.random.PRNGKey(seed))
    if params is None:
        params = _init(key_init, tuple(x_NxHxWxC.shape[1:]), num_classes)
    else:
        params = jax.tree.map(jnp.array, params)
    opt_state = optimizer.init(params)
    for epoch in range(epochs):
        perm_N, key_epoch = _epoch_plan(key_train, epoch, n)
        perm_N = np.asarray(perm_N)
        losses = []
        for step in range(steps_per_epoch):
            rows_B = perm_N[step * batch_size : (step + 1) * batch_size]
            params, opt_state, loss = _train_step(
                params,
                opt_state,
                x_NxHxWxC[rows_B],
                labels_N[rows_B],
                key_epoch,
                step,
                optimizer,
                max_shift,
            )
            losses.append(loss)
        if on_epoch is not None:
            on_epoch(epoch, params, float(np.mean(jax.device_get(losses))))
    return params


# ----------------------------------------------------------------------------- weights file


def save_classifier(params, path: str | Path = WEIGHTS_PATH) -> int:
    """Writes params with flax.serialization (msgpack); returns the number of bytes."""
    data = serialization.to_bytes(jax.device_get(params))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)
    return len(data)


def load_classifier(
    path: str | Path = WEIGHTS_PATH,
    shape=MNIST_SHAPE,
    num_classes: int = NUM_CLASSES,
    how_to_train: str = "python experiments/mnist_classifier.py",
):
    """Params of `MnistCNN` for images of `shape` and K classes from a msgpack file, checked
    against the model's parameter shapes. FileNotFoundError (naming `how_to_train`) when the
    file is missing, ValueError when a shape differs."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no classifier weights at {path}; train them with `{how_to_train}`"
        )
    template = jax.eval_shape(functools.partial(init_params, 0, tuple(shape), num_classes))
    params = serialization.from_state_dict(
        template, serialization.msgpack_restore(path.read_bytes())
    )
    for leaf, ref in zip(jax.tree.leaves(params), jax.tree.leaves(template), strict=True):
        if leaf.shape != ref.shape:
            raise ValueError(f"{path}: parameter shape {leaf.shape} != expected {ref.shape}")
    return jax.tree.map(jnp.asarray, params)


def num_params(params) -> int:
    """The number of scalars in a parameter pytree."""
    return sum(math.prod(p.shape) for p in jax.tree.leaves(params))
