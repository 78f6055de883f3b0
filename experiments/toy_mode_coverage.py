r"""Mode coverage on the 2-D mixtures: every loss over a learning-rate grid x seeds, one sweep each.

Run from the repository root (CPU is enough). The reduced default set (ring8; the 11 loss rows
x 9 learning-rate points x 3 seeds; the 3 paper rows x 2 seeds, cut short):

    nice -n 10 .venv/bin/python experiments/toy_mode_coverage.py --out docs \
        --workdir runs/toy_mode_coverage

The full set (both mixtures, 5 seeds, the paper rows at their papers' own lengths: days on a
2-core CPU, see the WGAN-GP estimate below; sweeps finished in WORKDIR are reused, not rerun):

    .venv/bin/python experiments/toy_mode_coverage.py --out docs --mixtures ring8,grid25 \
        --seeds 5 --paper_seeds 5 --paper_steps 0

Each row of LOSSES is one `gan_jax.sweep.run_sweep` (one compiled program, the members vmapped)
into WORKDIR/<mixture>/<row>: the row's config over a 3 x 3 grid of G and D learning rates
(`optim.g.lr` x `optim.d.lr`, each at LR_FACTORS times the row's own rate) times `--seeds`
seeds. Every member's final G is scored from its member workdir (`score_members`: the 2,500
samples `gan-jax sample --num 2500 --seed 12345` writes, by `metrics.mixture_metrics`: the
VEEGAN / PacGAN protocol; a sample is high quality within 3 std of its nearest centre, a mode
is captured with at least one high-quality sample, reverse KL of the high-quality histogram to
uniform). A loss is reported at its best grid point (most modes, mean over seeds; then the
highest high-quality share), with the whole grid beside it, so no loss is judged at one
arbitrary learning rate. Writes OUT/toy_mode_coverage.md (the tables, settings and wall times)
and OUT/toy_mode_coverage_<mixture>.png (rows: losses at their best point; columns: seeds).
`--append` adds a section to the .md instead (pictures named after the rows).

The loss rows use small nets (2 hidden layers of 64), batch 256, z ~ N(0, I_2), Adam(b1 0.5)
at 2e-3 falling 100x over the run (ring8) or 1e-3 (grid25), 4,000 G steps (3/8 of that for the
n_critic = 5 losses). The WGAN and WGAN-GP rows take their toy papers' numbers (clip 0.01 and
RMSprop; lambda 0.1 and Adam(b1 0.5, b2 0.9)), their grids running from the paper's rate (5e-5;
1e-4) up to 10x it. The `*_paper` rows are the authors' own toy settings, at their rates only:

- `wgan_gp_paper`: igul222/improved_wgan_training `gan_toy.py` (Gulrajani et al. 2017): G and D
  ReLU MLPs with 3 hidden layers of 512, lambda 0.1, 5 critic iterations, batch 256, Adam(1e-4,
  b1 0.5, b2 0.9) for both, 100,000 G steps. Differences here: flax's LeCun-normal init (the
  script uses He init); our mixtures are theirs scaled by sqrt(2) (ring8) and 2.828 (grid25),
  with the same std to spacing ratios. Cost: a 2-512-512-512-1 MLP is 0.53 M multiply-adds per
  sample; a critic step (G's forward, D's forward and backward on real and fake, the penalty's
  interpolate pass and double backward) is about 3.2 GFLOP at batch 256 and a G step about 1.6,
  so a G iteration is about 18 GFLOP and the paper's run 1.8 PFLOP per seed: 2.4 h at this
  CPU's measured sustained matmul peak (~205 GFLOP/s, `make bench`) if every FLOP ran at peak.
  The default run stops it at 1,000 G steps (1% of the paper's), 2 seeds; `--paper_steps N`
  caps every paper row at N G steps (0: the papers' own), and the table states the steps run
  against the paper's.
- `lsgan_paper`, `nsgan_lsgan_paper`: xudonmao/LSGAN `stability_comparison/mixture_gaussian/
  ls.py` and `sig.py` (Mao et al. 2017, the stability comparison on a mixture of 8 Gaussians,
  after poolio/unrolled_gan): G and D MLPs with 2 hidden layers of 128, z ~ N(0, I_256), batch
  512, Adam(b1 0.5) with G at 1e-3 and D at 1e-4, 35,000 steps, the LSGAN 0-1 coding against
  the regular GAN (sig.py: sigmoid cross-entropy, G's non-saturating loss), on a ring of radius
  1 with std 0.01 (ring8's). Differences here: ReLU instead of tanh hidden units, LeCun-normal
  instead of orthogonal (gain 1.4) init, alternating instead of simultaneous D and G updates,
  8 equal modes (their linspace over 9 angles puts two centres on one point, so one mode has
  twice the weight). The paper reports the regular GAN collapsing from about step 15k while
  LSGAN keeps the ring. The default run stops both at 20,000 steps (57%), 2 seeds.

Expect (docs/toy_mode_coverage.md has the measured numbers and wall times; README's "Mode
coverage on the 2-D mixtures" the best-point table; 47 min of wall time for the 11 loss rows on
the 2-core VM shared with other jobs, about 45 min for the paper rows): at their best points
minimax, non-saturating, LSGAN 0-1, R1, lazy R1, R2 and hinge capture all 8 modes in every seed
with 79-89% high-quality samples, 7 of them at the top corner of the grid; WGAN-GP with its toy
numbers 7.3 modes (31% high quality) at 1e-3, 4.7 (0%) at the paper's 1e-4 in 1,500 G steps;
the Pearson LSGAN 5, WGAN 4.3, DRAGAN 7 modes. The paper rows: WGAN-GP at 1,000 G steps 2.5
modes (1.9%); at 20,000 steps LSGAN 4.5 modes (53%) against the regular GAN's 4.5 +- 3.5 (7%).

The `tuned` row (not in the default rows: 3 hidden layers of 128, ring8 minimax for 8,000 steps,
grid25 R1 with z ~ U[-1, 1]^2 for 70,000 steps, rate falling 10x; about 69 min on one core):

    .venv/bin/python experiments/toy_mode_coverage.py --out docs --losses tuned \
        --mixtures ring8,grid25 --seeds 10 --append

One grid point as a normal training run (`get_config("<mixture>,<row>")` is the row at its own
rates; each member's resolved config is WORKDIR/<mixture>/<row>/members/<i>/config.json), and
one row as a sweep from the command line:

    .venv/bin/python -m gan_jax train --workdir runs/toy_wgan_gp \
        --config experiments/toy_mode_coverage.py:ring8,wgan_gp \
        --config.optim.g.lr=3e-4 --config.optim.d.lr=3e-4
    .venv/bin/python -m gan_jax sweep --workdir runs/toy_wgan_gp_sweep \
        --config experiments/toy_mode_coverage.py:ring8,wgan_gp --seeds 3 \
        --sweep optim.g.lr=1e-4,3e-4,1e-3 --sweep optim.d.lr=1e-4,3e-4,1e-3
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import data, engine, evaluate, hparams, metrics, sample, sweep  # noqa: E402
from gan_jax.checkpoint import Checkpointer  # noqa: E402
from gan_jax.config import default_config, optimizer_config  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)

MIXTURES = ("ring8", "grid25")
NUM_SAMPLES = 2500  # per member, as in VEEGAN / PacGAN
SAMPLE_SEED = 12345  # latent codes of the scored samples (gan-jax sample --seed)
STEPS = 4000  # G updates per run (3/8 of that for the n_critic = 5 losses)
SEEDS = 3
PAPER_SEEDS = 2  # seeds of the *_paper rows
# The grid: G lr and D lr each at these multiples of the row's own rate (3 x 3 points).
LR_FACTORS = (1 / 3, 1.0, 3.0)
# The WGAN rows' grids run from the paper's rate up to 10x it (WGAN's own rate is the 10x, the
# rate of the table before the sweeps).
PAPER_UP = (1.0, 3.0, 10.0)
PAPER_DOWN = (0.1, 0.3, 1.0)
METRICS = ("modes", "high_quality_pct", "reverse_kl")


def _adam(lr, b1=0.5, b2=0.999):
    return optimizer_config(name="adam", lr=lr, b1=b1, b2=b2)


def _set(c, *, loss="non_saturating", penalty="none", weight=0.0, every=1, d_steps=1, **extra):
    c.loss.update(name=loss, penalty=penalty, penalty_weight=weight, penalty_every=every)
    c.train.d_steps = d_steps
    for key, value in extra.items():
        section, name = key.split("__")
        c[section][name] = value
    return c


def _nets(c, g_hidden, d_hidden, z_dim=None):
    c.model.generator_kwargs = {"hidden": g_hidden, "output_activation": "linear"}
    c.model.discriminator_kwargs = {"hidden": d_hidden}
    if z_dim is not None:
        c.model.z_dim = z_dim
    return c


def _wgan_gp_toy(c):
    """gan_toy.py's numbers: lambda 0.1, 5 critic steps, Adam(1e-4, 0.5, 0.9)."""
    return _set(c, loss="wgan", penalty="gp", weight=0.1, d_steps=5,
                optim__g=_adam(1e-4, 0.5, 0.9), optim__d=_adam(1e-4, 0.5, 0.9))  # fmt: skip


