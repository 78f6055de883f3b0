"""Figures 2 and 3 of Goodfellow et al. 2014 for any image run: `gan-jax figures`.

    gan-jax figures --workdir DIR [--out OUTDIR] [--data_dir D] [--seed S]

Restores the newest checkpoint of a training workdir with its own config and writes to OUTDIR
(default DIR/figures):

- `neighbours_pixel.png` (the paper's Fig. 2, its check for memorisation): samples of G, each
  followed by its nearest training example in pixel L2 distance, as pairs sample | neighbour
  (the paper shows one neighbour per row, of the sample beside it; pairs show all of them). The
  training examples are the run's own: data[start:stop] of its config.
- `neighbours_features.png`: the same in the feature space of the MNIST classifier
  (`gan_jax.classifier`, the 128-d penultimate layer the FD/KID/PRDC metrics use), where a
  copied digit that moved by a pixel still finds its source. Only for 28x28 grey images.
- `interpolation.png` (the paper's Fig. 3): each row G((1 - t) z0 + t z1) for t from 0 to 1 in
  equal steps between two random latent codes; the first column is G(z0), the last G(z1).
  Linear, as the paper; for normal z the midpoints have a smaller norm than typical codes.
- `interpolation_classes.png`, for a conditional G (model.conditioning != 'none'): each row one
  fixed z, column k G(z, y=k) for every class k.

Distances are computed by brute force in float32 with Precision.HIGHEST matmuls (as
gan_jax.metrics: TPU/GPU default matmuls in bf16/tf32 would corrupt them), the training set
streamed through in chunks so that memory stays O(samples x chunk).
"""

from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import classifier, data, plotting, steps
from gan_jax.checkpoint import require_checkpoint
from gan_jax.evaluate import load_workdir_config, restore_state

HIGHEST = jax.lax.Precision.HIGHEST
NUM_PAIRS = 40  # samples in a neighbours figure: 8 rows of 5 sample | neighbour pairs
PAIRS_PER_ROW = 5
NUM_ROWS = 8  # rows of an interpolation figure
NUM_STEPS = 10  # images per interpolation row, both ends included
MAX_CLASSES = 20  # columns of interpolation_classes.png; more classes are cut to the first 20
CHUNK = 2048  # training examples per distance chunk
FIGURE_SEED = 2014
CLASSIFIER_SHAPE = (28, 28, 1)


# ----------------------------------------------------------------------------- neighbours


@functools.partial(jax.jit, static_argnames=("chunk",))
def _nearest(queries_NxD, pool_MxD, chunk: int):
    m, d = pool_MxD.shape
    num_chunks = max(1, math.ceil(m / chunk))
    pool_CxKxD = jnp.pad(pool_MxD, ((0, num_chunks * chunk - m), (0, 0))).reshape(-1, chunk, d)
    q_sq_N = jnp.sum(queries_NxD**2, axis=1)

    def one_chunk(best, inputs):
        best_d2_N, best_i_N = best
        c, x_KxD = inputs
        cross_NxK = jnp.matmul(queries_NxD, x_KxD.T, precision=HIGHEST)
        d2_NxK = q_sq_N[:, None] + jnp.sum(x_KxD**2, axis=1)[None, :] - 2.0 * cross_NxK
        index_K = c * chunk + jnp.arange(chunk)
        d2_NxK = jnp.where(index_K[None, :] < m, jnp.maximum(d2_NxK, 0.0), jnp.inf)
        j_N = jnp.argmin(d2_NxK, axis=1)
        d2_N = jnp.take_along_axis(d2_NxK, j_N[:, None], axis=1)[:, 0]
        # Strictly smaller: of equal distances the earliest example wins, as numpy's argmin.
        better_N = d2_N < best_d2_N
        return (
            jnp.where(better_N, d2_N, best_d2_N),
            jnp.where(better_N, index_K[j_N], best_i_N),
        ), None

    start = (jnp.full(queries_NxD.shape[0], jnp.inf), jnp.zeros(queries_NxD.shape[0], jnp.int32))
    (best_d2_N, best_i_N), _ = jax.lax.scan(one_chunk, start, (jnp.arange(num_chunks), pool_CxKxD))
    return best_i_N, best_d2_N


