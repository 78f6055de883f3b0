import functools
import gzip
import os
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config
from PIL import Image

from gan_jax import cli, data, engine, figures, hparams, steps
from gan_jax import workdir as workdir_lib
from gan_jax.checkpoint import Checkpointer

NUM_DIGITS = 64


def write_idx(path, array_u8) -> None:
    header = bytes([0, 0, 0x08, array_u8.ndim]) + struct.pack(f">{array_u8.ndim}I", *array_u8.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array_u8.tobytes())


def conditional_config(mnist_dir: str):
    config = tiny_config()
    config.data.update(name="mnist", scale="unit", dir=mnist_dir)
    config.model.update(conditioning="concat", num_classes=10)
    config.model.generator_kwargs = {"hidden": (16,), "output_activation": "sigmoid"}
    return config


@pytest.fixture(scope="module")
def conditional_workdir(tmp_path_factory):
    """A conditional MLP G on 64 made-up 28x28 digits, written by hand (config.json and one
    checkpoint at step 5): the figures read the training examples and G, not a trained D."""
    directory = tmp_path_factory.mktemp("fake_mnist")
    n_N11, row_1R1, col_11C = np.ogrid[:NUM_DIGITS, :28, :28]
    images = ((n_N11 * 131 + row_1R1 * 29 + col_11C * 7) ** 2 % 251).astype(np.uint8)
    write_idx(directory / data.MNIST_FILES["train"][0], images)
    write_idx(directory / data.MNIST_FILES["train"][1], np.arange(NUM_DIGITS, dtype=np.uint8) % 10)
    workdir = str(tmp_path_factory.mktemp("conditional"))
    config = conditional_config(str(directory))
    spec = engine.make_spec(config, None)
    init = jax.jit(functools.partial(engine.init, spec=spec))  # jitted: 3x faster than eager
    state = init(jax.random.PRNGKey(0), hparams.from_config(config), None)
    # Scaled-up weights spread G's sigmoid outputs over [0, 1] rather than near 0.5.
    state = state.replace(
        g=state.g.replace(params=jax.tree.map(lambda p: 20.0 * p, state.g.params))
    )
    workdir_lib.write_config(config, workdir)
    Checkpointer(os.path.join(workdir, "checkpoints")).save(state.replace(step=5))
    return workdir, images, state


def test_nearest_neighbours_equal_a_numpy_brute_force():
    rng = np.random.default_rng(0)
    pool_MxD = rng.normal(size=(103, 20)).astype(np.float32) + 5.0  # offset: tests the centring
    queries_NxD = np.concatenate(
        [rng.normal(size=(9, 20)).astype(np.float32) + 5.0, pool_MxD[[100, 3]]]
    )
    d2_NxM = ((queries_NxD[:, None].astype(np.float64) - pool_MxD[None]) ** 2).sum(-1)
    for chunk in (16, 1000):  # 103 rows in 7 padded chunks, and in one
        index_N, dist2_N = figures.nearest_neighbours(queries_NxD, pool_MxD, chunk=chunk)
        np.testing.assert_array_equal(index_N, d2_NxM.argmin(axis=1))
        np.testing.assert_allclose(dist2_N, d2_NxM.min(axis=1), rtol=1e-4, atol=1e-4)
    assert list(index_N[-2:]) == [100, 3]
    with pytest.raises(ValueError, match="size 20 cannot be compared with pool rows of size 19"):
        figures.nearest_neighbours(queries_NxD, pool_MxD[:, :19])


