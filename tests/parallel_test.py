"""pmap data parallelism on 8 fake CPU devices (set in conftest.py before JAX starts)."""

import os

import jax
import numpy as np
import pytest
from conftest import fresh_state, run_two_processes, tiny_config
from experiments_loader import load_experiment

from gan_jax import data, engine, hparams, parallel, train
from gan_jax.checkpoint import Checkpointer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (fake) devices")


def assert_trees_close(a, b, rtol=1e-4, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def run_both(config, dataset, iterations=5):
    """The same config on one device and under pmap on 8, from the same initial state."""
    size = None if dataset is None else dataset.x.shape[0]
    hp = hparams.from_config(config)
    single = engine.jit_steps(engine.make_spec(config, size))
    state = single.init(jax.random.PRNGKey(0), hp, dataset)
    pmapped = parallel.pmap_steps(engine.make_spec(config, size, axis_name=parallel.AXIS))
    p_state, p_metrics = engine.advance(
        pmapped, parallel.replicate(state), parallel.replicate(dataset), hp, iterations
    )
    s_state, s_metrics = engine.advance(single, state, dataset, hp, iterations)
    return (s_state, s_metrics), (parallel.unreplicate(p_state), parallel.unreplicate(p_metrics))


# Narrower versions of the experiments' nets: what these tests compare (every random draw and
# every batch statistic addressed by global row, gradients averaged over devices) does not
# depend on width, and the full widths cost most of the suite's compile time.
NARROW_NETS = {
    "gan2014_mnist": ({"hidden": 64}, {"units": 16}),
    "keras_mlp_mnist": ({"hidden": (16, 32), "output_activation": "tanh"}, {"hidden": (32, 16)}),
}


def narrow(config, experiment):
    config.model.generator_kwargs, config.model.discriminator_kwargs = NARROW_NETS[experiment]
    return config


def random_images(n, scale):
    low = -1.0 if scale == "symmetric" else 0.0
    x = np.random.default_rng(0).uniform(low, 1.0, (n, 28, 28, 1)).astype(np.float32)
    return data.make_dataset(x)


@pytest.mark.parametrize(
    "experiment, scan_steps",
    # The 2014 D under pmap is also checked, conditional, below (this one: make test-all).
    [pytest.param("gan2014_mnist", 5, marks=pytest.mark.slow), ("keras_mlp_mnist", 0)],
)
def test_pmap_equals_single_device_on_the_same_global_batch(experiment, scan_steps):
    config = narrow(load_experiment(experiment), experiment)
    config.train.update(batch_size=32, scan_steps=scan_steps, num_steps=10, log_every=5)
    config.train.update(checkpoint_every=5)
    (s_state, s_metrics), (p_state, p_metrics) = run_both(
        config, random_images(96, config.data.scale)
    )
    assert int(p_state.step) == 5
    # keras_mlp_mnist's Adam moves a weight by up to lr = 2e-4 a step however small its gradient,
    # so a near-zero gradient summed in another order can move it differently: atol is 1% of
    # 5 such steps.
    assert_trees_close(s_state, p_state, atol=1e-5)
    assert_trees_close(s_metrics, p_metrics, rtol=1e-3)


def test_pmap_with_k_d_steps_and_toy_data():
    config = tiny_config(d_steps=3, batch_size=64, scan_steps=0)
    (s_state, _), (p_state, _) = run_both(config, None)
    assert int(p_state.d_updates) == 15
    assert_trees_close(s_state, p_state)


def test_pmap_equals_single_device_for_the_conditional_2014_d():
    # Its dropout masks are addressed by global row through the conditional wrapper too.
    config = load_experiment("conditional_mnist")  # 'dcgan' by default: cgan is the 2014 nets
    config.model.update(generator="gan2014", discriminator="gan2014", z_dist="uniform")
    narrow(config, "gan2014_mnist")
    config.data.scale = "unit"
    config.train.update(batch_size=32, scan_steps=0, num_steps=10, log_every=5)
    config.train.update(checkpoint_every=5)
    x = random_images(96, config.data.scale).x
    dataset = data.make_dataset(x, np.arange(96) % 10)
    (s_state, s_metrics), (p_state, p_metrics) = run_both(config, dataset, iterations=3)
    assert_trees_close(s_state, p_state, atol=1e-5)
    assert_trees_close(s_metrics, p_metrics, rtol=1e-3)


# WGAN-GP's interpolation noise under pmap: make test-all (DRAGAN's noise on real rows stays).
@pytest.mark.parametrize("penalty", [pytest.param("gp", marks=pytest.mark.slow), "dragan"])
def test_pmap_equals_single_device_with_a_noisy_gradient_penalty(penalty):
    # Their noise is drawn for the global batch and DRAGAN's std taken over it, as on one device.
    config = tiny_config(batch_size=64, scan_steps=0)
    config.loss.update(penalty=penalty, penalty_weight=10.0)
    (s_state, s_metrics), (p_state, p_metrics) = run_both(config, None)
    assert_trees_close(s_state, p_state)
    assert_trees_close(s_metrics, p_metrics, rtol=1e-3)


def test_batch_must_divide_over_devices():
    config = tiny_config(batch_size=36)
    config.parallel = "pmap"
    with pytest.raises(ValueError, match="batch_size = 36 .* multiple of 8"):
        train.train_and_evaluate(config, "/nonexistent/never-written")


@pytest.mark.slow  # make test-all; the default run keeps pmap equals one device and resume
def test_checkpoints_move_between_pmap_and_a_single_device(tmp_path):
    straight = train.train_and_evaluate(tiny_config(num_steps=12), str(tmp_path / "a"))
    for first, second, name in (("pmap", "none", "b"), ("none", "pmap", "c")):
        config = tiny_config(num_steps=4)
        config.parallel = first
        train.train_and_evaluate(config, str(tmp_path / name))
        config = tiny_config(num_steps=12)
        config.parallel = second
        resumed = train.train_and_evaluate(config, str(tmp_path / name), override_config=True)
        assert int(resumed.step) == 12
        assert_trees_close(straight, resumed)


# make test-all: in the default run the sweep's two-process test (sweep_test.py) joins
# processes with jax.distributed.
@pytest.mark.slow
def test_two_processes_of_four_devices_equal_one_process_of_eight(tmp_path):
    flags = [
        "--config=experiments/ring8.py",
        "--config.parallel=pmap",
        "--config.train.num_steps=10",
        "--config.train.scan_steps=5",
        "--config.train.log_every=5",
        "--config.train.checkpoint_every=5",
        "--config.train.sample_every=0",
    ]
    workdir = str(tmp_path / "multihost")
    run_two_processes(["train", f"--workdir={workdir}", *flags], tmp_path)

    config = load_experiment("ring8")
    config.parallel = "pmap"
    config.train.update(num_steps=10, scan_steps=5, log_every=5, checkpoint_every=5)
    config.train.sample_every = 0
    single_process = train.train_and_evaluate(config, str(tmp_path / "one"))
    like = fresh_state(config)
    two_processes = Checkpointer(os.path.join(workdir, "checkpoints")).restore(like)
    assert int(two_processes.step) == 10
    assert_trees_close(single_process, two_processes)
