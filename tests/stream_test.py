"""Streaming the training set from host memory (gan_jax/stream.py): the host's indices are the
in-device draw's, and a streamed run equals an in-device one, resumed or not, on one device or
under pmap on 8 fake ones."""

import os

import jax
import numpy as np
import pytest
from conftest import fresh_state, run_two_processes, tiny_config

from gan_jax import alarm, data, engine, stream, train
from gan_jax.checkpoint import Checkpointer
from gan_jax.config import validate

N, SHAPE = 40, (6, 6, 3)  # batches of 8: 5 per epoch, so 8 steps x 2 D updates span 4 epochs


def stream_config(tmp, placement, **train_options):
    """A tiny run on the npz set in `tmp`: MLP nets, 2 D updates per G update, flips, and G's
    feature-matching stream, so every streamed input is exercised."""
    c = tiny_config(batch_size=8, num_steps=8, scan_steps=2, log_every=4, d_steps=2)
    c.train.update(**{"checkpoint_every": 0, **train_options})
    c.data.update(name="npz", dir=f"{tmp}/set.npz", cache_dir=f"{tmp}/cache", flip=True)
    c.data.update(scale="symmetric", placement=placement)
    c.model.generator_kwargs = {"hidden": (16,), "output_activation": "tanh"}
    c.loss.g_objective = "feature_matching"
    c.alarm.action = "off"
    return c


def params_of(state):
    return jax.tree.map(np.asarray, (state.g.params, state.d.params, state.d_updates, state.step))


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def write_set(tmp):
    images = np.random.default_rng(0).integers(0, 256, (N, *SHAPE), dtype=np.uint8)
    np.savez(tmp / "set.npz", x=images, y=np.arange(N) % 3)
    return tmp


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Final params of: the in-device run, the streamed run, a streamed run stopped at step 4
    and resumed; and the streamed program's compile count."""
    tmp = write_set(tmp_path_factory.mktemp("stream"))
    out = {"device": train.train_and_evaluate(stream_config(tmp, "device"), str(tmp / "device"))}
    compiled = engine.jit_steps(engine.make_spec(stream_config(tmp, "host"), N))
    before = compiled.run_chunk._cache_size()
    out["host"] = train.train_and_evaluate(stream_config(tmp, "host"), str(tmp / "host"))
    out["compiles"] = compiled.run_chunk._cache_size() - before  # 4 chunks
    train.train_and_evaluate(stream_config(tmp, "host", num_steps=4), str(tmp / "resumed"))
    out["resumed"] = train.train_and_evaluate(stream_config(tmp, "host"), str(tmp / "resumed"))
    return {k: v if k == "compiles" else params_of(v) for k, v in out.items()}


def test_host_indices_equal_the_in_device_draw():
    key = jax.random.PRNGKey(3)
    permutation = jax.jit(data.shuffled_index, static_argnums=2)
    for n in (7, 4097):  # permuting [0, 16) and [0, 16384), cycle walking into range
        rows = np.arange(n)
        on_device = permutation(jax.random.fold_in(key, 0), rows, n)
        on_host = stream.shuffled_index_np(stream.epoch_round_keys(key, 1)[0], rows, n)
        np.testing.assert_array_equal(on_host, on_device)
        assert sorted(on_host) == list(range(n))
    # Whole batches across epochs: what batch_from_dataset gathers from x = the row numbers.
    n, batch = 23, 4
    dataset = data.make_dataset(np.arange(n, dtype=np.float32)[:, None])
    index = np.array([0, 4, 5, 11, 17, 30])  # 5 batches an epoch: epochs 0, 0, 1, 2, 3, 6
    on_device = jax.jit(
        jax.vmap(lambda i: data.batch_from_dataset(dataset, key, i, batch)[0][:, 0])
    )(index)
    on_host = stream.batch_examples(stream.epoch_round_keys(key, 7), index, n, batch)
    np.testing.assert_array_equal(on_host, on_device)


def test_streamed_run_equals_the_in_device_run(runs):
    assert_trees_equal(runs["host"], runs["device"])
    assert runs["compiles"] == 1  # one program for every chunk: no retrace between chunks


def test_streamed_resume_equals_an_unbroken_streamed_run(runs):
    assert_trees_equal(runs["resumed"], runs["host"])


