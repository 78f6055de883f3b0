import gzip
import struct
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from gan_jax import data, data_sources


def write_idx(path, array, type_byte=0x08):
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(">u1" if type_byte == 0x08 else ">i4").tobytes())


def test_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(data.read_idx(str(tmp_path / "a.gz")), array)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x08\x08\x08\x01\x00\x00\x00\x02ab", "bad IDX magic"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05ab", "needs 13"),
        (b"", "empty file"),
    ],
)
def test_malformed_idx_is_named(tmp_path, raw, message):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(raw)
    with pytest.raises(data.DataError, match=message):
        data.read_idx(str(path))


def test_corrupt_gzip_and_missing_files(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"not gzip at all")
    with pytest.raises(data.DataError, match="truncated or corrupt"):
        data.read_idx(str(tmp_path / "x.gz"))
    with pytest.raises(data.DataError, match="does not exist"):
        data.load_mnist_idx(str(tmp_path / "nowhere"), "train")
    with pytest.raises(data.DataError, match="not found"):
        data.load_mnist_idx(str(tmp_path), "train")


def test_mnist_idx_with_wrong_image_shape(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((3, 27, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(data.DataError, match=r"expected uint8 images \[N, 28, 28\]"):
        data.load_mnist_idx(str(tmp_path), "train")


def test_real_mnist(mnist_dir):
    images, labels = data.load_mnist_idx(mnist_dir, "test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
    x = data.scale_images(images[:10], "symmetric")
    assert x.shape == (10, 28, 28, 1) and x.min() == -1.0 and x.max() == 1.0


def test_offline_tfds_fails_fast_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # no prepared copy there
    probes = []
    monkeypatch.setattr(
        data_sources, "_tfds_reachable", lambda timeout_s=3.0: probes.append(timeout_s) or False
    )
    # TFDS itself must never be reached: no import of its builder, no download attempt.
    tfds_calls = []

    class NoTfds(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):  # import machinery probing, not a use of TFDS
                raise AttributeError(name)
            tfds_calls.append(name)
            raise AssertionError(f"tensorflow_datasets.{name} used while offline")

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", NoTfds("tensorflow_datasets"))
    with pytest.raises(data.DataError) as error:
        data.load_dataset(ConfigDict({"name": "mnist", "dir": "", "scale": "unit"}))
    message = str(error.value)
    assert "--config.data.dir=DIR" in message and "train-images-idx3-ubyte.gz" in message
    assert "download_and_prepare()" in message  # the other way: prepare it once online
    assert len(probes) == 1 and tfds_calls == []
    # With a data directory given, neither the network probe nor TFDS is consulted.
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.full((3, 28, 28), 255, np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([4, 1, 7], np.uint8))
    loaded = data.load_dataset(ConfigDict({"name": "mnist", "dir": str(tmp_path), "scale": "unit"}))
    np.testing.assert_array_equal(loaded.y, [4, 1, 7])
    assert len(probes) == 1 and tfds_calls == []


@pytest.mark.parametrize("n", [1, 5, 100, 1000, 50000])
def test_shuffled_index_is_a_permutation(n):
    rows = np.asarray(data.shuffled_index(jax.random.PRNGKey(n), jnp.arange(n), n))
    np.testing.assert_array_equal(np.sort(rows), np.arange(n))


def test_epochs_visit_every_example_once_in_a_new_order():
    n, batch = 103, 10  # 10 batches an epoch, the last 3 examples dropped each epoch
    dataset = data.make_dataset(np.arange(n, dtype=np.float32)[:, None])
    key = jax.random.PRNGKey(0)
    epochs = [
        np.concatenate(
            [data.batch_from_dataset(dataset, key, e * 10 + i, batch)[0][:, 0] for i in range(10)]
        )
        for e in range(2)
    ]
    for epoch in epochs:
        assert len(set(epoch.tolist())) == 100
    assert not np.array_equal(epochs[0], epochs[1])


def test_toy_distributions():
    key = jax.random.PRNGKey(0)
    ring = np.asarray(data.sample_toy("ring8", key, 4000))
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1).mean(), 1.0, atol=0.01)
    grid_centers = data.grid25_centers()
    assert grid_centers.shape == (25, 2) and set(grid_centers[:, 0]) == {-4, -2, 0, 2, 4}
    grid = np.asarray(data.sample_toy("grid25", key, 4000))
    nearest = np.min(np.linalg.norm(grid[:, None] - grid_centers[None], axis=-1), axis=1)
    np.testing.assert_allclose(np.sqrt(np.mean(nearest**2) / 2), 0.05, rtol=0.1)
    gauss = np.asarray(data.sample_toy("gaussian_1d", key, 4000))
    np.testing.assert_allclose([gauss.mean(), gauss.std()], [4.0, 0.5], atol=0.05)