def _lsgan_paper(loss_settings):
    def configure(c):
        _nets(c, (128, 128), (128, 128), z_dim=256)
        c.train.batch_size = 512
        return _set(c, **loss_settings, optim__g=_adam(1e-3), optim__d=_adam(1e-4))

    return configure


def _tuned(c):
    settings, step_factor, z_dist = TUNED[c.data.name]
    _nets(c, (128, 128, 128), (128, 128, 128))
    c.model.z_dist = z_dist  # the grid from the square [-1, 1]^2: fewer samples between modes
    c.train.num_steps = round(step_factor * c.train.num_steps)
    return _set(c, **settings)


# The "tuned" row, per mixture: (its settings for _set, G steps as a multiple of --steps, z
# distribution); found by a short search with 1-2 seeds.
TUNED = {
    "ring8": ({"loss": "minimax"}, 2, "normal"),
    "grid25": ({"penalty": "r1", "weight": 0.1}, 17.5, "uniform"),
}


class Row(NamedTuple):
    """One table row: a loss (and its setting) swept over G lr x D lr x seeds in one sweep."""

    setting: str  # paper and numbers, for the table
    configure: Callable  # base config -> the row's config (learning rates at the row's own)
    lr_factors: tuple = LR_FACTORS  # G and D lr each at these multiples of the row's own
    paper_steps: int | None = None  # the paper's G steps (a *_paper row); None: --steps
    budget_steps: int | None = None  # a *_paper row's G steps in the default (CPU) run
    lr_fall: dict | None = None  # mixture -> how far the lr falls, where not LEARNING_RATES's


