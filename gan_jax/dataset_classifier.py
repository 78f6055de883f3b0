"""Where the classifier of a run's dataset lives, for the classifier-based metrics of `gan-jax
eval` (score, fd, kid, pr, dc, classes, accuracy).

MNIST keeps its committed classifier (`classifier.WEIGHTS_PATH`). An image set from files
(`data.name` 'idx', 'folder', 'npz' or 'tfds:<name>') has its own, trained on its images by

    python experiments/train_classifier.py --config.data.name=NAME [--config.data.dir=...]

and written beside the set's cache entry as `<entry>.classifier.msgpack`: the entry's key hashes
the source files and the preprocessing (`data.image_size`, `data.channels`), so a changed
dataset never meets a classifier trained on an older one, and every run on the same data (any
workdir, any `data.scale`) finds it. Other data (the toys, Stacked MNIST's own metrics) have
none.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from gan_jax import classifier, image_sets

SUFFIX = ".classifier.msgpack"


def has_own_classifier(data_config) -> bool:
    """Whether the config's data takes a classifier trained by experiments/train_classifier.py
    (the image sets from files)."""
    return image_sets.is_file_source(data_config.name)


def weights_path(data_config) -> Path | None:
    """The classifier weights file for the config's data: MNIST's committed one, an image set's
    beside its cache entry, None for other data. Raises DataError for a missing data path."""
    if data_config.name == "mnist":
        return classifier.WEIGHTS_PATH
    if has_own_classifier(data_config):
        return Path(image_sets.cache_entry(data_config) + SUFFIX)
    return None


def train_command(data_config) -> str:
    """The command that trains the classifier of the config's image set."""
    flags = [f"--config.data.name={data_config.name}"]
    for key in ("dir", "image_size", "channels", "cache_dir"):
        value = data_config.get(key)
        if value not in (None, ""):
            flags.append(f"--config.data.{key}={value}")
    return "python experiments/train_classifier.py " + " ".join(flags)


def missing_reason(data_config) -> str | None:
    """Why the config's image set has no classifier to use (None when it has one)."""
    path = weights_path(data_config)
    if path is None:
        return f"data.name={data_config.name!r} has no image classifier"
    if not path.exists():
        return (
            f"no classifier for data.name={data_config.name!r} (none at {path}); train one with"
            f" `{train_command(data_config)}`"
        )
    return None


def load(data_config):
    """The classifier params of the config's data (`classifier.load_classifier`, checked against
    the data's image shape and label count). Raises FileNotFoundError naming the command that
    trains it, ValueError for data without labels or classifier."""
    path = weights_path(data_config)
    if path is None or data_config.name == "mnist":
        if path is None:
            raise ValueError(missing_reason(data_config))
        return classifier.load_classifier(path)
    description = image_sets.describe(data_config)
    if description.num_classes is None:
        raise ValueError(f"data.name={data_config.name!r} has no labels to train a classifier on")
    return classifier.load_classifier(
        path, description.shape, description.num_classes, train_command(data_config)
    )


def save(data_config, params) -> Path:
    """Writes the classifier params where `load` finds them; returns the path."""
    path = weights_path(data_config)
    if path is None or data_config.name == "mnist":
        raise ValueError(
            f"data.name={data_config.name!r}: only image sets from files get a trained classifier"
            " here (MNIST's is committed: experiments/mnist_classifier.py)"
        )
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    classifier.save_classifier(params, tmp)
    os.replace(tmp, path)  # a reader sees the old weights or the new, never half a file
    return path
