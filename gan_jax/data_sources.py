"""Image sets read from files: IDX directories, image folders, npz arrays and TFDS datasets.

Every reader returns a `RawImages` of uint8 pixels [N, H, W, C] and, when the source has them,
int32 labels, checking its input before decoding anything, so that a missing path, an empty
folder, a corrupt file or an unknown TFDS name stops a run before any compute with a message
naming the bad value and what is allowed. Pixels are converted (`image_prep`) while decoding;
scaling to floats and caching happen in `data` and `data_cache`.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import importlib.util
import math
import os
import socket
import struct as pystruct
import threading
import zipfile

import numpy as np
from PIL import Image, UnidentifiedImageError

from gan_jax import image_prep

LOCAL_SOURCES = ("idx", "folder", "npz")  # data.name values that read data.dir
TFDS_PREFIX = "tfds:"  # data.name = 'tfds:<TFDS name>', e.g. 'tfds:cifar10'
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(ValueError):
    """Raised for missing, truncated or malformed data, with a message saying how to fix it."""


@dataclasses.dataclass(frozen=True)
class RawImages:
    """A decoded image set: `images` uint8 [N, H, W, C]; `labels` int32 [N] in
    [0, num_classes), or None (and num_classes None) for unlabelled data."""

    images: np.ndarray
    labels: np.ndarray | None
    num_classes: int | None


def _labelled(images, labels) -> RawImages:
    if labels is None:
        return RawImages(images, None, None)
    labels = np.asarray(labels).astype(np.int32)
    if labels.min(initial=0) < 0:
        raise DataError(f"labels must be >= 0; found {labels.min()}")
    return RawImages(images, labels, int(labels.max(initial=-1)) + 1)


# ----------------------------------------------------------------------------- IDX


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (optionally gzipped), checking magic number, dims and length
    (LeCun's format of the MNIST files: big-endian, 0x0000, a type byte, the number of dims)."""
    if not os.path.exists(path):
        raise DataError(f"IDX file not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read IDX file {path}: {err} (truncated or corrupt?)") from err
    dtype, shape = _idx_header(raw, path)
    expected = 4 + 4 * len(shape) + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{path}: IDX file has {len(raw)} bytes but its header {shape} needs {expected}"
            " (truncated or corrupt)"
        )
    header = 4 + 4 * len(shape)
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_header(raw: bytes, path: str) -> tuple[np.dtype, tuple[int, ...]]:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(
            f"{path}: bad IDX magic number {raw[:4].hex() or '(empty file)'}; expected 0x0000"
            f" followed by a type byte in {[hex(t) for t in _IDX_DTYPES]} and the number of dims"
        )
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, need {4 + 4 * ndim})")
    return np.dtype(_IDX_DTYPES[raw[2]]), pystruct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])


def idx_files(data_dir: str, split: str = "train") -> tuple[str, str | None]:
    """(images file, labels file or None) of `split` in an IDX directory in MNIST's layout:
    one `*<split>-images-idx*` file (gzipped or not) and at most one `*<split>-labels-idx1*`."""
    if not os.path.isdir(data_dir):
        raise DataError(
            f"data.dir={data_dir!r} is not a directory; data.name='idx' needs a directory of IDX"
            f" files in MNIST's layout ({split}-images-idx3-ubyte.gz, {split}-labels-idx1-ubyte.gz)"
        )
    split_name = "t10k" if split == "test" else split
    found = {}
    for kind, pattern in (("images", "images-idx[34]"), ("labels", "labels-idx1")):
        found[kind] = sorted(glob.glob(os.path.join(data_dir, f"*{split_name}-{pattern}-ubyte*")))
        if len(found[kind]) > 1:
            raise DataError(f"{data_dir}: more than one {split} {kind} file: {found[kind]}")
    if not found["images"]:
        raise DataError(
            f"data.dir={data_dir!r} holds no {split_name}-images-idx3-ubyte[.gz] (or idx4) file;"
            f" found {sorted(os.listdir(data_dir))[:10]}"
        )
    return found["images"][0], (found["labels"] or [None])[0]


def idx_image_shape(data_dir: str) -> tuple[int, ...]:
    """One training image's [H, W, C] from the IDX header alone (no pixels read)."""
    path, _ = idx_files(data_dir)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read(4 + 4 * 4)
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read IDX file {path}: {err} (truncated or corrupt?)") from err
    _, shape = _idx_header(raw, path)
    return _image_dims(shape, path)