LOSSES = {
    "minimax": Row("Goodfellow et al. 2014, eq. 1", lambda c: _set(c, loss="minimax")),
    "non_saturating": Row("Goodfellow et al. 2014, Sec. 3", lambda c: _set(c)),
    "lsgan_01": Row(
        "Mao et al. 2017, a=0 b=c=1",
        lambda c: _set(c, loss="lsgan", loss__lsgan_a=0.0, loss__lsgan_b=1.0, loss__lsgan_c=1.0),
    ),
    "lsgan_pearson": Row(
        "Mao et al. 2017, a=-1 b=1 c=0",
        lambda c: _set(c, loss="lsgan", loss__lsgan_a=-1.0, loss__lsgan_b=1.0, loss__lsgan_c=0.0),
    ),
    "wgan": Row(
        "Arjovsky et al. 2017: clip 0.01, n_critic 5, RMSprop 5e-5",
        lambda c: _set(
            c,
            loss="wgan",
            d_steps=5,
            loss__clip_weights=0.01,
            optim__g=optimizer_config(name="rmsprop", lr=5e-4, decay=0.99),
            optim__d=optimizer_config(name="rmsprop", lr=5e-4, decay=0.99),
        ),  # fmt: skip
        lr_factors=PAPER_DOWN,
    ),
    "wgan_gp": Row(
        "Gulrajani et al. 2017 toy numbers: lambda 0.1, n_critic 5, Adam(1e-4, 0.5, 0.9)",
        _wgan_gp_toy,
        lr_factors=PAPER_UP,
    ),
    "dragan": Row(
        "Kodali et al. 2017: lambda 10", lambda c: _set(c, penalty="dragan", weight=10.0)
    ),
    "r1": Row("Mescheder et al. 2018: gamma 0.2", lambda c: _set(c, penalty="r1", weight=0.1)),
    "r1_lazy": Row(
        "R1, every 4th D step x 4 (StyleGAN2)",
        lambda c: _set(c, penalty="r1", weight=0.1, every=4),
    ),
    "r2": Row("Mescheder et al. 2018: gamma 0.2", lambda c: _set(c, penalty="r2", weight=0.1)),
    "hinge": Row("Lim & Ye 2017; Miyato et al. 2018", lambda c: _set(c, loss="hinge")),
    "wgan_gp_paper": Row(
        "gan_toy.py: 3x512 ReLU MLPs, lambda 0.1, n_critic 5, Adam(1e-4, 0.5, 0.9)",
        lambda c: _wgan_gp_toy(_nets(c, (512, 512, 512), (512, 512, 512))),
        lr_factors=(1.0,),
        paper_steps=100_000,
        budget_steps=1000,
        lr_fall={"ring8": 1.0, "grid25": 1.0},
    ),
    "lsgan_paper": Row(
        "LSGAN ls.py: 2x128 MLPs, z 256-d, batch 512, Adam G 1e-3 D 1e-4, a=0 b=c=1",
        _lsgan_paper(
            {"loss": "lsgan", "loss__lsgan_a": 0.0, "loss__lsgan_b": 1.0, "loss__lsgan_c": 1.0}
        ),  # fmt: skip
        lr_factors=(1.0,),
        paper_steps=35_000,
        budget_steps=20_000,
        lr_fall={"ring8": 1.0, "grid25": 1.0},
    ),
    "nsgan_lsgan_paper": Row(
        "LSGAN sig.py (their regular GAN): ls.py's setting, non-saturating loss",
        _lsgan_paper({}),
        lr_factors=(1.0,),
        paper_steps=35_000,
        budget_steps=20_000,
        lr_fall={"ring8": 1.0, "grid25": 1.0},
    ),
    "tuned": Row(
        "3x128 MLPs; ring8: minimax, 2x steps; grid25: R1 gamma 0.2, uniform z, 17.5x steps",
        _tuned,
        lr_factors=(1.0,),
        lr_fall={"grid25": 10.0},
    ),
}
# Rows left out of the default --losses (run them with --losses NAME).
EXTRA_LOSSES = ("tuned",)

