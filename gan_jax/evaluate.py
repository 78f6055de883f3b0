"""Evaluation of a trained generator: `gan-jax eval --workdir DIR --metrics parzen,fd,...`.

Restores the newest checkpoint with the workdir's own config, draws samples with a fixed seed,
and computes the named metrics of `gan_jax.metrics` against the right reference data: the MNIST
test set (and train[50000:51000] to choose the Parzen sigma, as in Goodfellow et al. 2014),
the true mixture for the 2-D toys, or for text the held-out split (`text_data`). Results go
to `eval.json`, written atomically.

An image set from files (data.name 'idx', 'folder', 'npz', 'tfds:...') is scored with its own
classifier (`dataset_classifier`; experiments/train_classifier.py trains it) against its
training images. Metrics that cannot give a valid figure for this run (too few samples, see
`metrics.MIN_SAMPLES`; a Parzen sigma chosen on images the run trained on; an image set whose
classifier has not been trained, the reason naming the command that trains it) are handled by one
rule: metrics named explicitly stop the run with a ValueError before any work; the default set
("all that fit") leaves them out and records why under `skipped` in eval.json. eval.json is
strict JSON: a non-finite value is written as null, with its reason under `non_finite`.
"""

from __future__ import annotations

import functools
import json
import math
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from gan_jax import (
    averaging,
    data,
    dataset_classifier,
    engine,
    hparams,
    image_sets,
    metrics,
    steps,
    text_data,
    workdir_lock,
)
from gan_jax.checkpoint import Checkpointer
from gan_jax.workdir import read_config

EVAL_SEED = 2014
PARZEN_VALID = (50000, 51000)  # the 2014 protocol's validation images
MNIST_TRAIN_SIZE = 60000
DEFAULT_METRICS = {
    "mnist": "parzen,score,fd,kid,pr,dc,classes",
    "stacked_mnist": "stacked",
    "ring8": "mixture",
    "grid25": "mixture",
    "gaussian_1d": "",
    "text": "ngram_js",
    "tfds:lm1b": "ngram_js",
}

# The metrics `reference_inputs` has reference data for, per dataset ('accuracy' also needs
# a conditional G; 'score' and 'classes' read single digits, not Stacked MNIST's three).
SUPPORTED_METRICS = {
    "mnist": ("parzen", "score", "fd", "kid", "pr", "dc", "classes", "accuracy", "d_error"),
    "stacked_mnist": ("stacked",),
    "ring8": ("mixture",),
    "grid25": ("mixture",),
    "gaussian_1d": (),
    "text": ("ngram_js", "words"),
    "tfds:lm1b": ("ngram_js", "words"),
}


# Metrics of the trained D rather than of G's samples (see `d_test_errors`).
D_METRICS = ("d_error",)
# An image set from files (data.name 'idx', 'folder', 'npz', 'tfds:...'): the metrics of its own
# classifier (`dataset_classifier`, trained by experiments/train_classifier.py), against up to
# REAL_IMAGES of its training images ('accuracy' also needs a conditional G).
IMAGE_SET_METRICS = ("score", "fd", "kid", "pr", "dc", "classes", "accuracy")
IMAGE_SET_DEFAULT = "score,fd,kid,pr,dc,classes"
REAL_IMAGES = 10000


def supported_metrics(name: str) -> tuple[str, ...]:
    """The metrics `reference_inputs` has reference data for on dataset `name`."""
    if image_sets.is_file_source(name):
        return IMAGE_SET_METRICS
    return SUPPORTED_METRICS.get(name, ())


