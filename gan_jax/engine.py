"""The training engine: named, pure, top-level step functions of (state, dataset, hparams).

Every function takes the static `spec` (spec.Spec: what shapes the program) as a keyword and the
numbers as `hparams` (hparams.Hparams: arrays), so one compiled program serves any learning rate
or penalty weight, and `jax.vmap` over stacked Hparams trains many GANs at once.

- `d_update` / `g_update`: one D or G update (steps.d_batch + steps.d_step, steps.g_step);
- `iteration`: `spec.d_steps` D updates then one G update;
- `run_chunk`: `spec.scan_steps` iterations in one `lax.scan` (what the host loop dispatches);
- `make_train(config)`: a pure `train(rng, hparams, dataset=None)` running the whole run, for
  `jax.jit(jax.vmap(train, in_axes=(0, 0, None)))` over seeds and hyperparameters.

The host loop (train.py) calls `advance`, which dispatches the `jit_steps` (or, for pmap,
`parallel.pmap_steps`) of these functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import ml_collections

from gan_jax import averaging, data, models, optim, steps, stream
from gan_jax.hparams import Hparams
from gan_jax.spec import Spec, make_spec
from gan_jax.state import GANState, init_state

# A D with a data-dependent init (e.g. dense_nets.ImprovedGANMNISTDiscriminator(data_init=True))
# is initialised on the first this many training examples, as openai/improved-gan's
# `init_param(trainx[:500])`.
DATA_INIT_EXAMPLES = 500


def init(rng, hparams: Hparams, dataset=None, *, spec: Spec) -> GANState:
    """A fresh state from `rng`; with `spec.output_bias_from_data`, G's output bias is set from
    the data's pixel marginals (Goodfellow et al. 2014's pylearn2 init); a D with `data_init`
    is initialised on the first DATA_INIT_EXAMPLES training examples. The optimizers'
    injected hyperparameters are those of update 0."""
    g_tx, d_tx = optim.make_optimizer(spec.g_opt), optim.make_optimizer(spec.d_opt)
    d_examples = None
    if getattr(spec.discriminator, "data_init", False):
        d_examples = dataset.x[:DATA_INIT_EXAMPLES]
    state = init_state(
        rng, spec.generator, spec.discriminator, g_tx, d_tx, spec.z_dim, spec.data_shape, d_examples
    )
    if spec.output_bias_from_data:
        bias = models.sigmoid_bias_from_marginals(dataset.x)
        state = state.replace(
            g=state.g.replace(params=models.with_output_bias(state.g.params, bias))
        )
    history = spec.historical_averaging
    state = state.replace(
        g=averaging.init(state.g, history in ("g", "both"), ema=False),
        d=averaging.init(state.d, history in ("d", "both"), ema=spec.d_ema),
    )
    return with_hyperparams(state, hparams, spec)


def with_hyperparams(state: GANState, hparams: Hparams, spec: Spec) -> GANState:
    """`state` with its optimizers' injected hyperparameters those `hparams` give at the
    players' current update counts (the values the next updates will use)."""

    def refresh(player, opt_spec, opt_hp):
        hyper = optim.hyperparams_at(opt_spec, opt_hp, player.opt_state.count)
        hyper = {**player.opt_state.hyperparams, **hyper}  # optax's own defaults (eps) stay
        return player.replace(opt_state=player.opt_state._replace(hyperparams=hyper))

    return state.replace(
        g=refresh(state.g, spec.g_opt, hparams.g), d=refresh(state.d, spec.d_opt, hparams.d)
    )


def d_update(state: GANState, dataset, hparams: Hparams, *, spec: Spec):
    """One D update: real batch `state.d_updates` (steps.d_batch), then steps.d_step."""
    return steps.d_step(state, steps.d_batch(state, dataset, spec=spec), hparams, spec=spec)


def g_update(state: GANState, dataset, hparams: Hparams, *, spec: Spec):
    """One G update: steps.g_step, with real batch `state.step` of G's own stream
    (steps.g_batch) when feature matching needs real data."""
    batch = None
    if spec.g_objective == "feature_matching":
        batch = steps.g_batch(state, dataset, spec=spec)
    return steps.g_step(state, batch, hparams, spec=spec)


def first(tree):
    """Each leaf's first entry along its leading axis."""
    return jax.tree.map(lambda a: a[0], tree)


def iteration(state: GANState, dataset, hparams: Hparams, *, spec: Spec):
    """`spec.d_steps` D updates, then one G update; the last D update's metrics and G's. With
    `spec.update_rule == 'simultaneous'`, one D and one G update from one shared sample
    (steps.simultaneous_step). `dataset` is the in-device `data.Dataset` (or None for toys),
    or one iteration's streamed rows (`data.StreamedChunk`, `d` leading [d_steps])."""
    streamed = isinstance(dataset, data.StreamedChunk)
    d_rows, g_data = (dataset.d, dataset.g) if streamed else (None, dataset)
    if spec.update_rule == "simultaneous":
        batch = steps.d_batch(state, first(d_rows) if streamed else dataset, spec=spec)
        return steps.simultaneous_step(state, batch, hparams, spec=spec)
    if spec.d_steps == 1:
        state, d_metrics = d_update(
            state, first(d_rows) if streamed else dataset, hparams, spec=spec
        )
    else:
        # Streamed, D update k of the iteration takes its rows as the scan's xs.
        state, d_metrics = jax.lax.scan(
            lambda s, rows: d_update(s, rows if streamed else dataset, hparams, spec=spec),
            state,
            d_rows,
            length=spec.d_steps,
        )
        d_metrics = jax.tree.map(lambda m: m[-1], d_metrics)
    state, g_metrics = g_update(state, g_data, hparams, spec=spec)
    return state, {**d_metrics, **g_metrics}


