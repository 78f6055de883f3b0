r"""How often the 2014 MNIST setup collapses: 16 seeds of each of five variants, as sweeps.

A run has collapsed when D wins outright: mean D(G(z)) on G's samples (`d_fake` in a member's
metrics.jsonl, logged every 100 steps) stays below 0.001 for 3 logs in a row within the 3,000
steps (the collapse alarm's rule), or the member goes non-finite; the table also counts the
runs that dipped below 0.001 at a single log (some recover). The variants (`get_config(VARIANT)`):

- `paper`: Algorithm 1 of Goodfellow et al. 2014 as gan_jax implements it (k = 1: a D update,
  then a G update on a fresh sample), the nets and SGD schedule of experiments/gan2014_mnist.py;
- `authors`: the authors' own update (goodfeli/adversarial, AdversaryCost2): D's objective
  halved, 0.5 (CE_real + CE_fake), and D and G updated simultaneously from one shared sample
  (`train.update_rule=simultaneous`, `loss.d_objective_scale=0.5`);
- `smoothing`: `paper` with one-sided label smoothing, D's real target 0.9 (Salimans et al.
  2016, Sec. 3.4);
- `half_d_lr`: `paper` with D's learning rate halved (0.05);
- `simultaneous`: `paper` with the authors' simultaneous update alone, D's objective whole (with
  `authors` and `half_d_lr`, the four cells of update rule x D's step).

Run all five and write OUT/gan2014_collapse.md (collapse rate with a Clopper-Pearson 95%
interval, and the Parzen log-likelihood of the survivors at 3,000 steps, the 2014 protocol:
sigma chosen on train[50000:51000], 10,000 samples against the 10,000 test images):

    python experiments/gan2014_collapse.py --data_dir ../shared/data/mnist \
        --workdir runs/gan2014_collapse --out docs [--seeds 16] [--variants paper,authors] \
        [--no_parzen]

One variant as a plain sweep (each member an ordinary workdir under DIR/members/<i>):

    python -m gan_jax sweep --config experiments/gan2014_collapse.py:authors \
        --workdir runs/gan2014_collapse/authors --seeds 16 --config.data.dir=../shared/data/mnist

Cost: 16 members x 3,000 steps is 48,000 member-iterations per variant; the 2014 nets sweep at
about 44 member-iterations/s on the 2-core CPU VM (make bench-sweep), so about 18 min per variant
and 90 min for all five there; minutes on an accelerator.

Expect (seeds 0-15, docs/gan2014_collapse.md): collapsed paper 6/16, authors 1/16, smoothing
11/16, half_d_lr 13/16, simultaneous 0/16; the survivors' Parzen figures -62.8, -157.7, -121.7,
-263.4 and -38.6 (means).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scipy import stats  # noqa: E402

from gan_jax import evaluate, sweep  # noqa: E402
from gan_jax.config import load_experiment_file  # noqa: E402

VARIANTS = ("paper", "authors", "smoothing", "half_d_lr", "simultaneous")
COLLAPSE_D_FAKE = 1e-3  # mean D(G(z)) below this at a log step: D has won
CONSECUTIVE = 3  # ... at this many logs in a row: collapsed (config.alarm_config's default)
STEPS = 3000
PARZEN_SAMPLES = 10_000  # the 2014 protocol: as many samples as test images


def get_config(variant: str = "paper"):
    """The 2014 MNIST config for 3,000 steps, logged every 100, in one of VARIANTS."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not allowed; expected one of {VARIANTS}")
    c = load_experiment_file(str(REPO / "experiments" / "gan2014_mnist.py"))
    c.train.update(num_steps=STEPS, log_every=100, sample_every=0, checkpoint_every=1000)
    if variant == "authors":
        c.train.update_rule = "simultaneous"
        c.loss.d_objective_scale = 0.5
    elif variant == "smoothing":
        c.loss.real_label = 0.9
    elif variant == "half_d_lr":
        c.optim.d.lr = 0.05
    elif variant == "simultaneous":
        c.train.update_rule = "simultaneous"
    return c