# A pmap program compiles for ~8 s here: `make test-all`'s.
@pytest.mark.slow
@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (fake) devices")
def test_streamed_pmap_equals_one_device(tmp_path):
    write_set(tmp_path)
    single = train.train_and_evaluate(stream_config(tmp_path, "host"), str(tmp_path / "one"))
    config = stream_config(tmp_path, "host")
    config.parallel = "pmap"  # 8 devices, 1 row of each batch each, read by the host for it
    pmapped = train.train_and_evaluate(config, str(tmp_path / "pmap"))
    # pmean's float sums may differ from one device's in the last bits.
    pairs = zip(
        jax.tree.leaves(params_of(pmapped)), jax.tree.leaves(params_of(single)), strict=True
    )
    for x, y in pairs:
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


# Two processes start, import JAX and compile: ~40 s here, `make test-all`'s.
@pytest.mark.slow
@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (fake) devices")
def test_streamed_two_processes_equal_one_process(tmp_path):
    """2 processes of 4 devices, each reading only its devices' rows (half of every batch),
    against 1 process of 8 reading all of them."""
    write_set(tmp_path)
    config = stream_config(tmp_path, "host", checkpoint_every=4)
    config.parallel = "pmap"
    d = config.data
    flags = [
        "--config=experiments/ring8.py",
        "--config.parallel=pmap",
        "--config.model.generator_kwargs.hidden=(16,)",
        "--config.model.generator_kwargs.output_activation=tanh",
        "--config.model.discriminator_kwargs.hidden=(16,)",
        "--config.loss.g_objective=feature_matching",
        "--config.alarm.action=off",
        *[f"--config.data.{k}={d[k]}" for k in ("name", "dir", "cache_dir", "flip", "scale")],
        "--config.data.placement=host",
        *[f"--config.train.{k}={v}" for k, v in config.train.items() if k != "num_samples"],
    ]
    workdir = str(tmp_path / "two")
    run_two_processes(["train", f"--workdir={workdir}", *flags], tmp_path)
    one = params_of(train.train_and_evaluate(config, str(tmp_path / "one")))
    two = Checkpointer(os.path.join(workdir, "checkpoints")).restore(fresh_state(config))
    for x, y in zip(jax.tree.leaves(params_of(two)), jax.tree.leaves(one), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_host_images_map_the_cache_entry(tmp_path):
    np.savez(tmp_path / "set.npz", x=np.zeros((10, *SHAPE), np.uint8))
    config = stream_config(tmp_path, "host")
    config.data.update(start=2, stop=9)
    host = stream.load_host_images(config.data)
    assert isinstance(host.images, np.memmap) and host.images.shape == (7, *SHAPE)
    np.testing.assert_array_equal(host.labels, np.zeros(7))  # no y: zeros, as in-device
    config.data.update(placement="auto", device_bytes=7 * 6 * 6 * 3 * 4)  # the float32 set
    assert stream.resolve_placement(config) == "device"
    config.data.device_bytes -= 1
    assert stream.resolve_placement(config) == "host"


def test_collapse_alarm_reference_of_a_streamed_set(tmp_path):
    config = stream_config(write_set(tmp_path), "host")
    config.alarm.num_samples = 40  # at 30 and 40 rows another order changed the sum's rounding
    on_device = alarm.Reference(config, data.load_dataset(config.data))
    streamed = alarm.Reference(config, stream.load_host_images(config.data))
    # The same rows in the same order: the spread the alarm divides by, bit for bit.
    np.testing.assert_array_equal(streamed.real_spread, on_device.real_spread)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            dict(placement="gpu"),
            r"data.placement = 'gpu' .* expected one of \['auto', 'device', 'host'\]",
        ),
        (dict(device_bytes=0), r"data.device_bytes = 0 is not allowed"),
        (dict(name="ring8", dir=""), r"placement = 'host' .*'ring8' is drawn inside the step"),
        (dict(labels_per_class=1), r"placement = 'host' .*labels_per_class=1 draws"),
    ],
)
def test_placement_errors(tmp_path, change, message):
    config = stream_config(tmp_path, "host")
    config.loss.g_objective = "adversarial"
    config.data.update(flip=False, **change)
    config.model.discriminator_kwargs = {"hidden": (16,), "num_classes": 3}
    with pytest.raises(ValueError, match=message):
        validate(config)
