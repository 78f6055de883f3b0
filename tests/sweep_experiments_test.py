"""The sweep experiments (experiments/toy_mode_coverage.py, experiments/sweep_r1_grid25.py):
the paper rows follow the authors' toy scripts, the R1 experiment trains the grid it declares
(golden losses after two steps), a member's score equals a plain numpy count over the samples
`gan-jax sample` writes, and the tables summarise seeds as numpy does."""

import csv
import importlib.util
import itertools

import jax
import numpy as np
import pytest
from experiments_loader import EXPERIMENTS

from gan_jax import data, sample, sweep


def load(name):
    spec = importlib.util.spec_from_file_location(
        f"sweep_experiments_{name}", EXPERIMENTS / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


r1 = load("sweep_r1_grid25")
toy = r1.toy  # the module the R1 script scores with, so a patch reaches both

# Four corners of the R1 grid, trained here (2 steps, batch 16, seed 0): members 0 (R1 weight
# 0.01, D lr 3e-4), 1 (0.01, 3e-3), 2 (10, 3e-4), 3 (10, 3e-3). A member equals the same member
# in the full 60-member sweep (members 0 and 11 there gave these very numbers).
CORNERS = {"loss.penalty_weight": [0.01, 10.0], "optim.d.lr": [3e-4, 3e-3]}
# d_loss and g_loss after the 2 steps; float32 on the CPU, to RTOL. Members 0 and 2 differ only
# in the R1 weight.
GOLDEN = {0: (1.075174, 0.5650386), 2: (1.077443, 0.5673646), 3: (1.063196, 0.6364151)}
RTOL = 1e-4
NUM_SAMPLES = 300  # per member here (the experiments score 2,500)


@pytest.fixture(scope="module")
def r1_sweep(tmp_path_factory):
    """The R1 experiment's get_config() over CORNERS for 2 steps at batch 16, one seed."""
    workdir = str(tmp_path_factory.mktemp("r1"))
    config = r1.get_config()
    config.train.update(batch_size=16, num_steps=2, scan_steps=2, log_every=2)
    config.train.update(sample_every=0, checkpoint_every=2)
    # One device: the sharded program (8 fake devices here) compiles slower, to the same numbers.
    members = sweep.run_sweep(config, CORNERS, 1, workdir, devices=jax.devices()[:1])
    return workdir, members


@pytest.fixture(scope="module")
def r1_scores(r1_sweep):
    patch = pytest.MonkeyPatch()
    patch.setattr(toy, "NUM_SAMPLES", NUM_SAMPLES)
    try:
        yield toy.score_members(r1_sweep[0], "grid25")
    finally:
        patch.undo()


def results(workdir):
    with open(f"{workdir}/results.csv", newline="") as f:
        return {r["row"]: r for r in csv.DictReader(f)}


def test_r1_sweep_declares_weights_times_rates_times_seeds():
    config = r1.get_config()
    members = sweep.build_members(config, sweep.make_grid(config, r1.get_sweep()), 5)
    expected = [
        (w, lr, s) for w, lr in itertools.product(r1.R1_WEIGHTS, r1.D_LRS) for s in range(5)
    ]
    got = [(m.values["loss.penalty_weight"], m.values["optim.d.lr"], m.seed) for m in members]
    assert got == expected
    assert {(m.config.loss.penalty, m.config.data.name) for m in members} == {("r1", "grid25")}


@pytest.mark.slow  # make test-all: trains the grid's corners
def test_r1_corners_train_to_golden_losses(r1_sweep):
    workdir, members = r1_sweep
    assert all(m.status == "ok" for m in members)
    rows = results(workdir)
    for index, (d_loss, g_loss) in GOLDEN.items():
        row = rows[f"member {index}"]
        np.testing.assert_allclose(float(row["d_loss"]), d_loss, rtol=RTOL)
        np.testing.assert_allclose(float(row["g_loss"]), g_loss, rtol=RTOL)


def numpy_mixture_metrics(x_Nx2, centers_Kx2, std):
    """Nearest centre by an explicit loop; high quality within 3 std; KL(hist || uniform)."""
    counts = np.zeros(len(centers_Kx2))
    for x in x_Nx2:
        distances = [np.hypot(*(x - c)) for c in centers_Kx2]
        k = int(np.argmin(distances))
        if distances[k] < 3 * std:
            counts[k] += 1
    p = counts[counts > 0] / counts.sum() if counts.sum() else np.array([])
    kl = float(np.sum(p * np.log(p * len(centers_Kx2)))) if p.size else float("nan")
    return {"modes": int((counts > 0).sum()), "high_quality_pct": 100 * counts.sum() / len(x_Nx2),
            "reverse_kl": kl}  # fmt: skip


@pytest.mark.slow  # make test-all: trains the grid's corners
def test_member_scores_equal_numpy_over_gan_jax_sample(r1_sweep, r1_scores, tmp_path):
    workdir, _ = r1_sweep
    centers_Kx2, std = data.mixture_spec("grid25")
    for index in (0, 3):
        out = str(tmp_path / f"{index}.npz")
        sample.sample(sweep.member_dir(workdir, index), NUM_SAMPLES, toy.SAMPLE_SEED, out)
        x_Nx2 = np.load(out)["x"]
        expected = numpy_mixture_metrics(x_Nx2, centers_Kx2, std)
        row = r1_scores[index]
        assert row["index"] == index and row["status"] == "ok"
        np.testing.assert_array_equal(row["samples_Nx2"], x_Nx2)
        for key, value in expected.items():
            np.testing.assert_allclose(row[key], value, rtol=1e-9, equal_nan=True)


@pytest.mark.slow  # make test-all: trains the grid's corners
def test_r1_table_and_heatmap_hold_every_grid_point(r1_sweep, r1_scores, tmp_path, monkeypatch):
    monkeypatch.setattr(toy, "NUM_SAMPLES", NUM_SAMPLES)
    points = r1.main(["--workdir", r1_sweep[0], "--out", str(tmp_path)])
    assert len(points) == 4
    hq = r1.grid_means(points, "high_quality_pct")
    assert np.isnan(hq).sum() == 12 - 4  # the 4 trained cells hold numbers, the others nan
    for m in r1_scores:
        i = r1.R1_WEIGHTS.index(m["values"]["loss.penalty_weight"])
        j = r1.D_LRS.index(m["values"]["optim.d.lr"])
        assert hq[i, j] == m["high_quality_pct"]
    # Every cell in its place: point k of the full grid (weight major) holds the number k.
    full = [
        {"values": {"loss.penalty_weight": w, "optim.d.lr": lr}, "modes": (float(k), 0.0)}
        for k, (w, lr) in enumerate(itertools.product(r1.R1_WEIGHTS, r1.D_LRS))
    ]
    np.testing.assert_array_equal(r1.grid_means(full, "modes").ravel(), np.arange(12.0))
    table = (tmp_path / "sweep_r1_grid25.md").read_text()
    assert sum(line.startswith("| ") for line in table.splitlines()) == 2 + len(
        points
    )  # header, rule, points
    assert (tmp_path / "sweep_r1_grid25.png").stat().st_size > 0


def member(point, seed, status="ok", modes=8.0, hq=50.0, kl=0.1):
    return {"index": 3 * point + seed, "point": point, "seed": seed, "values": {"lr": point},
            "status": status, "modes": modes, "high_quality_pct": hq, "reverse_kl": kl}  # fmt: skip


def test_summarise_skips_failed_members_and_best_point_ranks_modes_then_quality():
    nan = float("nan")
    members = [
        member(0, 0, modes=6.0, hq=90.0), member(0, 1, modes=8.0, hq=80.0),
        member(0, 2, status="failed at step 100 (player D)", modes=nan, hq=nan, kl=nan),
        member(1, 0, modes=7.0, hq=99.0), member(1, 1, modes=7.0, hq=97.0, kl=nan),
        member(2, 0, status="failed", modes=nan, hq=nan, kl=nan),
    ]  # fmt: skip
    points = toy.summarise(members)
    assert [(p["ok"], p["n"]) for p in points] == [(2, 3), (2, 2), (0, 1)]
    np.testing.assert_allclose(points[0]["modes"], (np.mean([6, 8]), np.std([6, 8])))
    np.testing.assert_allclose(points[1]["reverse_kl"], (0.1, 0.0))
    assert points[1]["reverse_kl_count"] == 1 and np.isnan(points[2]["modes"][0])
    # Equal means (7 modes): the higher high-quality share (98 against 85) wins; more modes beat
    # a higher share; a point whose members all failed is best only when it is alone.
    assert toy.best_point(points)["point"] == 1 and toy.best_point(points[2:])["point"] == 2
    points[0]["modes"] = (7.5, 0.5)
    assert toy.best_point(points)["point"] == 0


def test_paper_rows_take_the_authors_toy_settings():
    # igul222/improved_wgan_training gan_toy.py: DIM 512, 3 ReLU layers, LAMBDA .1,
    # CRITIC_ITERS 5, BATCH_SIZE 256, Adam(1e-4, 0.5, 0.9), ITERS 100000.
    c = toy.row_config("ring8", "wgan_gp_paper", paper_steps=0)
    assert (
        c.model.generator_kwargs["hidden"] == c.model.discriminator_kwargs["hidden"] == (512,) * 3
    )
    assert (c.loss.name, c.loss.penalty, c.loss.penalty_weight) == ("wgan", "gp", 0.1)
    assert (c.train.d_steps, c.train.batch_size, c.train.num_steps) == (5, 256, 100_000)
    for opt in (c.optim.g, c.optim.d):
        assert (opt.name, opt.lr, opt.b1, opt.b2, opt.lr_decay) == ("adam", 1e-4, 0.5, 0.9, 1.0)
    # xudonmao/LSGAN mixture_gaussian/ls.py: 2 x 128 hidden, z_dim 256, batch 512, G 1e-3 and
    # D 1e-4 Adam(b1 0.5), max_iter 35000, targets 0 (fake) and 1 (real and G's).
    c = toy.row_config("ring8", "lsgan_paper", paper_steps=0)
    assert (
        c.model.generator_kwargs["hidden"] == c.model.discriminator_kwargs["hidden"] == (128,) * 2
    )
    assert (c.model.z_dim, c.train.batch_size, c.train.num_steps) == (256, 512, 35_000)
    assert (c.optim.g.lr, c.optim.d.lr, c.optim.g.b1, c.optim.d.b1) == (1e-3, 1e-4, 0.5, 0.5)
    assert (c.loss.name, c.loss.lsgan_a, c.loss.lsgan_b, c.loss.lsgan_c) == ("lsgan", 0, 1, 1)
    assert toy.row_config("ring8", "nsgan_lsgan_paper").loss.name == "non_saturating"
    # The default run caps the paper rows; --paper_steps N caps them at N.
    assert toy.row_config("ring8", "lsgan_paper", paper_steps=700).train.num_steps == 700
    # The WGAN grids reach down to their papers' rates.
    assert 5e-5 in toy.row_grid(toy.get_config("ring8,wgan"), "wgan")["optim.d.lr"]
    assert 1e-4 in toy.row_grid(toy.get_config("ring8,wgan_gp"), "wgan_gp")["optim.g.lr"]


def test_bad_input_is_named_before_any_training(tmp_path, monkeypatch):
    def train(*args):
        raise AssertionError(f"trained {args[:2]} before checking every name")

    monkeypatch.setattr(toy, "run_row", train)
    with pytest.raises(ValueError, match="'nope'.*allowed"):
        toy.main(["--losses", "minimax,nope", "--out", str(tmp_path / "out")])
    with pytest.raises(ValueError, match="'ring9'.*allowed"):
        toy.main(["--mixtures", "ring8,ring9", "--out", str(tmp_path / "out")])
    with pytest.raises(ValueError, match="no finished sweep"):
        toy.score_members(str(tmp_path), "ring8")
    assert not list(tmp_path.iterdir())
