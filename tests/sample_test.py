import json
import os
import sys

import jax
import numpy as np
import pytest
from conftest import fresh_state, tiny_config
from PIL import Image

from gan_jax import cli, evaluate, sample, steps, train, workdir_lock
from gan_jax import workdir as workdir_lib
from gan_jax.checkpoint import Checkpointer


@pytest.fixture(scope="module")
def ring_workdir(tmp_path_factory):
    """An 8-step run of the tiny ring-of-8 config, shared by this module's tests."""
    workdir = tmp_path_factory.mktemp("ring")
    train.train_and_evaluate(tiny_config(num_steps=8), str(workdir))
    return str(workdir)


@pytest.fixture(scope="module")
def conditional_workdir(tmp_path_factory):
    """A workdir of a class-conditional MLP G on MNIST-shaped images (pixels in [0, 1]).

    Built by hand, config.json and one checkpoint at step 5, because training needs the MNIST
    files and sampling does not. G's weights are scaled up so that its sigmoid outputs span
    [0, 1] rather than sitting near 0.5.
    """
    workdir = str(tmp_path_factory.mktemp("conditional"))
    config = tiny_config()
    config.data.update(name="mnist", scale="unit")
    config.model.update(conditioning="concat", num_classes=10)
    config.model.generator_kwargs = {"hidden": (16,), "output_activation": "sigmoid"}
    state = fresh_state(config)
    g_params = jax.tree.map(lambda p: 20.0 * p, state.g.params)
    state = state.replace(g=state.g.replace(params=g_params), step=5)
    workdir_lib.write_config(config, workdir)
    Checkpointer(os.path.join(workdir, "checkpoints")).save(state)
    return workdir


def restored(workdir):
    config = evaluate.load_workdir_config(workdir)
    return config, evaluate.restore_state(config, workdir)


def by_hand(config, state, seed: int, num: int, labels=None):
    """G of the latent codes the module docstring specifies, one row at a time."""
    key = jax.random.PRNGKey(seed)
    z_NxZ = np.stack(
        [
            steps.sample_z(jax.random.fold_in(key, i), 1, config.model.z_dim, config.model.z_dist)[
                0
            ]
            for i in range(num)
        ]
    )
    return np.asarray(steps.generate(state, z_NxZ, labels))


def test_the_same_seed_gives_the_same_samples_and_another_seed_others(ring_workdir, tmp_path):
    first = sample.sample(ring_workdir, 50, 3, str(tmp_path / "a.npz"))
    sample.sample(ring_workdir, 50, 3, str(tmp_path / "b.npz"))
    sample.sample(ring_workdir, 50, 4, str(tmp_path / "c.npz"))
    a, b, c = (np.load(tmp_path / f"{n}.npz") for n in "abc")
    expected = {"out": str(tmp_path / "a.npz"), "format": "npz", "num": 50, "seed": 3, "step": 8}
    assert first == expected
    assert sorted(a.files) == ["seed", "step", "value_range", "x"]  # no labels: unconditional
    assert a["x"].shape == (50, 2) and a["x"].dtype == np.float32
    assert (int(a["step"]), int(a["seed"]), int(c["seed"])) == (8, 3, 4)
    assert a["value_range"].tolist() == [-np.inf, np.inf]
    np.testing.assert_array_equal(a["x"], b["x"])
    assert np.all(np.abs(a["x"] - c["x"]).max(axis=1) > 1e-3)  # every sample differs


def test_samples_are_g_of_the_documented_codes_whatever_the_batch_size(ring_workdir):
    config, state = restored(ring_workdir)
    # 7 = 3 + 3 + 1: the last batch is padded to 3 rows and cut.
    x, y = sample.draw_samples(config, state, 7, seed=11, batch_size=3)
    assert y is None and x.shape == (7, 2)
    np.testing.assert_allclose(x, by_hand(config, state, 11, 7), rtol=1e-6, atol=1e-6)
    one_batch, _ = sample.draw_samples(config, state, 7, seed=11)
    np.testing.assert_allclose(x, one_batch, rtol=1e-6, atol=1e-6)


