"""Learning curves of a workdir: a logged metric against training steps, read from metrics.jsonl.

`gan-jax curve --workdir DIR [DIR ...] --metrics parzen_ll` plots each named metric at the steps
where a run logged it (eval metrics appear every `eval.every` steps, training ones every
`log_every`), with error bars where the run also logged `<name>_stderr` (the Parzen estimate's),
and returns each series' lowest, highest and last point: the figures a report quotes ("the best
and the final"). Several runs (seeds) add their mean and standard deviation at the steps all of
them logged. A reference line marks a paper's figure (e.g. 225 for Goodfellow et al. 2014,
Table 1).
"""

from __future__ import annotations

import math
import os

import numpy as np

from gan_jax import plotting, writers


def read_curves(workdir: str, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Each named metric's logged points: {name: {"step": [N], "value": [N], "stderr": [N] or
    absent}}, in step order. Rows where the value is not a finite number (null, or NaN such
    as a sweep member's reverse KL of an empty histogram) are left out; of two rows logging a
    name at one step the later counts (a non-finite later value leaves the step out); a
    half-written last line (a run writing now) is skipped.

    Raises:
      ValueError: `workdir` has no metrics.jsonl (a sweep's top directory, a member that failed
        before its first log step, or no workdir), a line before the last is not JSON, `names`
        is empty, or a name is logged at no step (the message lists the numeric names the run
        did log) or never as a finite number.
    """
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        raise ValueError(_missing_log(workdir))
    if not names:
        raise ValueError("no metric named: pass --metrics NAME[,NAME...]")
    rows = writers.read_metrics(workdir)
    logged = sorted({k for row in rows for k, v in row.items() if k != "step" and _is_number(v)})
    curves = {}
    for name in names:
        # A resumed run's rewrite of a step comes after the first (dict order keeps the last),
        # and a non-finite rewrite leaves the step out rather than keep the earlier figure.
        by_step = {row["step"]: row for row in rows if name in row}
        points = [by_step[step] for step in sorted(by_step) if _is_number(by_step[step][name])]
        if not points:
            times = sum(name in row for row in rows)
            if times:  # e.g. a ring member's reverse KL while no sample is near a mode
                raise ValueError(f"metric {name!r} has no finite value in {path} ({times} rows)")
            raise ValueError(
                f"metric {name!r} is not logged in {path}; logged numeric metrics: {logged}"
            )
        curve = {
            "step": np.array([row["step"] for row in points], np.int64),
            "value": np.array([row[name] for row in points], np.float64),
        }
        if all(_is_number(row.get(f"{name}_stderr")) for row in points):
            curve["stderr"] = np.array([row[f"{name}_stderr"] for row in points], np.float64)
        curves[name] = curve
    return curves


def summarise(curve: dict[str, np.ndarray], steps_per_epoch: int | None = None) -> dict:
    """A series' number of points and its lowest, highest and last points, each as
    {"step", "value"} (plus "epoch" = step / steps_per_epoch when that is given)."""

    def point(i):
        record = {"step": int(curve["step"][i]), "value": float(curve["value"][i])}
        if steps_per_epoch:
            record["epoch"] = curve["step"][i] / steps_per_epoch
        return record

    values = curve["value"]
    return {
        "points": int(values.size),
        "lowest": point(int(np.argmin(values))),
        "highest": point(int(np.argmax(values))),
        "last": point(values.size - 1),
    }


def over_runs(curves: list[dict[str, np.ndarray]]) -> dict:
    """One metric over several runs (seeds): at the steps every run logged, the mean and
    standard deviation (numpy's, ddof 0, as the sweep's results tables) of their values and
    the lowest and highest of them: {"step", "mean", "std", "lowest", "highest": [S] each,
    "runs": n}."""
    steps = sorted(set.intersection(*(set(c["step"].tolist()) for c in curves)))
    values_RxS = np.array(
        [[c["value"][np.searchsorted(c["step"], step)] for step in steps] for c in curves]
    )
    return {
        "step": steps,
        "mean": values_RxS.mean(axis=0).tolist(),
        "std": values_RxS.std(axis=0).tolist(),
        "lowest": values_RxS.min(axis=0).tolist(),
        "highest": values_RxS.max(axis=0).tolist(),
        "runs": len(curves),
    }


def curve(
    workdirs: list[str],
    names: list[str],
    out: str | None = None,
    steps_per_epoch: int | None = None,
    reference: float | None = None,
    reference_label: str = "reference",
    log_y: bool = False,
) -> dict:
    """Plots the named metrics of one or more runs against steps (or epochs) into the PNG `out`
    (default FIRST_WORKDIR/curve_<names>.png), one panel per metric (log-scaled values with
    `log_y`: test errors falling from thousands to tens). Several workdirs (the seeds of one
    setting, e.g. a solo run and a sweep's DIR/members/<i>) are drawn one line each, with
    their mean and a band of one standard deviation at the steps all of them logged.

    Returns:
      {"out": path, "runs": [{"workdir": w, name: summarise(...)} per workdir], and with more
      than one workdir "over_runs": {name: over_runs(...)}}.

    Raises:
      ValueError: no workdir, steps_per_epoch is not a whole number > 0, `out` does not end in
        .png or is a directory, log_y with a value or reference <= 0 (a value named with its
        run and step), several runs without a step all of them logged, or read_curves' errors
        (a workdir without metrics.jsonl, ...); all checked before anything is written.
    """
    if not workdirs:
        raise ValueError("no workdir: pass --workdir DIR [DIR ...]")
    if steps_per_epoch is not None and (
        isinstance(steps_per_epoch, bool)
        or not isinstance(steps_per_epoch, int)
        or steps_per_epoch < 1
    ):
        raise ValueError(
            f"steps_per_epoch = {steps_per_epoch!r} is not allowed; expected a whole number > 0"
        )
    if reference is not None and not math.isfinite(reference):
        raise ValueError(f"reference = {reference!r} is not allowed; expected a finite number")
    if log_y and reference is not None and reference <= 0:
        raise ValueError(f"reference = {reference!r} is not allowed with log_y; expected > 0")
    if out is None:
        out = os.path.join(workdirs[0], "curve_" + "_".join(names) + ".png")
    if not out.endswith(".png"):
        raise ValueError(f"--out {out!r} is not allowed; expected a path ending in .png")
    if os.path.isdir(out):
        raise ValueError(f"--out {out!r} is a directory; expected a PNG file's path")
    runs = [read_curves(workdir, names) for workdir in workdirs]
    for workdir, run in zip(workdirs, runs, strict=True):
        for name in names if log_y else []:
            low = int(np.argmin(run[name]["value"]))
            if run[name]["value"][low] <= 0:
                raise ValueError(
                    f"{name} = {run[name]['value'][low]:g} at step {run[name]['step'][low]} of"
                    f" {workdir}: log_y needs values > 0"
                )
    record = {
        "out": out,
        "runs": [
            {"workdir": w, **{name: summarise(run[name], steps_per_epoch) for name in names}}
            for w, run in zip(workdirs, runs, strict=True)
        ],
    }
    if len(runs) > 1:
        record["over_runs"] = {name: over_runs([run[name] for run in runs]) for name in names}
        for name, summary in record["over_runs"].items():
            if not summary["step"]:
                raise ValueError(f"metric {name!r}: no step is logged by all of {workdirs}")

    def x(steps):
        return np.asarray(steps) / steps_per_epoch if steps_per_epoch else np.asarray(steps)

    panels = {}
    labels = run_labels(workdirs)
    for name in names:
        lines = [
            (label, x(run[name]["step"]), run[name]["value"], run[name].get("stderr"))
            for label, run in zip(labels, runs, strict=True)
        ]
        band = None
        if len(runs) > 1:
            summary = record["over_runs"][name]
            band = (x(summary["step"]), np.array(summary["mean"]), np.array(summary["std"]))
        panels[name] = (lines, band)
    plotting.save_curves(
        out, panels, "epoch" if steps_per_epoch else "step", reference, reference_label, log_y
    )
    return record


def run_labels(workdirs: list[str]) -> list[str]:
    """Legend labels: each workdir from the folder above the runs' common one on
    ("members/3" for DIR/members/3), or the workdir itself for one run."""
    paths = [os.path.normpath(w) for w in workdirs]
    if len(paths) < 2:
        return paths
    start = os.path.dirname(os.path.commonpath([os.path.abspath(p) for p in paths]))
    return [os.path.relpath(os.path.abspath(p), start) for p in paths]


def _missing_log(workdir: str) -> str:
    if os.path.isdir(os.path.join(workdir, "members")):
        return (
            f"{workdir} is a sweep's directory: pass its members,"
            f" --workdir {os.path.join(workdir, 'members', '*')}"
        )
    if os.path.exists(os.path.join(workdir, "config.json")):
        return (
            f"{workdir} has logged no step yet (no metrics.jsonl: a run before its first log"
            " step, or a sweep member that failed before it)"
        )
    return f"{workdir} has no metrics.jsonl: --workdir must be a training workdir"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