# Per mixture: (Adam learning rate, factor it falls by over the run). The ring's modes are tight
# relative to its size, and a falling rate lets G settle into them; on the grid a rate that
# falls early stops G before it has spread over all 25 modes, so it stays constant.
LEARNING_RATES = {"ring8": (2e-3, 100.0), "grid25": (1e-3, 1.0)}


def critic_steps(num_steps: int, d_steps: int) -> int:
    """G steps for a loss with `d_steps` D steps per G step: the n_critic = 5 losses get 3/8 of
    the G steps (so about the compute of the others), a multiple of 100 (the scan length)."""
    return num_steps if d_steps == 1 else max(100, round(num_steps * 3 / 8 / 100) * 100)


def base_config(mixture: str, num_steps: int = STEPS):
    """Small MLPs (2 hidden layers of 64), batch 256, 2-d normal z, Adam(lr, 0.5)."""
    c = default_config()
    c.data.name = mixture
    _nets(c, (64, 64), (64, 64), z_dim=2)
    lr = LEARNING_RATES[mixture][0]
    c.optim.g, c.optim.d = _adam(lr), _adam(lr)
    c.train.update(batch_size=256, num_steps=num_steps, scan_steps=100, log_every=100)
    c.train.update(sample_every=num_steps, checkpoint_every=num_steps, keep_checkpoints=1)
    return c


def row_steps(name: str, num_steps: int, paper_steps: int | None = None) -> int:
    """G steps of row `name`: for a *_paper row the paper's, capped at `paper_steps` (0: no
    cap; None: the row's budget_steps); `num_steps` otherwise (before critic_steps and the
    tuned row's factor)."""
    row = LOSSES[name]
    if row.paper_steps is None:
        return num_steps
    if paper_steps is None:
        return row.budget_steps
    return row.paper_steps if paper_steps == 0 else min(row.paper_steps, paper_steps)


def row_config(mixture: str, name: str, num_steps: int = STEPS, paper_steps: int | None = None):
    """The config of row `name` on `mixture` at the row's own learning rates.

    Raises ValueError naming an unknown mixture or row, or a row not defined on the mixture."""
    if mixture not in MIXTURES or name not in LOSSES:
        raise ValueError(f"unknown {mixture!r},{name!r}; allowed: {MIXTURES} x {sorted(LOSSES)}")
    row = LOSSES[name]
    c = row.configure(base_config(mixture, row_steps(name, num_steps, paper_steps)))
    steps = (
        c.train.num_steps if row.paper_steps else critic_steps(c.train.num_steps, c.train.d_steps)
    )
    c.train.update(num_steps=steps, sample_every=steps, checkpoint_every=steps)
    fall = (row.lr_fall or {}).get(mixture, LEARNING_RATES[mixture][1])
    for player, updates in (("g", steps), ("d", steps * c.train.d_steps)):
        c.optim[player].lr_decay = fall ** (1.0 / updates)  # lr / fall after `updates` updates
    return c


