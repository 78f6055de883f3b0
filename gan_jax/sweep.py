"""Sweeps: many GANs of one compiled program trained at once, one per member, into one workdir.

`run_sweep(config, grid, num_seeds, workdir)` trains one member per (grid point, seed): the grid
is {config key: list of values} (an experiment file's `get_sweep()` and the command line's
`--sweep key=v1,v2,...`), the members its product times `num_seeds` seeds. Member seeds are
`config.seed + s` for s in 0..num_seeds-1, so a member with seed s is the solo run
`gan-jax train` would make with `--config.seed=<config.seed + s>` and the member's values.

Only numeric hyperparameters (`SWEEPABLE`, the fields `hparams.from_config` reads) can be swept:
they travel as stacked `Hparams` arrays, so every member runs in one program,
`jax.jit(jax.vmap(engine.run_chunk))`, with the member axis sharded over all local devices
(PureJaxRL's vmap-over-hyperparameters pattern; big_vision's `get_sweep`). A value that would
change the program (e.g. a clip bound of 0, which turns clipping off) is refused before any
compile, naming the member and the Spec fields it changes.

The host loop stops at log steps only: one device-to-host transfer per log step carries every
member's metrics and finite flags. A member whose losses or params went non-finite is restored
to its state at the previous log step and kept there (marked failed, with the step and player);
the other members are untouched.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from gan_jax import engine, train, workdir_lock, writers
from gan_jax import hparams as hparams_lib
from gan_jax.checkpoint import Checkpointer
from gan_jax.config import validate
from gan_jax.spec import Spec
from gan_jax.state import GANState
from gan_jax.sweep_grid import (  # noqa: F401  (re-exported: the sweep's public names)
    SWEEPABLE,
    Member,
    build_members,
    command_grid,
    common_spec,
    make_grid,
)
from gan_jax.sweep_outputs import (
    append_metrics,
    check_same_sweep,
    member_dir,
    read_status,
    results_rows,
    write_member_outputs,
    write_results,
    write_status,
)

AXIS = "members"


def member_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: all local devices) named 'members'."""
    return Mesh(np.array(devices or jax.local_devices()), (AXIS,))


