import json
import math
import os
import shutil

import numpy as np
import pytest
from conftest import MNIST_DIR, tiny_config
from experiments_loader import load_experiment

from gan_jax import classifier, data, evaluate, train
from gan_jax import workdir as workdir_lib
from gan_jax.writers import read_metrics


def test_eval_writes_eval_json_and_is_deterministic(tmp_path):
    train.train_and_evaluate(tiny_config(num_steps=8), str(tmp_path))
    first = evaluate.evaluate(str(tmp_path), "mixture", num_samples=500)
    with open(tmp_path / "eval.json") as f:
        assert json.load(f) == first
    assert first["step"] == 8 and first["num_samples"] == 500
    # The record is the mixture metric of these 500 samples, recomputed here by hand: each
    # sample's nearest ring centre counts as a mode when the sample lies within 3 std of it.
    config = evaluate.load_workdir_config(str(tmp_path))
    samples, _ = evaluate.generate_samples(
        config, evaluate.restore_state(config, str(tmp_path)), 500
    )
    centers, std = data.mixture_spec("ring8")
    dist = np.linalg.norm(samples[:, None] - centers[None], axis=-1)
    close = dist.min(axis=1) < 3 * std
    assert first["mixture_modes"] == len(np.unique(dist.argmin(axis=1)[close]))
    assert first["mixture_high_quality_pct"] == pytest.approx(100 * close.mean())
    assert evaluate.evaluate(str(tmp_path), "mixture", num_samples=500) == first


def _strict_json(path):
    """The file's JSON, read as strict readers do: NaN and Infinity are errors."""

    def no_constants(name):
        raise ValueError(f"{path} holds {name}, which strict JSON has no word for")

    with open(path) as f:
        return json.load(f, parse_constant=no_constants)


@pytest.fixture(scope="module")
def gan2014_workdir(tmp_path_factory):
    """A 2-step run of the 2014 nets on MNIST train[0:1000], shared by this module's tests."""
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {MNIST_DIR}")
    workdir = tmp_path_factory.mktemp("gan2014")
    config = load_experiment("gan2014_mnist")
    config.data.update(dir=str(MNIST_DIR), stop=1000)
    config.train.update(num_steps=2, scan_steps=2, log_every=2, sample_every=0)
    train.train_and_evaluate(config, str(workdir))
    return workdir


@pytest.fixture
def small_reference(monkeypatch):
    """`reference_inputs` with 500 test images instead of 10,000, for speed: the metrics' own
    tests check their values; these tests check what eval chooses and writes."""
    full = evaluate.reference_inputs

    def first_500(config, data_dir):
        inputs = full(config, data_dir)
        return {k: v[:500] if k in ("real", "parzen_test") else v for k, v in inputs.items()}

    monkeypatch.setattr(evaluate, "reference_inputs", first_500)


def test_eval_of_the_2014_nets_on_mnist(gan2014_workdir):
    tmp_path = gan2014_workdir
    record = evaluate.evaluate(str(tmp_path), "parzen,classes", num_samples=200)
    assert np.isfinite(record["parzen_ll"]) and record["parzen_ll_stderr"] > 0
    assert np.isclose(np.logspace(-1, 0, 10), record["parzen_sigma"]).any()
    # classes_covered counts the distinct digits the classifier sees in the same 200 samples.
    config = evaluate.load_workdir_config(str(tmp_path))
    samples, _ = evaluate.generate_samples(
        config, evaluate.restore_state(config, str(tmp_path)), 200
    )
    predicted = np.argmax(classifier.classify(classifier.load_classifier(), samples, "unit"), -1)
    assert record["classes_covered"] == len(np.unique(predicted))
    counts = np.bincount(predicted, minlength=10) / 200
    seen = counts[counts > 0]
    assert record["classes_kl"] == pytest.approx(np.sum(seen * np.log(10 * seen)), abs=1e-6)


