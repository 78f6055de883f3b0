"""Sweeps: many GANs trained at once, one per member, in as few compiled programs as possible.

`run_sweep(config, grid, num_seeds, workdir)` trains one member per (grid point, seed): the grid
is {config key: list of values} (an experiment file's `get_sweep()` and the command line's
`--sweep key=v1,v2,...`), the members its product times `num_seeds` seeds. Member seeds are
`config.seed + s` for s in 0..num_seeds-1, so a member with seed s is the solo run
`gan-jax train` would make with `--config.seed=<config.seed + s>` and the member's values.

Members that differ only in numbers (`SWEEPABLE`, the fields `hparams.from_config` reads) and
seed form one group: their numbers travel as stacked `Hparams` arrays and the group runs as one
program, `jax.jit(jax.vmap(engine.run_chunk))` (a member alone on its device: its unbatched
program), its member axis split over the devices `member_devices` picks from every device of
every process, each device running its own members (`jax.shard_map`: no collective in the step)
(PureJaxRL's vmap-over-hyperparameters pattern; big_vision's `get_sweep`), all of them in one
vmapped call or N at a time (`member_loop`): `config.train.member_batch = N`, or by default
one at a time on CPUs and all at once on accelerators (`members_per_call`).
Members that differ in what shapes the program (a net, the loss, the batch size; or a number
that changes the Spec, like a clip bound of 0) go to other groups, compiled and trained one
after another (`sweep_grid.group_members`); the log and sweep.json say so.

The host loop stops at log steps only: one device-to-host transfer per log step carries every
member's metrics and finite flags. A member whose losses or params went non-finite is restored
to its state at the previous log step and kept there (marked failed, with the step and player);
the other members are untouched. In a multi-host run (`jax.distributed`) every process runs the
same loop on its share of the members and process 0 writes every file.
"""

from __future__ import annotations

import contextlib
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
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from gan_jax import alarm, engine, train, workdir_lock, writers
from gan_jax import hparams as hparams_lib
from gan_jax.checkpoint import Checkpointer
from gan_jax.config import validate
from gan_jax.spec import Spec, make_spec
from gan_jax.state import GANState
from gan_jax.sweep_grid import (  # noqa: F401  (re-exported: the sweep's public names)
    SWEEPABLE,
    Member,
    build_members,
    command_grid,
    group_members,
    make_grid,
    shared_values,
)
from gan_jax.sweep_outputs import (
    MemberWriters,
    check_same_sweep,
    eval_plan,
    evaluate_member,
    member_dir,  # noqa: F401  (re-exported: where member i's workdir is)
    read_status,
    write_group_outputs,
    write_status,
    write_sweep_results,
)

AXIS = "members"


