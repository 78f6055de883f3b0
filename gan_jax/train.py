"""Training: the pure per-update functions, `make_train` for sweeps, and the host loop.

Three ways to run the same updates, all giving the same numbers for a config and seed:
- `Trainer.d_update` / `Trainer.g_update`: one jitted dispatch per D and per G update;
- `Trainer.run_iterations`: `scan_steps` whole iterations inside one jitted `lax.scan`;
- `make_train(config)`: a pure `train(rng, dataset)` for `jax.jit(jax.vmap(train))` over seeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import signal
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from gan_jax import data, losses, models, optim, plotting, steps, workdir_lock
from gan_jax.checkpoint import Checkpointer
from gan_jax.config import validate
from gan_jax.state import GANState, init_state
from gan_jax.writers import MetricWriter


@dataclasses.dataclass(frozen=True)
class Trainer:
    """The pure functions of one config (not jitted; see `jitted`)."""

    config: ml_collections.ConfigDict
    init: Callable  # (rng, dataset) -> GANState
    d_update: Callable  # (state, dataset) -> (state, metrics): draws the batch, then d_step
    g_update: Callable  # (state, dataset) -> (state, metrics)
    iteration: Callable  # (state, dataset) -> (state, metrics): d_steps D updates, 1 G update

    def run_iterations(self, state: GANState, dataset, num_iterations: int):
        """`num_iterations` iterations in one lax.scan; metrics of every iteration, stacked."""
        return jax.lax.scan(
            lambda s, _: self.iteration(s, dataset), state, None, length=num_iterations
        )

    def run_chunk(self, state: GANState, dataset, num_iterations: int):
        """Like `run_iterations`, returning only the last iteration's metrics (what is logged).
        The others are never computed: on the 2014 MNIST nets they cost ~10% of the time."""
        if num_iterations > 1:
            state, _ = jax.lax.scan(
                lambda s, _: (self.iteration(s, dataset)[0], None),
                state,
                None,
                length=num_iterations - 1,
            )
        return self.iteration(state, dataset)


def updates_per_epoch(config, dataset_size: int | None) -> int:
    """D updates per pass over the data, which epoch-based schedules count in."""
    epoch_based = [
        f"optim.{player}.final_momentum"
        for player in ("g", "d")
        if config.optim[player].final_momentum not in (None, config.optim[player].momentum)
    ]
    if dataset_size is None and epoch_based and config.data.name not in data.TOY_DATASETS:
        raise ValueError(
            f"{epoch_based[0]} sets a schedule counted in epochs of data.name="
            f"{config.data.name!r}; pass dataset_size (the number of training examples)"
        )
    return max(1, (dataset_size or 0) // config.train.batch_size)


def make_trainer(
    config: ml_collections.ConfigDict,
    dataset_size: int | None = None,
    axis_name: str | None = None,
) -> Trainer:
    """Builds nets, optimizers, losses and the update functions for a validated config.

    With `axis_name`, the updates are meant to run under `jax.pmap` over that axis: each device
    handles its rows of the global batch and gradients are averaged across devices.
    """
    validate(config)
    shape = tuple(data.data_shape(config.data))
    # Batch norm averages its statistics over the pmap axis, like the gradients.
    generator = models.make_generator(config.model, shape, axis_name=axis_name)
    discriminator = models.make_discriminator(config.model, axis_name=axis_name)
    d_tx = optim.make_optimizer(config.optim.d, updates_per_epoch(config, dataset_size))
    g_tx = optim.make_optimizer(
        config.optim.g, updates_per_epoch(config, dataset_size) // config.train.d_steps or 1
    )
    loss = losses.from_config(config.loss)
    common = dict(
        loss=loss,
        batch_size=config.train.batch_size,
        z_dim=config.model.z_dim,
        z_dist=config.model.z_dist,
        conditioning=config.model.conditioning,
        num_classes=config.model.num_classes,
        aux_weight=config.loss.aux_weight,
        axis_name=axis_name,
    )
    d_step = functools.partial(
        steps.d_step,
        penalty=config.loss.penalty,
        penalty_weight=config.loss.penalty_weight,
        penalty_every=config.loss.penalty_every,
        clip_weights=config.loss.clip_weights,
        **common,
    )
    g_step = functools.partial(steps.g_step, **common)

    def init(rng, dataset=None) -> GANState:
        state = init_state(rng, generator, discriminator, g_tx, d_tx, config.model.z_dim, shape)
        if config.model.output_bias_from_data:
            bias = models.sigmoid_bias_from_marginals(dataset.x)
            state = state.replace(
                g=state.g.replace(params=models.with_output_bias(state.g.params, bias))
            )
        return state

    def d_update(state, dataset=None):
        data_key = steps.stream_key(state.rng, steps.DATA_STREAM)
        offset, local = steps.shard(config.train.batch_size, axis_name)
        batch = data.real_batch(
            config.data.name,
            dataset,
            data_key,
            state.d_updates,
            config.train.batch_size,
            rows_b=offset + jnp.arange(local),
        )
        return d_step(state, batch)

    def g_update(state, dataset=None):
        del dataset  # the G losses here need no real data
        return g_step(state)

    def iteration(state, dataset=None):
        if config.train.d_steps == 1:
            state, d_metrics = d_update(state, dataset)
        else:
            state, d_metrics = jax.lax.scan(
                lambda s, _: d_update(s, dataset), state, None, length=config.train.d_steps
            )
            d_metrics = jax.tree.map(lambda m: m[-1], d_metrics)
        state, g_metrics = g_update(state, dataset)
        return state, {**d_metrics, **g_metrics}

    return Trainer(config, init, d_update, g_update, iteration)


def make_train(config: ml_collections.ConfigDict, dataset_size: int | None = None):
    """A pure `train(rng, dataset=None) -> (state, metrics)` running `train.num_steps` iterations.

    Everything is inside one function of the key, so `jax.jit(jax.vmap(train, (0, None)))`
    trains one GAN per seed in parallel; metrics are stacked per iteration.
    """
    trainer = make_trainer(config, dataset_size)

    def train(rng, dataset=None):
        state = trainer.init(rng, dataset)
        return trainer.run_iterations(state, dataset, config.train.num_steps)

    return train


@dataclasses.dataclass(frozen=True)
class JittedTrainer:
    """The compiled entry points of a Trainer; the state buffers are donated to each call."""

    trainer: Trainer
    init: Callable
    d_update: Callable
    g_update: Callable
    run_chunk: Callable  # `scan_steps` iterations in one dispatch


def compiler_options() -> dict:
    """XLA options for the training steps. On CPU, the concurrency-optimised schedule leaves
    room for independent ops (G's samples for the D and the G step, weight and input gradients)
    to run side by side, and copy insertion's region analysis sees that a scanned step may
    update its weights in place, where the default made a copy of the large kernels every
    iteration. Neither touches the arithmetic, so the numbers are the same (tests/train_test.py).
    Measured on the 2014 nets: the schedule within this machine's noise in later paired
    comparisons, the copies' removal +4.5% and +6% (README, Speed)."""
    if jax.default_backend() == "cpu":
        return {
            "xla_cpu_enable_concurrency_optimized_scheduler": True,
            "xla_cpu_copy_insertion_use_region_analysis": True,
        }
    return {}


def jit_step(fn, **kwargs):
    """`jax.jit` with the training steps' compiler options."""
    return jax.jit(fn, compiler_options=compiler_options(), **kwargs)


def jit_trainer(trainer: Trainer) -> JittedTrainer:
    scan_steps = trainer.config.train.scan_steps or 1
    return JittedTrainer(
        trainer=trainer,
        init=jax.jit(trainer.init),
        d_update=jit_step(trainer.d_update, donate_argnums=0),
        g_update=jit_step(trainer.g_update, donate_argnums=0),
        run_chunk=jit_step(
            functools.partial(trainer.run_chunk, num_iterations=scan_steps), donate_argnums=0
        ),
    )


def advance(jitted: JittedTrainer, state: GANState, dataset, num_iterations: int):
    """Runs `num_iterations` iterations by the config's dispatch mode; returns the last
    iteration's metrics as device arrays (no transfer to the host)."""
    config = jitted.trainer.config
    if config.train.scan_steps:
        metrics = None
        for _ in range(num_iterations // config.train.scan_steps):
            state, metrics = jitted.run_chunk(state, dataset)
        return state, metrics
    for _ in range(num_iterations):
        for _ in range(config.train.d_steps):
            state, d_metrics = jitted.d_update(state, dataset)
        state, g_metrics = jitted.g_update(state, dataset)
    return state, {**d_metrics, **g_metrics}


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
    return round(time.perf_counter() - start, 3)


# ----------------------------------------------------------------------------- host loop

SAMPLES_SEED = 12345  # fixed latent codes, so sample grids are comparable across steps


def write_config(config, workdir: str) -> None:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


def save_samples(config, state: GANState, workdir: str, step: int) -> str:
    """Writes `samples/step_<N>.png`: an image grid, or for toy data samples over D's output."""
    path = os.path.join(workdir, "samples", f"step_{step}.png")
    key = jax.random.PRNGKey(SAMPLES_SEED)
    name = config.data.name
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
    points = np.concatenate([np.asarray(a) for a in arrays])
    lo, hi = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    span = np.maximum(hi - lo, 1e-3)
    return lo - margin * span, hi + margin * span


def load_data(config):
    """The dataset (None for toy data), checked against the batch size before any compile."""
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


# Extending a run is the usual reason to resume, and no schedule depends on the total length.
RESUMABLE_CHANGES = ("train.num_steps",)


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def resolve_config(config, workdir: str, override: bool = False):
    """The config to resume with: the workdir's own unless `override`; conflicts are logged."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return config
    with open(path) as f:
        saved = _flatten(json.load(f))
    given = _flatten(json.loads(config.to_json_best_effort()))
    conflicts = {
        key: (saved.get(key), given.get(key))
        for key in sorted(set(saved) | set(given))
        if saved.get(key) != given.get(key) and key not in RESUMABLE_CHANGES
    }
    if not conflicts:
        return config
    listing = "; ".join(f"{k}: workdir {a!r}, given {b!r}" for k, (a, b) in conflicts.items())
    if override:
        logging.warning("--override_config: the given config replaces the workdir's (%s)", listing)
        return config
    logging.warning(
        "the workdir's config.json wins over the given config (%s); pass --override_config to"
        " use the given values",
        listing,
    )
    resolved = config.copy_and_resolve_references()
    with resolved.unlocked():
        for key, (value, _) in conflicts.items():
            current = resolved
            *parents, leaf = key.split(".")
            for parent in parents:
                current = current[parent]
            if isinstance(current.get(leaf), tuple) and isinstance(value, list):
                value = tuple(value)
            current[leaf] = value
    return resolved


def with_config_hyperparams(state: GANState, fresh: GANState) -> GANState:
    """The restored state with the optimizers' injected hyperparameters taken from the config:
    a checkpoint stores them, but on resume the config (maybe overridden) decides."""

    def refresh(player, fresh_player):
        return player.replace(
            opt_state=player.opt_state._replace(hyperparams=fresh_player.opt_state.hyperparams)
        )

    return state.replace(g=refresh(state.g, fresh.g), d=refresh(state.d, fresh.d))


def restore_or_init(jitted: JittedTrainer, checkpointer: Checkpointer, config, dataset):
    fresh = jitted.init(jax.random.PRNGKey(config.seed), dataset)
    if checkpointer.latest_step() is None:
        return fresh
    state = with_config_hyperparams(checkpointer.restore(fresh), fresh)
    logging.warning("resumed from the checkpoint at step %d", int(state.step))
    return state


def make_evaluator(config):
    """A function state -> metrics for `config.eval`, its reference data loaded now (so a data
    error stops the run before training); None when training computes no metrics."""
    if not config.eval.every:
        return None
    from gan_jax import evaluate  # it pulls in the classifier

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
    """
    validate(config)
    primary = jax.process_index() == 0  # one process writes files in a multi-host run
    with workdir_lock.hold(workdir, "train") if primary else contextlib.nullcontext():
        return run_in_workdir(config, workdir, override_config, primary)


def run_in_workdir(config, workdir: str, override_config: bool, primary: bool) -> GANState:
    """The body of `train_and_evaluate`, run while the workdir is held."""
    config = resolve_config(config, workdir, override_config)
    validate(config)
    if config.eval.every:
        from gan_jax import evaluate  # it pulls in the classifier

        evaluate.check_metrics(config, config.eval.metrics)  # before any data or compile
    dataset = load_data(config)
    size = None if dataset is None else dataset.x.shape[0]
    if config.parallel == "pmap":
        from gan_jax import parallel  # parallel builds on this module

        parallel.check_batch_divides(config.train.batch_size)
        jitted = parallel.pmap_trainer(make_trainer(config, size, axis_name=parallel.AXIS))
        to_devices, one_copy = parallel.replicate, parallel.unreplicate
    else:
        jitted = jit_trainer(make_trainer(config, size))
        to_devices = one_copy = lambda tree: tree
    t = config.train
    checkpointer = Checkpointer(
        os.path.join(workdir, "checkpoints"), keep=t.keep_checkpoints, primary=primary
    )
    state = to_devices(restore_or_init(jitted, checkpointer, config, dataset))
    step = checked = int(one_copy(state).step)
    if t.scan_steps and step % t.scan_steps:
        raise ValueError(
            f"config.train.scan_steps = {t.scan_steps} is not allowed for the checkpoint at step"
            f" {step} in {workdir}; expected a divisor of {step} (the run dispatches whole chunks)"
        )
    dataset = to_devices(dataset)
    if primary:
        write_config(config, workdir)
    evaluator = make_evaluator(config) if primary else None
    writer = MetricWriter(workdir, t.num_steps, initial_step=step, enabled=primary)
    start = time.perf_counter()
    try:
        with StopRequested() as stop:
            while step < t.num_steps and not stop.requested:
                num = min(t.log_every - step % t.log_every, t.num_steps - step)
                state, metrics = advance(jitted, state, dataset, num)
                step += num
                writer.advance(num)
                if step % t.log_every == 0 or step == t.num_steps:
                    host = jax.device_get(one_copy(metrics))
                    check_finite(host, one_copy(state), step)
                    checked = step
                    if evaluator and step % config.eval.every == 0:
                        host.update(evaluator(one_copy(state)))
                    writer.write(step, {**host, "seconds": elapsed(start)})
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
