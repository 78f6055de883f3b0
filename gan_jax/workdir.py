"""A training workdir's config.json: the one writer, the one reader, and resume's resolution.

`read_config` is the only code that reads config.json: training (on resume), evaluation and
sampling all see the same config, today's defaults filled in for keys added since the run.
"""

from __future__ import annotations

import json
import os

import ml_collections
from absl import logging

from gan_jax.config import default_config

CONFIG_FILE = "config.json"
# Extending a run is the usual reason to resume, and no schedule depends on the total length.
# Where the training set lives changes no number (a streamed run equals an in-device one), so a
# run may resume on a machine with less device memory, and workdirs from before these keys
# resume with the given ones. Only a sweep reads train.member_batch, so a member's workdir
# continued alone by `gan-jax train` takes the given value without a warning.
RESUMABLE_CHANGES = (
    "train.num_steps",
    "data.placement",
    "data.device_bytes",
    "train.member_batch",
)


def write_config(config, workdir: str) -> None:
    """Writes `workdir/config.json` (creating the workdir)."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
        f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _merge(defaults: dict, saved: dict) -> dict:
    """`saved` over `defaults`; keys added to the defaults since the run keep their defaults."""
    merged = dict(defaults)
    for key, value in saved.items():
        if (
            isinstance(value, dict)
            and isinstance(defaults.get(key), dict)
            and key[-7:] != "_kwargs"
        ):
            merged[key] = _merge(defaults[key], value)
        else:
            merged[key] = value
    return merged


def read_config(workdir: str) -> ml_collections.ConfigDict | None:
    """The config a workdir was trained with (config.json over today's defaults, JSON lists as
    tuples), or None when the workdir has no config.json."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        saved = json.load(f)
    return ml_collections.ConfigDict(_tuples(_merge(default_config().to_dict(), saved)))


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _flat_json(config) -> dict:
    return _flatten(json.loads(config.to_json_best_effort()))


def resolve_config(config, workdir: str, override: bool = False):
    """The config to resume with: the workdir's own unless `override`; conflicts are logged."""
    saved_config = read_config(workdir)
    if saved_config is None:
        return config
    saved, given = _flat_json(saved_config), _flat_json(config)
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
