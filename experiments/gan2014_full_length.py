r"""The 2014 MNIST result at the paper's length: seeds x variants as sweeps, Parzen every 5,000.

Goodfellow et al. 2014, Table 1 reports a Parzen log-likelihood of 225 +- 2 on the MNIST test
set. This trains experiments/gan2014_mnist.py's nets for `--steps` (default 125,000: where
mnist.yaml's momentum reaches 0.7, epoch 250; the authors' run has no stopping rule), each
variant as one `gan-jax sweep` of `--seeds` seeds, every member evaluated every 5,000 steps with
the 2014 protocol (10,000 samples, sigma chosen on train[50000:51000], the 10,000 test images;
training uses train[0:50000] only). The variants (`get_config(VARIANT)`):

- `paper`: Algorithm 1 as gan_jax implements it (k = 1: a D update, then a G update on a fresh
  sample), z ~ U[-1, 1], experiments/gan2014_mnist.py unchanged;
- `authors`: the authors' own code (goodfeli/adversarial): D's objective halved and D and G
  updated simultaneously from one shared sample (AdversaryCost2), and their Generator's default
  noise N(0, 1), which mnist.yaml keeps;
- `simultaneous`: `paper` with the simultaneous update alone (D's objective whole, z ~ U[-1, 1]),
  the variant that collapsed in none of 16 seeds in experiments/gan2014_collapse.py.

Run (every command resumes; each variant's workdir is an ordinary sweep):

    python experiments/gan2014_full_length.py --data_dir ../shared/data/mnist \
        --workdir runs/gan2014_full_length --out docs [--seeds 3] [--first_seed 0] \
        [--variants paper,authors,simultaneous] [--steps 125000] [--with paper=runs/gan2014_full]

`--with VARIANT=DIR` adds the Parzen curve of a solo `gan-jax train` run of that variant (made
with the same eval flags, e.g. seed 0 while the sweep runs seeds 1 and 2 with `--first_seed 1`)
to the variant's seeds. Writes, per variant, OUT/gan2014_full_length_<variant>.md (at each eval
step the mean, standard deviation, lowest and highest Parzen figure over its runs; its best and
final mean; the members left out, with their sweep status: non-finite, or stopped by the
collapse alarm) and OUT/gan2014_full_length_<variant>.png (each run's curve, their mean and
band, the paper's 225 dashed; `gan-jax curve`), so the variants can run in separate commands
(e.g. `--variants paper --first_seed 1 --seeds 2 --with paper=runs/gan2014_full` and
`--variants authors --seeds 3`).

Expect (seed 0 of each as a solo `gan-jax train` run with these settings, on the 2-core CPU;
the commands are in the README's Evaluation section): `paper` 172.2 +-
1.5 at step 125,000 (best 172.9, at 110,000), `simultaneous` 173.7 +- 1.4 (best 174.0, at
110,000; 28.3 at step 5,000 against the paper variant's 8.3): about 51 short of the paper's 225
(README, Evaluation). `--variants simultaneous --first_seed 1 --seeds 2` ended at 165.3 and
164.8, so the mean over seeds 0-2 is 168.0 +- 4.1 at step 125,000 (best mean 168.7 +- 2.4, at
120,000), 57 short. `authors` seed 0 (solo run) ended at 180.4 +- 2.3 at step 125,000
(best 184.4 +- 2.3, at 120,000; 51.7 at 5,000), and `--variants authors --first_seed 1
--seeds 2 --with authors=<seed 0's workdir>` at 175.9 and 181.9: over seeds 0-2, 179.4 +- 2.6
(best mean 183.5 +- 2.2, at 120,000), the best of the three variants, 45.6 short.

Cost: the 2014 nets run about 44 member-iterations/s on the 2-core CPU VM (make bench-sweep),
so 3 seeds x 125,000 steps take about 2.4 hours per variant there, plus ~20 s per member per
evaluation; 2 seeds took 7,108 s beside a niced second run. A few minutes on an accelerator.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from gan_jax import curves, parallel, sweep  # noqa: E402
from gan_jax.config import load_experiment_file  # noqa: E402

VARIANTS = ("paper", "authors", "simultaneous")
EVAL_EVERY = 5000
PAPER_PARZEN = 225.0  # Goodfellow et al. 2014, Table 1 (+- 2)


def get_config(variant: str = "paper", steps: int = 125_000):
    """experiments/gan2014_mnist.py for `steps`, evaluated (Parzen, 10,000 samples) and
    checkpointed every EVAL_EVERY steps, in one of VARIANTS.

    Raises:
      ValueError: an unknown variant, or steps not a positive multiple of EVAL_EVERY.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not allowed; expected one of {VARIANTS}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1 or steps % EVAL_EVERY:
        raise ValueError(
            f"steps = {steps!r} is not allowed; expected a positive multiple of {EVAL_EVERY}"
        )
    c = load_experiment_file(str(REPO / "experiments" / "gan2014_mnist.py"))
    c.train.update(num_steps=steps, checkpoint_every=EVAL_EVERY, sample_every=EVAL_EVERY)
    c.eval.update(every=EVAL_EVERY, metrics="parzen", num_samples=10_000)
    if variant == "authors":
        c.train.update_rule = "simultaneous"
        c.loss.d_objective_scale = 0.5
        c.model.z_dist = "normal"
    elif variant == "simultaneous":
        c.train.update_rule = "simultaneous"
    return c


