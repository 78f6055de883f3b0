"""The host loop: `train_and_evaluate(config, workdir)` trains a GAN into a workdir.

It holds the workdir, resumes its newest checkpoint, and drives the engine's compiled steps
(`engine.advance`, jitted or pmapped) between logs, samples, evaluations and checkpoints. The
updates themselves live in engine.py; config.json in workdir.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from gan_jax import alarm, data, engine, evaluate, losses, parallel, plotting, steps, stream
from gan_jax import hparams as hparams_lib
from gan_jax.checkpoint import Checkpointer
from gan_jax.config import validate
from gan_jax.state import GANState
from gan_jax.text_data import is_text, keep_vocab, load_text, write_samples
from gan_jax.workdir import resolve_config, write_config
from gan_jax.workdir_lock import hold
from gan_jax.writers import MetricWriter


def check_finite(metrics: dict, state: GANState, step: int) -> None:
    """Raises FloatingPointError naming the step and the player whose numbers went bad."""
    bad = [name for name, value in metrics.items() if not jnp.all(jnp.isfinite(value))]
    for player in ("d", "g"):
        params = getattr(state, player).params
        if not all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree.leaves(params)):
            bad.append(f"{player} params")
    if bad:
        players = sorted({"D" if b.startswith("d") else "G" for b in bad})
        raise FloatingPointError(
            f"training went non-finite at step {step}: {', '.join(bad)} (player"
            f" {' and '.join(players)}); lower the learning rate or add a penalty"
        )


def elapsed(start: float) -> float:
    """Seconds since `start` (a `time.perf_counter()` reading), rounded to milliseconds."""
    return round(time.perf_counter() - start, 3)


# ----------------------------------------------------------------------------- host loop

SAMPLES_SEED = 12345  # fixed latent codes, so sample grids are comparable across steps


def save_samples(config, state: GANState, workdir: str, step: int) -> str:
    """Writes `samples/step_<N>.png`: an image grid, or for toy data samples over D's output;
    for text `samples/step_<N>.txt`, 100 samples decoded by the workdir's vocabulary."""
    key = jax.random.PRNGKey(SAMPLES_SEED)
    name = config.data.name
    if is_text(name):
        z = steps.sample_z(key, 100, config.model.z_dim, config.model.z_dist)
        return write_samples(workdir, step, np.asarray(_generate(state, z)))
    path = os.path.join(workdir, "samples", f"step_{step}.png")
    num = config.train.num_samples if name in data.TOY_DATASETS else 100
    z = steps.sample_z(key, num, config.model.z_dim, config.model.z_dist)
    x = np.asarray(_generate(state, z))
    if name in data.TOY_DATASETS:
        real = np.asarray(data.sample_toy(name, jax.random.fold_in(key, 1), num))
        lo, hi = plotting_bounds(real, x)
        title = f"{name}, step {step}"
        # D(x) as the loss defines it: a probability for the sigmoid losses, else D's raw value.
        d_output = losses.from_config(config.loss).d_output
        d_label = "D(x)" if config.loss.name in losses.SIGMOID_LOSSES else "D(x), raw"
        if x.shape[1] == 2:
            xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], 100), np.linspace(lo[1], hi[1], 100))
            grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
            d_out = np.asarray(d_output(_discriminate(state, grid))).reshape(xs.shape)
            plotting.save_scatter_2d(path, x, real, (xs, ys), d_out, title, d_label)
        else:
            grid = np.linspace(lo[0], hi[0], 400, dtype=np.float32)[:, None]
            d_out = np.asarray(d_output(_discriminate(state, grid)))
            plotting.save_density_1d(path, x[:, 0], real[:, 0], grid[:, 0], d_out, title, d_label)
    else:
        images = (x + 1.0) / 2.0 if config.data.scale == "symmetric" else x
        plotting.save_image_grid(path, images, columns=10)
    return path


@jax.jit
def _generate(state, z):
    return steps.generate(state, z)


@jax.jit
def _discriminate(state, x):
    return steps.discriminate(state, x)