def _fitting_names(config, names) -> list[str]:
    """The parsed metric names, or a ValueError naming those that do not fit the dataset."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    d_names = [n for n in names if n in D_METRICS]
    names = metrics.parse_metric_names([n for n in names if n not in D_METRICS]) + d_names
    conditional = config.model.get("conditioning", "none") != "none"
    classifier_d = config.model.discriminator_kwargs.get("num_classes", 0) > 0
    allowed = [
        name
        for name in supported_metrics(config.data.name)
        if (name != "accuracy" or conditional) and (name != "d_error" or classifier_d)
    ]
    unfit = [name for name in names if name not in allowed]
    if unfit:
        raise ValueError(
            f"metrics {unfit} do not apply to data.name={config.data.name!r} with"
            f" model.conditioning={config.model.get('conditioning', 'none')!r}; allowed: {allowed}"
        )
    return names


def parzen_overlap(config) -> str | None:
    """Why the run's Parzen figure would break the 2014 protocol, or None when it does not.

    Goodfellow et al. 2014 train on MNIST train[0:50000] and choose sigma on train[50000:51000];
    a run that trained on any of those validation images gets a sigma (and log-likelihood)
    not comparable with that protocol's rows.
    """
    if config.data.name != "mnist":
        return None
    start, stop, _ = slice(config.data.get("start", 0), config.data.get("stop")).indices(
        MNIST_TRAIN_SIZE
    )
    lo, hi = PARZEN_VALID
    if start < hi and lo < stop:
        return (
            f"parzen: the run trained on MNIST train[{start}:{stop}], which holds the images"
            f" train[{lo}:{hi}] that the 2014 protocol picks sigma on, so its Parzen figure is"
            f" not comparable with the protocol's (train with --config.data.stop={lo})"
        )
    return None


def metric_problems(config, names, num_samples: int) -> dict[str, str]:
    """name -> why, for the named metrics that cannot give a valid figure for this run."""
    problems = metrics.too_few_samples([n for n in names if n not in D_METRICS], num_samples)
    overlap = parzen_overlap(config) if "parzen" in names else None
    if overlap:
        problems["parzen"] = overlap
    if image_sets.is_file_source(config.data.name) and set(names) & set(IMAGE_SET_METRICS):
        missing = dataset_classifier.missing_reason(config.data)
        if missing:
            problems.update({n: missing for n in names if n in IMAGE_SET_METRICS})
    return problems


def check_metrics(config, names, num_samples: int | None = None) -> list[str]:
    """The parsed metric names, or a ValueError naming each that does not fit the config's
    dataset, is given fewer than its fewest samples (`metrics.MIN_SAMPLES`), or is a Parzen
    figure of a run that trained on the protocol's validation images (`parzen_overlap`).

    `num_samples` defaults to config.eval.num_samples, what training's evaluator draws.
    """
    names = _fitting_names(config, names)
    if num_samples is None:
        num_samples = config.eval.num_samples
    problems = metric_problems(config, names, num_samples)
    if problems:
        kept = [name for name in names if name not in problems]
        short = [name for name in problems if num_samples < metrics.MIN_SAMPLES[name][0]]
        way_out = f"leave {','.join(problems)} out" + (
            f" (keeping {','.join(kept)})" if kept else ""
        )
        if short:
            fewest = max(metrics.MIN_SAMPLES[name][0] for name in short)
            way_out = f"draw >= {fewest} samples or {way_out}"
        reasons = dict.fromkeys(problems.values())  # one line per reason, in order
        raise ValueError("; ".join(reasons) + f". To go on, {way_out}")
    return names


def select_metrics(config, metric_names: str | None, num_samples: int):
    """(names, skipped): `check_metrics` of the named metrics (skipped is {}), or, when none
    are named, the config's default metrics less those `metric_problems` rules out, which
    `skipped` maps to the reason."""
    if metric_names:
        return check_metrics(config, metric_names, num_samples), {}
    names = _fitting_names(config, default_metrics(config))
    skipped = metric_problems(config, names, num_samples)
    return [name for name in names if name not in skipped], skipped


NON_FINITE_REASONS = {
    "mixture_reverse_kl": "nan: no sample lies within 3 std of a centre (an empty histogram)",
}


def finite_record(record: dict) -> dict:
    """`record` with each non-finite float replaced by None and its reason under `non_finite`
    (strict JSON has no NaN or Infinity)."""
    reasons = {
        key: NON_FINITE_REASONS.get(key, f"the metric returned {value}")
        for key, value in record.items()
        if isinstance(value, float) and not math.isfinite(value)
    }
    if not reasons:
        return record
    out = {key: None if key in reasons else value for key, value in record.items()}
    return {**out, "non_finite": {**record.get("non_finite", {}), **reasons}}


# PacGAN's 2,500 points per 2-D mixture; 26,000 Stacked MNIST samples (VEEGAN, PacGAN).
DEFAULT_NUM_SAMPLES = {"ring8": 2500, "grid25": 2500, "stacked_mnist": 26000}


def default_metrics(config) -> str:
    """The dataset's metrics, plus 'accuracy' for a conditional G of MNIST digits or of an image
    set from files, and 'd_error' for a D with class logits (semi-supervised)."""
    names = DEFAULT_METRICS.get(config.data.name, "")
    conditional = config.model.get("conditioning", "none") != "none"
    if image_sets.is_file_source(config.data.name):
        return IMAGE_SET_DEFAULT + (",accuracy" if conditional else "")
    if config.data.name == "mnist" and conditional:
        names += ",accuracy"
    if config.data.name == "mnist" and config.model.discriminator_kwargs.get("num_classes", 0):
        names += ",d_error"
    return names


def load_workdir_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a workdir was trained with (workdir.read_config), or a ValueError when the
    directory has none."""
    config = read_config(workdir)
    if config is None:
        raise ValueError(f"{workdir!r} has no config.json: is it a gan-jax training workdir?")
    return config


