"""Datasets: toy distributions made in-process, MNIST from IDX files or TFDS, image sets from
files (`image_sets`: IDX, image folders, npz, any TFDS image set), character sequences from
text (`text_data`), on-device batching.

Every dataset ends up as a `Dataset` pytree of device arrays, and batches are gathered (and, with
`data.flip`, mirrored) inside the compiled step from `(key, batch_index)` alone, so the data
position is a function of the step counter and a resumed run draws exactly the batches an
uninterrupted one would. A set streamed from host memory (`stream`, data.placement='host')
reaches the step as `StreamedRows` of the same batches, which `real_batch` scales and flips
exactly as in-device batching does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gan_jax import data_sources, image_sets, text_data
from gan_jax.data_sources import DataError, read_idx
from gan_jax.hashing import mix32

TOY_DATASETS = ("gaussian_1d", "ring8", "grid25")
IMAGE_DATASETS = ("mnist", "stacked_mnist")
# Image sets read from data.dir (see data_sources); 'tfds:<name>' names any TFDS image dataset.
FILE_DATASETS = data_sources.LOCAL_SOURCES
TFDS_PREFIX = data_sources.TFDS_PREFIX
# Character sequences from text (see text_data); 'tfds:lm1b' is one too.
TEXT_DATASETS = text_data.TEXT_SOURCES
DATASETS = TOY_DATASETS + IMAGE_DATASETS + FILE_DATASETS + TEXT_DATASETS
# data.placement: the training set on the device, streamed from the host, or chosen by size.
PLACEMENTS = ("auto", "device", "host")
SCALES = ("unit", "symmetric")  # pixels in [0, 1] or in [-1, 1]
# The closed interval `scale_images` maps uint8 pixels 0..255 onto, per scale.
SCALE_RANGES = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}
TOY_RANGE = (-math.inf, math.inf)  # the toy samples are Gaussian: any real value

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


# ----------------------------------------------------------------------------- toy mixtures


def ring8_centers(radius: float = 1.0) -> np.ndarray:
    """Centres of the ring of 8 Gaussians at angles 2*pi*i/8 (PacGAN, VEEGAN protocol)."""
    angles = 2 * np.pi * np.arange(8) / 8
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


def grid25_centers() -> np.ndarray:
    """Centres of the 5x5 grid of Gaussians at {-4, -2, 0, 2, 4}^2."""
    ticks = np.arange(-4.0, 5.0, 2.0, dtype=np.float32)
    return np.stack(np.meshgrid(ticks, ticks, indexing="ij"), axis=-1).reshape(-1, 2)


TOY_MIXTURES = {"ring8": (ring8_centers, 0.01), "grid25": (grid25_centers, 0.05)}


def mixture_spec(name: str) -> tuple[np.ndarray, float]:
    """(centres_KxD, std) of a named 2-D mixture of isotropic Gaussians with equal weights."""
    if name not in TOY_MIXTURES:
        raise DataError(f"unknown mixture {name!r}; allowed: {sorted(TOY_MIXTURES)}")
    make_centers, std = TOY_MIXTURES[name]
    return make_centers(), std


def sample_mixture(key: jax.Array, centers_KxD, std: float, n: int) -> jax.Array:
    """n samples of an equal-weight mixture of isotropic Gaussians."""
    centers_KxD = jnp.asarray(centers_KxD)
    key_mode, key_noise = jax.random.split(key)
    modes_N = jax.random.randint(key_mode, (n,), 0, centers_KxD.shape[0])
    noise_NxD = jax.random.normal(key_noise, (n, centers_KxD.shape[1]))
    return centers_KxD[modes_N] + std * noise_NxD


GAUSSIAN_1D = {"mean": 4.0, "std": 0.5}  # the bump of the paper's Figure 1


def sample_toy(name: str, key: jax.Array, n: int) -> jax.Array:
    """n samples of a named toy distribution, shape [n, D]."""
    if name == "gaussian_1d":
        return GAUSSIAN_1D["mean"] + GAUSSIAN_1D["std"] * jax.random.normal(key, (n, 1))
    centers, std = mixture_spec(name)
    return sample_mixture(key, centers, std, n)


# ----------------------------------------------------------------------------- IDX and MNIST


def load_mnist_idx(data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images [N, 28, 28] uint8 and labels [N] from a directory of the 4 standard files."""
    if split not in MNIST_FILES:
        raise DataError(f"unknown MNIST split {split!r}; allowed: {sorted(MNIST_FILES)}")
    if not os.path.isdir(data_dir):
        raise DataError(
            f"MNIST directory {data_dir!r} does not exist; it must hold"
            f" {', '.join(f for pair in MNIST_FILES.values() for f in pair)}"
        )
    image_file, label_file = (os.path.join(data_dir, f) for f in MNIST_FILES[split])
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(f"{image_file}: expected uint8 images [N, 28, 28], got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise DataError(
            f"{label_file}: expected {images.shape[0]} labels to match the images,"
            f" got shape {labels.shape}"
        )
    return images, labels.astype(np.int32)