def member_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process) named 'members'."""
    return Mesh(np.array(devices or jax.devices()), (AXIS,))


def member_devices(num_members: int, devices=None) -> list:
    """The devices a group of `num_members` runs on: of `devices` (default: every device of
    every process), the fewest that give each device as few members as all of them would
    (ceil(K / d) smallest), so that K = 1 runs on one device rather than computing padding
    copies on the others. A multi-host run keeps every device, so that every process holds
    members."""
    devices = list(devices or jax.devices())
    if jax.process_count() > 1:
        return devices
    most = -(-num_members // len(devices))  # members per device with every device in use
    return devices[: -(-num_members // most)]


def padded_count(num_members: int, num_devices: int) -> int:
    """The smallest multiple of `num_devices` >= `num_members`."""
    return -(-num_members // num_devices) * num_devices


def state_shardings(axes: GANState, like: GANState, mesh: Mesh):
    """NamedShardings of a stacked state: the member axis split over the mesh, the shared
    counters (axis None in `axes`) replicated; None where the state `like` holds None (a
    Player's absent averages, whose axis is None too)."""
    return jax.tree.map(
        lambda spec: NamedSharding(mesh, spec),
        state_specs(axes, like),
        is_leaf=lambda x: isinstance(x, P),
    )


def state_specs(axes: GANState, like: GANState):
    """The PartitionSpecs of `state_shardings` (what shard_map takes)."""
    return jax.tree.map(
        lambda a, x: None if x is None else (P() if a is None else P(AXIS)),
        axes,
        like,
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


def member_loop(chunk: Callable, axes: GANState, member_batch: int) -> Callable:
    """`chunk(state, dataset, hparams) -> (state, metrics)` of one member, made to run a
    device's stacked members `member_batch` at a time, one batch after another
    (`jax.lax.map`; a batch of one runs `chunk` unbatched, as a solo run does). The shared
    counters (axis None in `axes`) advance alike for every member, so the first member's are
    kept. Why: `members_per_call` (on CPUs, XLA ran sweeps one member at a time at least as
    fast as vmapped)."""

    def is_axis(a):  # None marks a shared counter or a Player's absent field: a leaf
        return a is None

    def split(state):
        own = jax.tree.map(lambda a, x: None if a is None else x, axes, state, is_leaf=is_axis)
        shared = jax.tree.map(lambda a, x: x if a is None else None, axes, state, is_leaf=is_axis)
        return own, shared

    def join(own, shared):
        return jax.tree.map(
            lambda a, o, s: s if a is None else o, axes, own, shared, is_leaf=is_axis
        )

    def looped(state, dataset, hparams_K):
        own_K, shared = split(state)

        def one_member(args):
            own, hparams = args
            state, metrics = chunk(join(own, shared), dataset, hparams)
            return *split(state), metrics

        batch = None if member_batch == 1 else member_batch
        own_K, shared_K, metrics_K = jax.lax.map(one_member, (own_K, hparams_K), batch_size=batch)
        return join(own_K, jax.tree.map(lambda x: x[0], shared_K)), metrics_K

    return looped


def members_per_call(member_batch: int, mesh: Mesh) -> int:
    """How many of a device's members one call of the sweep step computes, for
    config.train.member_batch = `member_batch` on `mesh`'s devices: N >= 1 is kept (N at
    least the device's member count: all of them); 0 is the platform's choice: 1 on CPUs, 0
    (all of them, vmapped) on GPUs and TPUs. Raises ValueError for N < 0.
    Why: on CPUs, XLA never ran a sweep slower one member at a time, and often faster (README,
    Sweeps: the 2014 nets and the ring demo on the 2-core AMD and Intel VMs); an accelerator
    needs the batch to fill it."""
    if member_batch < 0:
        raise ValueError(f"member_batch {member_batch}: expected a number >= 0")
    if member_batch:
        return member_batch
    return 1 if mesh.devices.flat[0].platform == "cpu" else 0


def call_size(member_batch: int, mesh: Mesh, num_members: int) -> int:
    """How many members one call computes on each of `mesh`'s devices when a group of
    `num_members` members (before padding) runs with config.train.member_batch
    `member_batch` (`members_per_call`)."""
    per_device = padded_count(num_members, mesh.devices.size) // mesh.devices.size
    call = members_per_call(member_batch, mesh)
    return call if 1 <= call < per_device else per_device


def compile_program(
    spec: Spec, hparams_example, dataset, mesh: Mesh, member_batch: int = 0
) -> Program:
    """The jitted, vmapped and sharded steps of a sweep of `spec` over `mesh`'s devices.

    `hparams_example` is one member's Hparams (for the state's shapes). Every member's init
    key is `jax.random.PRNGKey(member seed)`, as in a solo run (train.restore_or_init).
    `member_batch` (config.train.member_batch; 0: `members_per_call`'s platform choice): N >= 1
    runs a device's members N at a time, one batch after another (`member_loop`), and all of
    them in one vmapped call when N is at least their count or the choice is 0."""
    member_batch = members_per_call(member_batch, mesh)
    shapes = jax.eval_shape(
        functools.partial(engine.init, spec=spec),
        jax.random.PRNGKey(0),
        hparams_example,
        dataset,
    )
    axes = engine.member_axes(shapes)
    shardings = state_shardings(axes, shapes, mesh)
    members = NamedSharding(mesh, P(AXIS))

    def init(seeds_K, hparams_K, dataset):
        keys_K = jax.vmap(jax.random.PRNGKey)(seeds_K)
        return jax.vmap(
            functools.partial(engine.init, spec=spec), in_axes=(0, 0, None), out_axes=axes
        )(keys_K, hparams_K, dataset)

    one_chunk = functools.partial(engine.run_chunk, spec=spec, num_iterations=spec.scan_steps or 1)
    vmapped_chunk = jax.vmap(one_chunk, in_axes=(axes, None, 0), out_axes=(axes, 0))

    looped_chunk = member_loop(one_chunk, axes, member_batch)

    def device_chunk(state, dataset, hparams_K):
        if 1 <= member_batch < state.rng.shape[0]:
            return looped_chunk(state, dataset, hparams_K)
        if state.rng.shape[0] > 1:
            return vmapped_chunk(state, dataset, hparams_K)
        # One member on the device: the solo program's computation, unbatched (vmap over one
        # member left copies and slices of its size-1 axis: 10% of the 2014 nets' speed at
        # K = 2 on 2 devices).
        state, metrics = one_chunk(
            member_state(state, axes, 0), dataset, jax.tree.map(lambda x: x[0], hparams_K)
        )
        expand = functools.partial(jnp.expand_dims, axis=0)
        state = jax.tree.map(
            lambda a, x: x if a is None else expand(x), axes, state, is_leaf=lambda a: a is None
        )
        return state, jax.tree.map(expand, metrics)

    # Each device runs its own members (shard_map): the members share nothing, and under
    # jit's automatic partitioning a vmapped while_loop (data.shuffled_index's cycle walk)
    # took an all-reduce over every device of the mesh at each of its iterations, so all
    # devices waited for one another several times per step.
    specs = state_specs(axes, shapes)
    chunk = jax.shard_map(
        device_chunk,
        mesh=mesh,
        in_specs=(specs, P(), P(AXIS)),
        out_specs=(specs, P(AXIS)),
        check_vma=False,  # the shared counters advance alike on every device
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
    """Member `index` of a stacked state (numpy leaves on the host, or traced arrays)."""
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
    """Trains every member of the sweep into `workdir` (held with workdir_lock), group by group,
    each group resuming the newest stacked checkpoint in DIR/groups/<g>/checkpoints; returns
    the members with their status and group.

    Args:
      config: the base config (validated here).
      grid: {config key: list of values (strings or Python values)}; see
        sweep_grid.parse_value for the types each key takes.
      num_seeds: seeds per grid point: config.seed + 0..num_seeds-1.
      workdir: the sweep's directory (see the README's Sweeps section for what it holds).
      devices: the devices the member axis is sharded over (default: `member_devices` of
        `jax.devices()`, every device of every process, for each group).

    Raises:
      ValueError: a bad key, value or seed count, before any data is loaded or anything
        compiled.
      WorkdirBusyError: another live run holds `workdir`.
    """
    validate(config)
    grid = make_grid(config, grid)
    members = build_members(config, grid, num_seeds)
    plan = eval_plan(config)  # a bad metric or missing reference data stops here
    datasets = _DataCache()
    groups = group_members(members, datasets.size)
    primary = jax.process_index() == 0
    with workdir_lock.hold(workdir, "sweep") if primary else contextlib.nullcontext():
        return _run_held(grid, num_seeds, members, groups, datasets, workdir, devices, plan)


class _DataCache:
    """Each distinct data config's dataset, loaded once (groups may share it)."""

    def __init__(self):
        self._loaded = {}

    def get(self, config):
        """The in-device dataset of a member's config: sweeps do not stream (data.placement
        'auto' keeps the set on the device here; 'host' raises ValueError)."""
        if config.data.get("placement", "auto") == "host":
            raise ValueError(
                "config.data.placement = 'host' is not allowed in a sweep; expected 'device' or"
                " 'auto' (the members share one in-device training set)"
            )
        key = json.dumps(config.data.to_dict(), sort_keys=True, default=repr)
        if key not in self._loaded:
            self._loaded[key] = train.load_data(config)
        return self._loaded[key]

    def size(self, config) -> int | None:
        dataset = self.get(config)
        return None if dataset is None else dataset.x.shape[0]


def to_global(tree, sharding):
    """Host values (equal on every process) as global arrays laid out by `sharding` (one for
    every leaf, or a tree of them); each process places only its own devices' slices, so this
    works across hosts."""

    def put(x, leaf_sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, leaf_sharding, lambda index: x[index])

    if isinstance(sharding, NamedSharding):
        return jax.tree.map(lambda x: put(x, sharding), tree)
    return jax.tree.map(put, tree, sharding)


def to_host(tree):
    """Global arrays as numpy on every process (an all-gather across hosts: every process must
    call it at the same point of the loop)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def group_dir(workdir: str, group: int) -> str:
    """WORKDIR/groups/<group>: one compiled group's stacked checkpoints."""
    return os.path.join(workdir, "groups", str(group))


def _run_held(grid, num_seeds, members, groups, datasets, workdir, devices, plan):
    primary = jax.process_index() == 0
    meshes = [member_mesh(devices or member_devices(len(group))) for group in groups]
    record = {
        "grid": grid,
        "seeds": num_seeds,
        "members": [
            {
                "index": m.index,
                "point": m.point,
                "seed": m.seed,
                "group": m.group,
                "values": m.values,
            }
            for m in members
        ],
        "groups": [
            {
                "members": [m.index for m in group],
                "values": shared_values(group),
                "devices": [str(d) for d in mesh.devices.flat],
                "padded_members": padded_count(len(group), mesh.devices.size),
                "member_batch": call_size(group[0].config.train.member_batch, mesh, len(group)),
            }
            for group, mesh in zip(groups, meshes, strict=True)
        ],
        "processes": jax.process_count(),
    }
    check_same_sweep(workdir, record)
    if primary:
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "sweep.json"), "w") as f:
            json.dump(record, f, indent=2)
    logging.warning(
        "sweep: %d members (%d grid points x %d seeds) in %d group(s), one compiled program"
        " each, over up to %d device(s) of %d process(es)",
        len(members),
        len({m.point for m in members}),
        num_seeds,
        len(groups),
        max(mesh.devices.size for mesh in meshes),
        jax.process_count(),
    )
    final: dict = {}  # member index -> its metrics at its last finite log step
    evals: dict = {}  # member index -> its eval metrics at the end
    total = sum(group[0].config.train.num_steps for group in groups)
    progress = tqdm(total=total, unit="it", disable=None if primary else True, dynamic_ncols=True)
    try:
        with train.StopRequested() as stop:
            for g, group in enumerate(groups):
                if stop.requested:
                    for m in group:
                        m.status = "not run (the sweep was stopped)"
                    continue
                logging.warning(
                    "sweep group %d: members %s %s, %d member(s) per call of a device's step",
                    g,
                    [m.index for m in group],
                    shared_values(group),
                    call_size(group[0].config.train.member_batch, meshes[g], len(group)),
                )
                dataset = datasets.get(group[0].config)
                mesh = meshes[g]
                _run_group(group, dataset, mesh, g, workdir, plan, final, evals, progress, stop)
        if stop.requested:
            logging.warning("sweep stopped by a signal: run the same command again to resume")
        if primary:
            write_sweep_results(workdir, grid, members, final, evals)
    finally:
        progress.close()
    return members


class MemberWatch:
    """The collapse alarm (gan_jax/alarm.py) of one group's members: their sample statistics
    in one jitted call over the stacked state when due, and each member's `alarm.Tracker`."""

    def __init__(self, config, dataset, axes):
        self.config = config
        self.dataset = dataset  # on the host: the reference rows are drawn from it once
        self.axes = axes
        self.trackers: dict[int, alarm.Tracker] = {}
        self.reference = self.stats_fn = None  # built when first due

    def stats(self, state, step: int, previous_step: int) -> dict:
        """{name: [K] numpy} of every member, or {} when not due (every process calls it)."""
        a = self.config.alarm
        if a.action == "off" or not alarm.stats_due(step, previous_step, a.every):
            return {}
        if self.reference is None:
            self.reference = alarm.Reference(self.config, self.dataset)
            self.stats_fn = alarm.member_stats(self.axes, self.config.data.scale)
        r = self.reference
        return to_host(self.stats_fn(state, r.z_NxZ, r.real_spread, r.classifier_params))

    def check(self, member: Member, step: int, record: dict) -> str | None:
        """`alarm.check` of the member's history with `record` (its log at `step`) added; logs a
        reason at the first log of each stretch of alarmed logs."""
        if self.config.alarm.action == "off":
            return None
        tracker = self.trackers.setdefault(member.index, alarm.Tracker(member.config))
        reason, starts = tracker.observe({"step": step, **record})
        if starts:
            logging.warning(
                "sweep member %d: collapse alarm at step %d: %s", member.index, step, reason
            )
        return reason


def _run_group(group, dataset, mesh, g, workdir, plan, final, evals, progress, stop) -> None:
    """Trains one group's members as one program (see the module docstring), writing their
    metrics, checkpoints and member workdirs; `final` gets each ok member's last metrics and
    `evals` their eval metrics (`plan`) at the end. Stops at the next log step once
    `stop.requested` (train.StopRequested), saving a checkpoint."""
    primary = jax.process_index() == 0
    config = group[0].config
    size = None if dataset is None else dataset.x.shape[0]
    spec = make_spec(config, size)
    padded = padded_count(len(group), mesh.devices.size)
    # Padding members copy the group's first member (its seed and numbers); their results are
    # dropped.
    order = list(range(len(group))) + [0] * (padded - len(group))
    hparams_all = [hparams_lib.from_config(m.config) for m in group]
    program = compile_program(spec, hparams_all[0], dataset, mesh, config.train.member_batch)
    watch = MemberWatch(config, dataset, program.axes)
    hparams_K = to_global(hparams_lib.stack([hparams_all[i] for i in order]), program.members)
    seeds_K = to_global(np.array([group[i].seed for i in order], np.int32), program.members)
    dataset = to_global(dataset, program.replicated)
    t = config.train
    directory = group_dir(workdir, g)
    checkpointer = Checkpointer(
        os.path.join(directory, "checkpoints"), keep=t.keep_checkpoints, primary=primary
    )
    state = program.init(seeds_K, hparams_K, dataset)
    step = 0
    if checkpointer.latest_step() is not None:
        state = to_global(checkpointer.restore(to_host(state)), program.shardings)
        step = int(to_host(state.step))
        by_index = {m.index: m for m in group}
        for index, saved in read_status(directory, step).items():
            by_index[index].status = saved["status"]
            if saved["final"]:
                final[index] = saved["final"]
        logging.warning("sweep group %d: resumed from the checkpoint at step %d", g, step)
    progress.update(step)
    member_writers = MemberWriters(workdir, [m.index for m in group], step, enabled=primary)
    failed_K = np.array([group[i].status != "ok" for i in order])
    good = program.copy(state)
    chunk = spec.scan_steps or 1
    start = time.perf_counter()
    evaluated, last_eval_step = {}, None

    def save():
        host = to_host(state)  # every process joins the gather; process 0 writes
        if primary:
            # The status first: a process killed between the two leaves a status without its
            # checkpoint (harmless), never a checkpoint without its status (a resumed sweep
            # would take its failed members for ok ones).
            write_status(directory, step, group, final, [*checkpointer.all_steps(), step])
        checkpointer.save(host)
        return host

    try:
        while step < t.num_steps and not stop.requested:
            num = min(t.log_every - step % t.log_every, t.num_steps - step)
            for _ in range(num // chunk):
                state, metrics = program.run_chunk(state, dataset, hparams_K)
            step += num
            progress.update(num)
            host, flags = to_host((metrics, program.finite(state, metrics)))
            stats = watch.stats(state, step, step - num)
            due = plan is not None and config.eval.every and step % config.eval.every == 0
            host_state = to_host(state) if due else None  # every process joins the gather
            if due:
                evaluated, last_eval_step = {}, step  # the members' eval metrics at this step
            stopped = []
            for i, m in enumerate(group):
                if m.status != "ok":
                    continue
                bad = [p.upper() for p in ("d", "g") if not flags[p][i]]
                if bad:
                    m.status = f"failed at step {step} (player {' and '.join(bad)})"
                    failed_K[i] = True
                    logging.warning("sweep member %d: %s", m.index, m.status)
                    continue
                final[m.index] = {k: writers.to_python(v[i]) for k, v in host.items()}
                record = {
                    **final[m.index],
                    **{k: writers.to_python(v[i]) for k, v in stats.items()},
                }
                if due and primary:
                    evaluated[m.index] = evaluate_member(
                        m, member_state(host_state, program.axes, i), plan
                    )
                    record.update(evaluated[m.index])
                reason = watch.check(m, step, record)
                if reason:
                    record["alarm"] = reason
                    if config.alarm.action == "stop":
                        m.status = f"stopped by the collapse alarm at step {step}: {reason}"
                        stopped.append(i)
                record["seconds"] = train.elapsed(start)
                member_writers.write(step, m.index, record)
            state, good = program.settle(to_global(failed_K, program.members), good, state)
            # Frozen from the next log on at this step's state (settled above as good).
            failed_K[stopped] = True
            if t.checkpoint_every and step % t.checkpoint_every == 0:
                save()
        host_state = save()
        if primary:
            position = {m.index: i for i, m in enumerate(group)}
            evals.update(
                write_group_outputs(
                    workdir,
                    group,
                    lambda index: member_state(host_state, program.axes, position[index]),
                    step,
                    plan,
                    member_writers,
                    evaluated if last_eval_step == step else None,
                )
            )
    finally:
        member_writers.close()
        checkpointer.close()
