"""Stacked MNIST (Metz et al. 2017): three random digits as the channels of one image."""

import jax
import numpy as np
from ml_collections import ConfigDict

from gan_jax import data, metrics


def test_stack_digits_puts_the_drawn_digits_in_the_channels_and_labels_the_mode():
    digits = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    labels = np.arange(10)[::-1]  # digit image i is labelled 9 - i
    key = jax.random.PRNGKey(0)
    x, modes = data.stack_digits(key, digits, labels, 50)
    assert x.shape == (50, 2, 2, 3) and x.dtype == np.uint8
    channels = x[:, 0, 0, :].astype(int)  # the image index drawn for each channel
    np.testing.assert_array_equal(modes, (9 - channels) @ np.array([100, 10, 1]))
    same_x, same_modes = metrics.stacked_mnist(key, digits, labels, 50)  # the evaluation's draw
    np.testing.assert_array_equal(x, same_x)
    np.testing.assert_array_equal(modes, same_modes)


def test_stacked_mnist_dataset_from_idx_files(tmp_path):
    from data_test import write_idx

    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (30, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 30))
    config = ConfigDict(
        {"name": "stacked_mnist", "dir": str(tmp_path), "scale": "symmetric", "start": 0,
         "stop": 20, "stacked_size": 40}
    )  # fmt: skip
    dataset = data.load_dataset(config)
    assert dataset.x.shape == (40, 28, 28, 3) and tuple(data.data_shape(config)) == (28, 28, 3)
    assert not dataset.flip
    config.flip = True  # honoured as for any image set, not silently dropped
    assert data.load_dataset(config).flip
    assert -1.0 <= float(dataset.x.min()) and float(dataset.x.max()) <= 1.0
    assert 0 <= int(dataset.y.min()) and int(dataset.y.max()) < 1000
    images = data.scale_images(
        data.read_idx(str(tmp_path / "train-images-idx3-ubyte.gz")), "symmetric"
    )
    # every channel of every image is one of the first 20 digits (start:stop)
    flat = images[:20, ..., 0].reshape(20, -1)
    for c in range(3):
        channel = np.asarray(dataset.x[..., c]).reshape(40, -1)
        assert all(np.any(np.all(np.isclose(flat, row), axis=1)) for row in channel)