# make test-all: in the default run test_eval_of_the_2014_nets_on_mnist covers eval end to
# end and metrics_test the class accuracy.
@pytest.mark.slow
def test_eval_of_a_conditional_dcgan_scores_each_sample_against_its_label(tmp_path, mnist_dir):
    config = load_experiment("conditional_mnist")
    config.data.update(dir=mnist_dir, stop=500)
    config.model.generator_kwargs = {"base_features": 8, "output_activation": "tanh"}
    config.model.discriminator_kwargs = {"base_features": 8}
    config.train.update(num_steps=2, scan_steps=2, log_every=2, sample_every=0)
    train.train_and_evaluate(config, str(tmp_path))
    assert "accuracy" in evaluate.default_metrics(config)
    state = evaluate.restore_state(config, str(tmp_path))
    samples, labels = evaluate.generate_samples(config, state, 25, 10)
    assert samples.shape == (25, 28, 28, 1) and samples.min() >= -1 and samples.max() <= 1
    np.testing.assert_array_equal(labels, np.arange(25) % 10)
    record = evaluate.evaluate(str(tmp_path), "accuracy,classes", num_samples=100)
    # The same 100 samples, classified here and scored against the class each was made for.
    samples, labels = evaluate.generate_samples(config, state, 100)
    predicted = np.argmax(
        classifier.classify(classifier.load_classifier(), samples, "symmetric"), -1
    )
    assert record["class_accuracy"] == pytest.approx(np.mean(predicted == labels))


def test_stacked_mnist_runs_default_to_the_1000_mode_metric():
    config = load_experiment("stacked_mnist_dcgan")
    assert evaluate.default_metrics(config) == "stacked"
    assert evaluate.DEFAULT_NUM_SAMPLES["stacked_mnist"] == 26000
    assert evaluate.reference_inputs(config, None) == {"value_range": "symmetric"}


def test_training_logs_configured_metrics(tmp_path):
    config = tiny_config(num_steps=8)
    config.eval.update(every=4, metrics="mixture", num_samples=300)
    train.train_and_evaluate(config, str(tmp_path))
    records = read_metrics(str(tmp_path))
    assert all("mixture_modes" in r and "mixture_high_quality_pct" in r for r in records)


def test_named_metrics_with_too_few_samples_stop_before_any_work(gan2014_workdir, monkeypatch):
    def no_work(*args):
        raise AssertionError("eval started work before refusing the sample count")

    monkeypatch.setattr(evaluate, "reference_inputs", no_work)
    monkeypatch.setattr(evaluate, "restore_state", no_work)
    eval_json = gan2014_workdir / "eval.json"
    before = eval_json.read_text() if eval_json.exists() else None
    with pytest.raises(
        ValueError,
        match=r"^score needs >= 10 samples \(one per split of its 10 splits\); got 3; pr needs"
        r" >= 4 samples .*; got 3\. To go on, draw >= 10 samples or leave score,pr out"
        r" \(keeping parzen,dc\)$",
    ):
        evaluate.evaluate(str(gan2014_workdir), "parzen,score,pr,dc", num_samples=3)
    with pytest.raises(ValueError, match=r"fd needs >= 2 samples .*; got 1"):
        evaluate.evaluate(str(gan2014_workdir), "fd", num_samples=1)
    # Training's evaluator is checked against config.eval.num_samples at the start of a run.
    config = load_experiment("gan2014_mnist")
    config.eval.update(every=500, metrics="kid,classes", num_samples=1)
    with pytest.raises(ValueError, match=r"kid needs >= 2 samples .*; got 1"):
        evaluate.check_metrics(config, config.eval.metrics)
    assert (eval_json.read_text() if eval_json.exists() else None) == before


@pytest.mark.parametrize(
    "num_samples, left_out", [(5, ["score"]), (1, ["score", "fd", "kid", "pr"])]
)
def test_default_metrics_leave_out_those_with_too_few_samples(
    gan2014_workdir, small_reference, num_samples, left_out
):
    # The runs: 5 samples failed in top_k (a fake k-NN radius density never reads),
    # 1 in FD's eigenvalues, 8 wrote "score": NaN. Now each metric runs or says why not.
    record = evaluate.evaluate(str(gan2014_workdir), num_samples=num_samples)
    assert record == _strict_json(gan2014_workdir / "eval.json")
    assert record["skipped"] == {
        name: f"{name} needs >= {evaluate.metrics.MIN_SAMPLES[name][0]} samples"
        f" ({evaluate.metrics.MIN_SAMPLES[name][1]}); got {num_samples}"
        for name in left_out
    }
    keys = {"parzen_ll", "density", "coverage", "classes_covered"}
    if "fd" not in left_out:
        keys |= {"fd", "kid", "precision", "recall"}
    assert keys <= set(record) and not {"score", "score_std"} & set(record)
    assert all(math.isfinite(record[k]) for k in keys)