def nearest_neighbours(queries_NxD, pool_MxD, chunk: int = CHUNK):
    """(index_N int32, squared distance_N float32): for each query row its nearest row of the
    pool in Euclidean distance (the first one of equal distances), by brute force over pool
    chunks of `chunk` rows. Rows are flattened: [N, ...] and [M, ...] of equal trailing size.

    Both sets are centred on the pool's mean first, which leaves the distances as they are and
    shrinks the norms whose float32 rounding |q|^2 + |x|^2 - 2 q.x would otherwise amplify.

    Raises:
      ValueError: an empty set, rows of different sizes, or `chunk` < 1.
    """
    queries_NxD = np.asarray(queries_NxD, np.float32).reshape(len(queries_NxD), -1)
    pool_MxD = np.asarray(pool_MxD, np.float32).reshape(len(pool_MxD), -1)
    if queries_NxD.shape[0] == 0 or pool_MxD.shape[0] == 0:
        raise ValueError(
            f"nearest_neighbours needs at least one query and one pool row; got"
            f" {queries_NxD.shape[0]} queries and {pool_MxD.shape[0]} pool rows"
        )
    if queries_NxD.shape[1] != pool_MxD.shape[1]:
        raise ValueError(
            f"queries of size {queries_NxD.shape[1]} cannot be compared with pool rows of size"
            f" {pool_MxD.shape[1]}; expected equal sizes"
        )
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk = {chunk!r} is not allowed; expected a whole number >= 1")
    mean_D = pool_MxD.mean(axis=0, dtype=np.float64).astype(np.float32)
    index_N, d2_N = _nearest(
        jnp.asarray(queries_NxD - mean_D), jnp.asarray(pool_MxD - mean_D), min(chunk, len(pool_MxD))
    )
    return np.asarray(index_N), np.asarray(d2_N)


def classifier_features(x_NxHxWxC, value_range: str, params=None) -> np.ndarray:
    """Features [N, 128] of the MNIST classifier (`classifier.features`) of images in
    `value_range` ('unit' or 'symmetric'); `params` default to the committed weights."""
    params = classifier.load_classifier() if params is None else params
    return np.asarray(classifier.features(params, x_NxHxWxC, value_range))


# ----------------------------------------------------------------------------- interpolation


def interpolation_latents(key, num_rows: int, num_steps: int, z_dim: int, z_dist: str):
    """z [num_rows, num_steps, z_dim]: row r is (1 - t) z0_r + t z1_r for t = 0, 1/(T-1), ...,
    1, z0 and z1 drawn from the prior (`steps.sample_z`) with independent keys split off `key`
    (Goodfellow et al. 2014, Fig. 3). Raises ValueError for num_steps < 2 or num_rows < 1."""
    if num_steps < 2 or num_rows < 1:
        raise ValueError(
            f"num_rows = {num_rows}, num_steps = {num_steps} are not allowed; expected"
            " num_rows >= 1 and num_steps >= 2 (both ends of each row)"
        )
    key0, key1 = jax.random.split(key)
    z0_RxZ = steps.sample_z(key0, num_rows, z_dim, z_dist)
    z1_RxZ = steps.sample_z(key1, num_rows, z_dim, z_dist)
    t_T = jnp.linspace(0.0, 1.0, num_steps)
    return (1.0 - t_T)[None, :, None] * z0_RxZ[:, None] + t_T[None, :, None] * z1_RxZ[:, None]


@jax.jit
def generate_batch(state, z_BxZ, y_B=None):
    """`steps.generate` jitted: G(z) or G(z, y) [B, *data shape], inference mode."""
    return steps.generate(state, z_BxZ, y_B)


def generate_grid(state, z_RxTxZ, y_RxT=None) -> np.ndarray:
    """G(z) [R, T, *data shape] of a grid of latent codes (and labels, for a conditional G;
    None: the i mod K labels of `steps.generate`), inference mode, one batch."""
    r, t, z_dim = z_RxTxZ.shape
    y_B = None if y_RxT is None else jnp.asarray(y_RxT, jnp.int32).reshape(r * t)
    x_B = generate_batch(state, jnp.reshape(z_RxTxZ, (r * t, z_dim)), y_B)
    return np.asarray(x_B).reshape(r, t, *x_B.shape[1:])


def class_grid(state, key, num_rows: int, num_classes: int, z_dim: int, z_dist: str):
    """G(z_r, y=k) [num_rows, num_classes, *data shape]: row r one latent code z_r from the
    prior, column k class k, for a conditional G (Mirza & Osindero 2014)."""
    z_RxZ = steps.sample_z(key, num_rows, z_dim, z_dist)
    z_RxKxZ = jnp.broadcast_to(z_RxZ[:, None], (num_rows, num_classes, z_dim))
    y_RxK = jnp.broadcast_to(jnp.arange(num_classes), (num_rows, num_classes))
    return generate_grid(state, z_RxKxZ, y_RxK)


# ----------------------------------------------------------------------------- the command


def to_unit(x, config) -> np.ndarray:
    """Images in the config's data scale mapped to [0, 1] for drawing."""
    low, high = data.SCALE_RANGES[config.data.scale]
    return (np.asarray(x, np.float32) - low) / (high - low)