def workdir_data_shape(config, workdir: str) -> tuple[int, ...]:
    """One example's shape for a run in `workdir`: for text, (L, V) of the vocabulary the run
    saved (vocab.json), so that restoring and sampling need no access to the text source;
    otherwise `data.data_shape`."""
    if text_data.is_text(config.data.name):
        vocab = text_data.read_vocab(workdir)
        if vocab is not None:
            return (config.data.seq_len, vocab.size)
    return tuple(data.data_shape(config.data))


def restore_state(config, workdir: str):
    """The newest checkpoint of `workdir`, or a clear error if there is none."""
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
    if checkpointer.latest_step() is None:
        raise ValueError(f"no checkpoint in {workdir}/checkpoints to evaluate")
    dataset_stub = None
    if config.model.get("output_bias_from_data") or config.model.discriminator_kwargs.get(
        "data_init"
    ):
        # The bias and a data-dependent init are overwritten by the checkpoint; init only needs
        # the data's shape (and 2 rows for an init that takes a std over them).
        dataset_stub = data.make_dataset(np.zeros((2, *data.data_shape(config.data)), np.float32))
    # Only the state's structure matters here, and schedules do not change it: the shapes are
    # traced, not computed (running the init op by op took ~10 s for a small DCGAN).
    spec = engine.make_spec(
        config, config.train.batch_size, data_shape=workdir_data_shape(config, workdir)
    )
    like = jax.eval_shape(
        functools.partial(engine.init, spec=spec),
        jax.random.PRNGKey(config.seed),
        hparams.from_config(config),
        dataset_stub,
    )
    return checkpointer.restore(like)


def generate_samples(config, state, num_samples: int, batch_size: int = 1000):
    """(samples, labels): `num_samples` samples of G in inference mode from a fixed seed; a
    conditional G makes sample i of class i mod K (labels is None for an unconditional G)."""
    generate = jax.jit(steps.generate)
    key = jax.random.PRNGKey(EVAL_SEED)
    conditional = config.model.get("conditioning", "none") != "none"
    labels = np.arange(num_samples) % config.model.num_classes if conditional else None
    out = []
    for start in range(0, num_samples, batch_size):
        size = min(batch_size, num_samples - start)
        z = steps.sample_z(
            jax.random.fold_in(key, start), size, config.model.z_dim, config.model.z_dist
        )
        y = None if labels is None else labels[start : start + size]
        out.append(np.asarray(generate(state, z, y)))
    return np.concatenate(out), labels


def reference_inputs(config, data_dir: str | None) -> dict:
    """The reference data each metric compares against, for the config's dataset."""
    name = config.data.name
    if name in data.TOY_MIXTURES:
        return {"mixture": name}
    if name == "stacked_mnist":
        return {"value_range": config.data.scale}
    if text_data.is_text(name):  # the run's own split; the vocabulary check is training's
        text = text_data.load_text(config.data)
        return {"real_tokens": text.heldout, "train_tokens": text.train}
    if image_sets.is_file_source(name):
        return image_set_inputs(config)
    if name != "mnist":
        return {}
    data_dir = data_dir or config.data.get("dir") or None
    test_images, test_labels = data.load_mnist(data_dir, "test")
    train_images, _ = data.load_mnist(data_dir, "train")
    scale = config.data.scale
    return {
        "value_range": scale,
        "real": data.scale_images(test_images, scale),
        "real_labels": test_labels,
        "parzen_valid": data.scale_images(train_images[slice(*PARZEN_VALID)], scale),
        "parzen_test": data.scale_images(test_images, scale),
    }