def _image_dims(shape, where: str) -> tuple[int, int, int]:
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
        raise DataError(
            f"{where}: images have shape {tuple(shape)}; expected [N, H, W] or [N, H, W, C] with"
            " C in (1, 3)"
        )
    return (*shape[1:3], shape[3] if len(shape) == 4 else 1)


def load_idx(data_dir: str, split: str = "train") -> RawImages:
    """An IDX image set (Fashion-MNIST, KMNIST, MNIST, ...): uint8 images [N, H, W] or
    [N, H, W, C] and, when its labels file is there, one label per image."""
    image_file, label_file = idx_files(data_dir, split)
    images = read_idx(image_file)
    _image_dims(images.shape, image_file)
    if images.dtype != np.uint8:
        raise DataError(f"{image_file}: images are {images.dtype}; expected uint8 (type 0x08)")
    images = images if images.ndim == 4 else images[..., None]
    labels = None if label_file is None else read_idx(label_file)
    if labels is not None and labels.shape != (images.shape[0],):
        raise DataError(
            f"{label_file}: expected {images.shape[0]} labels to match the images,"
            f" got shape {labels.shape}"
        )
    return _labelled(images, labels)


# ----------------------------------------------------------------------------- image folders


@dataclasses.dataclass(frozen=True)
class FolderScan:
    """An image folder's files and their headers, read without decoding any pixels."""

    paths: tuple[str, ...]
    labels: tuple[int, ...] | None  # the index of each file's class subfolder
    class_names: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]  # (width, height) per file
    gray: bool  # every file is grayscale


def _image_files(folder: str) -> list[str]:
    return sorted(
        os.path.join(root, f)
        for root, _, files in os.walk(folder)
        for f in files
        if f.lower().endswith(IMAGE_EXTENSIONS)
    )


def folder_files(data_dir: str) -> tuple[list[str], list[int] | None, list[str]]:
    """(image paths, labels or None, class names): with subfolders, each one a class (sorted
    names, label = position), else the flat folder's images without labels."""
    if not os.path.isdir(data_dir):
        raise DataError(
            f"data.dir={data_dir!r} is not a directory; data.name='folder' needs a folder of"
            f" {'/'.join(IMAGE_EXTENSIONS)} images, flat or with one subfolder per class"
        )
    entries = sorted(os.listdir(data_dir))
    classes = [e for e in entries if os.path.isdir(os.path.join(data_dir, e))]
    loose = [e for e in entries if e.lower().endswith(IMAGE_EXTENSIONS)]
    if classes and loose:
        raise DataError(
            f"data.dir={data_dir!r} mixes images ({loose[:3]}...) with subfolders ({classes[:3]}"
            "...); expected either a flat folder of images or one subfolder per class"
        )
    if not classes:
        paths, labels = [os.path.join(data_dir, e) for e in loose], None
    else:
        per_class = [_image_files(os.path.join(data_dir, c)) for c in classes]
        paths = [p for files in per_class for p in files]
        labels = [label for label, files in enumerate(per_class) for _ in files]
    if not paths:
        raise DataError(
            f"data.dir={data_dir!r} holds no images; expected files ending in {IMAGE_EXTENSIONS}"
            f" (found {entries[:10]})"
        )
    return paths, labels, classes


def scan_folder(data_dir: str, image_size: int | None) -> FolderScan:
    """The folder's files and image headers. Raises DataError for an unreadable image, and for
    images of different sizes when `image_size` (which resizes them all) is None."""
    paths, labels, classes = folder_files(data_dir)
    sizes, modes = [], set()
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes.append(image.size)
                modes.add(image.mode)
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"cannot read image {path}: {err}") from err
    distinct = sorted(set(sizes))
    if image_size is None and len(distinct) > 1:
        examples = {size: paths[sizes.index(size)] for size in distinct[:4]}
        listed = ", ".join(f"{w}x{h} ({p})" for (w, h), p in examples.items())
        raise DataError(
            f"data.dir={data_dir!r} holds images of {len(distinct)} sizes (width x height):"
            f" {listed}; set data.image_size=S to center-crop and resize them all to S x S"
        )
    gray = modes <= image_prep.GRAY_MODES
    return FolderScan(tuple(paths), labels and tuple(labels), tuple(classes), tuple(sizes), gray)


def decode_image(path: str, mode: str) -> Image.Image:
    """One image file decoded into PIL `mode` ('L' or 'RGB'), DataError if it is corrupt."""
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"cannot decode image {path}: {err} (corrupt file?)") from err