def test_all_batches_share_one_trace(ring_workdir, monkeypatch):
    config, state = restored(ring_workdir)
    traces = []
    generate = steps.generate
    monkeypatch.setattr(steps, "generate", lambda *a: traces.append(1) or generate(*a))
    sample.generate_rows.clear_cache()
    sample.draw_samples(config, state, 7, seed=0, batch_size=3)  # 3 batches, the last padded
    assert len(traces) == 1


def test_a_conditional_g_gets_labels_i_mod_k_in_the_npz_and_the_image_folder(
    conditional_workdir, tmp_path
):
    record = sample.sample(conditional_workdir, 23, 5, str(tmp_path / "s.npz"), batch_size=10)
    assert record["step"] == 5
    saved = np.load(tmp_path / "s.npz")
    expected_y = np.arange(23) % 10
    np.testing.assert_array_equal(saved["y"], expected_y)
    assert saved["y"].dtype == np.int32 and saved["x"].shape == (23, 28, 28, 1)
    assert saved["value_range"].tolist() == [0.0, 1.0]
    config, state = restored(conditional_workdir)
    x = by_hand(config, state, 5, 23, expected_y)
    np.testing.assert_allclose(saved["x"], x, rtol=1e-6, atol=1e-6)
    assert saved["x"].min() < 0.05 and saved["x"].max() > 0.95  # the PNG check below spans 0..255

    record = sample.sample(conditional_workdir, 23, 5, str(tmp_path / "images") + "/")
    assert record["format"] == "png"
    folder = tmp_path / "images"
    names = [f"{i:02d}.png" for i in range(23)]
    assert sorted(os.listdir(folder)) == sorted([*names, "labels.csv"])
    pixels = np.stack([np.asarray(Image.open(folder / n)) for n in names])
    np.testing.assert_array_equal(pixels, np.round(saved["x"][..., 0] * 255).astype(np.uint8))
    rows = (folder / "labels.csv").read_text().splitlines()
    assert rows == ["file,label", *(f"{n},{c}" for n, c in zip(names, expected_y, strict=True))]


def test_toy_samples_in_a_folder_are_one_csv(ring_workdir, tmp_path):
    sample.sample(ring_workdir, 9, 2, str(tmp_path / "s.npz"))
    (tmp_path / "empty").mkdir()  # an existing empty directory is a folder too
    record = sample.sample(ring_workdir, 9, 2, str(tmp_path / "empty"))
    assert record["format"] == "csv"
    assert os.listdir(tmp_path / "empty") == ["samples.csv"]
    csv = (tmp_path / "empty" / "samples.csv").read_text().splitlines()
    assert csv[0] == "x0,x1"
    table = np.loadtxt(csv[1:], delimiter=",", dtype=np.float32)
    np.testing.assert_array_equal(table, np.load(tmp_path / "s.npz")["x"])


def test_pixels_map_the_value_range_onto_0_to_255():
    x = np.array([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], np.float32)
    assert sample.to_uint8(x, -1.0, 1.0).tolist() == [0, 0, 64, 128, 191, 255, 255]
    assert sample.to_uint8(x, 0.0, 1.0).tolist() == [0, 0, 0, 0, 128, 255, 255]


