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

import csv
import dataclasses
import functools
import importlib.util
import itertools
import json
import math
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
from gan_jax.spec import Spec, make_spec
from gan_jax.state import GANState
from gan_jax.workdir import write_config

AXIS = "members"
_OPT_KEYS = (
    "lr",
    "lr_decay",
    "min_lr",
    "b1",
    "b2",
    "momentum",
    "final_momentum",
    "decay",
    "eps",
)
_LOSS_KEYS = (
    "penalty_weight",
    "clip_weights",
    "real_label",
    "lsgan_a",
    "lsgan_b",
    "lsgan_c",
    "aux_weight",
)
# The config keys whose values only change numbers (hparams.from_config reads them).
SWEEPABLE = tuple(f"optim.{p}.{k}" for p in ("g", "d") for k in _OPT_KEYS) + tuple(
    f"loss.{k}" for k in _LOSS_KEYS
)
STATUS_FILE = "members_status.json"  # failed members, saved beside each stacked checkpoint


@dataclasses.dataclass
class Member:
    """One sweep member: its index, grid point, seed, swept values and resolved config."""

    index: int
    point: int  # index of its grid point (members of one point differ only in seed)
    seed: int
    values: dict
    config: ml_collections.ConfigDict
    status: str = "ok"  # 'ok' or 'failed at step N (player P)'


# ----------------------------------------------------------------------------- grid


def experiment_sweep(path: str) -> dict:
    """`get_sweep()` of the experiment file at `path` (FILE[:VARIANT], the variant ignored):
    {config key: list of values}, or {} when the file has none."""
    path = path.partition(":")[0]
    module_spec = importlib.util.spec_from_file_location("experiment_sweep", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    get_sweep = getattr(module, "get_sweep", None)
    return dict(get_sweep()) if get_sweep else {}


def parse_sweep_flag(text: str) -> tuple[str, list[str]]:
    """'key=v1,v2,...' -> (key, ['v1', 'v2', ...]). Raises ValueError naming a malformed flag."""
    key, sep, values = text.partition("=")
    items = [v.strip() for v in values.split(",")]
    if not sep or not key.strip() or not all(items):
        raise ValueError(f"--sweep {text!r} is not KEY=V1,V2,... (e.g. optim.d.lr=1e-4,3e-4)")
    return key.strip(), items


def _lookup(config, key: str):
    node = config
    for name in key.split("."):
        if not hasattr(node, "keys") or name not in node:
            raise ValueError(f"--sweep {key}: not a config key")
        node = node[name]
    return node


def command_grid(config_file: str, sweep_flags: list[str]) -> dict:
    """The grid of `gan-jax sweep`: the experiment file's get_sweep(), with each
    `--sweep KEY=V1,V2,...` flag adding KEY or replacing its values (raw, unparsed)."""
    grid = experiment_sweep(config_file)
    for text in sweep_flags:
        key, values = parse_sweep_flag(text)
        grid[key] = values
    return grid


def parse_value(config, key: str, value):
    """`value` (a string from the command line, or a number from get_sweep) as the type of
    `config`'s field `key`.

    Raises:
      ValueError: `key` is not a config key, or not in SWEEPABLE (it shapes the program), or
        `value` is not a finite number of the field's type.
    """
    current = _lookup(config, key)
    if key not in SWEEPABLE:
        raise ValueError(
            f"--sweep {key}: this key shapes the compiled program (or the host loop), which one"
            f" sweep cannot vary; sweepable keys: {', '.join(SWEEPABLE)}"
        )
    is_int = isinstance(current, int) and not isinstance(current, bool)
    try:
        number = float(value)
        if is_int and number != int(number):
            raise ValueError
        parsed = int(number) if is_int else number
    except (TypeError, ValueError):
        kind = "a whole number" if is_int else "a number"
        raise ValueError(f"--sweep {key}: {value!r} is not {kind}") from None
    if not math.isfinite(parsed):
        raise ValueError(f"--sweep {key}: {value!r} is not a finite number")
    return parsed


def make_grid(config, sweeps: dict) -> dict:
    """{key: [parsed values]} from {key: [raw values]}; raises ValueError naming a bad key,
    value or an empty list (see parse_value)."""
    grid = {}
    for key, values in sweeps.items():
        if not list(values):
            raise ValueError(f"--sweep {key}: no values")
        grid[key] = [parse_value(config, key, v) for v in values]
    return grid


def build_members(config, grid: dict, num_seeds: int) -> list[Member]:
    """The product of the grid's lists times `num_seeds` seeds (grid point major, seed minor),
    each with its resolved config (validated: ValueError names the member)."""
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"--seeds {num_seeds!r} is not allowed; expected a whole number >= 1")
    members = []
    for point, combo in enumerate(itertools.product(*grid.values())):
        values = dict(zip(grid.keys(), combo, strict=True))
        for s in range(num_seeds):
            member_config = config.copy_and_resolve_references()
            for key, value in values.items():
                *parents, leaf = key.split(".")
                node = member_config
                for name in parents:
                    node = node[name]
                node[leaf] = value
            member_config.seed = config.seed + s
            try:
                validate(member_config)
            except ValueError as err:
                raise ValueError(f"sweep member {len(members)} ({values}): {err}") from None
            members.append(Member(len(members), point, member_config.seed, values, member_config))
    return members