def get_config(arg: str = "ring8,non_saturating"):
    mixture, name = arg.split(",")
    return row_config(mixture, name)


def row_grid(config, name: str) -> dict:
    """The sweep of row `name`: {'optim.g.lr': [...], 'optim.d.lr': [...]}, LR_FACTORS (or the
    row's own) times the config's rates; {} for a row with one point."""
    factors = LOSSES[name].lr_factors
    if factors == (1.0,):
        return {}
    return {
        f"optim.{p}.lr": [float(f"{config.optim[p].lr * f:.3g}") for f in factors]
        for p in ("g", "d")
    }


def member_statuses(workdir: str) -> dict[int, str]:
    """{member index: status} from the sweep's DIR/results.csv (its 'member i' rows)."""
    path = os.path.join(workdir, "results.csv")
    if not os.path.exists(path):
        raise ValueError(f"{workdir} holds no finished sweep (no results.csv); run it first")
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["row"].startswith("member ")]
    return {int(r["row"].split()[1]): r["status"] for r in rows}


def score_members(workdir: str, mixture: str) -> list[dict]:
    """The mixture metrics of every member of the finished sweep in `workdir`, each from its
    member workdir's final checkpoint: the 2,500 samples `gan-jax sample --num 2500 --seed
    12345` would write, scored by `metrics.mixture_metrics` against `mixture`'s centres.

    Returns one dict per member, in member order: index, point, seed, values (the swept
    values), status ('ok' or the sweep's failure), modes, high_quality_pct, reverse_kl (nan for
    a failed member, frozen at its last finite state) and samples_Nx2 (None when failed).
    Raises ValueError for a workdir without a finished sweep or an unknown mixture.
    """
    centers_Kx2, std = data.mixture_spec(mixture)
    statuses = member_statuses(workdir)
    with open(os.path.join(workdir, "sweep.json")) as f:
        record = json.load(f)
    config = evaluate.load_workdir_config(sweep.member_dir(workdir, 0))
    # All members share one program, so one traced state is the structure of every checkpoint.
    like = jax.eval_shape(
        functools.partial(engine.init, spec=engine.make_spec(config, config.train.batch_size)),
        jax.random.PRNGKey(0),
        hparams.from_config(config),
        None,
    )
    rows = []
    for m in record["members"]:
        row = {key: m[key] for key in ("index", "point", "seed", "values")}
        row["status"] = statuses[m["index"]]
        row["samples_Nx2"] = None
        row.update({key: float("nan") for key in METRICS})
        if row["status"] == "ok":
            directory = os.path.join(sweep.member_dir(workdir, m["index"]), "checkpoints")
            checkpointer = Checkpointer(directory, primary=False)
            try:
                state = checkpointer.restore(like)
            finally:
                checkpointer.close()
            x_Nx2, _ = sample.draw_samples(config, state, NUM_SAMPLES, SAMPLE_SEED)
            row["samples_Nx2"] = x_Nx2
            row.update(metrics.mixture_metrics(x_Nx2, centers_Kx2, std))
        rows.append(row)
    return rows


def summarise(members: list[dict]) -> list[dict]:
    """Per grid point (in point order): values, seeds ('k of n ok'), and mean and std (numpy's,
    ddof 0) over the point's members that did not fail, of each metric (reverse KL over the
    members that have one: it is nan without high-quality samples)."""
    points = []
    for point in sorted({m["point"] for m in members}):
        group = [m for m in members if m["point"] == point]
        ok = [m for m in group if m["status"] == "ok"]
        summary = {"point": point, "values": group[0]["values"], "ok": len(ok), "n": len(group)}
        for key in METRICS:
            finite = np.array([m[key] for m in ok], np.float64)
            finite = finite[np.isfinite(finite)]
            summary[key] = (finite.mean(), finite.std()) if finite.size else (np.nan, np.nan)
            summary[f"{key}_count"] = finite.size
        points.append(summary)
    return points