def load_folder(data_dir: str, image_size: int | None, channels: int | None) -> RawImages:
    """A folder of PNG/JPEG images decoded to uint8 [N, S, S, C] (`image_prep.prepare_image`:
    center crop to a square and resize when `image_size` is set; C = `channels`, else 1 when
    every image is grayscale and 3 otherwise), labelled by class subfolder when it has them."""
    scan = scan_folder(data_dir, image_size)
    mode = "L" if (channels or (1 if scan.gray else 3)) == 1 else "RGB"
    images = np.stack(
        [image_prep.prepare_image(decode_image(p, mode), image_size) for p in scan.paths]
    )
    images = images if images.ndim == 4 else images[..., None]
    labels = None if scan.labels is None else np.asarray(scan.labels, np.int32)
    return RawImages(images, labels, len(scan.class_names) or None)


# ----------------------------------------------------------------------------- npz arrays


def _npz_member(path: str, key: str) -> str:
    if not os.path.isfile(path):
        raise DataError(
            f"data.dir={path!r} is not a file; data.name='npz' needs a .npz file holding x"
            " [N, H, W] or [N, H, W, C] (uint8, or floats in [0, 1]) and optionally labels y [N]"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n.removesuffix(".npy") for n in archive.namelist()]
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"cannot read {path} as .npz: {err}") from err
    if key not in names:
        if key == "y":
            return ""
        raise DataError(f"{path} has no array {key!r}; it holds {names}, expected x (and y)")
    return key + ".npy"


def npz_image_shape(path: str) -> tuple[int, int, int]:
    """[H, W, C] of the npz's `x` from its array header alone (no pixels read)."""
    member = _npz_member(path, "x")
    with zipfile.ZipFile(path) as archive, archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, _ = read_header(f)
    return _image_dims(shape, f"{path}: x")


def load_npz(path: str) -> RawImages:
    """`x` [N, H, W] or [N, H, W, C] (uint8, or floats in [0, 1] rounded to 255 levels) and the
    optional labels `y` [N] (whole numbers >= 0) of a .npz file."""
    _npz_member(path, "x")
    with np.load(path) as arrays:
        x, y = arrays["x"], (arrays["y"] if "y" in arrays.files else None)
    _image_dims(x.shape, f"{path}: x")
    if np.issubdtype(x.dtype, np.floating):
        lo, hi = float(x.min(initial=0.0)), float(x.max(initial=0.0))
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"{path}: float x spans [{lo:g}, {hi:g}]; expected values in [0, 1]")
        x = np.round(x * 255.0).astype(np.uint8)
    elif x.dtype != np.uint8:
        raise DataError(f"{path}: x is {x.dtype}; expected uint8 or floats in [0, 1]")
    x = x if x.ndim == 4 else x[..., None]
    if y is not None and (y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer)):
        raise DataError(
            f"{path}: y has shape {y.shape} and dtype {y.dtype}; expected {x.shape[0]} integer"
            " labels (one per image in x)"
        )
    return _labelled(x, y)


# ----------------------------------------------------------------------------- TFDS


def _tfds_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the TFDS download host answers within `timeout_s`, DNS lookup included (which
    a socket timeout does not cover); TFDS itself retries for minutes when offline."""

    def connect():
        socket.create_connection(("storage.googleapis.com", 443), timeout=timeout_s).close()

    worker = threading.Thread(target=connect, daemon=True)
    result = []
    worker.run = lambda: result.append(_succeeds(connect))
    worker.start()
    worker.join(timeout_s)
    return bool(result and result[0])


def _succeeds(fn) -> bool:
    try:
        fn()
        return True
    except OSError:
        return False


def tfds_data_dir() -> str:
    """Where TFDS keeps prepared datasets: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def tfds_prepared_on_disk(name: str) -> bool:
    """Whether TFDS's data directory holds a prepared copy of `name` ('cifar10',
    'celeb_a/<config>', 'mnist:3.0.1'), looked up without importing TFDS."""
    base, _, version = name.partition(":")
    patterns = [os.path.join(tfds_data_dir(), base, version or "*", "dataset_info.json")]
    if not version:  # a dataset with configs: <name>/<config>/<version>/
        patterns.append(os.path.join(tfds_data_dir(), base, "*", "*", "dataset_info.json"))
    return any(glob.glob(p) for p in patterns)


