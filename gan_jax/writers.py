"""Where training numbers go: metrics.jsonl, TensorBoard event files and a progress bar."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from tensorboardX import SummaryWriter
from tqdm import tqdm


def to_python(value):
    """A JSON-ready Python scalar or list from a numpy/JAX value."""
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()


class MetricWriter:
    """Appends one JSON object per log step to `metrics.jsonl` and mirrors it to TensorBoard.

    Appending (never rewriting) keeps the lines of an earlier, interrupted run intact.
    """

    def __init__(self, workdir: str, total_steps: int, initial_step: int = 0, enabled=True):
        self.enabled = enabled
        if not enabled:  # a non-primary process of a multi-host run writes nothing
            return
        os.makedirs(workdir, exist_ok=True)
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"))
        self.progress = tqdm(
            total=total_steps,
            initial=initial_step,
            disable=not sys.stderr.isatty(),
            unit="it",
            dynamic_ncols=True,
        )

    def write(self, step: int, metrics: dict) -> dict:
        record = {"step": int(step), **{k: to_python(v) for k, v in metrics.items()}}
        if not self.enabled:
            return record
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in record.items():
            if name != "step" and np.ndim(value) == 0:
                self.tensorboard.add_scalar(name, value, step)
        self.tensorboard.flush()
        self.progress.set_postfix(
            d_loss=f"{record.get('d_loss', float('nan')):.3f}",
            g_loss=f"{record.get('g_loss', float('nan')):.3f}",
        )
        return record

    def advance(self, num_steps: int) -> None:
        if self.enabled:
            self.progress.update(num_steps)

    def close(self) -> None:
        if not self.enabled:
            return
        self.progress.close()
        self.tensorboard.close()


def read_metrics(workdir: str) -> list[dict]:
    """The records of `metrics.jsonl`, in order."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]
