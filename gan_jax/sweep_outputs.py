"""What a sweep writes: results tables, member workdirs (with their eval records), per-member
metrics and TensorBoard files, and status files. The plots are in sweep_plots.py."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import socket
import struct
import time

import numpy as np
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.record_writer import masked_crc32c
from tensorboardX.summary import scalar

from gan_jax import evaluate, sweep_plots, train, writers
from gan_jax.checkpoint import Checkpointer
from gan_jax.state import GANState
from gan_jax.sweep_grid import Member
from gan_jax.workdir import write_config

STATUS_FILE = "members_status.json"  # failed members, saved beside each stacked checkpoint
EVAL_FILE = "eval.json"  # as `gan-jax eval` writes it


def _summary(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values))


def eval_columns(evals: dict) -> list[str]:
    """The scalar metric names of `evals` ({member index: {name: value}}), in the order they
    first appear (a metric that returns a list, such as a histogram, has no column)."""
    names: dict[str, None] = {}
    for record in evals.values():
        for name, value in record.items():
            if np.ndim(value) == 0:
                names.setdefault(name)
    return list(names)


def results_rows(
    members: list[Member], grid: dict, final: dict, evals: dict | None = None
) -> list[dict]:
    """One row per member, then one per grid point.

    A member row holds its index, seed, swept values, status, final d_loss/g_loss (`final`:
    {member index: {metric: value}} at its last finite log step) and one column per scalar eval
    metric (`evals`: {member index: {metric: value}}, see `write_member_outputs`; NaN where a
    member has none, e.g. a failed one). A grid point row holds the mean and standard deviation
    (numpy's, ddof 0) of each of those columns over its members that did not fail, `seed` giving
    how many those are. With members in more than one program group (`Member.group`, where the
    field exists), a `group` column follows `seed`.
    """
    evals = evals or {}
    names = eval_columns(evals)
    metrics = ["d_loss", "g_loss", *names]
    groups = {getattr(m, "group", 0) for m in members}

    def source(name: str) -> dict:
        return evals if name in names else final

    def value(index: int, name: str) -> float:
        return source(name).get(index, {}).get(name, float("nan"))

    rows = []
    for m in members:
        rows.append(
            {
                "row": f"member {m.index}",
                "seed": m.seed,
                **({"group": getattr(m, "group", 0)} if len(groups) > 1 else {}),
                **m.values,
                "status": m.status,
                **{name: value(m.index, name) for name in metrics},
                **{f"{name}_std": "" for name in metrics},
            }
        )
    for point in sorted({m.point for m in members}):
        group = [m for m in members if m.point == point]
        ok = [m for m in group if m.status == "ok"]
        # A member without a value (resumed from a checkpoint whose status was never written,
        # with no step left to run) counts as ok but adds nothing to the mean.
        summaries = {
            name: _summary(
                [source(name)[m.index][name] for m in ok if name in source(name).get(m.index, {})]
            )
            for name in metrics
        }
        rows.append(
            {
                "row": f"point {point}",
                "seed": f"{len(ok)} of {len(group)} ok",
                **({"group": getattr(group[0], "group", 0)} if len(groups) > 1 else {}),
                **group[0].values,
                "status": "ok" if len(ok) == len(group) else f"{len(group) - len(ok)} failed",
                **{name: summaries[name][0] for name in metrics},
                **{f"{name}_std": summaries[name][1] for name in metrics},
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
    """WORKDIR/members/<index>: member `index`'s own workdir."""
    return os.path.join(workdir, "members", str(index))


@dataclasses.dataclass(frozen=True)
class EvalPlan:
    """The eval metrics a sweep computes on each member's final state (`eval_plan`)."""

    names: list[str]  # metric names of gan_jax.metrics, checked against the dataset
    num_samples: int  # samples drawn from each member's G (config.eval.num_samples)
    inputs: dict  # reference data (evaluate.reference_inputs), loaded once for all members


def eval_plan(config) -> EvalPlan | None:
    """The sweep's eval metrics: those of `config.eval.metrics`, or None when it names none.
    Every member that did not fail is evaluated at the end (also without eval.every) and, with
    eval.every, at each multiple of it, as a solo run is. Loads the reference
    data now, so a bad metric name or missing data stops the sweep before any compile.

    Raises:
      ValueError: a metric that does not fit the dataset or config.eval.num_samples
        (evaluate.check_metrics), or reference data that cannot be loaded.
    """
    if not config.eval.metrics:
        return None
    names = evaluate.check_metrics(config, config.eval.metrics)
    return EvalPlan(names, config.eval.num_samples, evaluate.reference_inputs(config, None))


def write_eval_record(directory: str, record: dict) -> dict:
    """Writes `record` as `directory/eval.json` the way `gan-jax eval` does (strict JSON:
    non-finite values as null with their reason, evaluate.finite_record; written to a temporary
    file and renamed). Returns what was written."""
    record = evaluate.finite_record(record)
    path = os.path.join(directory, EVAL_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=2, allow_nan=False)
    os.replace(path + ".tmp", path)
    return record


def evaluate_member(member: Member, state: GANState, plan: EvalPlan) -> dict:
    """The plan's metrics of one member's state (host leaves), as `gan-jax eval` and a solo
    run's `eval.every` compute them (evaluate.evaluate_state: seed evaluate.EVAL_SEED)."""
    return evaluate.evaluate_state(member.config, state, plan.names, plan.num_samples, plan.inputs)


def write_member_outputs(
    member: Member,
    state: GANState,
    workdir: str,
    step: int,
    plan: EvalPlan | None = None,
    results: dict | None = None,
) -> dict:
    """DIR/members/<i>/: config.json, a checkpoint of the member's state and its final sample
    grid (unless train.sample_every is 0, as in a solo run), so that gan-jax eval/sample/train
    work on it as on a solo run's workdir.

    With an eval `plan` and a member that did not fail, also computes the plan's metrics on
    the state (evaluate.evaluate_state: the samples `gan-jax eval` would draw, seed
    evaluate.EVAL_SEED) and writes them as the member's eval.json, at the state's step, as
    `gan-jax eval` would; `results`, when given, are those metrics already computed on this
    state (the sweep's `eval.every` at its last step). Returns the metrics ({name: value}, NaN
    kept), or {} (no plan, or a failed member: its eval.json, if any, is left as it was)."""
    directory = member_dir(workdir, member.index)
    write_config(member.config, directory)
    checkpointer = Checkpointer(
        os.path.join(directory, "checkpoints"), keep=member.config.train.keep_checkpoints
    )
    try:
        checkpointer.save(state)
    finally:
        checkpointer.close()
    if member.config.train.sample_every:  # 0: no samples, as in a solo run
        train.save_samples(member.config, state, directory, step)
    if plan is None or member.status != "ok":
        return {}
    if results is None:
        results = evaluate_member(member, state, plan)
    record = {"step": int(state.step), "num_samples": plan.num_samples, **results}
    write_eval_record(directory, record)
    return results


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _tf_record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC-32C, the data, its masked CRC-32C (little-endian),
    the framing of TensorBoard's event files."""
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


class MemberWriters:
    """Each member's log-step metrics, to members/<i>/metrics.jsonl and to TensorBoard event
    files in members/<i>/tensorboard/ (where a solo run's MetricWriter writes them, so that
    `tensorboard --logdir DIR/members` shows one run per member, and `gan-jax train` continuing
    a member alone adds to the same run).

    Opening (once per sweep process) drops each member's jsonl rows after `initial_step` (the
    resumed checkpoint's step: they were written after it by an abandoned run) and starts a new
    event file per member whose first event is TensorBoard's purge marker, a SessionLog START
    at step `initial_step + 1`, which hides the earlier files' events from that step on (what
    tensorboardX's SummaryWriter(purge_step=...) writes). Unlike one SummaryWriter per member
    (3 file descriptors and 2 threads each: 192 and 128 at K = 64), nothing stays open: each
    write appends to the member's files and closes them, so K members cost no threads and no
    descriptors between writes. With `enabled=False` (a non-primary process of a multi-host
    run) nothing is written or read.
    """

    def __init__(self, workdir: str, indices, initial_step: int = 0, enabled: bool = True):
        self.enabled = enabled
        self.workdir = workdir
        self.event_files: dict[int, str] = {}
        if not enabled:
            return
        # TensorBoard reads a run's files in name order: seconds first, as tensorboardX names
        # them, then nanoseconds, so a process resuming within the same second sorts after.
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{time.time_ns()}"
        )
        for index in indices:
            directory = member_dir(workdir, index)
            os.makedirs(os.path.join(directory, "tensorboard"), exist_ok=True)
            writers.drop_rows_after(os.path.join(directory, "metrics.jsonl"), initial_step)
            self.event_files[index] = os.path.join(directory, "tensorboard", name)
            now = time.time()
            self._append_events(
                index,
                [
                    Event(wall_time=now, step=initial_step + 1, file_version="brain.Event:2"),
                    Event(
                        wall_time=now,
                        step=initial_step + 1,
                        session_log=SessionLog(status=SessionLog.START),
                    ),
                ],
            )

    def _append_events(self, index: int, events: list) -> None:
        with open(self.event_files[index], "ab") as f:
            f.write(b"".join(_tf_record(e.SerializeToString()) for e in events))

    def _scalars(self, step: int, index: int, record: dict) -> None:
        now = time.time()
        events = [
            Event(wall_time=now, step=step, summary=scalar(name, _number(value)))
            for name, value in record.items()
            # Non-finite values (e.g. a reverse KL of an empty histogram) stay out of TensorBoard
            # (tensorboardX would warn once per member); metrics.jsonl and eval.json keep them.
            if name != "step"
            and np.ndim(value) == 0
            and not isinstance(value, str)  # the alarm's reason: metrics.jsonl only
            and np.isfinite(_number(value))
        ]
        if events:
            self._append_events(index, events)

    def write(self, step: int, index: int, record: dict) -> dict:
        """Appends {'step': step, **record} (values as Python scalars or lists) to member
        `index`'s metrics.jsonl and its scalar values to its event file; returns the row.

        Raises:
          KeyError: `index` is not one of the members the writers were opened for.
        """
        row = {"step": int(step), **{k: writers.to_python(v) for k, v in record.items()}}
        if not self.enabled:
            return row
        if index not in self.event_files:
            raise KeyError(f"member {index} has no writer; opened for {sorted(self.event_files)}")
        with open(os.path.join(member_dir(self.workdir, index), "metrics.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
        self._scalars(step, index, row)
        return row

    def write_eval(self, step: int, index: int, record: dict) -> None:
        """The scalar values of member `index`'s eval `record` (`write_member_outputs`) to its
        event file at `step`, under their own names as a solo run's evaluator writes them
        (the numbers themselves are in the member's eval.json, not its metrics.jsonl)."""
        if self.enabled and record:
            self._scalars(step, index, record)

    def close(self) -> None:
        """Stops all writing (nothing is held open between writes)."""
        self.enabled = False


def write_group_outputs(
    workdir: str,
    members: list[Member],
    state_of,
    step: int,
    plan: EvalPlan | None = None,
    member_writers: MemberWriters | None = None,
    computed: dict | None = None,
) -> dict:
    """Each member's workdir and eval record at the end of its group (`write_member_outputs`,
    the eval scalars also to TensorBoard through `member_writers`); returns {member index:
    eval metrics} ({} for a failed member or without a plan).

    Args:
      members: one program group's members.
      state_of: member index -> that member's state (host numpy leaves).
      computed: {member index: eval metrics} already computed at `step` and logged with the
        member's metrics (the sweep's `eval.every`): reused, not computed or logged again.
    """
    computed = computed or {}
    evals = {}
    for m in members:
        results = computed.get(m.index)
        # A rerun of a finished sweep finds the eval.json of this step, or (killed before
        # writing it) eval.every's metrics in the member's row of this step: those are in
        # TensorBoard already, metrics added to eval.metrics since are not.
        log = member_writers is not None and results is None
        logged = _logged_names(member_dir(workdir, m.index), step) if log else set()
        evals[m.index] = write_member_outputs(m, state_of(m.index), workdir, step, plan, results)
        if log:
            new = {k: v for k, v in evals[m.index].items() if k not in logged}
            member_writers.write_eval(step, m.index, new)
    return evals


def _logged_names(directory: str, step: int) -> set[str]:
    """The names the member's workdir holds for `step`: in its eval.json when that is of
    `step`, and in its metrics.jsonl rows of `step`."""
    names = set()
    path = os.path.join(directory, EVAL_FILE)
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
        if record.get("step") == step:
            names.update(record)
    if os.path.exists(os.path.join(directory, "metrics.jsonl")):
        for row in writers.read_metrics(directory):
            if row.get("step") == step:
                names.update(row)
    return names


def write_sweep_results(
    workdir: str, grid: dict, members: list[Member], final: dict, evals: dict
) -> list[dict]:
    """DIR/results.csv and .md (`results_rows`, `write_results`) and DIR/plots/
    (sweep_plots.write_plots) once every group is done. Returns the results rows.

    Args:
      grid: the parsed grid {key: [values]} (sweep_grid.make_grid), as sweep.json holds it.
      final: {member index: {metric: value}} at each member's last finite log step.
      evals: {member index: eval metrics} (write_group_outputs of every group).
    """
    rows = results_rows(members, grid, final, evals)
    write_results(workdir, rows)
    sweep_plots.write_plots(workdir, rows, grid)
    return rows


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
