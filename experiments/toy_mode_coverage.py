r"""Mode coverage on the 2-D mixtures: every loss and penalty, 10 seeds each, one vmap per loss.

Run from the repository root (CPU is enough):

    .venv/bin/python experiments/toy_mode_coverage.py --out docs

For each mixture (ring8: 8 Gaussians on the unit circle, std 0.01; grid25: 5x5 Gaussians at
{-4, -2, 0, 2, 4}^2, std 0.05) and each row of LOSSES, it trains 10 GANs (seeds 0-9) in one
`jax.jit(jax.vmap(train))` and scores 2,500 samples per seed with `metrics.mixture_metrics` (the
VEEGAN / PacGAN protocol: a sample is high quality within 3 std of its nearest centre; a mode
is captured with at least one high-quality sample; reverse KL of the high-quality histogram to
uniform). It writes OUT/toy_mode_coverage.md (mean +- std over seeds per loss, and the wall
times) and OUT/toy_mode_coverage_<mixture>.png (rows: losses, columns: seeds; G's samples in
green over the data in black). `--steps`, `--seeds`, `--mixtures`, `--losses` shrink a run;
`--append` adds the run as a new section of OUT/toy_mode_coverage.md instead of rewriting it,
with pictures OUT/toy_mode_coverage_<losses>_<mixture>.png. The "tuned" row (bigger nets, more
steps; see TUNED) is left out of the default `--losses`.

Reference: PacGAN (Lin et al. 2018, Table 1) reports 6.3 +- 0.5 ring modes and 17.3 +- 0.8
grid modes for the plain GAN with their bigger nets; the target for the best row is all 8 and
all 25 modes with >= 95% high-quality samples averaged over the 10 seeds.

Expect (docs/toy_mode_coverage.md, 39 min on 2 shared CPU cores): on ring8, minimax, R1, lazy
R1, R2 and hinge capture all 8 modes in every seed, with 55-75% high-quality samples (the rest
lie on the arcs between modes); WGAN (clipping), WGAN-GP and DRAGAN stay blurred at this budget.
On grid25 no row reaches the target: 15-20 modes with < 10% high-quality samples, G's samples
still stretched along rays through the modes after 4,000 steps. Reaching >= 95% needs more steps
(e.g. `--steps 20000`, about 5x the time) and probably wider nets.

The tuned row (`TUNED`) takes that route: 3 hidden layers of 128 in G and D; on ring8 minimax
for 8,000 steps; on grid25 R1 (gamma 0.2) with z ~ U[-1, 1]^2 for 70,000 steps, lr falling 10x:

    .venv/bin/python experiments/toy_mode_coverage.py --out docs --losses tuned --append

(about 69 min on one CPU core: 5.5 min ring8, 63 min grid25). Both meet the target: ring8 all 8
modes in every seed, 95.3 +- 1.9% high-quality samples; grid25 all 25 modes in every seed,
96.3 +- 0.7% high-quality samples, reverse KL 0.01. On the grid the share grows with the run's
length (the rest of the samples lie on thin lines between neighbouring modes, where G maps the
square of z continuously onto the grid): 89.5% at 28,000 steps, 93.4% at 42,000 (e.g.
`--mixtures grid25 --steps 2400` for 42,000 steps).

One row as a normal training run (the config is `get_config("<mixture>,<loss>")`):

    .venv/bin/python -m gan_jax train --workdir runs/toy_wgan_gp \
        --config experiments/toy_mode_coverage.py:grid25,wgan_gp
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import data, engine, hparams, metrics, steps  # noqa: E402
from gan_jax.config import default_config, optimizer_config  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)

MIXTURES = ("ring8", "grid25")
NUM_SAMPLES = 2500  # per seed, as in VEEGAN / PacGAN
SAMPLE_SEED = 12345
STEPS = 4000  # G updates per run (3/8 of that for the n_critic = 5 losses)


def _adam(lr, b1=0.5, b2=0.999):
    return optimizer_config(name="adam", lr=lr, b1=b1, b2=b2)


def _set(c, *, loss="non_saturating", penalty="none", weight=0.0, every=1, d_steps=1, **extra):
    c.loss.update(name=loss, penalty=penalty, penalty_weight=weight, penalty_every=every)
    c.train.d_steps = d_steps
    for key, value in extra.items():
        section, name = key.split("__")
        c[section][name] = value
    return c


# Rows left out of the default --losses (run them with --losses NAME --append).
EXTRA_ROWS = ("tuned",)

# The "tuned" row (found by a short search with 1-2 seeds; not run in the main table): per
# mixture, (its settings for _set, G steps as a multiple of --steps, z distribution). Both use
# 3 hidden layers of 128 in G and D; the learning rates are LEARNING_RATES's, falling by LR_FALL.
TUNED = {
    "ring8": ({"loss": "minimax"}, 2, "normal"),
    "grid25": ({"penalty": "r1", "weight": 0.1}, 17.5, "uniform"),
}


def _tuned(c):
    settings, step_factor, z_dist = TUNED[c.data.name]
    c.model.generator_kwargs = {"hidden": (128, 128, 128), "output_activation": "linear"}
    c.model.discriminator_kwargs = {"hidden": (128, 128, 128)}
    c.model.z_dist = z_dist  # the grid from the square [-1, 1]^2: fewer samples between modes
    c.train.num_steps = round(step_factor * c.train.num_steps)
    return _set(c, **settings)


# name -> (paper, function setting the config). Nets, batch, z and steps are shared (base_config)
# except in the tuned row.
LOSSES = {
    "minimax": ("Goodfellow et al. 2014, eq. 1", lambda c: _set(c, loss="minimax")),
    "non_saturating": ("Goodfellow et al. 2014, Sec. 3", lambda c: _set(c)),
    "lsgan_01": (
        "Mao et al. 2017, a=0 b=c=1",
        lambda c: _set(c, loss="lsgan", loss__lsgan_a=0.0, loss__lsgan_b=1.0, loss__lsgan_c=1.0),
    ),
    "lsgan_pearson": (
        "Mao et al. 2017, a=-1 b=1 c=0",
        lambda c: _set(c, loss="lsgan", loss__lsgan_a=-1.0, loss__lsgan_b=1.0, loss__lsgan_c=0.0),
    ),
    "wgan": (
        "Arjovsky et al. 2017: clip 0.01, n_critic 5, RMSprop 5e-4 (paper 5e-5)",
        lambda c: _set(
            c,
            loss="wgan",
            d_steps=5,
            loss__clip_weights=0.01,
            optim__g=optimizer_config(name="rmsprop", lr=5e-4, decay=0.99),
            optim__d=optimizer_config(name="rmsprop", lr=5e-4, decay=0.99),
        ),
    ),
    "wgan_gp": (
        "Gulrajani et al. 2017: lambda 10, n_critic 5, Adam(1e-3, 0, 0.9) (paper 1e-4)",
        lambda c: _set(
            c,
            loss="wgan",
            penalty="gp",
            weight=10.0,
            d_steps=5,
            optim__g=_adam(1e-3, 0.0, 0.9),
            optim__d=_adam(1e-3, 0.0, 0.9),
        ),
    ),
    "dragan": ("Kodali et al. 2017: lambda 10", lambda c: _set(c, penalty="dragan", weight=10.0)),
    "r1": ("Mescheder et al. 2018: gamma 0.2", lambda c: _set(c, penalty="r1", weight=0.1)),
    "r1_lazy": (
        "R1, every 4th D step x 4 (StyleGAN2)",
        lambda c: _set(c, penalty="r1", weight=0.1, every=4),
    ),
    "r2": ("Mescheder et al. 2018: gamma 0.2", lambda c: _set(c, penalty="r2", weight=0.1)),
    "hinge": ("Lim & Ye 2017; Miyato et al. 2018", lambda c: _set(c, loss="hinge")),
    "tuned": (
        "3x128 MLPs; ring8: minimax, 2x steps; grid25: R1 gamma 0.2, uniform z, 17.5x steps",
        _tuned,
    ),
}


# Per mixture: (Adam learning rate, factor it falls by over the run). The ring's modes are tight
# relative to its size, and a falling rate lets G settle into them; on the grid a rate that
# falls early stops G before it has spread over all 25 modes, so it stays constant.
LEARNING_RATES = {"ring8": (2e-3, 100.0), "grid25": (1e-3, 1.0)}
# Rows whose rate falls by another factor than LEARNING_RATES's: the tuned grid25 run is long
# enough that a 10x fall at the end sharpens its modes.
LR_FALL = {"tuned": {"grid25": 10.0}}


def critic_steps(num_steps: int, d_steps: int) -> int:
    """G steps for a loss with `d_steps` D steps per G step: the n_critic = 5 losses get 3/8 of
    the G steps (so about the compute of the others), a multiple of 100 (the scan length)."""
    return num_steps if d_steps == 1 else max(100, round(num_steps * 3 / 8 / 100) * 100)


def base_config(mixture: str, num_steps: int = STEPS):
    """Small MLPs (2 hidden layers of 64), batch 256, 2-d normal z, Adam(lr, 0.5)."""
    c = default_config()
    c.data.name = mixture
    c.model.generator_kwargs = {"hidden": (64, 64), "output_activation": "linear"}
    c.model.discriminator_kwargs = {"hidden": (64, 64)}
    c.model.z_dim = 2
    lr = LEARNING_RATES[mixture][0]
    c.optim.g, c.optim.d = _adam(lr), _adam(lr)
    c.train.update(batch_size=256, num_steps=num_steps, scan_steps=100, log_every=100)
    c.train.update(sample_every=num_steps, checkpoint_every=num_steps)
    return c


def loss_config(mixture: str, loss: str, num_steps: int = STEPS):
    if mixture not in MIXTURES or loss not in LOSSES:
        raise ValueError(f"unknown {mixture!r},{loss!r}; allowed: {MIXTURES} x {sorted(LOSSES)}")
    c = LOSSES[loss][1](base_config(mixture, num_steps))
    num_steps = critic_steps(c.train.num_steps, c.train.d_steps)  # a row may scale the steps
    c.train.update(num_steps=num_steps, sample_every=num_steps, checkpoint_every=num_steps)
    fall = LR_FALL.get(loss, {}).get(mixture, LEARNING_RATES[mixture][1])
    for player, updates in (("g", num_steps), ("d", num_steps * c.train.d_steps)):
        c.optim[player].lr_decay = fall ** (1.0 / updates)  # lr / fall after `updates` updates
    return c


def get_config(arg: str = "ring8,non_saturating"):
    mixture, loss = arg.split(",")
    return loss_config(mixture, loss)


def train_seeds(config, seeds: int):
    """(samples [seeds, NUM_SAMPLES, 2], seconds including compilation) of one vmapped sweep."""
    run = engine.make_train(config)
    hp = hparams.from_config(config)
    z = steps.sample_z(
        jax.random.PRNGKey(SAMPLE_SEED), NUM_SAMPLES, config.model.z_dim, config.model.z_dist
    )

    def train_and_sample(key):
        state, _ = run(key, hp)
        return steps.generate(state, z)

    start = time.perf_counter()
    keys = jax.random.split(jax.random.PRNGKey(config.seed), seeds)
    samples = np.asarray(jax.jit(jax.vmap(train_and_sample))(keys))
    return samples, time.perf_counter() - start


def score(samples_SxNx2, mixture: str) -> dict[str, np.ndarray]:
    centers, std = data.mixture_spec(mixture)
    rows = [metrics.mixture_metrics(s, centers, std) for s in samples_SxNx2]
    return {key: np.array([r[key] for r in rows], np.float64) for key in rows[0]}


def _mean_std(values) -> str:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "n/a"
    note = "" if finite.size == values.size else f" ({values.size - finite.size} n/a)"
    return f"{finite.mean():.2f} ± {finite.std():.2f}{note}"


def table(mixture: str, results: dict, seconds: dict) -> str:
    modes = len(data.mixture_spec(mixture)[0])
    lines = [
        f"### {mixture} ({modes} modes)",
        "",
        "| loss | setting | modes | high-quality % | reverse KL | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {LOSSES[name][0]} | {_mean_std(r['modes'])} |"
            f" {_mean_std(r['high_quality_pct'])} | {_mean_std(r['reverse_kl'])} |"
            f" {seconds[name]:.0f} |"
        )
    return "\n".join(lines) + "\n"


def picture(path: Path, mixture: str, samples: dict) -> None:
    """Rows: losses; columns: seeds; G's samples (green) over the data (black)."""
    real = np.asarray(data.sample_toy(mixture, jax.random.PRNGKey(0), NUM_SAMPLES))
    lim = 1.5 if mixture == "ring8" else 5.5
    names = list(samples)
    seeds = samples[names[0]].shape[0]
    fig, axes = plt.subplots(
        len(names), seeds, figsize=(1.2 * seeds + 1.2, 1.2 * len(names)), squeeze=False
    )
    for i, name in enumerate(names):
        for j in range(seeds):
            ax = axes[i, j]
            ax.scatter(real[:, 0], real[:, 1], s=1, c="black", linewidths=0)
            ax.scatter(samples[name][j, :, 0], samples[name][j, :, 1], s=1, c="tab:green",
                       alpha=0.5, linewidths=0)  # fmt: skip
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[], aspect="equal")
            if j == 0:
                ax.set_ylabel(name, fontsize=7)
            if i == 0:
                ax.set_title(f"seed {j}", fontsize=7)
    fig.suptitle(f"{mixture}: samples after training (green) over the data (black)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def describe(config) -> str:
    """One line of a row's training settings (for the --append section)."""
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
    return (
        f"{config.data.name}: {config.loss.name} loss{penalty}, {config.train.num_steps} G"
        f" steps{critic}, G hidden {tuple(config.model.generator_kwargs['hidden'])}, D hidden"
        f" {tuple(config.model.discriminator_kwargs['hidden'])}, batch"
        f" {config.train.batch_size}, z ~ {config.model.z_dist} in {config.model.z_dim}-d,"
        f" {g.name}(lr {g.lr:g}{adam}) for G and {d.name}(lr {d.lr:g}) for D, {schedule}"
    )


def _machine() -> str:
    platform = jax.devices()[0].platform
    if platform == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        if cores is not None and cores < (os.cpu_count() or cores):
            return f"{cores} CPU core(s) (taskset; {os.cpu_count()} on the machine)"
        return f"{os.cpu_count()} CPU cores (shared with other jobs)"
    return f"{jax.device_count()} {platform.upper()} device(s)"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    parser.add_argument("--mixtures", default=",".join(MIXTURES))
    parser.add_argument("--losses", default=",".join(n for n in LOSSES if n not in EXTRA_ROWS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument(
        "--append",
        action="store_true",
        help="add this run as a section at the end of OUT/toy_mode_coverage.md (instead of"
        " rewriting it) and name its pictures toy_mode_coverage_<losses>_<mixture>.png",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report, all_results, settings = [], {}, []
    tag = "_" + args.losses.replace(",", "_") if args.append else ""
    for mixture in args.mixtures.split(","):
        results, seconds, samples = {}, {}, {}
        for name in args.losses.split(","):
            config = loss_config(mixture, name, args.steps)
            settings.append(f"- {name} on {describe(config)}.")
            samples[name], seconds[name] = train_seeds(config, args.seeds)
            results[name] = score(samples[name], mixture)
            print(f"{mixture} {name}: modes {_mean_std(results[name]['modes'])}, high quality"
                  f" {_mean_std(results[name]['high_quality_pct'])}%, {seconds[name]:.0f} s",
                  flush=True)  # fmt: skip
        report.append(table(mixture, results, seconds))
        picture(out / f"toy_mode_coverage{tag}_{mixture}.png", mixture, samples)
        all_results[mixture] = results
    total = time.perf_counter() - start
    if args.append:
        section = (
            f"\n## Rows {args.losses} (`--append`)\n\n"
            f"`experiments/toy_mode_coverage.py --mixtures {args.mixtures} --losses {args.losses}"
            f" --seeds {args.seeds} --steps {args.steps} --append`: {args.seeds} seeds per row in"
            " one `jax.vmap`,"
            " 2,500 samples per seed, mean ± std over seeds, seconds including compilation."
            f" Total wall time {total / 60:.1f} min on {_machine()}. Settings:\n\n"
            + "\n".join(settings)
            + "\n\n"
            + "\n".join(report)
        )
        path = out / "toy_mode_coverage.md"
        path.write_text((path.read_text() if path.exists() else "") + section)
        print(section)
        return all_results
    header = (
        "## Mode coverage on the 2-D mixtures\n\n"
        f"`experiments/toy_mode_coverage.py`: {args.seeds} seeds per loss trained in one"
        f" `jax.vmap`, {args.steps} G steps each (WGAN and WGAN-GP:"
        f" {critic_steps(args.steps, 5)} G steps of 5 D steps each), MLPs with 2 hidden layers"
        " of 64, batch 256, z ~ N(0, I_2), Adam(b1 = 0.5) at lr 2e-3 falling 100x over the run"
        " (ring8) or 1e-3 (grid25) unless the row says otherwise; 2,500 samples per seed. Mean ±"
        " std over seeds. Seconds include compilation. Total wall time"
        f" {total / 60:.1f} min on {_machine()}.\n\n"
    )
    (out / "toy_mode_coverage.md").write_text(header + "\n".join(report))
    print(header + "\n".join(report))
    return all_results


if __name__ == "__main__":
    main()