def image_set_inputs(config) -> dict:
    """An image set's reference data: REAL_IMAGES of its training images, evenly spaced, in
    the run's value range, and its classifier's params when it has one (without, the metrics
    that need it are left out or refused by `metric_problems`)."""
    images = image_sets.load_images(config.data).images
    real = images[:: max(1, len(images) // REAL_IMAGES)][:REAL_IMAGES]
    inputs = {"value_range": config.data.scale, "real": data.scale_images(real, config.data.scale)}
    if dataset_classifier.missing_reason(config.data) is None:
        inputs["classifier_params"] = dataset_classifier.load(config.data)
    return inputs


@jax.jit
def _class_predictions(d, params, x_BxHxWxC):
    out = steps.apply_player(d, params, x_BxHxWxC, train=False)[0]
    return steps.split_outputs(out)[1].argmax(-1)


def d_test_errors(config, state, x_Nx, y_N, batch_size: int = 1000) -> dict:
    """D as a K-class classifier (a semi-supervised D, Salimans et al. 2016, Sec. 5): its test
    errors out of N = len(y_N) (`d_errors`, the paper's Table 1 unit) and their rate
    (`d_error`), argmax of the class logits in inference mode; with `train.d_ema_decay` also
    with D's averaged params (`d_errors_ema`, `d_error_ema`), which the authors report."""
    which = {"": state.d.params}
    if config.train.d_ema_decay:
        which["_ema"] = averaging.ema_params(state.d, config.train.d_ema_decay)
    out = {}
    for suffix, params in which.items():
        wrong = 0
        for start in range(0, len(y_N), batch_size):
            predicted = _class_predictions(state.d, params, x_Nx[start : start + batch_size])
            wrong += int(np.sum(np.asarray(predicted) != y_N[start : start + batch_size]))
        out[f"d_errors{suffix}"] = wrong
        out[f"d_error{suffix}"] = wrong / len(y_N)
    return out


def metric_inputs(inputs: dict) -> dict:
    """`reference_inputs` less what only 'd_error' reads (the test labels), i.e. the keyword
    arguments `metrics.compute_metrics` takes."""
    return {k: v for k, v in inputs.items() if k != "real_labels"}


def evaluate_state(config, state, names, num_samples: int, inputs: dict) -> dict:
    """The named metrics of the state's generator against prepared reference `inputs`; the
    'd_error' of its D (`d_test_errors`) on the reference test images."""
    out = {}
    if "d_error" in names:
        out = d_test_errors(config, state, inputs["real"], inputs["real_labels"])
        names = [name for name in names if name != "d_error"]
    inputs = metric_inputs(inputs)
    if not names:
        return out
    samples, labels = generate_samples(config, state, num_samples)
    if labels is not None:
        inputs = {**inputs, "labels": labels}
    return {**out, **metrics.compute_metrics(names, samples, seed=EVAL_SEED, **inputs)}


@workdir_lock.holding("eval", create=False)  # one run at a time writes a workdir
def evaluate(
    workdir: str,
    metric_names: str | None = None,
    num_samples: int | None = None,
    data_dir: str | None = None,
) -> dict:
    """Evaluates the newest checkpoint in `workdir` and writes `eval.json`.

    Named metrics that cannot give a valid figure raise ValueError before any work; unnamed
    (default) ones are left out, with the reason under the record's `skipped` (see the module
    docstring). Non-finite values are written as null, with the reason under `non_finite`.
    """
    config = load_workdir_config(workdir)
    if num_samples is None:
        num_samples = DEFAULT_NUM_SAMPLES.get(config.data.name, 10000)
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(
            f"num_samples = {num_samples!r} is not allowed; expected a whole number > 0"
        )
    names, skipped = select_metrics(config, metric_names, num_samples)
    for reason in skipped.values():
        logging.warning("left out of the default metrics: %s", reason)
    inputs = reference_inputs(config, data_dir)  # data errors surface before any compile
    if text_data.is_text(config.data.name):
        text_data.check_vocab(workdir, text_data.load_text(config.data).vocab)
    state = restore_state(config, workdir)
    results = evaluate_state(config, state, names, num_samples, inputs)
    record = {"step": int(state.step), "num_samples": num_samples, **results}
    if skipped:
        record["skipped"] = skipped
    record = finite_record(record)
    path = os.path.join(workdir, "eval.json")
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=2, allow_nan=False)
    os.replace(path + ".tmp", path)
    return record
