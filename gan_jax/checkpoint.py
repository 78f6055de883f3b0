"""Checkpoints of the whole GANState with orbax: params, optimizer states, counters, RNG key.

The data position needs no extra field: it is `state.d_updates` (see state.py). Orbax writes each
checkpoint to a temporary directory and renames it when complete, so a process killed mid-write
leaves the previous checkpoint as the newest complete one.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization

from gan_jax.state import GANState


class CheckpointError(ValueError):
    """A checkpoint that cannot be restored into the current config's state."""


def _shapes(tree) -> dict:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): tuple(np.shape(leaf)) for path, leaf in flat}


def _in_current_layout(restored, target):
    """`restored` in the layout of today's `target` state dict, for checkpoints of older code:

    - less the optimizer states' `hyperparams_states` entries that `target` lacks: checkpoints
      written before the schedules moved into Hparams (optim.py) carry one entry per scheduled
      hyperparameter, holding only a copy of the optimizer's update count; the schedule is now
      a function of that count, so dropping them restores the same run;
    - with the fields `target` holds as None and `restored` lacks (a Player's `history` and
      `ema`, added with historical averaging and D's moving average) set to None: a run that
      keeps neither has None there, so its old checkpoints restore as they were;
    - with the injected hyperparameters `target` has and `restored` lacks (Adam's `eps` and
      `eps_root`, injected since they became Hparams) taken from `target`: the steps write
      every injected value (optim.hyperparams_at) before each update, so the stored ones are
      never read.
    """
    if not isinstance(restored, dict) or not isinstance(target, dict):
        return restored
    out = {key: None for key, value in target.items() if value is None and key not in restored}
    for key, value in restored.items():
        if key == "hyperparams_states" and isinstance(value, dict) and key in target:
            out[key] = {k: v for k, v in value.items() if k in target[key]}
        elif key == "hyperparams" and isinstance(value, dict) and isinstance(target.get(key), dict):
            out[key] = {**target[key], **value}
        else:
            out[key] = _in_current_layout(value, target.get(key))
    return out


class Checkpointer:
    """Saves and restores GANStates under `directory`, keeping the newest `keep`."""

    def __init__(self, directory: str, keep: int = 3, primary: bool = True):
        self.directory = os.path.abspath(directory)
        self.primary = primary
        if primary:
            os.makedirs(self.directory, exist_ok=True)
        # The state is saved from host memory, so only one process of a multi-host run writes.
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep,
                create=False,
                enable_async_checkpointing=False,
                multiprocessing_options=ocp.options.MultiprocessingOptions(
                    primary_host=0, active_processes={jax.process_index()}
                ),
            ),
        )

    def latest_step(self) -> int | None:
        """The newest checkpoint's step, or None when there is none."""
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        """The steps of the checkpoints kept."""
        return list(self.manager.all_steps())

    def save(self, state: GANState) -> int:
        """Writes `state` as the checkpoint of its step (synchronously; an existing step, or a
        non-primary process, writes nothing) and returns the step; orbax keeps the newest `keep`
        and writes each through a temporary folder, so a kill mid-write leaves the previous one."""
        step = int(state.step)
        if not self.primary or step in self.manager.all_steps():
            return step
        tree = serialization.to_state_dict(jax.device_get(state))
        self.manager.save(step, args=ocp.args.StandardSave(tree), force=True)
        self.manager.wait_until_finished()
        return step

    def restore(self, like: GANState, step: int | None = None) -> GANState:
        """The checkpoint at `step` (default newest), checked leaf by leaf against `like`."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        target = serialization.to_state_dict(jax.device_get(like))
        try:
            restored = self.manager.restore(step, args=ocp.args.StandardRestore())
        except Exception as err:  # orbax raises many types for unreadable files
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} cannot be read: {err}"
            ) from err
        restored = _in_current_layout(restored, target)
        expected, found = _shapes(target), _shapes(restored)
        if expected != found:
            diff = sorted(set(expected.items()) ^ set(found.items()))[:4]
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} does not fit this config's model"
                f" (first differences, as (leaf, shape): {diff}); use another --workdir or the"
                " config the checkpoint was written with"
            )
        return serialization.from_state_dict(like, restored)

    def close(self) -> None:
        """Releases the checkpoint manager."""
        self.manager.close()


def require_checkpoint(workdir: str, purpose: str) -> None:
    """Raises ValueError unless `workdir` holds a checkpoint; `purpose` ends the message ("to
    sample from"). Only reads: no checkpoints/ folder is created in a workdir without one."""
    checkpoints = os.path.join(workdir, "checkpoints")
    if (
        not os.path.isdir(checkpoints)
        or Checkpointer(checkpoints, primary=False).latest_step() is None
    ):
        raise ValueError(
            f"no checkpoint in {checkpoints} {purpose}; train first (gan-jax train"
            f" --workdir {workdir} ...) or pass the workdir of a trained run"
        )
