"""Image sets from files: IDX, image folders, npz and TFDS, each written here to tmp_path;
their shapes, pixel scales, labels, preprocessing, cache, flips and errors."""

import functools
import gzip
import os
import struct
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config
from PIL import Image

from gan_jax import data, data_cache, data_sources, image_prep, models
from gan_jax.config import validate

RNG = np.random.default_rng(0)


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_png(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)


def data_config(name, path, tmp_path, **options):
    """The data section of a default config with `options` set."""
    d = tiny_config().data
    d.update(name=name, dir=str(path), cache_dir=str(tmp_path / "cache"), **options)
    return d


@pytest.fixture
def class_folder(tmp_path):
    """Two classes of RGB PNGs 6x6: 'a' (3 images) and 'b' (2), and their pixels in load order."""
    pixels = RNG.integers(0, 256, (5, 6, 6, 3), dtype=np.uint8)
    for i, (label, name) in enumerate([("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]):
        write_png(str(tmp_path / "images" / label / f"{name}.png"), pixels[i])
    return tmp_path / "images", pixels


def test_idx_source_shapes_scales_labels(tmp_path):
    images = RNG.integers(0, 256, (7, 5, 5), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 4, 0, 1]))
    config = data_config("idx", tmp_path, tmp_path, scale="symmetric")
    assert tuple(data.data_shape(config)) == (5, 5, 1) and data.num_classes(config) == 5
    dataset = data.load_dataset(config)
    np.testing.assert_allclose(dataset.x[..., 0], images / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(dataset.y, [0, 1, 2, 3, 4, 0, 1])
    # [N, H, W, C] images (idx4), no labels file, stop and a unit scale
    rgb = RNG.integers(0, 256, (4, 4, 4, 3), dtype=np.uint8)
    os.makedirs(tmp_path / "rgb")
    write_idx(tmp_path / "rgb" / "train-images-idx4-ubyte.gz", rgb)
    config = data_config("idx", tmp_path / "rgb", tmp_path, stop=3)
    assert tuple(data.data_shape(config)) == (4, 4, 3) and data.num_classes(config) is None
    dataset = data.load_dataset(config)
    np.testing.assert_allclose(dataset.x, rgb[:3] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(dataset.y, [0, 0, 0])


def test_folder_with_classes_labels_and_shape_from_headers(class_folder, tmp_path, monkeypatch):
    folder, pixels = class_folder
    config = data_config("folder", folder, tmp_path)

    def no_decoding(*args):
        raise AssertionError("data_shape decoded an image")

    with monkeypatch.context() as m:
        m.setattr(data_sources, "decode_image", no_decoding)
        assert tuple(data.data_shape(config)) == (6, 6, 3) and data.num_classes(config) == 2
    dataset = data.load_dataset(config)
    np.testing.assert_allclose(dataset.x, pixels / 255.0, atol=1e-7)
    np.testing.assert_array_equal(dataset.y, [0, 0, 0, 1, 1])
    # Conditional nets take their label count from the folder.
    c = tiny_config()
    c.data = config
    c.model.update(conditioning="concat", num_classes=2)
    validate(c)
    c.model.num_classes = 3
    with pytest.raises(ValueError, match="num_classes = 3 .* expected 2"):
        validate(c)


def test_flat_gray_folder_without_labels_and_channels(tmp_path):
    gray = RNG.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    for i in range(3):
        write_png(str(tmp_path / "flat" / f"{i}.png"), gray[i])
    config = data_config("folder", tmp_path / "flat", tmp_path)
    assert tuple(data.data_shape(config)) == (4, 4, 1) and data.num_classes(config) is None
    dataset = data.load_dataset(config)
    np.testing.assert_allclose(dataset.x[..., 0], gray / 255.0, atol=1e-7)
    np.testing.assert_array_equal(dataset.y, [0, 0, 0])
    config = data_config("folder", tmp_path / "flat", tmp_path, channels=3)
    assert tuple(data.data_shape(config)) == (4, 4, 3)
    np.testing.assert_allclose(data.load_dataset(config).x, np.repeat(gray[..., None], 3, -1) / 255)


def test_center_crop_resize_and_luma():
    wide = RNG.integers(0, 256, (4, 8, 3), dtype=np.uint8)  # H=4, W=8: the crop is columns 2..5
    np.testing.assert_array_equal(image_prep.resize_array(wide, 4), wide[:, 2:6])
    tall = RNG.integers(0, 256, (7, 3, 1), dtype=np.uint8)  # rows 2..4
    np.testing.assert_array_equal(image_prep.resize_array(tall, 3), tall[2:5])
    flat = np.full((10, 6, 3), 77, np.uint8)
    assert image_prep.resize_array(flat, 3).shape == (3, 3, 3)
    np.testing.assert_array_equal(image_prep.resize_array(flat, 3), 77)
    rgb = RNG.integers(0, 256, (2, 3, 3, 3), dtype=np.uint8)
    luma = rgb.astype(np.float64) @ [0.299, 0.587, 0.114]
    assert np.abs(image_prep.to_channels(rgb, 1)[..., 0] - luma).max() <= 0.5 + 1e-3
    assert image_prep.to_channels(rgb, 3) is rgb


def test_mixed_sizes_need_image_size(tmp_path):
    write_png(str(tmp_path / "m" / "a.png"), np.zeros((4, 6, 3), np.uint8))
    write_png(str(tmp_path / "m" / "b.jpg"), np.full((8, 8, 3), 200, np.uint8))  # flat: exact
    config = data_config("folder", tmp_path / "m", tmp_path)
    with pytest.raises(data.DataError, match=r"2 sizes .*6x4 .*8x8 .*data\.image_size"):
        data.data_shape(config)
    config = data_config("folder", tmp_path / "m", tmp_path, image_size=4, channels=1)
    assert tuple(data.data_shape(config)) == (4, 4, 1)
    dataset = data.load_dataset(config)
    np.testing.assert_allclose(
        dataset.x[:, :, :, 0], [np.zeros((4, 4)), np.full((4, 4), 200 / 255)]
    )


def test_npz_source(tmp_path):
    x = RNG.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "u8.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]))
    config = data_config("npz", tmp_path / "u8.npz", tmp_path, scale="symmetric")
    assert tuple(data.data_shape(config)) == (4, 4, 3) and data.num_classes(config) == 3
    dataset = data.load_dataset(config)
    np.testing.assert_allclose(dataset.x, x / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(dataset.y, [0, 1, 2, 0, 1, 2])
    floats = RNG.random((5, 3, 3)).astype(np.float32)
    np.savez(tmp_path / "f.npz", x=floats)
    dataset = data.load_dataset(data_config("npz", tmp_path / "f.npz", tmp_path))
    np.testing.assert_allclose(dataset.x[..., 0], floats, atol=0.5 / 255 + 1e-6)
    np.savez(tmp_path / "bad.npz", x=floats * 2)
    with pytest.raises(data.DataError, match=r"spans \[0.*, 1.9.*\]; expected values in \[0, 1\]"):
        data.load_dataset(data_config("npz", tmp_path / "bad.npz", tmp_path))


def test_cache_is_reused_without_decoding(class_folder, tmp_path, monkeypatch):
    folder, pixels = class_folder
    config = data_config("folder", folder, tmp_path)
    first = data.load_dataset(config)
    assert len(os.listdir(tmp_path / "cache")) == 1

    def no_decoding(*args):
        raise AssertionError("decoded an image although the cache holds the set")

    with monkeypatch.context() as m:
        m.setattr(data_sources, "decode_image", no_decoding)
        m.setattr(Image, "open", no_decoding)
        second = data.load_dataset(config)
        assert tuple(data.data_shape(config)) == (6, 6, 3)
    np.testing.assert_array_equal(second.x, first.x)
    np.testing.assert_array_equal(second.y, first.y)
    # Other options, or a changed file, make a new entry (decoded again).
    data.load_dataset(data_config("folder", folder, tmp_path, channels=1))
    assert len(os.listdir(tmp_path / "cache")) == 2
    write_png(str(folder / "a" / "0.png"), 255 - pixels[0])
    os.utime(folder / "a" / "0.png", ns=(1, 1))
    np.testing.assert_allclose(data.load_dataset(config).x[0], (255 - pixels[0]) / 255, atol=1e-7)
    assert len(os.listdir(tmp_path / "cache")) == 3


def test_flips_are_keyed_by_batch_and_row():
    x = RNG.random((10, 3, 4, 2)).astype(np.float32)
    plain, flipped = data.make_dataset(x), data.make_dataset(x, flip=True)

    @jax.jit  # one compile for all the draws
    def draws(key):
        base = data.batch_from_dataset(plain, key, 5, 8)[0]
        out = data.batch_from_dataset(flipped, key, 5, 8)[0]
        shards = [data.batch_from_dataset(flipped, key, 5, 8, jnp.arange(4) + i)[0] for i in (0, 4)]
        many = jax.vmap(lambda i: data.flip_bits(key, i, 8))(jnp.arange(500))
        return base, out, jnp.concatenate(shards), many

    base, out, sharded, many = map(np.asarray, draws(jax.random.PRNGKey(3)))
    bits = many[5]
    assert 0 < bits.sum() < 8
    np.testing.assert_array_equal(out, np.where(bits[:, None, None, None], base[:, :, ::-1], base))
    np.testing.assert_array_equal(sharded, out)  # a device's shard flips as the whole batch
    assert not np.array_equal(many[5], many[6])  # each batch draws its own flips
    assert abs(many.mean() - 0.5) < 0.03  # about half the rows flip


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_dcgan_nets_size_themselves_from_the_data(shape):
    c = tiny_config()
    c.model.update(generator="dcgan", discriminator="dcgan", z_dim=8)
    c.model.generator_kwargs = {"base_features": 4}
    c.model.discriminator_kwargs = {"base_features": 4}
    g, d = models.make_generator(c.model, shape), models.make_discriminator(c.model)
    z, x = jnp.zeros((2, 8)), jnp.zeros((2, *shape))
    g_vars = jax.eval_shape(g.init, jax.random.PRNGKey(0), z)  # shapes only: no compute
    x_fake, _ = jax.eval_shape(functools.partial(g.apply, mutable=["batch_stats"]), g_vars, z)
    assert x_fake.shape == (2, *shape)
    d_vars = jax.eval_shape(d.init, jax.random.PRNGKey(0), x)
    logits, _ = jax.eval_shape(functools.partial(d.apply, mutable=["batch_stats"]), d_vars, x)
    assert logits.shape == (2,)


# ----------------------------------------------------------------------------- TFDS


@pytest.fixture
def tiny_tfds(tmp_path, monkeypatch):
    """A TFDS dataset 'gan_jax_tiny_images' (6 RGB images 8x8, 3 classes) prepared into
    tmp_path in the array_record format, which reads back without TensorFlow."""
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    images = np.random.default_rng(7).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(6) * 40  # distinct first pixels: the test sorts by them

    class GanJaxTinyImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = {
                "image": tfds.features.Tensor(shape=(8, 8, 3), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=3),
            }
            return tfds.core.DatasetInfo(
                builder=self, features=tfds.features.FeaturesDict(features)
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i in range(6):
                yield i, {"image": images[i], "label": i % 2}

    builder = GanJaxTinyImages(data_dir=str(tmp_path / "tfds"), file_format="array_record")
    builder.download_and_prepare()
    return images


def test_tfds_source_prepared_locally(tiny_tfds, tmp_path, monkeypatch):
    monkeypatch.setattr(data_sources, "_tfds_reachable", lambda timeout_s=3.0: False)
    config = data_config("tfds:gan_jax_tiny_images", "", tmp_path, image_size=4)
    # The label count is the feature's (3), not the labels seen (0 and 1).
    assert tuple(data.data_shape(config)) == (4, 4, 3) and data.num_classes(config) == 3
    dataset = data.load_dataset(data_config("tfds:gan_jax_tiny_images", "", tmp_path))
    order = np.argsort(np.asarray(dataset.x).reshape(6, -1)[:, 0])  # TFDS shuffles on write
    want = np.argsort(tiny_tfds.reshape(6, -1)[:, 0])
    np.testing.assert_allclose(np.asarray(dataset.x)[order], tiny_tfds[want] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(dataset.y)[order], want % 2)


def test_tfds_conversion_of_in_memory_examples():
    gray = RNG.integers(0, 256, (3, 5, 5, 1), dtype=np.uint8)
    raw = data_sources.tfds_to_raw({"image": gray, "label": np.array([1, 0, 1])}, "t", 2)
    assert raw.images.shape == (3, 5, 5, 1) and raw.num_classes == 2
    np.testing.assert_array_equal(raw.labels, [1, 0, 1])
    mixed = [{"image": np.zeros((6, 4, 3), np.uint8)}, {"image": np.zeros((4, 4, 3), np.uint8)}]
    raw = data_sources.tfds_to_raw(mixed, "t", None, image_size=4)
    assert raw.images.shape == (2, 4, 4, 3) and raw.labels is None
    with pytest.raises(data.DataError, match=r"2 shapes .*data\.image_size"):
        data_sources.tfds_to_raw(mixed, "t", None)
    with pytest.raises(data.DataError, match=r"no 'image' feature; its features: \['text'\]"):
        data_sources.tfds_to_raw([{"text": b"x"}], "t", None)


def test_unknown_tfds_name_offline_fails_before_importing_tfds(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data_sources, "_tfds_reachable", lambda timeout_s=3.0: False)

    class NoTfds(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            raise AssertionError(f"tensorflow_datasets.{name} used while offline")

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", NoTfds("tensorflow_datasets"))
    with pytest.raises(data.DataError, match=r"'no_such_set'.*data\.name=folder.*download_and"):
        data.data_shape(data_config("tfds:no_such_set", "", tmp_path))


# ----------------------------------------------------------------------------- errors


def test_errors_name_the_bad_value(tmp_path):
    def fails(name, path, match, **options):
        with pytest.raises(data.DataError, match=match):
            data.data_shape(data_config(name, path, tmp_path, **options))

    missing = str(tmp_path / "nowhere")
    fails("folder", missing, "data.dir='.*nowhere' is not a directory.*folder of .png")
    fails("idx", missing, "data.dir='.*nowhere' is not a directory.*IDX")
    fails("npz", missing + ".npz", "nowhere.npz' is not a file.*holding x")
    os.makedirs(tmp_path / "empty" / "cls")
    fails("folder", tmp_path / "empty", r"holds no images; expected files ending in \('.png'")
    write_png(str(tmp_path / "bad" / "ok.png"), np.zeros((2, 2), np.uint8))
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png")
    fails("folder", tmp_path / "bad", "cannot read image .*broken.png")
    np.savez(tmp_path / "nox.npz", images=np.zeros((2, 2, 2), np.uint8))
    fails("npz", tmp_path / "nox.npz", r"has no array 'x'; it holds \['images'\]")
    np.savez(tmp_path / "x5.npz", x=np.zeros((2, 2, 2, 5), np.uint8))
    fails("npz", tmp_path / "x5.npz", r"shape \(2, 2, 2, 5\); expected \[N, H, W\] or")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("channels", 2, r"data.channels = 2 is not allowed; expected None or one of \[1, 3\]"),
        ("image_size", 0, "data.image_size = 0 .* expected a number > 0"),
        ("channels", 4, r"data.channels = 4 is not allowed; expected None or one of \[1, 3\]"),
        ("name", "tfds:", r"data.name = 'tfds:' .* or 'tfds:<name>'"),
        ("name", "folders", r"data.name = 'folders' .* or 'tfds:<name>'"),
        ("dir", "", "data.dir = '' .* a folder of images for data.name='folder'"),
    ],
)
def test_config_validation_of_data_options(key, value, message):
    c = tiny_config()
    c.data.update(name="folder", dir="somewhere")
    c.data[key] = value
    with pytest.raises(ValueError, match=message):
        validate(c)


def test_resize_options_only_for_image_sets_from_files():
    c = tiny_config()
    c.data.image_size = 8
    with pytest.raises(ValueError, match="data.image_size = 8 .* None for data.name='ring8'"):
        validate(c)
    c.data.image_size, c.data.flip = None, True
    with pytest.raises(ValueError, match="data.flip = True .* False for data.name='ring8'"):
        validate(c)


def test_cache_entry_is_atomic_and_keyed(tmp_path):
    raw = data_sources.RawImages(np.ones((2, 2, 2, 1), np.uint8), None, None)
    entry = str(tmp_path / "e")
    data_cache.store(entry, raw, {"source": "npz"})
    data_cache.store(
        entry, data_sources.RawImages(np.zeros((2, 2, 2, 1), np.uint8), None, None), {}
    )
    np.testing.assert_array_equal(data_cache.load(entry).images, 1)  # the first writer's entry
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []
    a = data_cache.entry_dir(str(tmp_path), {"source": "folder", "image_size": 4})
    b = data_cache.entry_dir(str(tmp_path), {"source": "folder", "image_size": 8})
    assert a != b and os.path.basename(a).startswith("folder-")