def variant_rows(variant: str, summary: dict) -> list[str]:
    """Markdown rows of one variant from `curves.over_runs` of its runs' 'parzen_ll': at each
    step all of them logged, the mean +- std (numpy, ddof 0), the lowest and the highest."""
    return [
        f"| {variant} | {step:,} | {summary['runs']} | {summary['mean'][i]:.1f} +-"
        f" {summary['std'][i]:.1f} | {summary['lowest'][i]:.1f} | {summary['highest'][i]:.1f} |"
        for i, step in enumerate(summary["step"])
    ]


def best_and_final(summary: dict) -> tuple[tuple[int, float], tuple[int, float]]:
    """((step, mean) of the highest mean over the runs, (step, mean) at their last common
    step), from `curves.over_runs`."""
    best = int(np.argmax(summary["mean"]))
    return (
        (summary["step"][best], summary["mean"][best]),
        (summary["step"][-1], summary["mean"][-1]),
    )


def parse_with(items: list[str], variants=VARIANTS) -> dict[str, list[str]]:
    """{variant: [solo workdirs]} from --with VARIANT=DIR flags, each variant one of
    `variants` (those run: a solo run of another would be left out of every table).

    Raises:
      ValueError: an item without '=', or a variant not in `variants`.
    """
    out: dict[str, list[str]] = {}
    for item in items:
        variant, sep, directory = item.partition("=")
        if not sep or not directory:
            raise ValueError(f"--with {item!r} is not allowed; expected VARIANT=DIR")
        if variant not in variants:
            raise ValueError(
                f"--with {item!r}: variant {variant!r} is not one of {tuple(variants)} (--variants)"
            )
        out.setdefault(variant, []).append(directory)
    return out


def main() -> None:
    # As `gan-jax sweep` does, before JAX starts: on a CPU the members then run one device per
    # core (here 2 of each variant's seeds side by side) instead of sharing one device.
    parallel.one_cpu_device_per_core()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="directory of the MNIST IDX files")
    parser.add_argument("--workdir", default="runs/gan2014_full_length")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first_seed", type=int, default=0, help="seeds first_seed + 0..S-1")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=125_000)
    parser.add_argument("--with", dest="solo", action="append", default=[], metavar="V=DIR")
    args = parser.parse_args()
    variants = args.variants.split(",")
    try:
        for variant in variants:
            get_config(variant, args.steps)  # a bad name or length stops here, before training
        solo = parse_with(args.solo, variants)
        if args.seeds < 1:
            raise ValueError(f"--seeds {args.seeds} is not allowed; expected >= 1")
    except ValueError as err:
        parser.error(str(err))
    header = [
        f"Parzen log-likelihood (2014 protocol) every {EVAL_EVERY:,} steps, over the seeds of"
        " the variant: mean +- std (ddof 0), lowest and highest. Goodfellow et al. 2014, Table"
        f" 1: {PAPER_PARZEN:.0f} +- 2.",
        "",
        "| variant | step | seeds | Parzen LL | lowest | highest |",
        "|---|---|---|---|---|---|",
    ]
    os.makedirs(args.out, exist_ok=True)
    for variant in variants:
        config = get_config(variant, args.steps)
        config.data.dir = args.data_dir
        config.seed = args.first_seed
        workdir = os.path.join(args.workdir, variant)
        members = sweep.run_sweep(config, {}, args.seeds, workdir)
        failed = [f"seed {m.seed}: {m.status}" for m in members if m.status != "ok"]
        runs = [sweep.member_dir(workdir, m.index) for m in members if m.status == "ok"]
        runs += solo.get(variant, [])
        lines = [f"- {variant}: left out: {'; '.join(failed)}"] if failed else []
        rows = []
        if runs:
            summary = curves.over_runs(
                [curves.read_curves(run, ["parzen_ll"])["parzen_ll"] for run in runs]
            )
            rows = variant_rows(variant, summary)
            (best_step, best), (last_step, last) = best_and_final(summary)
            lines.append(
                f"- {variant}: best mean {best:.1f} at step {best_step:,}, final {last:.1f} at"
                f" step {last_step:,}, {PAPER_PARZEN - last:.1f} short of the paper"
                f" ({len(runs)} runs: {', '.join(runs)})"
            )
            curves.curve(
                runs,
                ["parzen_ll"],
                os.path.join(args.out, f"gan2014_full_length_{variant}.png"),
                reference=PAPER_PARZEN,
                reference_label="Goodfellow et al. 2014, Table 1",
            )
        with open(os.path.join(args.out, f"gan2014_full_length_{variant}.md"), "w") as f:
            f.write("\n".join([*header, *rows, "", *lines]) + "\n")
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
