import functools
import json
import os

import chex
import jax
import numpy as np
import pytest
from conftest import tiny_config
from experiments_loader import load_experiment

from gan_jax import data, engine, hparams, steps, train
from gan_jax import spec as spec_lib
from gan_jax.writers import read_metrics


def assert_trees_close(a, b, **tol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, **tol)


def setup(config, dataset_size=None):
    """(the jitted steps, the config's Hparams) of a config."""
    spec = engine.make_spec(config, dataset_size)
    return engine.jit_steps(spec), hparams.from_config(config)


@pytest.mark.parametrize("d_steps", [1, 2])
def test_scan_dispatch_equals_one_dispatch_per_update(d_steps):
    results = []
    for scan_steps in (0, 4):
        config = tiny_config(d_steps=d_steps, scan_steps=scan_steps)
        compiled, hp = setup(config)
        state = compiled.init(jax.random.PRNGKey(0), hp)
        results.append(engine.advance(compiled, state, None, hp, 8))
    (step_state, step_metrics), (scan_state, scan_metrics) = results
    assert int(scan_state.step) == 8 and int(scan_state.d_updates) == 8 * d_steps
    assert_trees_close(step_state, scan_state, rtol=1e-5, atol=1e-6)
    assert_trees_close(step_metrics, scan_metrics, rtol=1e-4, atol=1e-6)


def test_make_train_equals_the_host_loop():
    config = tiny_config(num_steps=8)
    compiled, hp = setup(config)
    state, _ = jax.jit(engine.make_train(config))(jax.random.PRNGKey(0), hp)
    loop_state, _ = engine.advance(compiled, compiled.init(jax.random.PRNGKey(0), hp), None, hp, 8)
    assert_trees_close(state, loop_state, rtol=1e-5, atol=1e-6)


def test_no_retracing_in_the_hot_loop(monkeypatch):
    config = tiny_config(scan_steps=0)
    spec, hp = engine.make_spec(config), hparams.from_config(config)
    # Counted versions of the named steps: a retrace would raise inside advance.
    monkeypatch.setattr(engine, "d_update", chex.assert_max_traces(engine.d_update, n=1))
    monkeypatch.setattr(engine, "g_update", chex.assert_max_traces(engine.g_update, n=1))
    engine.jit_steps.cache_clear()
    compiled = engine.jit_steps(spec)
    state = compiled.init(jax.random.PRNGKey(0), hp)
    state, _ = engine.advance(compiled, state, None, hp, 5)
    # Other numbers, the same program: a new lr is data, not a retrace.
    other = hp.replace(d=hp.d.replace(lr=np.float32(3e-4)), penalty_weight=np.float32(2.0))
    engine.advance(compiled, state, None, other, 2)
    assert compiled.d_update._cache_size() == 1 and compiled.g_update._cache_size() == 1
    monkeypatch.undo()
    engine.jit_steps.cache_clear()

    scan_config = tiny_config(scan_steps=2)
    scan_compiled, hp = setup(scan_config)
    state = scan_compiled.init(jax.random.PRNGKey(0), hp)
    engine.advance(scan_compiled, state, None, hp, 8)
    assert scan_compiled.run_chunk._cache_size() == 1


def test_state_buffers_are_donated():
    compiled, hp = setup(tiny_config(scan_steps=0))
    hp = jax.device_put(hp)  # as the host loop passes them, reused by every update
    state = compiled.init(jax.random.PRNGKey(0), hp)
    old_leaf = jax.tree.leaves(state.d.params)[0]
    state, _ = compiled.d_update(state, None, hp)
    # The state never holds the Hparams' own buffers, not even after the eager refresh a resume
    # makes, so donating it leaves them usable.
    state = engine.with_hyperparams(state, hp, compiled.spec)
    state, _ = compiled.d_update(state, None, hp)
    state, _ = compiled.g_update(state, None, hp)
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(hp))
    assert old_leaf.is_deleted()


