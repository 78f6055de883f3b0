"""What a sweep trains: its grid of config values, its members and the program they share.

A sweep's grid is {config key: list of values} (an experiment file's `get_sweep()`, big_vision
style, and the command line's `--sweep key=v1,v2,...`); its members are the grid's product times
`num_seeds` seeds, each with its own resolved config (`Member`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import math
from collections.abc import Callable

import ml_collections

from gan_jax.config import validate
from gan_jax.spec import make_spec

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
    "eps_root",
)
_LOSS_KEYS = (
    "penalty_weight",
    "clip_weights",
    "real_label",
    "lsgan_a",
    "lsgan_b",
    "lsgan_c",
    "aux_weight",
    "d_objective_scale",
    "historical_averaging_weight",
)
# The config keys whose values only change numbers (hparams.from_config reads them).
SWEEPABLE = (
    tuple(f"optim.{p}.{k}" for p in ("g", "d") for k in _OPT_KEYS)
    + tuple(f"loss.{k}" for k in _LOSS_KEYS)
    + ("train.d_ema_decay",)
)


@dataclasses.dataclass
class Member:
    """One sweep member: its index, grid point, seed, swept values and resolved config."""

    index: int
    point: int  # index of its grid point (members of one point differ only in seed)
    seed: int
    values: dict
    config: ml_collections.ConfigDict
    status: str = "ok"  # 'ok' or 'failed at step N (player P)'
    group: int = 0  # index of its program group (group_members)


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


def _parse_number(key: str, value, is_int: bool):
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


def parse_value(config, key: str, value):
    """`value` (a string from the command line, or a Python value from get_sweep) as the type
    of `config`'s field `key`: a number for numeric fields (and the SWEEPABLE ones, even where
    the config holds None), true/false for booleans, the string itself for strings; tuple and
    list fields take tuples or lists from get_sweep() only (a comma splits the flag's values).

    Raises:
      ValueError: `key` is not a config key, is a group of keys, or is `seed` (members' seeds
        come from --seeds); or `value` does not fit the field's type.
    """
    current = _lookup(config, key)
    if key == "seed":
        raise ValueError("--sweep seed: members' seeds come from --seeds S (config.seed + 0..S-1)")
    if isinstance(current, ml_collections.ConfigDict):
        raise ValueError(f"--sweep {key}: a group of keys ({', '.join(current)}); sweep its keys")
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ValueError(f"--sweep {key}: {value!r} is not true or false")
    if isinstance(current, int | float) or key in SWEEPABLE:
        return _parse_number(key, value, isinstance(current, int))
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ValueError(f"--sweep {key}: {value!r} is not a string")
        return value
    if isinstance(current, tuple | list):
        if not isinstance(value, tuple | list):
            raise ValueError(
                f"--sweep {key}: {value!r} is not a {type(current).__name__}; give this key's"
                " values as Python tuples or lists in the experiment file's get_sweep()"
            )
        return type(current)(value)
    return value


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
            member_config.seed = config.seed + s
            try:
                for key, value in values.items():
                    *parents, leaf = key.split(".")
                    node = member_config
                    for name in parents:
                        node = node[name]
                    node[leaf] = value
                validate(member_config)
            except (TypeError, ValueError) as err:  # ml_collections raises TypeError
                raise ValueError(f"sweep member {len(members)} ({values}): {err}") from None
            members.append(Member(len(members), point, member_config.seed, values, member_config))
    return members


def program_key(config: ml_collections.ConfigDict) -> str:
    """The config without its numbers (SWEEPABLE) and seed, as sorted JSON: members with equal
    keys differ only in Hparams and seed (the Spec may still differ; see group_members)."""
    flat = {}

    def walk(node, prefix):
        for name, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{name}.")
            elif f"{prefix}{name}" not in SWEEPABLE and f"{prefix}{name}" != "seed":
                flat[f"{prefix}{name}"] = value

    walk(config.to_dict(), "")
    return json.dumps(flat, sort_keys=True, default=repr)


def group_members(
    members: list[Member], dataset_size: Callable[[ml_collections.ConfigDict], int | None]
) -> list[list[Member]]:
    """The members split into groups that share one compiled program and host loop: equal
    `program_key` and equal Spec (a number can change the Spec, e.g. a clip bound of 0 turns
    clipping off). Groups are in the order of their first member; each member's `group` is
    set. `dataset_size(config)` gives the training-set size the Spec's epoch schedules need."""
    groups: dict = {}
    for member in members:
        config = member.config
        key = (program_key(config), make_spec(config, dataset_size(config)))
        groups.setdefault(key, []).append(member)
    for g, group in enumerate(groups.values()):
        for member in group:
            member.group = g
    return list(groups.values())


def shared_values(group: list[Member]) -> dict:
    """The swept values all members of `group` share (what sets the group apart)."""
    first = group[0].values
    return {k: v for k, v in first.items() if all(m.values[k] == v for m in group)}
