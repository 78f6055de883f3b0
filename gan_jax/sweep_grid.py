"""What a sweep trains: its grid of config values, its members and the program they share.

A sweep's grid is {config key: list of values} (an experiment file's `get_sweep()`, big_vision
style, and the command line's `--sweep key=v1,v2,...`); its members are the grid's product times
`num_seeds` seeds, each with its own resolved config (`Member`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import math

import ml_collections

from gan_jax.config import validate
from gan_jax.spec import Spec, make_spec

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


@dataclasses.dataclass
class Member:
    """One sweep member: its index, grid point, seed, swept values and resolved config."""

    index: int
    point: int  # index of its grid point (members of one point differ only in seed)
    seed: int
    values: dict
    config: ml_collections.ConfigDict
    status: str = "ok"  # 'ok' or 'failed at step N (player P)'


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