MNIST_LOCAL_HINT = (
    "pass --config.data.dir=DIR with the four standard MNIST IDX .gz files"
    " (train-images-idx3-ubyte.gz, ...)"
)


def load_mnist_tfds(split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST through tensorflow-datasets, failing fast with a clear message when offline."""
    data_sources.check_tfds_available("mnist", MNIST_LOCAL_HINT)  # before TFDS's slow import
    import tensorflow_datasets as tfds

    builder = tfds.builder("mnist")
    if not builder.is_prepared():
        builder.download_and_prepare()
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    return data["image"][..., 0].astype(np.uint8), data["label"].astype(np.int32)


def load_mnist(data_dir: str | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST from `data_dir` when given, else from TFDS."""
    if data_dir:
        return load_mnist_idx(data_dir, split)
    return load_mnist_tfds(split)


def scale_images(images: np.ndarray, scale: str) -> np.ndarray:
    """uint8 images [N, H, W] or [N, H, W, C] to float32 [N, H, W, 1] or [N, H, W, C] in
    [0, 1] ('unit') or [-1, 1] ('symmetric')."""
    if scale not in SCALES:
        raise DataError(f"unknown pixel scale {scale!r}; allowed: {SCALES}")
    x = images.astype(np.float32) / 255.0
    x = x[..., None] if images.ndim == 3 else x
    return x if scale == "unit" else 2.0 * x - 1.0


# ----------------------------------------------------------------------------- on-device data


@struct.dataclass
class Dataset:
    """A finite dataset held on device. Batches are drawn epoch by epoch without replacement."""

    x: jax.Array  # [N, ...] float32 in the model's range
    y: jax.Array  # [N] int32 labels (zeros where the data has none)
    # Static: each drawn image [H, W, C] is mirrored left-right with probability 1/2.
    flip: bool = struct.field(pytree_node=False, default=False)
    # For semi-supervised runs (`labelled_batch`): int32 [K, M], row c the indices of class c's
    # examples padded with 0 to the largest class's M, and int32 [K] the class sizes.
    class_rows: jax.Array | None = None
    class_sizes: jax.Array | None = None
    # Static: V > 0 for text, whose x holds int32 token ids [N, L]; each drawn batch is
    # one-hot encoded to float32 [B, L, V] in the step (`make_token_dataset`).
    vocab_size: int = struct.field(pytree_node=False, default=0)


def make_dataset(x, y=None, flip: bool = False, by_class: bool = False) -> Dataset:
    """A `Dataset` of x [N, ...] and labels y [N] (None: zeros); `flip` draws random
    horizontal flips of images [N, H, W, C] (see `batch_from_dataset`); `by_class` indexes the
    examples by label for `labelled_batch`."""
    x = jnp.asarray(x, jnp.float32)
    y = np.zeros(x.shape[0], np.int32) if y is None else np.asarray(y, np.int32)
    if flip and x.ndim != 4:
        raise DataError(f"flips need images [N, H, W, C]; got data of shape {x.shape}")
    class_rows = class_sizes = None
    if by_class:
        class_rows, class_sizes = rows_by_class(y)
    return Dataset(x=x, y=jnp.asarray(y), flip=flip, class_rows=class_rows, class_sizes=class_sizes)


def make_token_dataset(tokens_NxL, vocab_size: int) -> Dataset:
    """A `Dataset` of int32 token ids [N, L] in [0, vocab_size), kept as ids on the device (V
    times smaller than one-hot rows) and one-hot encoded per batch by `batch_from_dataset`.
    Raises DataError for ids outside the vocabulary."""
    tokens_NxL = np.asarray(tokens_NxL, np.int32)
    if tokens_NxL.ndim != 2 or tokens_NxL.min() < 0 or tokens_NxL.max() >= vocab_size:
        raise DataError(
            f"tokens of shape {tokens_NxL.shape} spanning [{tokens_NxL.min()},"
            f" {tokens_NxL.max()}]; expected ids [N, L] in [0, {vocab_size})"
        )
    zeros = jnp.zeros(tokens_NxL.shape[0], jnp.int32)
    return Dataset(x=jnp.asarray(tokens_NxL), y=zeros, vocab_size=vocab_size)


def rows_by_class(y_N: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """(int32 [K, M]: row c the indices of the examples labelled c in order, padded with 0 to
    M = the largest class's size; int32 [K]: the class sizes), K = max label + 1."""
    sizes = np.bincount(y_N)
    rows = np.zeros((sizes.shape[0], sizes.max()), np.int32)
    for c, size in enumerate(sizes):
        rows[c, :size] = np.flatnonzero(y_N == c)
    return jnp.asarray(rows), jnp.asarray(sizes, jnp.int32)


def _feistel(i, round_keys, half_bits: int):
    """A bijection of [0, 4**half_bits): a balanced Feistel network with hashed round functions."""
    mask = jnp.uint32((1 << half_bits) - 1)
    left, right = i >> half_bits, i & mask
    for k in round_keys:
        left, right = right, left ^ (mix32(right ^ k) & mask)
    return (left << half_bits) | right


def shuffled_index(key, rows_B, n: int, size=None):
    """Row i of a random permutation of [0, size), computed for each i without building it;
    `size` (default n; may be a traced value <= n) lets the permuted range be data-dependent.

    The Feistel network permutes the next power of 4 at or above n; indices that land
    outside [0, size) are mapped again until inside ("cycle walking"), which keeps a bijection.
    O(B) per batch instead of sorting n keys per batch.
    """
    size = n if size is None else size
    half_bits = max(1, (max(n - 1, 1).bit_length() + 1) // 2)
    round_keys = list(jax.random.bits(key, (4,), jnp.uint32))
    x = rows_B.astype(jnp.uint32)
    x = _feistel(x, round_keys, half_bits)
    x = jax.lax.while_loop(
        lambda v: jnp.any(v >= size),
        lambda v: jnp.where(v >= size, _feistel(v, round_keys, half_bits), v),
        x,
    )
    return x.astype(jnp.int32)


def batch_from_dataset(dataset: Dataset, key: jax.Array, index, batch_size: int, rows_b=None):
    """Batch number `index` of an endless sequence of shuffled epochs: (x_b..., y_b).

    Epoch e visits the examples in a random order drawn from fold_in(key, e); a trailing
    partial batch is dropped. `rows_b` picks rows of the batch (a device's shard); default all.
    With `dataset.flip`, row r of the batch is mirrored left-right when bit r of
    `flip_bits(key, index, batch_size)` is set: a function of the key, the batch number and
    the row alone, so a resumed run, a device's shard and a sweep member flip as one run does.
    """
    n = dataset.x.shape[0]
    batches_per_epoch = n // batch_size
    epoch, within = jnp.divmod(index, batches_per_epoch)
    rows_b = jnp.arange(batch_size) if rows_b is None else rows_b
    examples_b = shuffled_index(jax.random.fold_in(key, epoch), within * batch_size + rows_b, n)
    x_b = dataset.x[examples_b]
    if dataset.vocab_size:
        x_b = jax.nn.one_hot(x_b, dataset.vocab_size, dtype=jnp.float32)
    if dataset.flip:
        flip_b = flip_bits(key, index, batch_size)[rows_b]
        x_b = jnp.where(flip_b[:, None, None, None], x_b[:, :, ::-1], x_b)
    return x_b, dataset.y[examples_b]


FLIP_STREAM = 0x666C6970  # folded into the data key for flips; the epochs use 0, 1, 2, ...


def flip_bits(key, index, batch_size: int) -> jax.Array:
    """[batch_size] bools, True where row r of batch `index` is mirrored (probability 1/2
    each, independent across rows and batches): the usual GAN augmentation for faces and
    natural images (e.g. Karras et al. 2018, Progressive GANs, App. A)."""
    batch_key = jax.random.fold_in(jax.random.fold_in(key, FLIP_STREAM), index)
    return jax.random.bernoulli(batch_key, 0.5, (batch_size,))


LABELLED_STREAM = 0x6C61626C  # folded into the data key for the labelled subset and its batches


def labelled_examples(dataset: Dataset, key, j_L, per_class: int) -> jax.Array:
    """Dataset rows of members j_L of the labelled subset of a semi-supervised run: the subset
    holds `per_class` examples of each of the K classes drawn without replacement by `key`,
    class-major (members c * per_class ... (c + 1) * per_class - 1 are of class c).
    Salimans et al. 2016, Sec. 5; openai/improved-gan train_mnist_feature_matching.py takes the
    first `count` of each class after a permutation drawn by its data seed, here the draw is a
    function of the run's key. Raises DataError for a dataset not made with by_class=True."""
    if dataset is None or dataset.class_rows is None:
        raise DataError("a labelled subset needs a dataset made with by_class=True")
    largest = dataset.class_rows.shape[1]

    def pick(j):
        c, r = jnp.divmod(j, per_class)
        rank = shuffled_index(jax.random.fold_in(key, c), r[None], largest, dataset.class_sizes[c])
        return dataset.class_rows[c, rank[0]]

    return jax.vmap(pick)(j_L)


def labelled_batch(dataset: Dataset, key, index, batch_size: int, per_class: int, rows_b=None):
    """Rows `rows_b` (default all) of labelled batch `index`, (x_b..., y_b): the labelled
    subset (`labelled_examples`, drawn from `key`) visited in shuffled passes over its
    K * per_class members, each pass in its own order; a batch may span two passes (with 100
    labels and batches of 100, each batch is the whole subset in a new order, as in the
    authors' code)."""
    subset_key, order_key = jax.random.split(jax.random.fold_in(key, LABELLED_STREAM))
    size = dataset.class_rows.shape[0] * per_class
    rows_b = jnp.arange(batch_size) if rows_b is None else rows_b
    position_b = index * batch_size + rows_b

    def member(position):
        pass_key = jax.random.fold_in(order_key, position // size)
        return shuffled_index(pass_key, (position % size)[None], size)[0]

    examples_b = labelled_examples(dataset, subset_key, jax.vmap(member)(position_b), per_class)
    return dataset.x[examples_b], dataset.y[examples_b]


# ----------------------------------------------------------------------------- streamed rows


@struct.dataclass
class StreamedRows:
    """Real rows read on the host (`stream.HostStream`) and passed into the compiled step: one
    batch's rows for this device, or a stack of them (leading axes first). Pixels stay uint8
    until the step, which scales and flips them as `batch_from_dataset` would."""

    images: jax.Array  # uint8 [..., b, H, W, C]
    labels: jax.Array  # int32 [..., b] (zeros where the data has none)
    scale: str = struct.field(pytree_node=False, default="unit")  # one of SCALES
    flip: bool = struct.field(pytree_node=False, default=False)


@struct.dataclass
class StreamedChunk:
    """The real rows of whole iterations: `d` for the D updates, leading axes [T, d_steps] (one
    iteration's: [d_steps]), `g` for G's feature-matching stream, leading [T] (or []), or None
    when G sees no real data. What `engine.run_chunk` scans over when the data is streamed."""

    d: StreamedRows
    g: StreamedRows | None = None


def scale_table(scale: str) -> np.ndarray:
    """float32 [256]: `scale_images` of each uint8 value. Looking pixels up in this table on the
    device gives bit for bit the floats `scale_images` gives on the host, whatever the backend
    does with a division or a fused multiply-add."""
    return scale_images(np.arange(256, dtype=np.uint8), scale)


def streamed_batch(rows: StreamedRows, key, index, batch_size: int, rows_b=None):
    """(x_b..., y_b) of streamed rows: batch `index`'s rows `rows_b` (default all; they are
    the rows `rows` holds), scaled and flipped exactly as `batch_from_dataset` does in-device
    (the flips are drawn on the device from `flip_bits`, which needs no data)."""
    x_b = jnp.asarray(scale_table(rows.scale))[rows.images.astype(jnp.int32)]
    if rows.flip:
        rows_b = jnp.arange(batch_size) if rows_b is None else rows_b
        flip_b = flip_bits(key, index, batch_size)[rows_b]
        x_b = jnp.where(flip_b[:, None, None, None], x_b[:, :, ::-1], x_b)
    return x_b, rows.labels


def real_batch(name: str, dataset, key, index, batch_size: int, rows_b=None):
    """Rows `rows_b` (default all) of real batch `index`: drawn fresh for toy data, gathered on
    device from a `Dataset`, or decoded from the `StreamedRows` the host read for it. The rows
    of a batch do not depend on how it is split across devices."""
    if name in TOY_DATASETS:
        x = sample_toy(name, jax.random.fold_in(key, index), batch_size)
        x = x if rows_b is None else x[rows_b]
        return x, jnp.zeros(x.shape[0], jnp.int32)
    if isinstance(dataset, StreamedRows):
        return streamed_batch(dataset, key, index, batch_size, rows_b)
    return batch_from_dataset(dataset, key, index, batch_size, rows_b)


def is_known_dataset(name: str) -> bool:
    """Whether `name` is a data.name: one of DATASETS or 'tfds:<TFDS name>'."""
    return name in DATASETS or image_sets.is_tfds_name(name)


def load_dataset(data_config) -> Dataset | None:
    """The on-device dataset a config asks for (None for toy data sampled in the step):
    examples [start:stop] of the training set, pixels scaled by `data.scale`, flipped at
    random in each batch when `data.flip`. Image sets from files load through their cache;
    text is the training split's token ids (`make_token_dataset`, `text_data.load_text`)."""
    name = data_config.name
    if name in TOY_DATASETS:
        return None
    if name == "stacked_mnist":
        return load_stacked_mnist(data_config)
    if text_data.is_text(name):
        text = text_data.load_text(data_config)
        return make_token_dataset(text.train, text.vocab.size)
    if image_sets.is_file_source(name):
        raw = image_sets.load_images(data_config)
        images, labels = raw.images, raw.labels
    elif name == "mnist":
        images, labels = load_mnist(data_config.get("dir") or None, "train")
    else:
        raise DataError(f"unknown dataset {name!r}; allowed: {DATASETS} or 'tfds:<name>'")
    start, stop = data_config.get("start", 0), data_config.get("stop", None)
    images = images[start:stop]
    labels = None if labels is None else labels[start:stop]
    flip = bool(data_config.get("flip", False))
    by_class = data_config.get("labels_per_class", 0) > 0
    if by_class:
        check_labels_per_class(labels, data_config.labels_per_class, name)
    x = scale_images(images, data_config.scale)
    return make_dataset(x, labels, flip=flip, by_class=by_class)


def check_labels_per_class(labels_N, per_class: int, name: str) -> None:
    """Raises DataError unless every class of `labels_N` has at least `per_class` examples."""
    if labels_N is None:
        raise DataError(f"data.labels_per_class={per_class} needs labels; {name!r} has none")
    sizes = np.bincount(labels_N)
    if sizes.min() < per_class:
        raise DataError(
            f"data.labels_per_class={per_class}: class {int(sizes.argmin())} of {name!r} has"
            f" only {int(sizes.min())} examples; expected at most {int(sizes.min())}"
        )


def data_shape(data_config) -> Sequence[int]:
    """Shape of one example: fixed for the toys and MNIST; for image sets from files read from
    the cache or the files' headers (`image_sets.describe`), decoding no pixels; (L, V) for
    text, V from the vocabulary of the (once read) training split."""
    if data_config.name == "gaussian_1d":
        return (1,)
    if data_config.name in TOY_MIXTURES:
        return (2,)
    if data_config.name == "stacked_mnist":
        return (28, 28, 3)
    if text_data.is_text(data_config.name):
        return text_data.sequence_shape(data_config)
    if image_sets.is_file_source(data_config.name):
        return image_sets.describe(data_config).shape
    return (28, 28, 1)


def num_classes(data_config) -> int | None:
    """The number of label classes of the config's dataset (conditional nets need it), None for
    data without labels (the toys, an unlabelled folder or npz)."""
    if data_config.name in CLASSES:
        return CLASSES[data_config.name]
    if text_data.is_text(data_config.name):
        return None
    if image_sets.is_file_source(data_config.name):
        return image_sets.describe(data_config).num_classes
    return None


# ----------------------------------------------------------------------------- Stacked MNIST

CLASSES = {"mnist": 10, "stacked_mnist": 1000}  # fixed label counts; see num_classes()
STACKED_MNIST_SEED = 0  # the training set is one fixed draw, the same for every run


def stack_digits(key, digits_NxHxW, labels_N, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n Stacked MNIST images [n, H, W, 3], each channel a uniformly drawn digit, and their
    modes 100 * d0 + 10 * d1 + d2 in [0, 1000) (Metz et al. 2017, Sec. 3.4). Images keep their
    dtype and range (`metrics.stacked_mnist` calls this for the evaluation's draws)."""
    digits_NxHxW = np.asarray(digits_NxHxW)
    rows_nx3 = np.asarray(jax.random.randint(key, (n, 3), 0, digits_NxHxW.shape[0]))
    x_nxHxWx3 = np.stack([digits_NxHxW[rows_nx3[:, c]] for c in range(3)], axis=-1)
    modes_n = np.asarray(labels_N)[rows_nx3] @ np.array([100, 10, 1])
    return x_nxHxWx3, modes_n.astype(np.int32)


def load_stacked_mnist(data_config) -> Dataset:
    """The Stacked MNIST training set: `data.stacked_size` images stacked from the MNIST training
    digits [start:stop], pixels scaled by `data.scale`, labels = the 1000 modes; `data.flip`
    mirrors drawn batches as for any image set."""
    images, labels = load_mnist(data_config.get("dir") or None, "train")
    start, stop = data_config.get("start", 0), data_config.get("stop", None)
    digits_NxHxW = scale_images(images[start:stop], data_config.scale)[..., 0]
    key = jax.random.PRNGKey(STACKED_MNIST_SEED)
    x, modes = stack_digits(key, digits_NxHxW, labels[start:stop], data_config.stacked_size)
    return make_dataset(x, modes, flip=bool(data_config.get("flip", False)))
