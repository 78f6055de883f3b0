"""Streaming a training set from host memory, for sets too large to hold on the device.

`data.placement` decides where the training set lives (`resolve_placement`): 'device' keeps
today's in-device batching (data.Dataset), 'host' streams it, 'auto' streams only when the set
as float32 would exceed `data.device_bytes`. A streamed set stays uint8 on the host
(`HostImages`: a memory map of the cache entry's images.npy, `data_cache.load(mmap_mode='r')`).
Before each scan chunk the host computes the example indices the in-device draw would
(`batch_examples`: a numpy twin of data.shuffled_index's Feistel permutation, bit for bit),
reads those rows and hands them to `engine.run_chunk` as the scan's xs (data.StreamedChunk);
the step scales and flips them on the device as in-device batching does, so a streamed run
gives the same numbers as an in-device one.

The pipeline is grain's (`grain.MapDataset` over chunk numbers, read by a pool of threads with
a bounded prefetch buffer): pure Python, no TensorFlow, random access in our own index order,
deterministic. `HostStream` keeps one chunk on the device ahead of the one running.

Multi-host: the indices of a global batch cost nothing to compute, so every process computes
all of them and reads only the rows of its own devices (device k of the pmap axis takes rows
[k * B / D, (k + 1) * B / D), as steps.shard; a process's devices are those of
jax.local_devices(), placed on the axis by their position in jax.devices()).
"""

from __future__ import annotations

import dataclasses
import math

import grain
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax import data, data_cache, image_sets, steps
from gan_jax.config import host_unsupported
from gan_jax.data_sources import DataError
from gan_jax.hashing import mix32_np
from gan_jax.spec import Spec

READ_THREADS = 2  # grain's reader threads: the reads are memory copies, not decoding
PREFETCH_CHUNKS = 2  # chunks read ahead on the host (one more waits on the device)
FLOAT_BYTES = 4  # an in-device set is float32
DEFAULT_DEVICE_BYTES = 2 * 2**30  # config.data.device_bytes's default


# ----------------------------------------------------------------------------- the host's set


class ScaledRows:
    """Rows of a uint8 image set scaled as in-device data (`data.scale_images`) when indexed:
    the `x` that code written for a data.Dataset (the collapse alarm's reference) reads."""

    def __init__(self, images_NxHxWxC, scale: str):
        self.images, self.scale = images_NxHxWxC, scale
        self.shape = images_NxHxWxC.shape

    def __getitem__(self, rows):
        return data.scale_images(self.images[np.asarray(rows)], self.scale)


@dataclasses.dataclass(frozen=True)
class HostImages:
    """A training set kept on the host, to be streamed."""

    images: np.ndarray  # uint8 [N, H, W, C]; a read-only memory map for cached image sets
    labels: np.ndarray  # int32 [N] (zeros where the set has none)
    scale: str  # data.SCALES
    flip: bool  # data.flip

    @property
    def x(self) -> ScaledRows:
        """The images as rows that scale to the config's range when indexed."""
        return ScaledRows(self.images, self.scale)


def load_host_images(data_config) -> HostImages:
    """The config's training set as `HostImages`: examples [start:stop], pixels uint8.
    Image sets from files are decoded into the cache on their first run and memory-mapped from
    it; MNIST is read from its IDX files into host memory. Raises DataError for a dataset that
    cannot stream (config.host_unsupported names why)."""
    name = data_config.name
    if image_sets.is_file_source(name):
        entry = image_sets.cache_entry(data_config)
        if data_cache.read_meta(entry) is None:
            image_sets.load_images(data_config)  # decodes once and writes the entry
        raw = data_cache.load(entry, mmap_mode="r")
        images, labels = raw.images, raw.labels
    elif name == "mnist":
        images, labels = data.load_mnist(data_config.get("dir") or None, "train")
        images = images[..., None]
    else:
        raise DataError(
            f"data.name={name!r} cannot be streamed from the host; data.placement='host' is"
            " for MNIST and image sets from files ('idx', 'folder', 'npz', 'tfds:<name>')"
        )
    start, stop = data_config.get("start", 0), data_config.get("stop", None)
    images = images[start:stop]
    n = images.shape[0]
    labels = np.zeros(n, np.int32) if labels is None else np.asarray(labels[start:stop], np.int32)
    return HostImages(images, labels, data_config.scale, bool(data_config.get("flip", False)))


def device_bytes_needed(data_config) -> int | None:
    """Bytes of the training set held on the device as float32, None for data that is never
    streamed (toys, text, Stacked MNIST). Builds an image set's cache entry if there is none."""
    name = data_config.name
    if image_sets.is_file_source(name):
        entry = image_sets.cache_entry(data_config)
        if data_cache.read_meta(entry) is None:
            image_sets.load_images(data_config)
        shape = data_cache.read_meta(entry)["shape"]
    elif name == "mnist":
        shape = [60_000, 28, 28, 1]
    else:
        return None
    n = len(range(shape[0])[data_config.get("start", 0) : data_config.get("stop", None)])
    return n * math.prod(shape[1:]) * FLOAT_BYTES