def save_pairs(path: str, samples_NxHxWxC, neighbours_NxHxWxC, pairs_per_row: int) -> None:
    """A grid of sample | neighbour pairs (values in [0, 1]), the pairs set apart by a wider
    gap than their two halves."""
    pairs = np.concatenate([samples_NxHxWxC, neighbours_NxHxWxC], axis=2)  # side by side
    plotting.save_image_grid(path, pairs, columns=pairs_per_row, pad=4)


def save_rows(path: str, x_RxTxHxWxC) -> None:
    """R rows of T images (values in [0, 1]) as one PNG, a row per leading index."""
    r, t = x_RxTxHxWxC.shape[:2]
    plotting.save_image_grid(path, x_RxTxHxWxC.reshape(r * t, *x_RxTxHxWxC.shape[2:]), t)


def check_workdir(workdir: str):
    """The workdir's config, or a ValueError (before any compute) for a workdir without
    config.json or checkpoint, or of data that are not images."""
    config = load_workdir_config(workdir)
    if config.data.name in data.TOY_DATASETS:
        raise ValueError(
            f"figures need image data; {workdir!r} trained on data.name={config.data.name!r}, a"
            f" toy set of points (image sets: {list(data.IMAGE_DATASETS)}, files"
            f" {list(data.FILE_DATASETS)}, 'tfds:<name>')"
        )
    require_checkpoint(workdir, "to draw figures from")
    return config


def figures(
    workdir: str, out: str | None = None, data_dir: str | None = None, seed: int = FIGURE_SEED
) -> dict:
    """Writes the module docstring's figures of the newest checkpoint in `workdir` to `out`
    (default WORKDIR/figures) and returns {"step", "out", "files": [paths], "skipped":
    {figure: why}}. Samples and latent codes come from `seed`: the same seed and checkpoint
    give the same figures. `data_dir` replaces the config's data.dir (the training examples).

    Raises:
      ValueError, before any compute: a workdir without config.json or checkpoint, toy data,
        a seed that is not a whole number >= 0.
      data.DataError: the training examples cannot be loaded.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"--seed {seed!r} is not allowed; expected a whole number in [0, 2**32)")
    config = check_workdir(workdir)
    if data_dir:
        config.data.dir = data_dir
    out = out or os.path.join(workdir, "figures")
    train_x = data.load_dataset(config.data).x
    state = restore_state(config, workdir)
    os.makedirs(out, exist_ok=True)
    key_samples, key_lines, key_classes = jax.random.split(jax.random.PRNGKey(seed), 3)
    z_dim, z_dist = config.model.z_dim, config.model.z_dist
    conditional = config.model.get("conditioning", "none") != "none"
    samples = generate_grid(state, steps.sample_z(key_samples, NUM_PAIRS, z_dim, z_dist)[None])[0]
    files, skipped = [], {}

    index_N, _ = nearest_neighbours(samples, train_x)
    path = os.path.join(out, "neighbours_pixel.png")
    save_pairs(path, to_unit(samples, config), to_unit(train_x[index_N], config), PAIRS_PER_ROW)
    files.append(path)

    if tuple(samples.shape[1:]) == CLASSIFIER_SHAPE:
        params = classifier.load_classifier()
        feats_sample = classifier_features(samples, config.data.scale, params)
        feats_train = classifier_features(train_x, config.data.scale, params)
        index_N, _ = nearest_neighbours(feats_sample, feats_train)
        path = os.path.join(out, "neighbours_features.png")
        save_pairs(path, to_unit(samples, config), to_unit(train_x[index_N], config), PAIRS_PER_ROW)
        files.append(path)
    else:
        skipped["neighbours_features"] = (
            f"the MNIST classifier reads {CLASSIFIER_SHAPE} images; these are"
            f" {tuple(samples.shape[1:])}"
        )

    z_RxTxZ = interpolation_latents(key_lines, NUM_ROWS, NUM_STEPS, z_dim, z_dist)
    # A conditional G keeps one class along a row (row r: class r mod K), so only z moves.
    y_RxT = None
    if conditional:
        y_RxT = np.repeat(np.arange(NUM_ROWS)[:, None] % config.model.num_classes, NUM_STEPS, 1)
    path = os.path.join(out, "interpolation.png")
    save_rows(path, to_unit(generate_grid(state, z_RxTxZ, y_RxT), config))
    files.append(path)

    if conditional:
        classes = min(config.model.num_classes, MAX_CLASSES)
        grid = class_grid(state, key_classes, NUM_ROWS, classes, z_dim, z_dist)
        path = os.path.join(out, "interpolation_classes.png")
        save_rows(path, to_unit(grid, config))
        files.append(path)
    return {"step": int(state.step), "out": out, "files": files, "skipped": skipped}
