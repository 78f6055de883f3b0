"""Image sets from files as a config names them: read (`data_sources`), prepared
(`image_prep`) and cached (`data_cache`), and described (shape, label count) without loading.

`data.name` is 'idx', 'folder' or 'npz' (reading `data.dir`) or 'tfds:<name>'; the options
`data.image_size` (center crop to a square and resize; None keeps the size), `data.channels`
(1 or 3; None keeps them) and `data.cache_dir` ('' for `data_cache.default_cache_dir()`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gan_jax import data_cache, data_sources, image_prep, text_data
from gan_jax.data_sources import DataError, RawImages


def is_tfds_name(name: str) -> bool:
    """Whether `name` is 'tfds:<a TFDS name>'."""
    return name.startswith(data_sources.TFDS_PREFIX) and len(name) > len(data_sources.TFDS_PREFIX)


def is_file_source(name: str) -> bool:
    """Whether `name` is an image set from files: 'idx', 'folder', 'npz' or a TFDS name other
    than a text set's ('tfds:lm1b' is text: `text_data`)."""
    tfds_images = is_tfds_name(name) and not text_data.is_text(name)
    return name in data_sources.LOCAL_SOURCES or tfds_images


def _options(data_config) -> tuple[str, str, int | None, int | None]:
    name = data_config.name
    path = name[len(data_sources.TFDS_PREFIX) :] if is_tfds_name(name) else data_config.get("dir")
    if not path:
        raise DataError(f"data.name={name!r} reads data.dir, which is empty; pass a path")
    return name, path, data_config.get("image_size"), data_config.get("channels")


def read_source(data_config) -> RawImages:
    """The config's image set decoded and prepared (no cache): uint8 [N, S, S, C]."""
    name, path, size, channels = _options(data_config)
    if name == "folder":  # resized and converted image by image while decoding
        return data_sources.load_folder(path, size, channels)
    if name == "idx":
        raw = data_sources.load_idx(path)
        raw = dataclasses.replace(raw, images=image_prep.resize_images(raw.images, size))
    elif name == "npz":
        raw = data_sources.load_npz(path)
        raw = dataclasses.replace(raw, images=image_prep.resize_images(raw.images, size))
    else:
        raw = data_sources.load_tfds(path, size)
    return dataclasses.replace(raw, images=image_prep.to_channels(raw.images, channels))


def _cache_entry(data_config) -> tuple[str, dict]:
    name, path, size, channels = _options(data_config)
    fingerprint = data_cache.fingerprint(name, path, size, channels)
    return data_cache.entry_dir(data_config.get("cache_dir", ""), fingerprint), fingerprint


def cache_entry(data_config) -> str:
    """The cache entry folder of the config's image set (it need not exist yet): what its key
    hashes is in `data_cache`. Raises DataError for a missing path or an empty folder."""
    return _cache_entry(data_config)[0]


def load_images(data_config) -> RawImages:
    """`read_source`, decoded once: later calls with the same files and options read the
    cached uint8 arrays instead."""
    entry, fingerprint = _cache_entry(data_config)
    raw = data_cache.load(entry)
    if raw is None:
        raw = read_source(data_config)
        data_cache.store(entry, raw, fingerprint)
    return raw


def _label_count(labels) -> int | None:
    return None if labels is None else int(labels.astype(np.int64).max(initial=-1)) + 1


@dataclasses.dataclass(frozen=True)
class Description:
    """What shapes a run on an image set: one image's [H, W, C] and the number of classes."""

    shape: tuple[int, int, int]  # one prepared image's [H, W, C]
    num_classes: int | None  # None: no labels


def describe(data_config) -> Description:
    """Shape and label count of the config's image set: from the cache entry when there is one,
    else from file headers (IDX, npz, image folders) or TFDS's metadata, decoding nothing;
    a TFDS set whose images vary in size without data.image_size is loaded (and cached)."""
    entry, _ = _cache_entry(data_config)
    meta = data_cache.read_meta(entry)
    if meta is not None:
        return Description(tuple(meta["shape"][1:]), meta["num_classes"])
    name, path, size, channels = _options(data_config)
    if name == "folder":
        scan = data_sources.scan_folder(path, size)
        width, height = scan.sizes[0]
        stored = (height, width, 1 if scan.gray else 3)
        num_classes = len(scan.class_names) or None
    elif name == "idx":
        stored = data_sources.idx_image_shape(path)
        _, label_file = data_sources.idx_files(path)
        labels = None if label_file is None else data_sources.read_idx(label_file)
        num_classes = _label_count(labels)
    elif name == "npz":
        stored = data_sources.npz_image_shape(path)
        with np.load(path) as arrays:
            labels = arrays["y"] if "y" in arrays.files else None
        num_classes = _label_count(labels)
    else:
        builder = data_sources.tfds_builder(path)
        stored = tuple(builder.info.features["image"].shape)
        num_classes = data_sources.tfds_label_count(builder)
        if None in stored and size is None:
            raw = load_images(data_config)
            return Description(tuple(raw.images.shape[1:]), raw.num_classes)
        stored = (*stored[:2], stored[2] if len(stored) == 3 else 1)
    height, width, have = stored
    square = (size, size) if size is not None else (height, width)
    return Description((*square, channels or have), num_classes)