def resolve_placement(config) -> str:
    """'device' or 'host' for the config's training set: `data.placement`, where 'auto' streams
    only a set that can stream (config.host_unsupported) and whose float32 bytes exceed
    `data.device_bytes`. Logs the choice and why (as a warning when streaming, the unusual
    case, so that it shows in a run's output)."""
    d = config.data
    placement = d.get("placement", "auto")
    if placement != "auto":
        why = f"data.placement={placement!r}"
        chosen = placement
    else:
        limit = d.get("device_bytes", DEFAULT_DEVICE_BYTES)  # configs from before: the default
        needed = None if host_unsupported(config) else device_bytes_needed(d)
        chosen = "host" if needed is not None and needed > limit else "device"
        size = "cannot stream" if needed is None else f"takes {needed:,} bytes as float32"
        why = f"data.placement='auto' (the set {size}; data.device_bytes={limit:,})"
    where = "streamed from host memory" if chosen == "host" else "held on the device"
    (logging.warning if chosen == "host" else logging.info)("training set %s: %s", where, why)
    return chosen


# ----------------------------------------------------------------------------- the indices


def feistel_np(i_u32: np.ndarray, round_keys_4, half_bits: int) -> np.ndarray:
    """data._feistel in numpy on uint32 arrays, bit for bit."""
    mask = np.uint32((1 << half_bits) - 1)
    shift = np.uint32(half_bits)
    left, right = i_u32 >> shift, i_u32 & mask
    for k in round_keys_4:
        left, right = right, left ^ (mix32_np(right ^ np.uint32(k)) & mask)
    return (left << shift) | right