def best_point(points: list[dict]) -> dict:
    """The point with the most modes (mean over seeds), ties broken by the high-quality share;
    points whose members all failed come last."""

    def key(p):
        modes, hq = p["modes"][0], p["high_quality_pct"][0]
        return (p["ok"] > 0, -np.inf if np.isnan(modes) else modes, -np.inf if np.isnan(hq) else hq)

    return max(points, key=key)


def mean_std_text(mean_std, digits=2, count=None, of=None) -> str:
    """'m ± s' of a (mean, std) pair, 'n/a' for nan; notes how many of `of` members had no
    value when `count` < `of`."""
    mean, std = mean_std
    if np.isnan(mean):
        return "n/a"
    note = f" ({of - count} n/a)" if count is not None and of is not None and count < of else ""
    return f"{mean:.{digits}f} ± {std:.{digits}f}{note}"


def _lr_text(values: dict, config) -> str:
    g = values.get("optim.g.lr", config.optim.g.lr)
    d = values.get("optim.d.lr", config.optim.d.lr)
    return f"{g:.3g}, {d:.3g}"


def _steps_text(name: str, config) -> str:
    steps = config.train.num_steps
    paper = LOSSES[name].paper_steps
    if paper is None:
        return f"{steps:,}"
    return f"{steps:,} of the paper's {paper:,} ({100 * steps / paper:.1f}%)"


def _whole(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.0f}"


def best_table(mixture: str, results: dict) -> str:
    """Each row at its best grid point (mean ± std over the point's seeds)."""
    modes = len(data.mixture_spec(mixture)[0])
    lines = [
        f"### {mixture} ({modes} modes): each loss at its best point of its learning-rate grid",
        "",
        "| loss | setting | G steps | best G lr, D lr | seeds ok | modes | high-quality % |"
        " reverse KL | sweep s (CPU s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        best = best_point(r["points"])
        lines.append(
            f"| {name} | {LOSSES[name].setting} | {_steps_text(name, r['config'])} |"
            f" {_lr_text(best['values'], r['config'])} | {best['ok']} of {best['n']} |"
            f" {mean_std_text(best['modes'])} | {mean_std_text(best['high_quality_pct'])} |"
            f" {mean_std_text(best['reverse_kl'], count=best['reverse_kl_count'], of=best['ok'])} |"
            f" {r['seconds']:.0f} ({_whole(r['cpu_seconds'])}) |"
        )
    return "\n".join(lines) + "\n"


def grid_table(mixture: str, results: dict) -> str:
    """Every grid point of every swept row: 'modes / high-quality %' (means over seeds)."""
    swept = {n: r for n, r in results.items() if len(r["points"]) > 1}
    if not swept:
        return ""
    size = len(LR_FACTORS)
    heads = [f"G{i + 1} D{j + 1}" for i in range(size) for j in range(size)]
    lines = [
        f"### {mixture}: the whole grid (mean modes / mean high-quality % over the seeds)",
        "",
        "Gi and Dj are the row's i-th G and j-th D learning rate (the `rates` column, ascending);"
        " * marks the best point, `f` a point with failed (non-finite) members.",
        "",
        "| loss | rates | " + " | ".join(heads) + " |",
        "| --- | --- | " + " | ".join("---" for _ in heads) + " |",
    ]
    for name, r in swept.items():
        best = best_point(r["points"])["point"]
        rates = ", ".join(f"{v:.3g}" for v in r["grid"]["optim.g.lr"])
        cells = []
        for p in r["points"]:
            mark = ("*" if p["point"] == best else "") + ("f" if p["ok"] < p["n"] else "")
            modes, hq = p["modes"][0], p["high_quality_pct"][0]
            cells.append("n/a" if np.isnan(modes) else f"{modes:.1f} / {hq:.0f}{mark}")
        lines.append(f"| {name} | {rates} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def picture(path: Path, mixture: str, results: dict, title: str | None = None) -> None:
    """Rows: losses at their best point; columns: seeds; G's samples (green) over the data.
    `title` replaces the figure's default title."""
    real = np.asarray(data.sample_toy(mixture, jax.random.PRNGKey(0), NUM_SAMPLES))
    lim = 1.5 if mixture == "ring8" else 5.5
    names = list(results)
    seeds = max(best_point(r["points"])["n"] for r in results.values())
    fig, axes = plt.subplots(
        len(names), seeds, figsize=(1.3 * seeds + 1.4, 1.3 * len(names)), squeeze=False
    )
    for i, name in enumerate(names):
        best = best_point(results[name]["points"])["point"]
        members = [m for m in results[name]["members"] if m["point"] == best]
        for j in range(seeds):
            ax = axes[i, j]
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[], aspect="equal")
            ax.scatter(real[:, 0], real[:, 1], s=1, c="black", linewidths=0)
            if j < len(members) and members[j]["samples_Nx2"] is not None:
                x = members[j]["samples_Nx2"]
                ax.scatter(x[:, 0], x[:, 1], s=1, c="tab:green", alpha=0.5, linewidths=0)
            if j == 0:
                ax.set_ylabel(name, fontsize=7)
            if i == 0:
                ax.set_title(f"seed {j}", fontsize=7)
    default = f"{mixture}: each loss at its best learning rates (green) over the data (black)"
    fig.suptitle(title or default, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))  # room for the title above the seed labels
    fig.savefig(path, dpi=100)
    plt.close(fig)