def test_eval_json_is_strict_json_with_reasons_for_non_finite_values(tmp_path, monkeypatch):
    train.train_and_evaluate(tiny_config(num_steps=4), str(tmp_path))
    # A G whose samples all lie far from every ring centre: the reverse KL of an empty
    # histogram is nan, which strict JSON cannot hold.
    monkeypatch.setattr(
        evaluate, "generate_samples", lambda config, state, n: (np.full((n, 2), 50.0), None)
    )
    record = evaluate.evaluate(str(tmp_path), "mixture", num_samples=100)
    assert record == _strict_json(tmp_path / "eval.json")
    assert record["mixture_reverse_kl"] is None and record["mixture_modes"] == 0
    assert record["non_finite"] == {
        "mixture_reverse_kl": "nan: no sample lies within 3 std of a centre (an empty histogram)"
    }
    assert evaluate.finite_record({"a": 1.0, "b": -math.inf}) == {
        "a": 1.0,
        "b": None,
        "non_finite": {"b": "the metric returned -inf"},
    }


@pytest.mark.parametrize(
    "start, stop, overlaps",
    [
        (0, None, True),
        (0, 50000, False),
        (0, 50001, True),
        (50999, None, True),
        (51000, None, False),
        (0, -9000, True),
        (0, -10000, False),
    ],
)
def test_parzen_overlap_of_the_training_slice(start, stop, overlaps):
    config = load_experiment("keras_mlp_mnist")
    config.data.update(start=start, stop=stop)
    reason = evaluate.parzen_overlap(config)
    assert (reason is not None) == overlaps
    if overlaps:
        shown = slice(start, stop).indices(60000)[:2]
        assert f"trained on MNIST train[{shown[0]}:{shown[1]}]" in reason
        assert "train[50000:51000]" in reason and "--config.data.stop=50000" in reason


@pytest.mark.parametrize(
    "name",
    ["gan2014_mnist", "keras_mlp_mnist", "lsgan_mnist", "wgan_gp_mnist", "conditional_mnist"],
)
def test_mnist_experiments_train_off_the_parzen_validation_images(name):
    config = load_experiment(name)
    assert evaluate.parzen_overlap(config) is None
    assert config.data.stop == 50000


def test_eval_refuses_a_named_parzen_of_a_run_that_trained_on_its_validation_images(tmp_path):
    config = load_experiment("keras_mlp_mnist")
    config.data.stop = None  # the README's old keras, lsgan and wgan_gp rows: train[0:60000]
    workdir_lib.write_config(config, str(tmp_path))
    with pytest.raises(
        ValueError,
        match=r"^parzen: the run trained on MNIST train\[0:60000\], which holds the images"
        r" train\[50000:51000\] .*--config.data.stop=50000\)\. To go on, leave parzen out"
        r" \(keeping classes\)$",
    ):
        evaluate.evaluate(str(tmp_path), "parzen,classes", num_samples=100)
    names, skipped = evaluate.select_metrics(config, None, 10000)
    assert names == ["score", "fd", "kid", "pr", "dc", "classes"]
    assert skipped == {"parzen": evaluate.parzen_overlap(config)}


def test_default_eval_of_an_overlapping_run_records_why_parzen_is_missing(
    gan2014_workdir, small_reference, tmp_path
):
    workdir = tmp_path / "overlapping"
    shutil.copytree(gan2014_workdir, workdir)
    with open(workdir / "config.json") as f:
        saved = json.load(f)
    saved["data"].update(start=50500, stop=51500)  # as if it trained on train[50500:51500]
    with open(workdir / "config.json", "w") as f:
        json.dump(saved, f)
    record = evaluate.evaluate(str(workdir), num_samples=10)
    assert record == _strict_json(workdir / "eval.json")
    assert list(record["skipped"]) == ["parzen"]
    assert "train[50500:51500]" in record["skipped"]["parzen"]
    assert not [k for k in record if k.startswith("parzen")]
    assert math.isfinite(record["score"]) and math.isfinite(record["fd"])


def test_eval_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        evaluate.evaluate(str(tmp_path))
    workdir_lib.write_config(tiny_config(), str(tmp_path))
    with pytest.raises(ValueError, match="no checkpoint"):
        evaluate.evaluate(str(tmp_path), "mixture")
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate.evaluate(str(tmp_path), "fid_infinity")
    # Checked before the (missing) checkpoint is looked for: a misfit costs no restore.
    with pytest.raises(ValueError, match=r"metrics \['fd'\] do not apply to data.name='ring8'"):
        evaluate.evaluate(str(tmp_path), "mixture,fd")
    with pytest.raises(ValueError, match=r"num_samples = 0 .*> 0"):
        evaluate.evaluate(str(tmp_path), "mixture", num_samples=0)
    assert not os.path.exists(tmp_path / "eval.json")