def test_train_and_evaluate_writes_the_workdir(tmp_path):
    config = tiny_config(num_steps=8, sample_every=8)
    workdir = str(tmp_path / "run")
    state = train.train_and_evaluate(config, workdir)
    assert int(state.step) == 8
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["train"]["num_steps"] == 8
    records = read_metrics(workdir)
    assert [r["step"] for r in records] == [4, 8]
    expected = {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm", "seconds"}
    assert expected <= set(records[0])
    assert os.path.getsize(os.path.join(workdir, "samples", "step_8.png")) > 1000
    assert any(f.startswith("events") for f in os.listdir(os.path.join(workdir, "tensorboard")))


def test_2014_nets_train_on_real_mnist(mnist_dir, tmp_path):
    config = load_experiment("gan2014_mnist")
    config.data.update(dir=mnist_dir, stop=1000)
    config.train.update(num_steps=4, scan_steps=2, log_every=2, sample_every=4)
    state = train.train_and_evaluate(config, str(tmp_path))
    records = read_metrics(str(tmp_path))
    assert [r["step"] for r in records] == [2, 4]
    # Momentum follows the 2014 schedule and the learning rate has decayed by 1.000004 per update.
    lr = float(state.d.opt_state.hyperparams["learning_rate"])
    np.testing.assert_allclose(lr, 0.1 / 1.000004**3, rtol=1e-6)
    assert os.path.exists(tmp_path / "samples" / "step_4.png")


@pytest.mark.parametrize("loss", ["non_saturating", "wgan"])
def test_toy_pictures_show_d_as_its_loss_defines_it(tmp_path, monkeypatch, loss):
    """A probability for the sigmoid losses; the raw critic value for WGAN (not its sigmoid)."""
    config = tiny_config()
    config.loss.name = loss
    compiled, hp = setup(config)
    state = compiled.init(jax.random.PRNGKey(0), hp, None)
    seen = {}

    def capture(path, samples, real, grid_xy, d_GxG, title, d_label):
        seen.update(grid=np.stack([g.ravel() for g in grid_xy], 1), d=d_GxG, label=d_label)

    monkeypatch.setattr(train.plotting, "save_scatter_2d", capture)
    train.save_samples(config, state, str(tmp_path), 0)
    logits = np.asarray(steps.discriminate(state, seen["grid"].astype(np.float32)))
    expected = jax.nn.sigmoid(logits) if loss == "non_saturating" else logits
    np.testing.assert_allclose(seen["d"].ravel(), expected, rtol=1e-5, atol=1e-6)
    assert seen["label"] == ("D(x)" if loss == "non_saturating" else "D(x), raw")


@pytest.mark.slow  # make test-all: each case compiles the 2014 or WGAN-GP nets twice
@pytest.mark.parametrize("experiment, d_steps", [("gan2014_mnist", 2), ("wgan_gp_mnist", 3)])
def test_the_cpu_schedule_changes_no_numbers(experiment, d_steps):
    """The steps' compiler options reorder XLA's work and drop buffer copies, not its arithmetic:
    donated as in training, with scanned D steps, the 2014 nets (dropout, maxout, SGD with
    momentum) and WGAN-GP (convs, Adam, a double backward pass) give bit-identical states with
    and without them."""
    config = load_experiment(experiment)
    config.train.update(batch_size=8, scan_steps=2, d_steps=d_steps)
    # Narrower than the experiments' nets (the same layers, a fraction of the compile time).
    if experiment == "gan2014_mnist":
        config.model.generator_kwargs = {"hidden": 128}
        config.model.discriminator_kwargs = {"units": 32}
    else:
        config.model.generator_kwargs.base_features = 8
        config.model.discriminator_kwargs.base_features = 8
    x = np.random.default_rng(0).uniform(0.0, 1.0, (16, 28, 28, 1)).astype(np.float32)
    dataset = data.make_dataset(x)
    spec, hp = engine.make_spec(config, len(x)), hparams.from_config(config)
    chunk = functools.partial(engine.run_chunk, spec=spec, num_iterations=2)
    init = jax.jit(functools.partial(engine.init, spec=spec))
    states = [
        jit(chunk, donate_argnums=0)(init(jax.random.PRNGKey(0), hp, dataset), dataset, hp)[0]
        for jit in (jax.jit, engine.jit_step)
    ]
    for default, scheduled in zip(*map(jax.tree.leaves, states), strict=True):
        np.testing.assert_array_equal(default, scheduled)


@pytest.mark.slow  # make test-all; the resume and golden tests run chunks in the default run
def test_run_chunk_returns_the_last_iteration_of_run_iterations():
    compiled, hp = setup(tiny_config())
    spec = compiled.spec
    state = compiled.init(jax.random.PRNGKey(0), hp)
    chunk = jax.jit(functools.partial(engine.run_chunk, spec=spec, num_iterations=3))
    every = jax.jit(functools.partial(engine.run_iterations, spec=spec, num_iterations=3))
    chunk_state, chunk_metrics = chunk(state, None, hp)
    all_state, stacked = every(state, None, hp)
    assert_trees_close(chunk_state, all_state, rtol=1e-6, atol=1e-7)
    assert_trees_close(chunk_metrics, jax.tree.map(lambda m: m[-1], stacked), rtol=1e-5, atol=1e-7)


def test_metrics_that_do_not_fit_the_data_fail_before_anything_is_written(tmp_path):
    config = tiny_config()
    config.eval.update(every=4, metrics="mixture,fd")  # fd needs real images; ring8 has none
    with pytest.raises(ValueError, match=r"metrics \['fd'\] do not apply to data.name='ring8'"):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / "config.json")


def test_resuming_with_a_scan_length_that_splits_a_chunk_is_refused(tmp_path):
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(tiny_config(num_steps=4), workdir)
    with open(os.path.join(workdir, "config.json")) as f:
        written = f.read()
    longer = tiny_config(num_steps=16, scan_steps=8, log_every=8)
    with pytest.raises(ValueError, match=r"scan_steps = 8 .*step 4 .*divisor of 4"):
        train.train_and_evaluate(longer, workdir, override_config=True)
    with open(os.path.join(workdir, "config.json")) as f:
        assert f.read() == written  # the refused run overwrote nothing


def test_an_epoch_schedule_needs_the_dataset_size():
    config = load_experiment("gan2014_mnist")
    with pytest.raises(ValueError, match=r"final_momentum .*epochs.*dataset_size"):
        engine.make_train(config)
    assert spec_lib.updates_per_epoch(config, 50_000) == 50_000 // config.train.batch_size