def common_spec(members: list[Member], dataset_size: int | None) -> Spec:
    """The one Spec all members share. Raises ValueError naming the first member whose values
    need another program, and the Spec fields they change."""
    spec = make_spec(members[0].config, dataset_size)
    for member in members[1:]:
        other = make_spec(member.config, dataset_size)
        if other != spec:
            fields = [
                f.name
                for f in dataclasses.fields(Spec)
                if getattr(spec, f.name) != getattr(other, f.name)
            ]
            raise ValueError(
                f"sweep member {member.index} ({member.values}) needs another compiled program"
                f" than member 0 ({members[0].values}): it changes {fields}; sweep values that"
                " keep the program (e.g. loss.clip_weights > 0 throughout, not 0)"
            )
    return spec


# ----------------------------------------------------------------------------- devices


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


# ----------------------------------------------------------------------------- outputs


def _summary(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values))


def results_rows(members: list[Member], grid: dict, final: dict) -> list[dict]:
    """One row per member (index, seed, swept values, status, final d_loss/g_loss), then one
    per grid point: the mean and standard deviation (numpy's, ddof 0) over its members that
    did not fail, `seed` giving how many those are."""
    rows = []
    for m in members:
        losses = final.get(m.index, {})
        rows.append(
            {
                "row": f"member {m.index}",
                "seed": m.seed,
                **m.values,
                "status": m.status,
                "d_loss": losses.get("d_loss", float("nan")),
                "g_loss": losses.get("g_loss", float("nan")),
                "d_loss_std": "",
                "g_loss_std": "",
            }
        )
    for point in sorted({m.point for m in members}):
        group = [m for m in members if m.point == point]
        ok = [m for m in group if m.status == "ok"]
        # A member without losses (resumed from a checkpoint whose status was never written,
        # with no step left to run) counts as ok but adds nothing to the mean.
        d_mean, d_std = _summary([final[m.index]["d_loss"] for m in ok if m.index in final])
        g_mean, g_std = _summary([final[m.index]["g_loss"] for m in ok if m.index in final])
        rows.append(
            {
                "row": f"point {point}",
                "seed": f"{len(ok)} of {len(group)} ok",
                **group[0].values,
                "status": "ok" if len(ok) == len(group) else f"{len(group) - len(ok)} failed",
                "d_loss": d_mean,
                "g_loss": g_mean,
                "d_loss_std": d_std,
                "g_loss_std": g_std,
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
    return os.path.join(workdir, "members", str(index))


def write_member_outputs(member: Member, state: GANState, workdir: str, step: int) -> None:
    """DIR/members/<i>/: config.json, a checkpoint of the member's state and its final sample
    grid, so that gan-jax eval/sample/train work on it as on a solo run's workdir."""
    directory = member_dir(workdir, member.index)
    write_config(member.config, directory)
    checkpointer = Checkpointer(
        os.path.join(directory, "checkpoints"), keep=member.config.train.keep_checkpoints
    )
    try:
        checkpointer.save(state)
    finally:
        checkpointer.close()
    train.save_samples(member.config, state, directory, step)


def append_metrics(workdir: str, index: int, record: dict) -> None:
    path = os.path.join(member_dir(workdir, index), "metrics.jsonl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


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
    if not os.path.exists(path) or not os.path.isdir(os.path.join(workdir, "checkpoints")):
        return
    with open(path) as f:
        saved = json.load(f)
    if saved.get("members") != json.loads(json.dumps(record["members"])):
        raise ValueError(
            f"{workdir} holds another sweep (its sweep.json has other members); resume it with"
            " its own grid and seeds, or use another --workdir"
        )


# ----------------------------------------------------------------------------- the sweep


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