def padded_count(num_members: int, num_devices: int) -> int:
    """The smallest multiple of `num_devices` >= `num_members`."""
    return -(-num_members // num_devices) * num_devices


def state_shardings(axes: GANState, mesh: Mesh):
    """NamedShardings of a stacked state: the member axis split over the mesh, the shared
    counters (axis None in `axes`) replicated."""
    return jax.tree.map(
        lambda a: NamedSharding(mesh, P() if a is None else P(AXIS)),
        axes,
        is_leaf=lambda a: a is None,
    )


class Program(NamedTuple):
    """The compiled entry points of one sweep: a spec, a mesh, and the stacked state's layout."""

    axes: GANState  # vmap axes of the stacked state (engine.member_axes)
    shardings: GANState  # its NamedShardings (state_shardings)
    members: NamedSharding  # of the stacked Hparams, seeds, metrics and flags
    replicated: NamedSharding  # of the dataset
    init: Callable  # (seeds_K, hparams_K, dataset) -> stacked state
    run_chunk: Callable  # (state, dataset, hparams_K) -> (state, metrics_K); state donated
    finite: Callable  # (state, metrics_K) -> {'d': bool [K], 'g': bool [K]}
    settle: Callable  # (failed_K, good, state) -> (state, copy of it); good and state donated
    copy: Callable  # state -> a copy in new buffers


def _member_leaf_finite(x):
    return jnp.all(jnp.isfinite(x).reshape(x.shape[0], -1), axis=1)


def _all_finite(leaves, num: int):
    flags = [_member_leaf_finite(x) for x in leaves]
    return functools.reduce(jnp.logical_and, flags, jnp.ones((num,), bool))


def compile_program(spec: Spec, hparams_example, dataset, mesh: Mesh) -> Program:
    """The jitted, vmapped and sharded steps of a sweep of `spec` over `mesh`'s devices.

    `hparams_example` is one member's Hparams (for the state's shapes). Every member's init
    key is `jax.random.PRNGKey(member seed)`, as in a solo run (train.restore_or_init)."""
    shapes = jax.eval_shape(
        functools.partial(engine.init, spec=spec),
        jax.random.PRNGKey(0),
        hparams_example,
        dataset,
    )
    axes = engine.member_axes(shapes)
    shardings = state_shardings(axes, mesh)
    members = NamedSharding(mesh, P(AXIS))

    def init(seeds_K, hparams_K, dataset):
        keys_K = jax.vmap(jax.random.PRNGKey)(seeds_K)
        return jax.vmap(
            functools.partial(engine.init, spec=spec), in_axes=(0, 0, None), out_axes=axes
        )(keys_K, hparams_K, dataset)

    chunk = jax.vmap(
        functools.partial(engine.run_chunk, spec=spec, num_iterations=spec.scan_steps or 1),
        in_axes=(axes, None, 0),
        out_axes=(axes, 0),
    )

    def finite(state, metrics):
        num = state.rng.shape[0]
        flags = {}
        for player in ("d", "g"):
            own = [v for k, v in metrics.items() if k.startswith(player)]
            params = jax.tree.leaves(getattr(state, player).params)
            flags[player] = _all_finite(own + params, num)
        return flags

    def settle(failed_K, good, state):
        def pick(axis, g, s):
            if axis is None:
                return s
            return jnp.where(failed_K.reshape((-1,) + (1,) * (s.ndim - 1)), g, s)

        state = jax.tree.map(pick, axes, good, state, is_leaf=lambda a: a is None)
        return state, jax.tree.map(jnp.copy, state)

    return Program(
        axes=axes,
        shardings=shardings,
        members=members,
        replicated=NamedSharding(mesh, P()),
        init=jax.jit(init, out_shardings=shardings),
        run_chunk=engine.jit_step(chunk, donate_argnums=0, out_shardings=(shardings, members)),
        finite=jax.jit(finite),
        settle=jax.jit(settle, donate_argnums=(1, 2), out_shardings=(shardings, shardings)),
        copy=jax.jit(lambda s: jax.tree.map(jnp.copy, s), out_shardings=shardings),
    )


def member_state(host_state: GANState, axes: GANState, index: int) -> GANState:
    """Member `index` of a stacked state (numpy leaves on the host)."""
    return jax.tree.map(
        lambda a, x: x if a is None else x[index], axes, host_state, is_leaf=lambda a: a is None
    )


def run_sweep(
    config: ml_collections.ConfigDict,
    grid: dict,
    num_seeds: int,
    workdir: str,
    devices=None,
) -> list[Member]:
    """Trains every member of the sweep into `workdir` (held with workdir_lock), resuming the
    newest stacked checkpoint in DIR/checkpoints; returns the members with their status.

    Args:
      config: the base config (validated here).
      grid: {config key: list of values (strings or numbers)}; keys must be in SWEEPABLE.
      num_seeds: seeds per grid point: config.seed + 0..num_seeds-1.
      workdir: the sweep's directory (see the README's Sweeps section for what it holds).
      devices: the devices the member axis is sharded over (default: all local devices).

    Raises:
      ValueError: a bad key, value or seed count, or values that need another program; before
        any data is loaded or anything compiled.
      WorkdirBusyError: another live run holds `workdir`.
    """
    validate(config)
    grid = make_grid(config, grid)
    members = build_members(config, grid, num_seeds)
    dataset = train.load_data(config)
    spec = common_spec(members, None if dataset is None else dataset.x.shape[0])
    with workdir_lock.hold(workdir, "sweep"):
        return _run_held(config, grid, num_seeds, members, spec, dataset, workdir, devices)


def _run_held(config, grid, num_seeds, members, spec, dataset, workdir, devices) -> list[Member]:
    mesh = member_mesh(devices)
    num_devices = mesh.devices.size
    padded = padded_count(len(members), num_devices)
    record = {
        "grid": grid,
        "seeds": num_seeds,
        "members": [
            {"index": m.index, "point": m.point, "seed": m.seed, "values": m.values}
            for m in members
        ],
        "groups": [{"members": [m.index for m in members], "programs": 1}],
        "devices": [str(d) for d in mesh.devices.flat],
        "padded_members": padded,
    }
    check_same_sweep(workdir, record)
    # Padding members copy member 0 (its seed and numbers); their results are dropped.
    order = [m.index for m in members] + [0] * (padded - len(members))
    hparams_all = [hparams_lib.from_config(m.config) for m in members]
    program = compile_program(spec, hparams_all[0], dataset, mesh)
    hparams_K = jax.device_put(hparams_lib.stack([hparams_all[i] for i in order]), program.members)
    seeds_K = jax.device_put(np.array([members[i].seed for i in order], np.int32), program.members)
    dataset = jax.device_put(dataset, program.replicated)
    with open(os.path.join(workdir, "sweep.json"), "w") as f:
        json.dump(record, f, indent=2)
    logging.warning(
        "sweep: %d members (%d grid points x %d seeds) in one program over %d device(s),"
        " padded to %d",
        len(members),
        len({m.point for m in members}),
        num_seeds,
        num_devices,
        padded,
    )
    t = config.train
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), keep=t.keep_checkpoints)
    state = program.init(seeds_K, hparams_K, dataset)
    final: dict = {}
    if checkpointer.latest_step() is not None:
        state = jax.device_put(checkpointer.restore(state), program.shardings)
        for index, saved in read_status(workdir, int(state.step)).items():
            members[index].status = saved["status"]
            if saved["final"]:
                final[index] = saved["final"]
        logging.warning("sweep: resumed from the checkpoint at step %d", int(state.step))
    step = int(state.step)
    for m in members:
        path = os.path.join(member_dir(workdir, m.index), "metrics.jsonl")
        if os.path.exists(path):
            writers.drop_rows_after(path, step)
    failed_K = np.array([members[i].status != "ok" for i in order])
    good = program.copy(state)
    chunk = spec.scan_steps or 1
    start = time.perf_counter()
    progress = tqdm(total=t.num_steps, initial=step, unit="it", disable=None, dynamic_ncols=True)
    try:
        with train.StopRequested() as stop:
            while step < t.num_steps and not stop.requested:
                num = min(t.log_every - step % t.log_every, t.num_steps - step)
                for _ in range(num // chunk):
                    state, metrics = program.run_chunk(state, dataset, hparams_K)
                step += num
                progress.update(num)
                host, flags = jax.device_get((metrics, program.finite(state, metrics)))
                for i, m in enumerate(members):
                    if m.status != "ok":
                        continue
                    bad = [p.upper() for p in ("d", "g") if not flags[p][i]]
                    if bad:
                        m.status = f"failed at step {step} (player {' and '.join(bad)})"
                        failed_K[i] = True
                        logging.warning("sweep member %d: %s", i, m.status)
                        continue
                    final[i] = {k: writers.to_python(v[i]) for k, v in host.items()}
                    append_metrics(
                        workdir, i, {"step": step, **final[i], "seconds": train.elapsed(start)}
                    )
                state, good = program.settle(jax.device_put(failed_K, program.members), good, state)
                if t.checkpoint_every and step % t.checkpoint_every == 0:
                    checkpointer.save(state)
                    write_status(workdir, step, members, final, checkpointer.all_steps())
        checkpointer.save(state)
        write_status(workdir, step, members, final, checkpointer.all_steps())
        host_state = jax.device_get(state)
        for m in members:
            write_member_outputs(m, member_state(host_state, program.axes, m.index), workdir, step)
        write_results(workdir, results_rows(members, grid, final))
    finally:
        progress.close()
        checkpointer.close()
    return members
