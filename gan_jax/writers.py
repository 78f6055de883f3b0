"""Where training numbers go: metrics.jsonl, TensorBoard event files and a progress bar."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import time

import numpy as np
from absl import logging
from tensorboardX import SummaryWriter
from tqdm import tqdm


def to_python(value):
    """A JSON-ready Python scalar or list from a numpy/JAX value."""
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()


class MetricWriter:
    """Appends one JSON object per log step to `metrics.jsonl` and mirrors it to TensorBoard.

    A run that starts at `initial_step` (resumed from that checkpoint, or 0) first drops the rows
    after it: they were written by a run that was abandoned after its last checkpoint (killed, or
    stopped by non-finite numbers), and the resumed run writes those steps again. TensorBoard is
    told the same with a purge step: it hides the earlier files' events from `initial_step + 1` on.
    """

    def __init__(self, workdir: str, total_steps: int, initial_step: int = 0, enabled=True):
        self.enabled = enabled
        if not enabled:  # a non-primary process of a multi-host run writes nothing
            return
        os.makedirs(workdir, exist_ok=True)
        self.path = os.path.join(workdir, "metrics.jsonl")
        drop_rows_after(self.path, initial_step)
        self.tensorboard = SummaryWriter(
            os.path.join(workdir, "tensorboard"),
            purge_step=initial_step + 1,
            # TensorBoard reads a directory's files in name order, and tensorboardX names them
            # by the second: the suffix keeps a run that resumes within a second of the last
            # from overwriting its file, and sorts it after.
            filename_suffix=f".{time.time_ns()}",
        )
        self.progress = tqdm(
            total=total_steps,
            initial=initial_step,
            disable=not sys.stderr.isatty(),
            unit="it",
            dynamic_ncols=True,
        )

    def write(self, step: int, metrics: dict) -> dict:
        """Appends one record to metrics.jsonl and its scalars to TensorBoard (primary process
        only); returns the record with plain Python values."""
        record = {"step": int(step), **{k: to_python(v) for k, v in metrics.items()}}
        if not self.enabled:
            return record
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in record.items():
            # Text (the collapse alarm's reason) is for metrics.jsonl and the log only.
            if name != "step" and np.ndim(value) == 0 and not isinstance(value, str):
                self.tensorboard.add_scalar(name, value, step)
        self.tensorboard.flush()
        self.progress.set_postfix(
            d_loss=f"{record.get('d_loss', float('nan')):.3f}",
            g_loss=f"{record.get('g_loss', float('nan')):.3f}",
        )
        return record

    def advance(self, num_steps: int) -> None:
        """Moves the progress bar on by `num_steps`."""
        if self.enabled:
            self.progress.update(num_steps)

    def close(self) -> None:
        """Closes the progress bar and the TensorBoard writer."""
        if not self.enabled:
            return
        self.progress.close()
        self.tensorboard.close()


def _row_step(line: str) -> int | None:
    """The step of one line of metrics.jsonl; None for a line that is not a whole record (the
    last line of a process killed while writing it)."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def drop_rows_after(path: str, step: int) -> int:
    """Rewrites the metrics file at `path` without its rows after `step` (and any torn line);
    returns how many lines were dropped.

    The file is replaced atomically (a new file renamed over it), and when anything is dropped
    the old file is kept beside it as `<path>.bak-<time>`.
    """
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        text = f.read()
    lines = [line + "\n" for line in text.splitlines() if line.strip()]
    row_steps = [_row_step(line) for line in lines]
    kept = [line for line, s in zip(lines, row_steps, strict=True) if s is not None and s <= step]
    dropped = len(lines) - len(kept)
    if not text or (not dropped and text.endswith("\n")):
        return 0  # (a last line without its newline is rewritten, so that appending can follow)
    if dropped:
        backup = f"{path}.bak-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"
        shutil.copy2(path, backup)
        logging.warning(
            "%s: dropping %d rows after step %d, written by a run abandoned after its last"
            " checkpoint; the old file is kept as %s",
            path,
            dropped,
            step,
            backup,
        )
    with open(path + ".tmp", "w") as f:
        f.writelines(kept)
    os.replace(path + ".tmp", path)
    return dropped


def read_metrics(workdir: str) -> list[dict]:
    """The records of `metrics.jsonl`, in order, without a last line that is not a whole
    record (a run writing it now, or one killed while writing it; `drop_rows_after` removes
    it when the run resumes).

    Raises:
      ValueError: a line before the last is not a JSON record (the message names its number).
    """
    path = os.path.join(workdir, "metrics.jsonl")
    with open(path) as f:
        lines = [(n, line) for n, line in enumerate(f, start=1) if line.strip()]
    records = []
    for i, (n, line) in enumerate(lines):
        try:
            records.append(json.loads(line))
        except ValueError as err:
            if i == len(lines) - 1 and not line.endswith("\n"):
                break
            raise ValueError(f"{path} line {n} is not a JSON record: {err}") from None
    return records