def describe(name: str, config, grid: dict) -> str:
    """One line of a row's training settings."""
    g, d = config.optim.g, config.optim.d
    fall = g.lr_decay ** (config.train.num_steps)
    adam = {"adam": f", b1 {g.b1}, b2 {g.b2}"}.get(g.name, "")
    schedule = "constant lr" if round(fall) == 1 else f"lr falling {fall:.0f}x over the run"
    critic = f" ({config.train.d_steps} D steps per G step)" if config.train.d_steps > 1 else ""
    penalty = (
        f", {config.loss.penalty} weight {config.loss.penalty_weight}"
        if config.loss.penalty != "none"
        else ""
    )
    rates = (
        f"G lr in {grid['optim.g.lr']} x D lr in {grid['optim.d.lr']}"
        if grid
        else f"G lr {g.lr:g}, D lr {d.lr:g}"
    )
    return (
        f"- {name} on {config.data.name}: {config.loss.name} loss{penalty},"
        f" {config.train.num_steps} G steps{critic}, G hidden"
        f" {tuple(config.model.generator_kwargs['hidden'])}, D hidden"
        f" {tuple(config.model.discriminator_kwargs['hidden'])}, batch"
        f" {config.train.batch_size}, z ~ {config.model.z_dist} in {config.model.z_dim}-d,"
        f" {g.name}{adam}, {rates}, {schedule}."
    )


def _machine() -> str:
    platform = jax.devices()[0].platform
    if platform == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        if cores is not None and cores < (os.cpu_count() or cores):
            return f"{cores} CPU core(s) (taskset; {os.cpu_count()} on the machine)"
        return f"{os.cpu_count()} CPU cores (shared with other jobs)"
    return f"{jax.device_count()} {platform.upper()} device(s)"


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_row(mixture: str, name: str, args) -> dict:
    """Trains row `name` on `mixture` as one sweep into WORKDIR/<mixture>/<name> (resuming a
    finished or interrupted one there) and scores its members."""
    config = row_config(mixture, name, args.steps, args.paper_steps)
    grid = row_grid(config, name)
    workdir = os.path.join(args.workdir, mixture, name)
    seeds = args.paper_seeds if LOSSES[name].paper_steps else args.seeds
    run = {"num_steps": config.train.num_steps, "grid": grid, "seeds": seeds}
    timing_path = os.path.join(workdir, "timing.json")
    timing = {}
    if os.path.exists(timing_path):
        with open(timing_path) as f:
            timing = json.load(f)
    if timing.get("run") == run and os.path.exists(os.path.join(workdir, "results.csv")):
        # This very sweep finished before: its results and times are reused.
        seconds, cpu = timing["seconds"], timing.get("cpu_seconds")
        print(f"{mixture} {name}: reusing the finished sweep in {workdir}", flush=True)
    else:
        os.makedirs(workdir, exist_ok=True)
        # A sweep extended to more steps resumes from its checkpoint: count the earlier part.
        old = timing.get("run", {})
        extended = (old.get("grid"), old.get("seeds")) == (grid, seeds) and old.get(
            "num_steps", 0
        ) < run["num_steps"]
        start, cpu_start = time.perf_counter(), cpu_seconds()
        sweep.run_sweep(config, grid, seeds, workdir)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        if extended:
            seconds += timing["seconds"]
            cpu = None if timing.get("cpu_seconds") is None else cpu + timing["cpu_seconds"]
        with open(timing_path, "w") as f:
            json.dump({"run": run, "seconds": seconds, "cpu_seconds": cpu}, f)
    start = time.perf_counter()
    members = score_members(workdir, mixture)
    scoring = time.perf_counter() - start
    points = summarise(members)
    best = best_point(points)
    modes, hq = mean_std_text(best["modes"]), mean_std_text(best["high_quality_pct"])
    line = f"{mixture} {name}: best {_lr_text(best['values'], config)}: modes {modes}, high"
    print(f"{line} quality {hq}%, sweep {seconds:.0f} s, scoring {scoring:.0f} s", flush=True)
    return {"config": config, "grid": grid, "members": members, "points": points,
            "seconds": seconds, "cpu_seconds": cpu, "scoring": scoring}  # fmt: skip


