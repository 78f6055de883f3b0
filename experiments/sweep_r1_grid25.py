r"""R1 weight x D learning rate x 5 seeds on the grid of 25 Gaussians, in one compiled sweep.

Train (all 4 x 3 x 5 = 60 members in one `jax.jit(jax.vmap(...))` program), then score every
member and write the table and heatmap of the README's Sweeps section:

    python -m gan_jax sweep --config experiments/sweep_r1_grid25.py --workdir runs/r1 --seeds 5
    python experiments/sweep_r1_grid25.py --workdir runs/r1 --out docs

The second command reads the sweep's member workdirs (runs/r1/members/<i>/: config.json and
the final checkpoint), draws 2,500 samples of each member's G (latent seed 12345, what
`gan-jax sample --num 2500 --seed 12345` writes) and scores them with
`metrics.mixture_metrics` (the VEEGAN / PacGAN protocol: modes captured, % of samples within 3
std of their nearest centre, reverse KL of the high-quality histogram to uniform). It writes
OUT/sweep_r1_grid25.md (one row per grid point: mean ± std over its seeds that did not fail)
and OUT/sweep_r1_grid25.png (heatmaps of mean modes and mean high-quality %, R1 weight x D lr).

The setting: R1 (Mescheder et al. 2018, eq. 9: gamma/2 E_data |grad D|^2, `loss.penalty_weight`
= gamma/2) with the non-saturating loss; G and D MLPs with 2 hidden layers of 64, z ~ U[-1,
1]^2 (G maps the square onto the grid with fewer samples between modes than from a normal z),
batch 256, Adam(b1 0.5), G's lr 1e-3; D's lr and the R1 weight are swept (`get_sweep`). Only D's
rate is swept: a sweep's grid is a product of independent keys, so G and D rates cannot be tied
to one value, and D's step size is what the penalty competes with. STEPS G steps each.

Expect (docs/sweep_r1_grid25.md; the README's Sweeps section): 18.4 min of wall time for the
sweep on the 2-core VM shared with other jobs (235 s of CPU time), about 6 s of CPU to score it.
Every cell captures 20-23 of the 25 modes; the high-quality share falls with the R1 weight at
every D rate, from 9-10% (weight 0.01) to 3.6-4.5% (weight 10) at 4,000 steps.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

from experiments import toy_mode_coverage as toy  # noqa: E402  (score_members, summarise)
from gan_jax import evaluate, sweep  # noqa: E402
from gan_jax.config import default_config, optimizer_config  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)

MIXTURE = "grid25"
STEPS = 4000
R1_WEIGHTS = (0.01, 0.1, 1.0, 10.0)  # loss.penalty_weight = gamma / 2
D_LRS = (3e-4, 1e-3, 3e-3)


def get_config():
    c = default_config()
    c.data.name = MIXTURE
    c.model.generator_kwargs = {"hidden": (64, 64), "output_activation": "linear"}
    c.model.discriminator_kwargs = {"hidden": (64, 64)}
    c.model.z_dim = 2
    c.model.z_dist = "uniform"
    c.loss.update(name="non_saturating", penalty="r1", penalty_weight=0.1)
    c.optim.g = optimizer_config(name="adam", lr=1e-3, b1=0.5)
    c.optim.d = optimizer_config(name="adam", lr=1e-3, b1=0.5)
    c.train.update(batch_size=256, num_steps=STEPS, scan_steps=100, log_every=100)
    c.train.update(sample_every=STEPS, checkpoint_every=1000, keep_checkpoints=1)
    return c


def get_sweep():
    return {"loss.penalty_weight": list(R1_WEIGHTS), "optim.d.lr": list(D_LRS)}


def grid_means(points: list[dict], key: str, which: int = 0) -> np.ndarray:
    """[len(R1_WEIGHTS), len(D_LRS)] means (`which` 1: standard deviations) of `key` over each
    point's seeds, from toy.summarise's points (nan where a point has none)."""
    out = np.full((len(R1_WEIGHTS), len(D_LRS)), np.nan)
    for p in points:
        i = R1_WEIGHTS.index(p["values"]["loss.penalty_weight"])
        j = D_LRS.index(p["values"]["optim.d.lr"])
        out[i, j] = p[key][which]
    return out


def table(points: list[dict]) -> str:
    """One Markdown row per grid point: mean ± std over its seeds (toy.summarise)."""
    lines = [
        "| R1 weight (gamma/2) | D lr | seeds ok | modes (of 25) | high-quality % | reverse KL |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in points:
        v = p["values"]
        lines.append(
            f"| {v['loss.penalty_weight']:g} | {v['optim.d.lr']:g} | {p['ok']} of {p['n']} |"
            f" {toy.mean_std_text(p['modes'])} | {toy.mean_std_text(p['high_quality_pct'])} |"
            f" {toy.mean_std_text(p['reverse_kl'], count=p['reverse_kl_count'], of=p['ok'])} |"
        )
    return "\n".join(lines) + "\n"


def heatmap(path: Path, points: list[dict], title: str) -> None:
    """Mean ± std over seeds of modes and high-quality %, R1 weight (rows) x D lr (columns);
    each panel's colours span its own range (the numbers are printed in the cells)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    panels = (("modes", "modes captured (of 25)"), ("high_quality_pct", "high-quality samples %"))
    for ax, (key, label) in zip(axes, panels, strict=True):
        mean, std = grid_means(points, key), grid_means(points, key, which=1)
        low, high = np.nanmin(mean), np.nanmax(mean)
        image = ax.imshow(mean, cmap="viridis", vmin=low, vmax=high, aspect="auto")
        for i in range(mean.shape[0]):
            for j in range(mean.shape[1]):
                if np.isnan(mean[i, j]):
                    continue
                bright = (mean[i, j] - low) > 0.6 * (high - low)  # viridis is light at the top
                ax.text(j, i, f"{mean[i, j]:.1f}\n± {std[i, j]:.1f}", ha="center", va="center",
                        color="black" if bright else "white", fontsize=8)  # fmt: skip
        ax.set(xticks=range(len(D_LRS)), yticks=range(len(R1_WEIGHTS)), title=label)
        ax.set_xticklabels([f"{lr:g}" for lr in D_LRS])
        ax.set_yticklabels([f"{w:g}" for w in R1_WEIGHTS])
        ax.set(xlabel="D learning rate", ylabel="R1 weight (gamma/2)")
        fig.colorbar(image, ax=ax)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/r1", help="the finished sweep's --workdir")
    parser.add_argument("--out", default="docs")
    parser.add_argument(
        "--sweep_seconds", type=float, default=None, help="the sweep's measured wall time"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    members = toy.score_members(args.workdir, MIXTURE)
    points = toy.summarise(members)
    scoring = time.perf_counter() - start
    config = evaluate.load_workdir_config(sweep.member_dir(args.workdir, 0))
    seeds = points[0]["n"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    title = (
        f"grid25, R1 weight x D lr: mean ± std over {seeds} seeds after"
        f" {config.train.num_steps} G steps (2x64 MLPs, z ~ U[-1,1]^2)"
    )
    heatmap(out / "sweep_r1_grid25.png", points, title)
    timing = (
        f" The sweep took {args.sweep_seconds / 60:.1f} min of wall time."
        if args.sweep_seconds
        else ""
    )
    text = (
        "## R1 weight x D learning rate on the grid of 25\n\n"
        "`python -m gan_jax sweep --config experiments/sweep_r1_grid25.py --workdir runs/r1"
        f" --seeds {seeds}` ({len(members)} members in one program, {config.train.num_steps} G"
        " steps each), then `python experiments/sweep_r1_grid25.py --workdir runs/r1 --out"
        f" docs` (scoring, {scoring:.0f} s).{timing} Mean ± std over the seeds of each grid"
        " point; 2,500 samples per member.\n\n" + table(points)
    )
    (out / "sweep_r1_grid25.md").write_text(text)
    print(text)
    return points


if __name__ == "__main__":
    main()