def test_bad_input_stops_with_its_value_before_any_work(ring_workdir, tmp_path, monkeypatch):
    def no_work(*args):
        raise AssertionError("restored a checkpoint despite bad input")

    monkeypatch.setattr(sample, "restore_state", no_work)
    out = str(tmp_path / "s.npz")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.png").write_bytes(b"")
    (tmp_path / "config_only").mkdir()
    (tmp_path / "config_only" / "config.json").write_text("{}")
    cases = [
        ((ring_workdir, 0, 0, out), r"--num 0 is not allowed; expected a whole number >= 1"),
        ((ring_workdir, True, 0, out), r"--num True is not allowed"),
        ((ring_workdir, 5, -1, out), r"--seed -1 is not allowed; expected a whole number from 0"),
        ((ring_workdir, 5, 2**32, out), r"--seed 4294967296 .* from 0 to 4294967295"),
        ((ring_workdir, 5, 0, "s.png"), r"--out 's.png' is not allowed; expected FILE.npz, or"),
        ((ring_workdir, 5, 0, "s.txt"), r"--out 's.txt': FILE.txt is for text runs; expected"),
        ((ring_workdir, 5, 0, str(tmp_path / "full")), r"is a directory that is not empty"),
        (
            (ring_workdir, 5, 0, os.path.join(ring_workdir, "checkpoints", "x.npz")),
            r"lies under .*checkpoints, where orbax reads every entry",
        ),
        ((str(tmp_path / "nowhere"), 5, 0, out), r"'.*nowhere' has no config.json"),
        ((str(tmp_path / "config_only"), 5, 0, out), r"no checkpoint in .*config_only"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            sample.sample(*args)
    assert sorted(os.listdir(tmp_path)) == ["config_only", "full"]
    assert os.listdir(tmp_path / "config_only") == ["config.json"]  # no checkpoints/ made


def test_an_interrupted_write_leaves_nothing_at_the_output(
    ring_workdir, conditional_workdir, tmp_path, monkeypatch
):
    savez = np.savez

    # Mid-write, nothing is at the output path yet: a SIGKILL there would leave nothing either.
    seen_at_out = []

    def half_then_interrupt(f, **arrays):
        savez(f, x=arrays["x"])
        seen_at_out.append(os.path.exists(tmp_path / "s.npz"))
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        sample.sample(ring_workdir, 5, 0, str(tmp_path / "s.npz"))
    saved = []

    def save_two_then_interrupt(image, path, *args, **kwargs):
        if len(saved) == 2:
            raise KeyboardInterrupt
        saved.append(path)
        seen_at_out.append(os.path.exists(tmp_path / "images"))

    monkeypatch.setattr(Image.Image, "save", save_two_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        sample.sample(conditional_workdir, 5, 0, str(tmp_path / "images") + "/")
    assert len(saved) == 2 and seen_at_out == [False, False, False]
    assert os.listdir(tmp_path) == []


def test_sample_reads_a_workdir_that_a_training_run_holds(ring_workdir, tmp_path):
    with workdir_lock.hold(ring_workdir, "train"):
        assert sample.sample(ring_workdir, 3, 0, str(tmp_path / "s.npz"))["step"] == 8


def test_the_command_line_writes_the_samples_and_reports_bad_input_in_one_line(
    ring_workdir, tmp_path, monkeypatch, capsys
):
    def gan_jax(*argv):
        monkeypatch.setattr(sys, "argv", ["gan-jax", *argv])
        with pytest.raises(SystemExit) as exit_info:
            cli.run()
        return exit_info.value.code, capsys.readouterr().out

    out = str(tmp_path / "cli.npz")
    status, printed = gan_jax("sample", f"--workdir={ring_workdir}", "--num=6", "--out", out)
    assert status in (None, 0)
    assert json.loads(printed) == {"out": out, "format": "npz", "num": 6, "seed": 0, "step": 8}
    sample.sample(ring_workdir, 6, 0, str(tmp_path / "api.npz"))
    # --seed defaults to 0
    np.testing.assert_array_equal(np.load(out)["x"], np.load(tmp_path / "api.npz")["x"])
    status, _ = gan_jax("sample", f"--workdir={ring_workdir}", "--num=6", "--out=s.csv")
    assert status == "error: --out 's.csv' is not allowed; expected FILE.npz, or a directory" + (
        " OUTDIR/ (a path ending in '/' or an existing empty one)"
    )
