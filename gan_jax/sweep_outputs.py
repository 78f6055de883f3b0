"""What a sweep writes: results tables, member workdirs, per-member metrics and status files."""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from gan_jax import train
from gan_jax.checkpoint import Checkpointer
from gan_jax.state import GANState
from gan_jax.sweep_grid import Member
from gan_jax.workdir import write_config

STATUS_FILE = "members_status.json"  # failed members, saved beside each stacked checkpoint


def _summary(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values))


def results_rows(members: list[Member], grid: dict, final: dict) -> list[dict]:
    """One row per member (index, seed, swept values, status, final d_loss/g_loss), then one
    per grid point: the mean and standard deviation (numpy's, ddof 0) over its members that
    did not fail, `seed` giving how many those are."""
    rows = []
    for m in members:
        losses = final.get(m.index, {})
        rows.append(
            {
                "row": f"member {m.index}",
                "seed": m.seed,
                **m.values,
                "status": m.status,
                "d_loss": losses.get("d_loss", float("nan")),
                "g_loss": losses.get("g_loss", float("nan")),
                "d_loss_std": "",
                "g_loss_std": "",
            }
        )
    for point in sorted({m.point for m in members}):
        group = [m for m in members if m.point == point]
        ok = [m for m in group if m.status == "ok"]
        # A member without losses (resumed from a checkpoint whose status was never written,
        # with no step left to run) counts as ok but adds nothing to the mean.
        d_mean, d_std = _summary([final[m.index]["d_loss"] for m in ok if m.index in final])
        g_mean, g_std = _summary([final[m.index]["g_loss"] for m in ok if m.index in final])
        rows.append(
            {
                "row": f"point {point}",
                "seed": f"{len(ok)} of {len(group)} ok",
                **group[0].values,
                "status": "ok" if len(ok) == len(group) else f"{len(group) - len(ok)} failed",
                "d_loss": d_mean,
                "g_loss": g_mean,
                "d_loss_std": d_std,
                "g_loss_std": g_std,
            }
        )
    return rows


def write_results(workdir: str, rows: list[dict]) -> None:
    """DIR/results.csv and DIR/results.md (a Markdown table) from `results_rows`."""
    columns = list(rows[0].keys())
    with open(os.path.join(workdir, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)

    def cell(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def member_dir(workdir: str, index: int) -> str:
    return os.path.join(workdir, "members", str(index))


def write_member_outputs(member: Member, state: GANState, workdir: str, step: int) -> None:
    """DIR/members/<i>/: config.json, a checkpoint of the member's state and its final sample
    grid, so that gan-jax eval/sample/train work on it as on a solo run's workdir."""
    directory = member_dir(workdir, member.index)
    write_config(member.config, directory)
    checkpointer = Checkpointer(
        os.path.join(directory, "checkpoints"), keep=member.config.train.keep_checkpoints
    )
    try:
        checkpointer.save(state)
    finally:
        checkpointer.close()
    train.save_samples(member.config, state, directory, step)


def append_metrics(workdir: str, index: int, record: dict) -> None:
    path = os.path.join(member_dir(workdir, index), "metrics.jsonl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_status(workdir: str, step: int) -> dict:
    """{member index: {'status', 'final'}} saved with the stacked checkpoint at `step`; {} when
    there is none (a checkpoint written by a process killed before its status)."""
    path = os.path.join(workdir, STATUS_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {int(i): v for i, v in json.load(f).get(str(step), {}).items()}


def write_status(workdir: str, step: int, members: list[Member], final: dict, keep) -> None:
    """Adds every member's status and final losses at `step` to DIR/members_status.json,
    keeping the entries of the steps in `keep` (the checkpoints on disk). Written to a
    temporary file and renamed, so a killed process leaves the previous file whole."""
    path = os.path.join(workdir, STATUS_FILE)
    saved = {}
    if os.path.exists(path):
        with open(path) as f:
            saved = {k: v for k, v in json.load(f).items() if int(k) in keep}
    saved[str(step)] = {
        str(m.index): {"status": m.status, "final": final.get(m.index, {})} for m in members
    }
    with open(path + ".tmp", "w") as f:
        json.dump(saved, f)
    os.replace(path + ".tmp", path)


def check_same_sweep(workdir: str, record: dict) -> None:
    """Raises ValueError when `workdir` holds checkpoints of another sweep (other members,
    seeds or values than `record`, the new sweep.json)."""
    path = os.path.join(workdir, "sweep.json")
    if not os.path.exists(path) or not os.path.isdir(os.path.join(workdir, "groups")):
        return
    with open(path) as f:
        saved = json.load(f)
    if saved.get("members") != json.loads(json.dumps(record["members"])):
        raise ValueError(
            f"{workdir} holds another sweep (its sweep.json has other members); resume it with"
            " its own grid and seeds, or use another --workdir"
        )
