"""A disk cache of decoded data sets, so that only a source's first run pays for decoding.

An entry holds arrays as .npy files and a small `meta.json`, under a key that hashes the source
(its name, its path and each file's size and modification time, or the TFDS name and data dir)
and the preprocessing: change a file or an option and the key changes. Image sets
(`image_sets`) store the uint8 images [N, H, W, C] and the labels, keyed with
`data.image_size` and `data.channels`; text (`text_data`) stores its token ids and vocabulary,
keyed with its data options. The cache lives in `data.cache_dir`, by default
$GAN_JAX_DATA_CACHE, else $XDG_CACHE_HOME/gan_jax/datasets, else ~/.cache/gan_jax/datasets: one
place per user, shared by every workdir and sweep member. Entries are written to a temporary
folder and renamed into place, so a reader never sees half an entry.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import tempfile

import numpy as np

from gan_jax import data_sources
from gan_jax.data_sources import RawImages

CACHE_VERSION = 1  # bump when the decoding or preprocessing changes the pixels it writes


def default_cache_dir() -> str:
    """$GAN_JAX_DATA_CACHE, else $XDG_CACHE_HOME/gan_jax/datasets, else ~/.cache/..."""
    if os.environ.get("GAN_JAX_DATA_CACHE"):
        return os.environ["GAN_JAX_DATA_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "gan_jax", "datasets")


def file_stamps(paths, root: str) -> list:
    """[relative path, size, mtime in ns] of each file: what a key hashes of a source."""
    stamps = []
    for path in paths:
        stat = os.stat(path)
        stamps.append([os.path.relpath(path, root), stat.st_size, stat.st_mtime_ns])
    return stamps


def tfds_stamps(tfds_name: str) -> list:
    """The TFDS data dir and the stamps of the set's prepared copies' metadata, so that a
    re-prepared or new version makes a new entry."""
    root = data_sources.tfds_data_dir()
    infos = glob.glob(
        os.path.join(root, tfds_name.partition(":")[0], "**", "dataset_info.json"), recursive=True
    )
    return [root, *file_stamps(sorted(infos), root)]


def fingerprint(name: str, path: str, image_size: int | None, channels: int | None) -> dict:
    """What an image set's entry depends on (see the module docstring). Lists the source's
    files (no decoding), so a missing path or an empty folder raises its DataError here."""
    if name == "folder":
        paths, _, _ = data_sources.folder_files(path)
        files = file_stamps(paths, path)
    elif name == "idx":
        files = file_stamps([f for f in data_sources.idx_files(path) if f], path)
    elif name == "npz":
        data_sources.npz_image_shape(path)  # names a missing file or x now
        files = file_stamps([path], os.path.dirname(path))
    else:
        files = tfds_stamps(path)
    return {
        "version": CACHE_VERSION,
        "source": name,
        "path": os.path.abspath(path) if path else "",
        "files": files,
        "image_size": image_size,
        "channels": channels,
    }


def entry_dir(cache_dir: str, print_: dict) -> str:
    """The cache folder of one prepared set: its source's name made path-safe and a digest of
    its fingerprint `print_` (any change to the source or the preparation gives a new folder),
    under `cache_dir` (default: `default_cache_dir()`)."""
    digest = hashlib.sha256(json.dumps(print_, sort_keys=True).encode()).hexdigest()[:24]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", print_["source"])
    return os.path.join(cache_dir or default_cache_dir(), f"{slug}-{digest}")


def read_meta(entry: str) -> dict | None:
    """An entry's meta.json ({'shape': [N, H, W, C], 'num_classes': K or None, ...}), None
    when the entry does not exist."""
    try:
        with open(os.path.join(entry, "meta.json")) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def store_arrays(entry: str, arrays: dict, meta: dict) -> None:
    """Writes an entry (each array as NAME.npy, and meta.json) atomically; when another process
    wrote it first, keeps theirs."""
    parent = os.path.dirname(entry)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared cache dir's entries
        for name, array in arrays.items():
            np.save(os.path.join(tmp, f"{name}.npy"), array)
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f)
        os.rename(tmp, entry)
    except OSError:
        if read_meta(entry) is None:
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_arrays(entry: str, names, mmap_mode: str | None = None) -> tuple[dict, dict] | None:
    """(the arrays `names` -> ndarray, meta) of an entry, None when there is none; with
    `mmap_mode='r'` the arrays are read-only memory maps of the .npy files (nothing is read
    until indexed)."""
    meta = read_meta(entry)
    if meta is None:
        return None
    arrays = {
        name: np.load(os.path.join(entry, f"{name}.npy"), mmap_mode=mmap_mode) for name in names
    }
    return arrays, meta


def load(entry: str, mmap_mode: str | None = None) -> RawImages | None:
    """The cached image set of an entry, None when there is none; `mmap_mode='r'` maps the
    arrays instead of reading them (what `stream` reads rows from)."""
    meta = read_meta(entry)
    if meta is None:
        return None
    names = ["images", "labels"] if meta["labelled"] else ["images"]
    arrays, _ = load_arrays(entry, names, mmap_mode)
    return RawImages(arrays["images"], arrays.get("labels"), meta["num_classes"])


def store(entry: str, raw: RawImages, print_: dict) -> None:
    """Writes an image set's entry atomically; when another process wrote it first, keeps
    theirs."""
    arrays = {"images": raw.images}
    if raw.labels is not None:
        arrays["labels"] = raw.labels
    meta = {
        "shape": list(raw.images.shape),
        "num_classes": raw.num_classes,
        "labelled": raw.labels is not None,
        "fingerprint": print_,
    }
    store_arrays(entry, arrays, meta)
