"""experiments/train_classifier.py on a tiny labelled npz: it writes weights where eval finds
them, and eval's classifier metrics go from skipped (with the command that trains the
classifier) to computed; FD of the reference images against themselves is 0."""

import importlib.util

import numpy as np
import pytest
from conftest import tiny_config
from experiments_loader import EXPERIMENTS

from gan_jax import classifier, data, dataset_classifier, evaluate, metrics

spec = importlib.util.spec_from_file_location(
    "train_classifier", EXPERIMENTS / "train_classifier.py"
)
train_classifier = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_classifier)

N, SHAPE = 96, (8, 8, 3)
IMAGE_SET_DEFAULT = ["score", "fd", "kid", "pr", "dc", "classes"]


@pytest.fixture(scope="module")
def labelled_npz(tmp_path_factory):
    """A run config on a 2-class npz: class 0 dark images, class 1 bright ones."""
    tmp = tmp_path_factory.mktemp("classifier")
    rng = np.random.default_rng(0)
    y = np.arange(N) % 2
    x = np.where(y[:, None, None, None], 160, 0) + rng.integers(0, 96, (N, *SHAPE))
    np.savez(tmp / "set.npz", x=x.astype(np.uint8), y=y)
    config = tiny_config()
    config.data.update(name="npz", dir=str(tmp / "set.npz"), cache_dir=str(tmp / "cache"))
    config.model.generator_kwargs = {"hidden": (8,), "output_activation": "sigmoid"}
    return config


def test_eval_skips_classifier_metrics_until_the_classifier_is_trained(labelled_npz):
    config = labelled_npz
    command = "train_classifier.py --config.data.name=npz --config.data.dir="
    names, skipped = evaluate.select_metrics(config, None, 200)
    assert names == [] and sorted(skipped) == sorted(IMAGE_SET_DEFAULT)
    assert all(command in reason for reason in skipped.values())
    with pytest.raises(ValueError, match=f"no classifier for data.name='npz'.*{command}"):
        evaluate.check_metrics(config, "fd", 200)
    assert "classifier_params" not in evaluate.reference_inputs(config, None)

    argv = [
        "train_classifier.py",
        *(f"--config.data.{k}={config.data[k]}" for k in ("name", "dir")),
    ]
    argv += [f"--config.data.cache_dir={config.data.cache_dir}", "--config.classifier.epochs=3"]
    argv += ["--config.classifier.batch_size=16", "--config.classifier.learning_rate=0.01"]
    result = train_classifier.main(argv)
    assert result["held_out_accuracy"] == 1.0 and result["classes"] == 2
    assert result["held_out_images"] + result["train_images"] == N
    assert result["weights"] == str(dataset_classifier.weights_path(config.data))

    names, skipped = evaluate.select_metrics(config, None, 200)
    assert names == IMAGE_SET_DEFAULT and skipped == {}
    inputs = evaluate.reference_inputs(config, None)
    params = inputs.pop("classifier_params")
    assert classifier.num_classes_of(params) == 2 and inputs["real"].shape == (N, *SHAPE)
    np.testing.assert_allclose(inputs["real"], data.load_dataset(config.data).x, atol=1e-6)
    out = metrics.compute_metrics("fd,classes", inputs["real"], classifier_params=params, **inputs)
    assert abs(out["fd"]) < 1e-3 and out["classes_covered"] == 2  # the real set against itself


def test_train_classifier_refuses_mnist_and_unlabelled_data(tmp_path):
    with pytest.raises(ValueError, match="'mnist' keeps its committed classifier"):
        train_classifier.main(["train_classifier.py", "--config.data.name=mnist"])
    np.savez(tmp_path / "plain.npz", x=np.zeros((4, 8, 8), np.uint8))
    argv = [
        "train_classifier.py",
        "--config.data.name=npz",
        f"--config.data.dir={tmp_path}/plain.npz",
    ]
    with pytest.raises(ValueError, match="has no labels"):
        train_classifier.main([*argv, f"--config.data.cache_dir={tmp_path}/cache"])