def tfds_offline_message(name: str, local_hint: str) -> str:
    """Why TFDS cannot load `name` offline and the two ways out: `local_hint` (a local copy),
    or preparing it once on a machine with a network."""
    return (
        f"cannot load TFDS dataset {name!r}: TFDS has no prepared copy in {tfds_data_dir()}"
        f" (set TFDS_DATA_DIR to use another) and cannot reach the network. Either {local_hint},"
        " or prepare it once on a machine with a network: pip install 'gan_jax[tfds]' &&"
        f" python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}')"
        '.download_and_prepare()"'
    )


def check_tfds_available(name: str, local_hint: str) -> None:
    """DataError before TFDS's slow import and minutes of retries, when `name` is neither
    prepared on disk nor downloadable."""
    if not tfds_prepared_on_disk(name) and not _tfds_reachable():
        raise DataError(tfds_offline_message(name, local_hint))


TFDS_LOCAL_HINT = (
    "save the images as an image folder or .npz and pass --config.data.name=folder (or npz)"
    " --config.data.dir=PATH"
)


def tfds_builder(name: str):
    """The TFDS builder of `name`, after the offline check; DataError for an unknown name."""
    check_tfds_available(name, TFDS_LOCAL_HINT)
    import tensorflow_datasets as tfds  # slow to import: only when TFDS data is used

    try:
        return tfds.builder(name, data_dir=tfds_data_dir())
    except Exception as err:  # TFDS raises DatasetNotFoundError and others
        raise DataError(f"data.name='tfds:{name}': {err}") from err


def tfds_examples(builder, split: str):
    """All examples of `split` as dicts of numpy arrays: read through the array_record data
    source without TensorFlow when the copy is in that format, else through tf.data."""
    import tensorflow_datasets as tfds  # slow to import: only when TFDS data is used

    if not builder.is_prepared():
        builder.download_and_prepare()
    if str(builder.info.file_format).lower().endswith("array_record"):
        source = builder.as_data_source(split=split)
        return [source[i] for i in range(len(source))]
    if importlib.util.find_spec("tensorflow") is None:
        raise DataError(
            f"TFDS dataset {builder.name!r} is stored as {builder.info.file_format}, which TFDS"
            " reads through TensorFlow; install it with pip install -e '.[tfds]'"
        )
    return tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))


def tfds_to_raw(
    examples, name: str, num_classes: int | None, image_size: int | None = None
) -> RawImages:
    """Images (the `image` feature, [H, W] or [H, W, C] uint8 per example; center-cropped and
    resized to `image_size` when set) and labels (the `label` feature, when present) of TFDS
    examples: a list of dicts, or one dict of batched arrays as `as_dataset(batch_size=-1)`
    gives. `num_classes` (the label feature's count) overrides the count seen in the labels."""
    if isinstance(examples, dict):
        images, labels = examples.get("image"), examples.get("label")
        missing = images is None
    else:
        missing = not examples or "image" not in examples[0]
        images = None if missing else [e["image"] for e in examples]
        labels = None if missing or "label" not in examples[0] else [e["label"] for e in examples]
    if missing:
        found = sorted(examples if isinstance(examples, dict) else (examples or [{}])[0])
        raise DataError(f"TFDS dataset {name!r} has no 'image' feature; its features: {found}")
    if image_size is not None:
        images = [image_prep.resize_array(np.asarray(i), image_size) for i in images]
    shapes = sorted({np.shape(i) for i in images})
    if len(shapes) > 1:
        raise DataError(
            f"TFDS dataset {name!r} has images of {len(shapes)} shapes ({shapes[:4]}); set"
            " data.image_size=S to center-crop and resize them all to S x S"
        )
    images = np.asarray(np.stack(images) if isinstance(images, list) else images)
    images = images if images.ndim == 4 else images[..., None]
    raw = _labelled(images.astype(np.uint8), None if labels is None else np.asarray(labels))
    return dataclasses.replace(raw, num_classes=num_classes or raw.num_classes)


def tfds_label_count(builder) -> int | None:
    """The `label` feature's class count, None without a class label feature."""
    features = builder.info.features
    return getattr(features["label"], "num_classes", None) if "label" in features else None


def load_tfds(name: str, image_size: int | None = None, split: str = "train") -> RawImages:
    """A TFDS image dataset's `split` (e.g. name='cifar10'), failing fast when offline."""
    builder = tfds_builder(name)
    examples = tfds_examples(builder, split)
    return tfds_to_raw(examples, name, tfds_label_count(builder), image_size)
