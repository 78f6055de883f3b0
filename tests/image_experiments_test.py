"""The CIFAR-10 and CelebA experiments (dcgan_cifar10, wgan_gp_cifar10, sngan_cifar10,
dcgan_celeba64) as smoke tests: each config, its nets narrowed, trains one iteration (5 D
updates for the WGAN-GP and SN-GAN ones) on a small random npz of its dataset's shape, through
the npz source and the engine's own program; losses come out finite and G's samples have the
data's shape and range."""

import jax
import numpy as np
import pytest
from experiments_loader import load_experiment

from gan_jax import data, engine, hparams, steps
from gan_jax.config import validate

NARROW = {  # the nets' widths here; the papers' widths are in the experiment files
    "dcgan": ({"base_features": 4}, {"base_features": 4}),
    "resnet": ({"base_features": 4}, {"features": 4}),
}
# (experiment, image shape, the metrics that must be present). Each compiles a whole program
# (~2 s here, more on a busy machine), so all four are `make test-all`'s; the default run checks
# their nets (resnet_models_test.py) and validates their configs (config_test.py).
SLOW = pytest.mark.slow
CASES = [
    pytest.param("dcgan_cifar10", (32, 32, 3), ("d_loss", "g_loss"), marks=SLOW),
    pytest.param("wgan_gp_cifar10", (32, 32, 3), ("d_loss", "g_loss", "d_penalty"), marks=SLOW),
    pytest.param("sngan_cifar10", (32, 32, 3), ("d_loss", "g_loss"), marks=SLOW),
    pytest.param("dcgan_celeba64", (64, 64, 3), ("d_loss", "g_loss"), marks=SLOW),
]
# A smoke test needs the program, not fast code: LLVM's cheapest level halves the compile.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def tiny_run_config(name, shape, tmp_path):
    """The experiment's config on a 16-image npz of `shape` (uint8), nets narrowed."""
    path = tmp_path / f"{name}.npz"
    images = np.random.default_rng(0).integers(0, 256, (16, *shape), dtype=np.uint8)
    np.savez(path, x=images)
    config = load_experiment(name)
    config.data.update(name="npz", dir=str(path), cache_dir=str(tmp_path / "cache"))
    g_kwargs, d_kwargs = NARROW[config.model.generator]
    config.model.generator_kwargs.update(g_kwargs)
    config.model.discriminator_kwargs.update(d_kwargs)
    config.train.update(batch_size=8, num_steps=1, scan_steps=1, log_every=1)
    config.train.update(sample_every=0, checkpoint_every=0)
    validate(config)
    return config


@pytest.mark.parametrize("name, shape, keys", CASES)
def test_experiment_trains_on_data_of_its_shape(name, shape, keys, tmp_path):
    config = tiny_run_config(name, shape, tmp_path)
    assert tuple(data.data_shape(config.data)) == shape
    dataset = data.load_dataset(config.data)
    train = engine.make_train(config, dataset.x.shape[0])
    run = jax.jit(train, compiler_options=FAST_COMPILE)
    state, metrics = run(jax.random.PRNGKey(0), hparams.from_config(config), dataset)
    for key in keys:
        assert np.all(np.isfinite(np.asarray(metrics[key]))), (key, metrics[key])
    z = steps.sample_z(jax.random.PRNGKey(1), 3, config.model.z_dim, config.model.z_dist)
    x = np.asarray(jax.jit(steps.generate)(state, z))
    assert x.shape == (3, *shape) and np.all(np.abs(x) <= 1.0)  # tanh for data in [-1, 1]
    assert int(state.step) == 1