def plotting_bounds(*arrays, margin: float = 0.25):
    """(low, high) per coordinate of 2-D points [N, 2] from all `arrays`: their 0.5th to
    99.5th percentiles widened by `margin` of the span on each side, so a few far-off samples
    do not shrink the picture."""
    points = np.concatenate([np.asarray(a) for a in arrays])
    lo, hi = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    span = np.maximum(hi - lo, 1e-3)
    return lo - margin * span, hi + margin * span


def load_data(config, placement: str = "device"):
    """The dataset, checked against the batch size before any compile: the in-device
    data.Dataset (None for toy data), or with `placement='host'` the set to stream
    (stream.HostImages; see stream.resolve_placement)."""
    if placement == "host":
        dataset = stream.load_host_images(config.data)
    else:
        dataset = data.load_dataset(config.data)
    if dataset is not None and config.train.batch_size > dataset.x.shape[0]:
        raise ValueError(
            f"config.train.batch_size = {config.train.batch_size} is larger than the dataset"
            f" ({dataset.x.shape[0]} examples); expected at most {dataset.x.shape[0]}"
        )
    return dataset


class StopRequested:
    """Turns SIGINT/SIGTERM into a flag checked between dispatches, so the state is never
    caught half-donated and the loop can save a checkpoint before exiting."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave the default behaviour
                pass
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Watch:
    """The collapse alarm of one run (gan_jax/alarm.py): at each log it adds the sample
    statistics when due and `alarm` when `alarm.check` finds a reason to the logged record,
    and logs the reason at the first log of each stretch of alarmed logs."""

    def __init__(self, config, dataset):
        self.config = config
        self.dataset = dataset
        self.tracker = alarm.Tracker(config)
        self.reference = None  # built at the first statistics: a short run never pays for it

    def update(self, state, host: dict, step: int, previous_step: int) -> str | None:
        """Adds the sample statistics (when due) and any alarm reason for `step` to the logged
        record `host`; returns the reason, or None."""
        a = self.config.alarm
        if a.action == "off":
            return None
        if alarm.stats_due(step, previous_step, a.every):
            self.reference = self.reference or alarm.Reference(self.config, self.dataset)
            r = self.reference
            stats = alarm.sample_stats(
                state, r.z_NxZ, r.real_spread, r.classifier_params, value_range=r.value_range
            )
            host.update(jax.device_get(stats))
        reason, starts = self.tracker.observe({"step": step, **host})
        if reason:
            host["alarm"] = reason
        if starts:
            logging.warning("collapse alarm at step %d: %s", step, reason)
        return reason


def restore_or_init(compiled: engine.Steps, checkpointer: Checkpointer, config, hparams, dataset):
    """The newest checkpoint's state, or a fresh one from `config.seed`. The optimizers'
    injected hyperparameters are rewritten from `hparams` before every update, so on resume the
    config (maybe overridden) decides them, not the checkpoint."""
    fresh = compiled.init(jax.random.PRNGKey(config.seed), hparams, dataset)
    if checkpointer.latest_step() is None:
        return fresh
    state = checkpointer.restore(fresh)
    logging.warning("resumed from the checkpoint at step %d", int(state.step))
    return engine.with_hyperparams(state, hparams, compiled.spec)


def make_evaluator(config):
    """A function state -> metrics for `config.eval`, its reference data loaded now (so a data
    error stops the run before training); None when training computes no metrics."""
    if not config.eval.every:
        return None
    names = evaluate.check_metrics(config, config.eval.metrics)
    inputs = evaluate.reference_inputs(config, None)
    return lambda state: evaluate.evaluate_state(
        config, state, names, config.eval.num_samples, inputs
    )


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str, override_config: bool = False
) -> GANState:
    """Trains from the config (resuming from the newest checkpoint in `workdir`), writing
    config.json, metrics.jsonl, TensorBoard files, samples and checkpoints.

    The run holds the workdir (see `workdir_lock`; in a multi-host run, process 0 holds it).

    Raises:
      ValueError: a bad config value, before anything is loaded or compiled.
      WorkdirBusyError: another live run holds `workdir`.
      FloatingPointError: losses or params went non-finite.
      alarm.CollapseAlarmError: the collapse alarm fired with config.alarm.action='stop' (the
        checkpoint at that step is saved).
    """
    validate(config)
    primary = jax.process_index() == 0  # one process writes files in a multi-host run
    with hold(workdir, "train") if primary else contextlib.nullcontext():
        return run_in_workdir(config, workdir, override_config, primary)


def run_in_workdir(config, workdir: str, override_config: bool, primary: bool) -> GANState:
    """The body of `train_and_evaluate`, run while the workdir is held."""
    config = resolve_config(config, workdir, override_config)
    validate(config)
    if config.eval.every:
        evaluate.check_metrics(config, config.eval.metrics)  # before any data or compile
    dataset = load_data(config, stream.resolve_placement(config))
    streamed = isinstance(dataset, stream.HostImages)
    if primary and is_text(config.data.name):  # before any compile: a changed vocabulary stops
        keep_vocab(workdir, load_text(config.data).vocab)
    size = None if dataset is None else dataset.x.shape[0]
    hparams = hparams_lib.from_config(config)
    if config.parallel == "pmap":
        parallel.check_batch_divides(config.train.batch_size)
        compiled = parallel.pmap_steps(engine.make_spec(config, size, axis_name=parallel.AXIS))
        to_devices, one_copy = parallel.replicate, parallel.unreplicate
    else:
        compiled = engine.jit_steps(engine.make_spec(config, size))
        to_devices = one_copy = lambda tree: tree
        hparams = jax.device_put(hparams)  # once, not at every dispatch
    t = config.train
    checkpointer = Checkpointer(
        os.path.join(workdir, "checkpoints"), keep=t.keep_checkpoints, primary=primary
    )
    on_device = None if streamed else dataset
    state = to_devices(restore_or_init(compiled, checkpointer, config, hparams, on_device))
    step = checked = int(one_copy(state).step)
    if t.scan_steps and step % t.scan_steps:
        raise ValueError(
            f"config.train.scan_steps = {t.scan_steps} is not allowed for the checkpoint at step"
            f" {step} in {workdir}; expected a divisor of {step} (the run dispatches whole chunks)"
        )
    if streamed:  # from the restored position on
        feed = stream.HostStream(dataset, compiled.spec, one_copy(state), t.num_steps)
    else:
        feed = dataset = to_devices(dataset)
    if primary:
        write_config(config, workdir)
    evaluator = make_evaluator(config) if primary else None
    watch = Watch(config, dataset if streamed else one_copy(dataset))
    writer = MetricWriter(workdir, t.num_steps, initial_step=step, enabled=primary)
    start = time.perf_counter()
    try:
        with StopRequested() as stop:
            while step < t.num_steps and not stop.requested:
                num = min(t.log_every - step % t.log_every, t.num_steps - step)
                state, metrics = engine.advance(compiled, state, feed, hparams, num)
                step += num
                writer.advance(num)
                if step % t.log_every == 0 or step == t.num_steps:
                    host = jax.device_get(one_copy(metrics))
                    check_finite(host, one_copy(state), step)
                    checked = step
                    if evaluator and step % config.eval.every == 0:
                        host.update(evaluator(one_copy(state)))
                    reason = watch.update(one_copy(state), host, step, step - num)
                    writer.write(step, {**host, "seconds": elapsed(start)})
                    if reason and config.alarm.action == "stop":
                        checkpointer.save(one_copy(state))
                        raise alarm.CollapseAlarmError(
                            f"collapse alarm at step {step}: {reason}; the checkpoint at step"
                            f" {step} is saved in {checkpointer.directory}"
                        )
                    if t.checkpoint_every and step % t.checkpoint_every == 0:
                        checkpointer.save(one_copy(state))
                if (
                    primary
                    and t.sample_every
                    and (step % t.sample_every == 0 or step == t.num_steps)
                ):
                    save_samples(config, one_copy(state), workdir, step)
            if stop.requested:
                logging.warning("stop requested: saving a checkpoint at step %d", step)
        if checked != step:  # stopped between log steps: never save a non-finite state
            check_finite(jax.device_get(one_copy(metrics)), one_copy(state), step)
        checkpointer.save(one_copy(state))
    finally:
        writer.close()
        checkpointer.close()
    return one_copy(state)
