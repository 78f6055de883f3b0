"""The default config and its validation. Experiments start from `default_config()`.

`validate` runs before anything is loaded or compiled and names each bad value with what is
allowed, so a typo costs a second rather than a compile.
"""

from __future__ import annotations

import numbers

import ml_collections

from gan_jax import data, losses, models, optim, penalties, steps

PARALLEL_MODES = ("none", "pmap")


def optimizer_config(**overrides) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict(
        {
            "name": "adam",
            "lr": 1e-3,
            "b1": 0.5,
            "b2": 0.999,
            "momentum": 0.0,
            "final_momentum": None,
            "momentum_start_epoch": 1,
            "momentum_saturate_epoch": 1,
            "lr_decay": 1.0,
            "min_lr": 0.0,
            "decay": 0.9,
            "eps": 1e-8,
        }
    )
    cfg.update(overrides)
    return cfg


def default_config() -> ml_collections.ConfigDict:
    """The ring-of-8 demo: small MLPs, non-saturating loss, Adam."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = ml_collections.ConfigDict(
        {"name": "ring8", "dir": "", "scale": "unit", "start": 0, "stop": None}
    )
    c.model = ml_collections.ConfigDict(
        {
            "generator": "mlp",
            "discriminator": "mlp",
            "generator_kwargs": {"hidden": (128, 128), "output_activation": "linear"},
            "discriminator_kwargs": {"hidden": (128, 128)},
            "z_dim": 2,
            "z_dist": "normal",
            "output_bias_from_data": False,
        }
    )
    c.loss = ml_collections.ConfigDict(
        {
            "name": "non_saturating",
            "real_label": 1.0,
            "penalty": "none",
            "penalty_weight": 0.0,
            "clip_weights": 0.0,
        }
    )
    c.optim = ml_collections.ConfigDict(
        {"g": optimizer_config(lr=1e-3), "d": optimizer_config(lr=1e-3)}
    )
    c.train = ml_collections.ConfigDict(
        {
            "batch_size": 256,
            "num_steps": 4000,
            "d_steps": 1,
            # Iterations per dispatch: 0 dispatches the jitted D and G steps one by one;
            # N > 0 runs N iterations inside one lax.scan (the same numbers, fewer dispatches).
            "scan_steps": 100,
            "log_every": 100,
            "sample_every": 1000,
            "num_samples": 2500,
            "checkpoint_every": 1000,  # a multiple of log_every; 0 saves only at the end
            "keep_checkpoints": 3,
        }
    )
    c.parallel = "none"
    return c


def _fail(path: str, value, allowed: str):
    raise ValueError(f"config.{path} = {value!r} is not allowed; expected {allowed}")


def _check_choice(path, value, choices):
    if value not in choices:
        _fail(path, value, f"one of {sorted(choices)}")


def _check_positive(path, value, kind=numbers.Real, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, kind):
        _fail(path, value, f"a {'whole' if kind is numbers.Integral else ''} number".strip())
    if value < 0 or (value == 0 and not allow_zero):
        _fail(path, value, "a number >= 0" if allow_zero else "a number > 0")


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first bad value and what is allowed."""
    known = default_config()
    for section in config.keys():
        if section not in known:
            _fail(section, config[section], f"no such key; known keys: {sorted(known.keys())}")
        if isinstance(known[section], ml_collections.ConfigDict):
            for key in config[section].keys():
                if key not in known[section] and section != "optim":
                    _fail(
                        f"{section}.{key}",
                        config[section][key],
                        f"no such key; known keys in {section}: {sorted(known[section].keys())}",
                    )
    _check_choice("data.name", config.data.name, data.DATASETS)
    _check_choice("data.scale", config.data.scale, data.SCALES)
    _check_choice("model.generator", config.model.generator, models.GENERATORS)
    _check_choice("model.discriminator", config.model.discriminator, models.DISCRIMINATORS)
    _check_choice("model.z_dist", config.model.z_dist, steps.Z_DISTRIBUTIONS)
    _check_positive("model.z_dim", config.model.z_dim, numbers.Integral)
    _check_choice("loss.name", config.loss.name, losses.LOSSES)
    _check_choice("loss.penalty", config.loss.penalty, penalties.PENALTIES)
    _check_positive("loss.penalty_weight", config.loss.penalty_weight, allow_zero=True)
    _check_positive("loss.clip_weights", config.loss.clip_weights, allow_zero=True)
    if not 0.0 < config.loss.real_label <= 1.0:
        _fail("loss.real_label", config.loss.real_label, "a number in (0, 1]")
    for player in ("g", "d"):
        opt = config.optim[player]
        _check_choice(f"optim.{player}.name", opt.name, optim.OPTIMIZERS)
        _check_positive(f"optim.{player}.lr", opt.lr)
        _check_positive(f"optim.{player}.lr_decay", opt.lr_decay)
    t = config.train
    for key in ("batch_size", "num_steps", "d_steps", "log_every"):
        _check_positive(f"train.{key}", t[key], numbers.Integral)
    for key in ("scan_steps", "sample_every", "checkpoint_every"):
        _check_positive(f"train.{key}", t[key], numbers.Integral, allow_zero=True)
    if t.scan_steps and t.num_steps % t.scan_steps:
        _fail("train.num_steps", t.num_steps, f"a multiple of train.scan_steps={t.scan_steps}")
    if t.scan_steps and t.log_every % t.scan_steps:
        _fail("train.log_every", t.log_every, f"a multiple of train.scan_steps={t.scan_steps}")
    if t.sample_every and t.scan_steps and t.sample_every % t.scan_steps:
        _fail(
            "train.sample_every", t.sample_every, f"a multiple of train.scan_steps={t.scan_steps}"
        )
    _check_positive("train.keep_checkpoints", t.keep_checkpoints, numbers.Integral)
    if t.checkpoint_every % t.log_every:
        _fail(
            "train.checkpoint_every", t.checkpoint_every, f"a multiple of log_every={t.log_every}"
        )
    _check_choice("parallel", config.parallel, PARALLEL_MODES)
