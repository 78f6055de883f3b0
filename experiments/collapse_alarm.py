r"""The collapse alarm's defaults against the 2014 collapse sweeps (gan2014_collapse.py).

For each member of each finished variant sweep, this replays `alarm.check` with the default
config.alarm over the member's metrics.jsonl (logged every 100 steps), adding the sample
statistics (`alarm.sample_stats`: diversity of 256 samples relative to 256 training digits,
and the classes the MNIST classifier sees) at each step that has a stacked group checkpoint
(steps 1000, 2000, 3000: the sweep keeps 3), and compares the first alarm with the sweep's own
collapse criterion (mean D(G(z)) below 0.001 at 3 logs in a row, or non-finite). It only reads
the sweep directories.

    python experiments/collapse_alarm.py --sweep_dir runs/gan2014_collapse \
        --data_dir ../shared/data/mnist --out docs [--variants paper,authors]

Writes OUT/collapse_alarm.md: one row per member (collapsed or not by the experiment's rule,
the lowest d_fake, the first alarm's step and reason, the statistics at each checkpoint) and a
summary line per variant: the alarm should fire for exactly the collapsed members.
Cost: 46 s a variant on the shared 2-core CPU (8 s of CPU: restores, 256 samples a checkpoint).
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib.util
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import alarm, data, engine, hparams, sweep  # noqa: E402
from gan_jax.checkpoint import Checkpointer  # noqa: E402


def load_collapse_experiment():
    path = REPO / "experiments" / "gan2014_collapse.py"
    spec = importlib.util.spec_from_file_location("gan2014_collapse", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stacked_like(config, num: int):
    """(shape-only stacked state of `num` members, its member axes) of a sweep group."""
    stub = None
    if config.model.get("output_bias_from_data"):
        stub = data.make_dataset(np.zeros((1, *data.data_shape(config.data)), np.float32))
    spec = engine.make_spec(config, config.train.batch_size)
    one = jax.eval_shape(
        functools.partial(engine.init, spec=spec),
        jax.random.PRNGKey(0),
        hparams.from_config(config),
        stub,
    )
    axes = engine.member_axes(one)
    like = jax.tree.map(
        lambda a, x: x if a is None else jax.ShapeDtypeStruct((num, *x.shape), x.dtype),
        axes,
        one,
        is_leaf=lambda a: a is None,
    )
    return like, axes


def group_statistics(variant_dir: str, reference, config) -> dict:
    """{member index: {step: {'alarm_diversity', 'alarm_classes'}}} at every stacked
    checkpoint of every group of the sweep in `variant_dir`."""
    with open(os.path.join(variant_dir, "sweep.json")) as f:
        record = json.load(f)
    out: dict = {}
    for g, group in enumerate(record["groups"]):
        like, axes = stacked_like(config, group["padded_members"])
        stats_fn = alarm.member_stats(axes, config.data.scale)
        checkpointer = Checkpointer(
            os.path.join(sweep.group_dir(variant_dir, g), "checkpoints"), primary=False
        )
        for step in checkpointer.all_steps():
            state = checkpointer.restore(like, step)
            stats = stats_fn(
                state, reference.z_NxZ, reference.real_spread, reference.classifier_params
            )
            for position, index in enumerate(group["members"]):
                out.setdefault(index, {})[step] = {
                    k: float(np.asarray(v)[position]) for k, v in stats.items()
                }
        checkpointer.close()
    return out


def replay(rows: list[dict], stats: dict, config) -> tuple[int, str] | None:
    """(step, reason) of the first log at which the alarm fires, or None."""
    tracker = alarm.Tracker(config)
    for row in rows:
        reason, _ = tracker.observe({**row, **stats.get(row["step"], {})})
        if reason:
            return row["step"], reason
    return None


def variant_rows(
    variant: str, variant_dir: str, data_dir: str, collapse
) -> tuple[list[str], list[int]]:
    """Markdown rows of a variant's members, and (collapsed, alarmed, both) counts."""
    with open(os.path.join(variant_dir, "sweep.json")) as f:
        members = json.load(f)["members"]
    status = {}
    results = os.path.join(variant_dir, "results.csv")
    if os.path.exists(results):
        with open(results) as f:
            for row in csv.DictReader(f):
                if row.get("row", "").startswith("member "):
                    status[int(row["row"].split()[1])] = row["status"]
    # The experiment's own config (a member's config.json appears only when its group ends);
    # its alarm section is today's default.
    config = collapse.get_config(variant)
    config.data.dir = data_dir
    reference = alarm.Reference(config, data.load_dataset(config.data))
    stats = group_statistics(variant_dir, reference, config)
    lines, counts = [], [0, 0, 0]
    for m in members:
        index = m["index"]
        directory = sweep.member_dir(variant_dir, index)
        with open(os.path.join(directory, "metrics.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        collapsed = collapse.collapse_flags(directory, status.get(index, "ok"))[1]
        fired = replay(rows, stats.get(index, {}), config)
        counts[0] += collapsed
        counts[1] += fired is not None
        counts[2] += collapsed and fired is not None
        by_step = stats.get(index, {})
        stat_text = ", ".join(
            f"{s}: {v['alarm_diversity']:.2f} / {int(v.get('alarm_classes', -1))}"
            for s, v in sorted(by_step.items())
        )
        lines.append(
            f"| {index} | {m['seed']} | {status.get(index, 'ok')} |"
            f" {'yes' if collapsed else 'no'} |"
            f" {min(r['d_fake'] for r in rows):.2g} |"
            f" {'' if fired is None else fired[0]} | {'' if fired is None else fired[1]} |"
            f" {stat_text} |"
        )
    return lines, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep_dir", default="runs/gan2014_collapse")
    parser.add_argument("--data_dir", required=True, help="directory of the MNIST IDX files")
    parser.add_argument("--out", default="docs")
    parser.add_argument(
        "--variants", help="comma-separated (default: every variant of gan2014_collapse.py)"
    )
    args = parser.parse_args()
    collapse = load_collapse_experiment()
    table = []
    for variant in args.variants.split(",") if args.variants else collapse.VARIANTS:
        variant_dir = os.path.join(args.sweep_dir, variant)
        if not os.path.exists(os.path.join(variant_dir, "sweep.json")):
            print(f"{variant}: no sweep in {variant_dir}, left out", flush=True)
            continue
        lines, (collapsed, fired, both) = variant_rows(
            variant, variant_dir, args.data_dir, collapse
        )
        summary = (
            f"**{variant}**: {collapsed} collapsed by the experiment's rule, the alarm fired for"
            f" {fired}, {both} of them collapsed"
        )
        print(summary, flush=True)
        table += [
            summary,
            "",
            "| member | seed | sweep status | collapsed | lowest d_fake | alarm at step | reason |"
            " diversity / classes at step |",
            "|---|---|---|---|---|---|---|---|",
            *lines,
            "",
        ]
    table = [
        "The collapse alarm's defaults replayed on the 2014 collapse sweeps"
        " (experiments/collapse_alarm.py). collapsed: the sweep experiment's rule (mean D(G(z))"
        " below 0.001 at 3 logs in a row, or non-finite). Statistics of the stacked checkpoints:"
        " diversity (samples' mean pairwise distance over real data's) / classes the MNIST"
        " classifier sees, of 256 samples; a non-finite member's are of its frozen state.",
        "",
        *table,
    ]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "collapse_alarm.md"), "w") as f:
        f.write("\n".join(table))


if __name__ == "__main__":
    main()