def main(argv=None) -> dict:
    default_rows = [n for n in LOSSES if n not in EXTRA_LOSSES]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    parser.add_argument("--workdir", default="runs/toy_mode_coverage")
    parser.add_argument("--mixtures", default="ring8")
    parser.add_argument("--losses", default=",".join(default_rows))
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--paper_steps", type=int, default=None,
                        help="cap on the *_paper rows' G steps (0: the papers' own; default:"
                        " each row's budget_steps)")  # fmt: skip
    parser.add_argument("--paper_seeds", type=int, default=PAPER_SEEDS)
    parser.add_argument("--append", action="store_true",
                        help="add this run as a section of OUT/toy_mode_coverage.md")  # fmt: skip
    args = parser.parse_args(argv)
    mixtures, names = args.mixtures.split(","), args.losses.split(",")
    for name in names:  # every name checked before anything trains
        if name not in LOSSES:
            raise ValueError(f"--losses: unknown row {name!r}; allowed: {sorted(LOSSES)}")
    for mixture in mixtures:
        if mixture not in MIXTURES:
            raise ValueError(f"--mixtures: unknown mixture {mixture!r}; allowed: {MIXTURES}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report, settings, all_results = [], [], {}
    tag = "_" + "_".join(names) if args.append else ""
    for mixture in mixtures:
        results = {}
        for name in names:
            results[name] = run_row(mixture, name, args)
            settings.append(describe(name, results[name]["config"], results[name]["grid"]))
        report += [best_table(mixture, results), grid_table(mixture, results)]
        picture(out / f"toy_mode_coverage{tag}_{mixture}.png", mixture, results)
        all_results[mixture] = results
    total = time.perf_counter() - start
    paper = "" if args.paper_steps is None else f" --paper_steps {args.paper_steps}"
    command = (
        f"`experiments/toy_mode_coverage.py --mixtures {args.mixtures} --losses"
        f" {args.losses} --seeds {args.seeds} --steps {args.steps} --paper_seeds"
        f" {args.paper_seeds}{paper}`"
    )
    rows = [r for m in all_results.values() for r in m.values()]
    header = (
        f"## Mode coverage on the 2-D mixtures: learning-rate sweeps\n\n{command}: each row"
        " one `gan_jax.sweep.run_sweep` (one compiled program) over its grid of G x D learning"
        f" rates times its seeds (loss rows {args.seeds}, paper rows {args.paper_seeds}; seeds"
        " 0, 1, ...); 2,500 samples per member; mean ± std over the seeds of a grid point. A"
        " row is reported at its best point (most modes, then the highest high-quality share;"
        " the best of 9 points on few seeds favours a lucky point a little), with the whole"
        " grid below. `sweep s (CPU s)`: wall time of the row's sweep (compile, training,"
        " member outputs) and the CPU time its process spent in it, under `nice -n 10` on"
        f" {_machine()}; the rows' sweeps took {sum(r['seconds'] for r in rows) / 60:.1f} min"
        " of wall time in all (rows finished in the workdir by an earlier invocation keep"
        " their times); scoring the members took"
        f" {sum(r['scoring'] for r in rows):.0f} s more, this invocation"
        f" {total / 60:.1f} min.\n\nSettings:\n\n" + "\n".join(settings) + "\n\n"
    )
    text = header + "\n".join(report)
    path = out / "toy_mode_coverage.md"
    if args.append:
        text = (path.read_text() if path.exists() else "") + "\n" + text
    path.write_text(text)
    print(text)
    return all_results


if __name__ == "__main__":
    main()
