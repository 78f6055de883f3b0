"""Trains the project's classifier CNN (`gan_jax.classifier.MnistCNN`, sized from the data) on
a labelled image set's training split and writes its weights where `gan-jax eval` finds them for
every run on that dataset (`gan_jax.dataset_classifier`: beside the set's cache entry), so the
classifier-based metrics (score, fd, kid, pr, dc, classes, accuracy) apply to it.

Run from the repository root, with the data options of the runs to evaluate:

    python experiments/train_classifier.py --config.data.name=tfds:cifar10
    python experiments/train_classifier.py --config.data.name=npz --config.data.dir=FILE.npz
    python experiments/train_classifier.py --config.data.name=folder --config.data.dir=DIR \
        --config.data.image_size=32

It holds out a random `classifier.validation_fraction` of the images (fixed by
`classifier.seed`), trains on the rest (Adam with cosine decay, random shifts of up to
`classifier.max_shift` pixels, dropout 0.25 on the features; the MNIST recipe of
experiments/mnist_classifier.py), prints the held-out accuracy after each epoch and a JSON line
at the end. MNIST keeps its committed classifier (experiments/mnist_classifier.py). Deterministic
given the seed. `data.scale` does not matter: the classifier sees pixels in [0, 1] and eval maps
samples there.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from gan_jax import classifier, data, dataset_classifier, image_sets  # noqa: E402
from gan_jax.config import default_config  # noqa: E402


def default_settings() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.data = default_config().data
    c.data.name = "npz"
    c.classifier = ml_collections.ConfigDict(
        {
            "seed": 0,
            "epochs": 8,
            "batch_size": 128,
            "learning_rate": 1e-3,
            "max_shift": 2,
            "validation_fraction": 0.1,
        }
    )
    return c


def check_settings(c) -> None:
    """ValueError naming the first bad value, before any data is read."""
    name = c.data.name
    if name == "mnist":
        raise ValueError(
            "config.data.name = 'mnist' keeps its committed classifier; retrain it with"
            " `python experiments/mnist_classifier.py` (or use data.name='idx' for other IDX data)"
        )
    if not dataset_classifier.has_own_classifier(c.data):
        raise ValueError(
            f"config.data.name = {name!r} is not allowed; expected an image set from files:"
            f" one of {list(data.FILE_DATASETS)} or 'tfds:<name>'"
        )
    k = c.classifier
    for key in ("epochs", "batch_size"):
        if isinstance(k[key], bool) or not isinstance(k[key], int) or k[key] < 1:
            raise ValueError(f"config.classifier.{key} = {k[key]!r} is not allowed; expected >= 1")
    if not 0.0 < k.validation_fraction < 1.0:
        raise ValueError(
            f"config.classifier.validation_fraction = {k.validation_fraction!r} is not allowed;"
            " expected a number in (0, 1)"
        )


def split(num: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows) of a random permutation of num rows fixed by the seed."""
    order = np.random.default_rng(seed).permutation(num)
    held = max(1, int(round(num * fraction)))
    return np.sort(order[held:]), np.sort(order[:held])


def train(c) -> dict:
    """Trains and saves the classifier of `c.data`; returns the JSON summary."""
    check_settings(c)
    raw = image_sets.load_images(c.data)
    if raw.labels is None:
        raise ValueError(
            f"data.name={c.data.name!r} (data.dir={c.data.dir!r}) has no labels: a classifier"
            " needs them (class subfolders, an npz with y, an IDX labels file, a TFDS 'label')"
        )
    x = data.scale_images(raw.images, "unit")
    y = raw.labels.astype(np.int32)
    k = c.classifier
    rows_train, rows_held = split(len(x), k.validation_fraction, k.seed)
    start = time.time()

    def on_epoch(epoch, params, loss):
        acc = classifier.accuracy(params, x[rows_held], y[rows_held])
        print(f"epoch {epoch + 1}/{k.epochs} loss {loss:.4f} held_out_acc {acc:.4f}", flush=True)

    params = classifier.train_classifier(
        x[rows_train],
        y[rows_train],
        num_classes=raw.num_classes,
        seed=k.seed,
        epochs=k.epochs,
        batch_size=min(k.batch_size, len(rows_train)),
        learning_rate=k.learning_rate,
        max_shift=k.max_shift,
        on_epoch=on_epoch,
    )
    path = dataset_classifier.save(c.data, params)
    return {
        "held_out_accuracy": classifier.accuracy(params, x[rows_held], y[rows_held]),
        "train_images": len(rows_train),
        "held_out_images": len(rows_held),
        "classes": raw.num_classes,
        "train_wall_s": round(time.time() - start, 1),
        "weights": str(path),
    }


def main(argv) -> dict:
    flag_values = flags.FlagValues()
    settings = config_flags.DEFINE_config_dict(
        "config", default_settings(), flag_values=flag_values, sys_argv=argv
    )
    flag_values(argv)
    result = train(settings.value)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv)