def shuffled_index_np(round_keys_4, rows_M: np.ndarray, n: int) -> np.ndarray:
    """data.shuffled_index(key, rows_M, n) in numpy, given the key's round keys
    (`jax.random.bits(key, (4,), uint32)`): row i of a random permutation of [0, n), by the
    same Feistel network and cycle walking. int64 [M]."""
    half_bits = max(1, (max(n - 1, 1).bit_length() + 1) // 2)
    x = feistel_np(np.asarray(rows_M, np.uint32), round_keys_4, half_bits)
    outside = x >= n
    while outside.any():
        x[outside] = feistel_np(x[outside], round_keys_4, half_bits)
        outside = x >= n
    return x.astype(np.int64)


@jax.jit
def _epoch_round_keys(key, epochs_E):
    return jax.vmap(lambda e: jax.random.bits(jax.random.fold_in(key, e), (4,), jnp.uint32))(
        epochs_E
    )


def epoch_round_keys(key, num_epochs: int) -> np.ndarray:
    """uint32 [num_epochs, 4]: the Feistel round keys of epochs 0.. of the stream `key`, as
    data.batch_from_dataset draws them (from fold_in(key, epoch)); computed on the CPU, for a
    power-of-two count of epochs so that runs of any length share a few compiles."""
    padded = 1 << max(4, (num_epochs - 1).bit_length())
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        key = jax.device_put(np.asarray(key))
        keys = np.asarray(_epoch_round_keys(key, jnp.arange(padded, dtype=jnp.int32)))
    return keys[:num_epochs]


def batch_examples(round_keys_Ex4, index_M: np.ndarray, n: int, batch_size: int) -> np.ndarray:
    """int64 [M, batch_size]: the example indices of real batches `index_M` of a stream whose
    epochs' round keys are `round_keys_Ex4`: what data.batch_from_dataset gathers on device."""
    index_M = np.asarray(index_M, np.int64)
    epoch_M, within_M = np.divmod(index_M, n // batch_size)
    rows_MxB = within_M[:, None] * batch_size + np.arange(batch_size)
    out_MxB = np.empty(rows_MxB.shape, np.int64)
    for epoch in np.unique(epoch_M):
        at = epoch_M == epoch
        out_MxB[at] = shuffled_index_np(round_keys_Ex4[epoch], rows_MxB[at].ravel(), n).reshape(
            -1, batch_size
        )
    return out_MxB


def stream_keys(rng) -> tuple[jax.Array, jax.Array]:
    """(the D batches' key, G's feature-matching batches' key) of a run's base key, as
    steps.d_batch and steps.g_batch derive them."""
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        data_key = steps.stream_key(jax.device_put(np.asarray(rng)), steps.DATA_STREAM)
        return data_key, jax.random.fold_in(data_key, steps.G_DATA_STREAM)


# ----------------------------------------------------------------------------- the stream


class HostStream:
    """The streamed real rows of a run from its current position on: chunk c holds iterations
    [c * T, (c + 1) * T) after the start (T = spec.scan_steps or 1), each iteration's
    `spec.d_steps` D batches and, with feature matching, G's batch, as data.StreamedChunk with
    leading axes [T, d_steps] and [T] (under pmap, first the local devices' axis, each device
    with its own rows only). `next_chunk()` returns the chunk already on the device;
    `prefetch()` starts the next one's transfer (call it once the current chunk is dispatched).

    The position comes from the state (`d_updates` and `step`, checkpointed), so a resumed run
    streams what an unbroken run would.
    """

    def __init__(self, host: HostImages, spec: Spec, state, num_steps: int):
        self.host, self.spec = host, spec
        self.iterations_per_chunk = spec.scan_steps or 1
        self.n = host.images.shape[0]
        self.d_start, self.g_start = int(np.asarray(state.d_updates)), int(np.asarray(state.step))
        remaining = max(0, num_steps - self.g_start)
        self.num_chunks = -(-remaining // self.iterations_per_chunk)
        d_key, g_key = stream_keys(state.rng)
        per_epoch = self.n // spec.batch_size
        last_d = self.d_start + remaining * spec.d_steps
        self.d_round_keys = epoch_round_keys(d_key, last_d // per_epoch + 1)
        self.feature_matching = spec.g_objective == "feature_matching"
        if self.feature_matching:
            self.g_round_keys = epoch_round_keys(g_key, (self.g_start + remaining) // per_epoch + 1)
        self.columns = self._local_columns()
        self.sharding = None
        if spec.axis_name is not None:
            mesh = Mesh(np.array(jax.local_devices()), ("local",))
            self.sharding = NamedSharding(mesh, PartitionSpec("local"))
        source = grain.MapDataset.range(self.num_chunks).map(self.read_chunk)
        options = grain.ReadOptions(num_threads=READ_THREADS, prefetch_buffer_size=PREFETCH_CHUNKS)
        self._chunks = iter(source.to_iter_dataset(options))
        self._taken = 0
        self._ahead = None

    def _local_columns(self) -> np.ndarray:
        """int [L, b]: the global-batch rows of this process's L devices (all B rows as one
        'device' off pmap)."""
        batch = self.spec.batch_size
        if self.spec.axis_name is None:
            return np.arange(batch)[None]
        everyone = jax.devices()
        local = batch // len(everyone)
        positions = [everyone.index(d) for d in jax.local_devices()]
        return np.stack([k * local + np.arange(local) for k in positions])

    def _rows(self, examples_xB: np.ndarray) -> data.StreamedRows:
        """The StreamedRows of global batches' example indices [..., B]: this process's
        columns only, read from the host set in increasing index order (a memory map reads
        pages in file order), laid out [L, ..., b, H, W, C] under pmap, [..., B, ...] off it."""
        cols = examples_xB[..., self.columns]  # [..., L, b]
        flat = cols.ravel()
        order = np.argsort(flat, kind="stable")
        images = np.empty((flat.size, *self.host.images.shape[1:]), np.uint8)
        images[order] = self.host.images[flat[order]]
        labels = self.host.labels[flat]
        images = images.reshape(*cols.shape, *self.host.images.shape[1:])
        labels = labels.reshape(cols.shape)
        lead = cols.ndim - 2  # the axes before [L, b]
        if self.spec.axis_name is None:
            images, labels = images[..., 0, :, :, :, :], labels[..., 0, :]
        else:
            images, labels = np.moveaxis(images, lead, 0), np.moveaxis(labels, lead, 0)
        return data.StreamedRows(images, labels, scale=self.host.scale, flip=self.host.flip)

    def read_chunk(self, chunk: int) -> data.StreamedChunk:
        """Chunk `chunk` (counted from the start position) as numpy arrays."""
        spec, T = self.spec, self.iterations_per_chunk
        iteration_T = chunk * T + np.arange(T)
        d_index = self.d_start + (iteration_T[:, None] * spec.d_steps + np.arange(spec.d_steps))
        examples = batch_examples(self.d_round_keys, d_index.ravel(), self.n, spec.batch_size)
        d = self._rows(examples.reshape(T, spec.d_steps, spec.batch_size))
        g = None
        if self.feature_matching:
            g_index = self.g_start + iteration_T
            g = self._rows(batch_examples(self.g_round_keys, g_index, self.n, spec.batch_size))
        return data.StreamedChunk(d=d, g=g)

    def _put(self, chunk: data.StreamedChunk):
        if self.sharding is None:
            return jax.device_put(chunk)
        return jax.device_put(chunk, self.sharding)

    def next_chunk(self) -> data.StreamedChunk:
        """The next chunk, on the device(s)."""
        if self._ahead is None:
            self.prefetch()
        chunk, self._ahead = self._ahead, None
        return chunk

    def prefetch(self) -> None:
        """Starts moving the next chunk (grain has read it ahead) to the device(s); a no-op at
        the end of the run or when one is already on its way."""
        if self._ahead is None and self._taken < self.num_chunks:
            self._ahead = self._put(next(self._chunks))
            self._taken += 1