def collapse_flags(member_dir: str, status: str) -> tuple[bool, bool]:
    """(dipped, collapsed) of a member: dipped when d_fake fell below COLLAPSE_D_FAKE at any
    logged step, collapsed when it stayed below it for CONSECUTIVE logs in a row (the collapse
    alarm's default rule, gan_jax/alarm.py: three seeds of the `paper` sweep dipped once and
    recovered); a non-finite member (its sweep status) is both."""
    if status != "ok":
        return True, True
    with open(os.path.join(member_dir, "metrics.jsonl")) as f:
        below = [json.loads(line)["d_fake"] < COLLAPSE_D_FAKE for line in f]
    runs = [all(below[i : i + CONSECUTIVE]) for i in range(len(below) - CONSECUTIVE + 1)]
    return any(below), any(runs)


def rate(flags: list[bool]) -> str:
    """k / n, the rate and its exact (Clopper-Pearson) 95% interval."""
    k, n = sum(flags), len(flags)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return f"{k} / {n} | {k / n:.2f} [{ci.low:.2f}, {ci.high:.2f}]"


def rate_row(variant: str, dipped: list[bool], collapsed: list[bool], parzen: list[float]) -> str:
    """One Markdown row: members that dipped, members that collapsed (rate and 95% interval),
    and the survivors' Parzen mean +- std."""
    survivors = f"{stats.tmean(parzen):.1f} +- {stats.tstd(parzen):.1f}" if len(parzen) > 1 else ""
    return f"| {variant} | {rate(dipped)} | {rate(collapsed)} | {survivors} |"


def survivor_parzen(member_dir: str, data_dir: str) -> float:
    """The member's Parzen log-likelihood at STEPS: its eval.json's when that file holds the
    figure for this step and sample count (a rerun of the script does not pay ~20 s a member
    again), else `gan-jax eval`'s, which writes that file."""
    path = os.path.join(member_dir, "eval.json")
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
        if (
            record.get("step") == STEPS
            and record.get("num_samples") == PARZEN_SAMPLES
            and record.get("parzen_ll") is not None
        ):
            return record["parzen_ll"]
    return evaluate.evaluate(member_dir, "parzen", PARZEN_SAMPLES, data_dir)["parzen_ll"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="directory of the MNIST IDX files")
    parser.add_argument("--workdir", default="runs/gan2014_collapse")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--no_parzen", action="store_true", help="collapse rates only (Parzen: ~20 s a member)"
    )
    args = parser.parse_args()
    variants = args.variants.split(",")
    for variant in variants:
        get_config(variant)  # a bad name stops here, before any training
    rows = []
    for variant in variants:
        config = get_config(variant)
        config.data.dir = args.data_dir
        workdir = os.path.join(args.workdir, variant)
        members = sweep.run_sweep(config, {}, args.seeds, workdir)
        dipped, collapsed, parzen = [], [], []
        for m in members:
            directory = sweep.member_dir(workdir, m.index)
            dip, collapse = collapse_flags(directory, m.status)
            dipped.append(dip)
            collapsed.append(collapse)
            if not collapse and not args.no_parzen:
                parzen.append(survivor_parzen(directory, args.data_dir))
        rows.append(rate_row(variant, dipped, collapsed, parzen))
        print(rows[-1], flush=True)
    table = [
        f"Within {STEPS} steps, {args.seeds} seeds per variant: dipped = mean D(G(z)) <"
        f" {COLLAPSE_D_FAKE} at some log step; collapsed = below it at {CONSECUTIVE} logs in a"
        " row (logs every 100 steps); non-finite runs count as both. Rates with exact 95%"
        f" intervals; Parzen log-likelihood of the members that did not collapse, at {STEPS}"
        " steps.",
        "",
        "| variant | dipped | rate [95% CI] | collapsed | rate [95% CI] | survivors' Parzen |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gan2014_collapse.md"), "w") as f:
        f.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
