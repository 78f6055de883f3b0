"""The MNIST classifier: input ranges, batching, training determinism, committed weights."""

from pathlib import Path

import flax.linen as nn
import jax
import numpy as np
import pytest

from gan_jax import classifier, data, metrics

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared/data/mnist"


def _images(seed, n):
    return np.random.default_rng(seed).random((n, 28, 28, 1)).astype(np.float32)


def test_max_pool_2x2_matches_flax_max_pool():
    x = np.random.default_rng(0).standard_normal((3, 8, 6, 5)).astype(np.float32)
    expected = nn.max_pool(x, (2, 2), (2, 2))
    np.testing.assert_array_equal(classifier.max_pool_2x2(x), expected)


def test_value_ranges_give_the_same_predictions():
    params = classifier.load_classifier()
    x_unit = np.round(_images(0, 8) * 255) / 255
    logits = classifier.classify(params, x_unit)
    for value_range, x in [("symmetric", 2 * x_unit - 1), ("uint8", np.round(x_unit * 255))]:
        np.testing.assert_allclose(classifier.classify(params, x, value_range), logits, atol=1e-5)
    with pytest.raises(ValueError, match="value_range"):
        classifier.classify(params, x_unit, "pm1")


def test_batching_does_not_change_outputs():
    params = classifier.load_classifier()
    x = _images(1, 37)
    logits_a, feats_a = classifier.logits_and_features(params, x, batch_size=37)
    logits_b, feats_b = classifier.logits_and_features(params, x[..., 0], batch_size=8)
    assert logits_b.shape == (37, 10) and feats_b.shape == (37, classifier.FEATURE_DIM)
    np.testing.assert_allclose(logits_b, logits_a, atol=1e-5)
    np.testing.assert_allclose(feats_b, feats_a, atol=1e-5)


def test_random_shift_translates_without_losing_a_centred_digit():
    x = np.zeros((16, 28, 28, 1), np.float32)
    x[:, 10:18, 12:16] = 1.0
    shifted = np.asarray(classifier.random_shift(jax.random.PRNGKey(0), x, 2))
    np.testing.assert_array_equal(shifted.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)))
    for img in shifted[..., 0]:
        rows, cols = np.nonzero(img)
        assert rows.max() - rows.min() == 7 and cols.max() - cols.min() == 3
        assert abs(rows.min() - 10) <= 2 and abs(cols.min() - 12) <= 2
    assert len({(int(np.nonzero(i)[0].min()), int(np.nonzero(i)[1].min())) for i in shifted}) > 1
    np.testing.assert_array_equal(classifier.random_shift(jax.random.PRNGKey(0), x, 0), x)


def test_training_is_deterministic_given_a_seed():
    # Starting from the committed weights skips compiling the initialiser (~5 s on this CPU).
    x, y, start = _images(2, 96), np.arange(96) % 10, classifier.load_classifier()
    run = lambda seed: classifier.train_classifier(
        x, y, seed=seed, epochs=1, batch_size=32, params=start
    )
    a, b, c = run(0), run(0), run(1)
    for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    assert not np.array_equal(a["Dense_0"]["kernel"], c["Dense_0"]["kernel"])
    assert not np.array_equal(a["Dense_0"]["kernel"], start["Dense_0"]["kernel"])


def test_save_load_round_trip(tmp_path):
    params = jax.tree.map(lambda p: p + 1.0, classifier.load_classifier())
    n_bytes = classifier.save_classifier(params, tmp_path / "w.msgpack")
    assert n_bytes < 2 * 2**20
    loaded = classifier.load_classifier(tmp_path / "w.msgpack")
    for leaf_a, leaf_b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded), strict=True):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    with pytest.raises(FileNotFoundError, match="mnist_classifier.py"):
        classifier.load_classifier(tmp_path / "missing.msgpack")


def test_committed_weights_are_small():
    assert classifier.WEIGHTS_PATH.stat().st_size < 2 * 2**20


@pytest.fixture(scope="module")
def mnist_test_logits():
    if not MNIST_DIR.exists():
        pytest.skip("real MNIST not available")
    images, labels = data.load_mnist_idx(str(MNIST_DIR), "test")
    logits = classifier.classify(classifier.load_classifier(), images, value_range="uint8")
    return np.asarray(logits), labels


def test_committed_classifier_accuracy_on_mnist_test(mnist_test_logits):
    logits, labels = mnist_test_logits
    assert np.mean(np.argmax(logits, axis=1) == labels) >= 0.993


def test_real_test_set_covers_all_classes_and_scores_near_ten(mnist_test_logits):
    logits, _ = mnist_test_logits
    hist = metrics.class_histogram(logits)
    assert hist["covered"] == 10
    assert hist["kl"] < 0.01  # MNIST test classes range from 8.9% to 11.4%
    score, _ = metrics.classifier_score(logits)
    assert 9.5 < score <= 10.0
