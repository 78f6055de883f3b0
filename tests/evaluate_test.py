import json
import os

import numpy as np
import pytest
from conftest import tiny_config
from experiments_loader import load_experiment

from gan_jax import classifier, data, evaluate, train
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


def test_eval_of_the_2014_nets_on_mnist(tmp_path, mnist_dir):
    config = load_experiment("gan2014_mnist")
    config.data.update(dir=mnist_dir, stop=1000)
    config.train.update(num_steps=2, scan_steps=2, log_every=2, sample_every=0)
    train.train_and_evaluate(config, str(tmp_path))
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


def test_eval_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        evaluate.evaluate(str(tmp_path))
    train.write_config(tiny_config(), str(tmp_path))
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