def run_iterations(state: GANState, dataset, hparams: Hparams, *, spec: Spec, num_iterations: int):
    """`num_iterations` iterations in one lax.scan; metrics of every iteration, stacked."""
    return jax.lax.scan(
        lambda s, _: iteration(s, dataset, hparams, spec=spec), state, None, length=num_iterations
    )


def run_chunk(state: GANState, dataset, hparams: Hparams, *, spec: Spec, num_iterations: int):
    """Like `run_iterations`, returning only the last iteration's metrics (what is logged).
    The others are never computed: on the 2014 MNIST nets they cost ~10% of the time.

    Streamed data (`data.StreamedChunk`, leading axis [num_iterations]) is the scan's xs:
    iteration t takes the rows the host read for it, with no host round trip in between."""
    streamed = isinstance(dataset, data.StreamedChunk)
    if num_iterations > 1:
        head = jax.tree.map(lambda a: a[:-1], dataset) if streamed else None
        state, _ = jax.lax.scan(
            lambda s, rows: (
                iteration(s, rows if streamed else dataset, hparams, spec=spec)[0],
                None,
            ),
            state,
            head,
            length=num_iterations - 1,
        )
    last = jax.tree.map(lambda a: a[-1], dataset) if streamed else dataset
    return iteration(state, last, hparams, spec=spec)


def member_axes(state: GANState) -> GANState:
    """vmap in/out axes for a state stacked over sweep members: 0 on every leaf but the update
    counters, which all members share (they advance in lockstep). Kept unbatched, the counter
    that decides a lazy penalty leaves its lax.cond a cond (a batched one makes it a select
    that computes the penalty on every update)."""
    axes = jax.tree.map(lambda _: 0, state)
    return axes.replace(step=None, d_updates=None)


def make_train(config: ml_collections.ConfigDict, dataset_size: int | None = None):
    """A pure `train(rng, hparams, dataset=None) -> (state, metrics)` running `train.num_steps`
    iterations of `config`'s program; metrics are stacked per iteration.

    Everything is a function of the key and the Hparams (hparams.from_config(config) for the
    config's own numbers), so `jax.jit(jax.vmap(train, in_axes=(0, 0, None)))(rngs, stacked)`
    trains one GAN per member, each with its own seed and numbers, in one program.

    Raises ValueError for a bad config value (before any compile).
    """
    spec = make_spec(config, dataset_size)
    num_steps = config.train.num_steps

    def train(rng, hparams: Hparams, dataset=None):
        state = init(rng, hparams, dataset, spec=spec)
        return run_iterations(state, dataset, hparams, spec=spec, num_iterations=num_steps)

    return train


# ----------------------------------------------------------------------------- dispatch


class Steps(NamedTuple):
    """The compiled entry points of one spec (`jit_steps` or `parallel.pmap_steps`); the state
    buffers are donated to each update."""

    spec: Spec
    init: Callable  # (rng, hparams, dataset) -> GANState
    d_update: Callable  # (state, dataset, hparams) -> (state, metrics)
    g_update: Callable  # (state, dataset, hparams) -> (state, metrics)
    run_chunk: Callable  # (state, dataset, hparams) -> (state, metrics): scan_steps iterations


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


@functools.cache
def jit_steps(spec: Spec) -> Steps:
    """The jitted entry points of `spec` on one device (cached: one compile per spec)."""
    return Steps(
        spec=spec,
        init=jax.jit(functools.partial(init, spec=spec)),
        d_update=jit_step(functools.partial(d_update, spec=spec), donate_argnums=0),
        g_update=jit_step(functools.partial(g_update, spec=spec), donate_argnums=0),
        run_chunk=jit_step(
            functools.partial(run_chunk, spec=spec, num_iterations=spec.scan_steps or 1),
            donate_argnums=0,
        ),
    )


def advance(compiled: Steps, state: GANState, dataset, hparams: Hparams, num_iterations: int):
    """Runs `num_iterations` iterations: whole chunks of `spec.scan_steps` iterations, or with
    scan_steps 0 one dispatch per update (per iteration for the simultaneous rule); returns the
    last iteration's metrics as device arrays (no transfer to the host). With a
    `stream.HostStream` for `dataset`, every dispatch is a chunk (of `spec.scan_steps or 1`
    iterations) whose rows the stream read ahead."""
    spec = compiled.spec
    if isinstance(dataset, stream.HostStream):
        metrics = None
        for _ in range(num_iterations // dataset.iterations_per_chunk):
            state, metrics = compiled.run_chunk(state, dataset.next_chunk(), hparams)
            dataset.prefetch()  # the next chunk's transfer overlaps this one's compute
        return state, metrics
    if spec.scan_steps or spec.update_rule == "simultaneous":  # one dispatch per iteration
        metrics = None
        for _ in range(num_iterations // (spec.scan_steps or 1)):
            state, metrics = compiled.run_chunk(state, dataset, hparams)
        return state, metrics
    for _ in range(num_iterations):
        for _ in range(spec.d_steps):
            state, d_metrics = compiled.d_update(state, dataset, hparams)
        state, g_metrics = compiled.g_update(state, dataset, hparams)
    return state, {**d_metrics, **g_metrics}