def test_interpolation_rows_are_g_of_the_linear_mix_and_class_rows_g_of_each_class(
    conditional_workdir,
):
    state = conditional_workdir[2]
    z_dim = conditional_config("").model.z_dim
    key = jax.random.PRNGKey(7)
    z_RxTxZ = figures.interpolation_latents(key, 3, 5, z_dim, "normal")
    y_RxT = np.repeat(np.array([[4], [0], [9]]), 5, axis=1)
    x_RxTx = figures.generate_grid(state, z_RxTxZ, y_RxT)
    key0, key1 = jax.random.split(key)
    z0_RxZ = np.asarray(steps.sample_z(key0, 3, z_dim, "normal"), np.float64)
    z1_RxZ = np.asarray(steps.sample_z(key1, 3, z_dim, "normal"), np.float64)
    t_T = np.linspace(0.0, 1.0, 5)
    mix_RxTxZ = (1 - t_T)[None, :, None] * z0_RxZ[:, None] + t_T[None, :, None] * z1_RxZ[:, None]
    # One call of G on every code of the grid, built here in float64 (t = 0 is z0, t = 1 z1).
    expected = figures.generate_batch(
        state, jnp.asarray(mix_RxTxZ.reshape(15, z_dim), jnp.float32), jnp.asarray(y_RxT.ravel())
    )
    np.testing.assert_allclose(x_RxTx.reshape(15, -1), np.reshape(expected, (15, -1)), atol=1e-5)

    grid_RxKx = figures.class_grid(state, key, 2, 10, z_dim, "normal")
    z_RxZ = steps.sample_z(key, 2, z_dim, "normal")
    expected = figures.generate_batch(
        state, jnp.repeat(z_RxZ, 10, axis=0), jnp.tile(jnp.arange(10), 2)
    )
    np.testing.assert_allclose(grid_RxKx.reshape(20, -1), np.reshape(expected, (20, -1)), atol=1e-5)


def pair_crops(path):
    """(samples, neighbours) uint8 [N, 28, 28] cut out of a neighbours PNG."""
    grid = np.asarray(Image.open(path))[::2, ::2]  # saved at scale 2
    samples, neighbours = [], []
    for r in range(figures.NUM_PAIRS // figures.PAIRS_PER_ROW):
        for c in range(figures.PAIRS_PER_ROW):
            top, left = 4 + r * 32, 4 + c * 60
            samples.append(grid[top : top + 28, left : left + 28])
            neighbours.append(grid[top : top + 28, left + 28 : left + 56])
    return np.stack(samples), np.stack(neighbours)


def test_figures_command_writes_each_sample_beside_its_nearest_training_digit(
    conditional_workdir, capsys
):
    workdir, images_u8, _ = conditional_workdir
    args = cli.parse_flags(["gan-jax", "figures", "--workdir", workdir])
    args.run(args)
    out = os.path.join(workdir, "figures")
    names = ["neighbours_pixel", "neighbours_features", "interpolation", "interpolation_classes"]
    assert sorted(os.listdir(out)) == sorted(f"{n}.png" for n in names)
    samples, neighbours = pair_crops(os.path.join(out, "neighbours_pixel.png"))
    d2 = ((samples[:, None].astype(np.float64) - images_u8[None]) ** 2).sum(axis=(2, 3))
    np.testing.assert_array_equal(neighbours, images_u8[d2.argmin(axis=1)])
    assert len(np.unique(samples.reshape(len(samples), -1), axis=0)) > 1
    _, feature_neighbours = pair_crops(os.path.join(out, "neighbours_features.png"))
    assert all((n == images_u8).all(axis=(1, 2)).any() for n in feature_neighbours)
    classes = Image.open(os.path.join(out, "interpolation_classes.png"))
    assert classes.size == (2 * (10 * 29 + 1), 2 * (figures.NUM_ROWS * 29 + 1))


def test_figures_stop_on_a_toy_workdir_or_one_without_checkpoint(tmp_path):
    toy = tiny_config()
    workdir_lib.write_config(toy, str(tmp_path / "toy"))
    with pytest.raises(ValueError, match="figures need image data.*data.name='ring8'"):
        figures.figures(str(tmp_path / "toy"))
    workdir_lib.write_config(conditional_config(""), str(tmp_path / "new"))
    with pytest.raises(ValueError, match="no checkpoint in .*new/checkpoints"):
        figures.figures(str(tmp_path / "new"))
    with pytest.raises(ValueError, match="no config.json"):
        figures.figures(str(tmp_path / "missing"))
