"""The default config and its validation. Experiments start from `default_config()`.

`validate` runs before anything is loaded or compiled and names each bad value with what is
allowed, so a typo costs a second rather than a compile.

Optional fields (`data.stop`, `optim.*.final_momentum`) default to a typed placeholder: None
until set, and of a known type, so `--config.data.stop=5000` parses (ml_collections cannot parse
an override of a field whose default is a bare None).
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import os

import ml_collections
from ml_collections.config_dict import placeholder

from gan_jax import (
    data,
    image_prep,
    image_sets,
    losses,
    models,
    net_parts,
    optim,
    penalties,
    text_data,
)

PARALLEL_MODES = ("none", "pmap")
UPDATE_RULES = ("alternating", "simultaneous")  # train.update_rule
G_OBJECTIVES = ("adversarial", "feature_matching")  # loss.g_objective
HISTORICAL_AVERAGING = ("none", "d", "g", "both")  # loss.historical_averaging
ALARM_ACTIONS = ("off", "warn", "stop")  # alarm.action; see gan_jax/alarm.py


def optimizer_config(**overrides) -> ml_collections.ConfigDict:
    """One player's optimizer config (`optim.g` or `optim.d`): Adam(1e-3, 0.5, 0.999) unless
    `overrides` set other fields (name: adam, sgd, rmsprop; the SGD schedule's momentum and
    lr_decay follow goodfeli/adversarial's mnist.yaml; see gan_jax/optim.py)."""
    cfg = ml_collections.ConfigDict(
        {
            "name": "adam",
            "lr": 1e-3,
            "b1": 0.5,
            "b2": 0.999,
            "momentum": 0.0,
            "final_momentum": placeholder(float),  # None: momentum stays constant
            "momentum_start_epoch": 1,
            "momentum_saturate_epoch": 1,
            "lr_decay": 1.0,
            "min_lr": 0.0,
            "decay": 0.9,
            # Adam and RMSProp: eps is added outside the square root of the second moment,
            # eps_root inside it (Adam only; the 2016 authors' Adam: eps 0, eps_root 1e-8).
            "eps": 1e-8,
            "eps_root": 0.0,
        }
    )
    cfg.update(overrides)
    return cfg


def default_config() -> ml_collections.ConfigDict:
    """The ring-of-8 demo: small MLPs, non-saturating loss, Adam."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = ml_collections.ConfigDict(
        {
            # A toy, 'mnist', 'stacked_mnist', an image set from files ('idx', 'folder' or
            # 'npz', read from `dir`), or 'tfds:<name>'; see gan_jax/image_sets.py.
            "name": "ring8",
            "dir": "",
            "scale": "unit",
            "start": 0,
            "stop": placeholder(int),  # None: to the end
            "stacked_size": 60_000,  # Stacked MNIST images built from MNIST[start:stop]
            "image_size": placeholder(int),  # S: center crop to a square, resize to S x S
            "channels": placeholder(int),  # 1 or 3 (converted); None: as stored
            "flip": False,  # random horizontal flips of each drawn batch
            "cache_dir": "",  # decoded image sets, encoded text; "": data_cache.default_cache_dir()
            # Where the training set lives: 'device' (batched inside the compiled step), 'host'
            # (rows streamed from host memory into each scan chunk: gan_jax/stream.py) or
            # 'auto': 'host' when the set as float32 would exceed device_bytes.
            "placement": "auto",
            "device_bytes": 2 * 2**30,
            # > 0: semi-supervised (Salimans et al. 2016, Sec. 5): this many labelled examples
            # per class, drawn by the run's key, train D's class logits (a D with
            # discriminator_kwargs.num_classes); every example is used unlabelled.
            "labels_per_class": 0,
            # Text ('text' reads the file or folder `dir`; 'tfds:lm1b'): see text_data.py.
            "seq_len": 32,  # L characters per example (the paper's 32)
            "text_mode": "lines",  # 'lines': one example per line; 'windows': cut into L
            "vocab_size": 2048,  # at most this many token ids (the authors' max_vocab_size)
            "heldout_fraction": 0.1,  # examples held out as the n-gram metrics' reference
        }
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
            # 'none'; 'concat': G(z, y) and D(x, y) (Mirza & Osindero 2014); 'acgan': G(z, y)
            # and a D with num_classes class logits (Odena et al. 2017). Labels: data.CLASSES.
            "conditioning": "none",
            "num_classes": 0,
            "spectral_norm": False,  # D's layers spectrally normalised (Miyato et al. 2018)
        }
    )
    c.loss = ml_collections.ConfigDict(
        {
            "name": "non_saturating",
            "real_label": 1.0,
            "penalty": "none",
            "penalty_weight": 0.0,
            # Lazy regularisation (StyleGAN2): the penalty on every N-th D update, times N.
            "penalty_every": 1,
            "clip_weights": 0.0,
            # LSGAN's coding (Mao et al. 2017, eq. 2): D's targets a (fake) and b (real), G's c.
            "lsgan_a": 0.0,
            "lsgan_b": 1.0,
            "lsgan_c": 1.0,
            "aux_weight": 1.0,  # AC-GAN: weight of the class cross-entropy for D and G
            # D's GAN objective times this (1: the paper's V; goodfeli/adversarial's
            # AdversaryCost2 uses 0.5 (CE_real + CE_fake), i.e. 0.5).
            "d_objective_scale": 1.0,
            # G's objective: 'adversarial' (loss.name's G loss) or 'feature_matching' (Salimans
            # et al. 2016, Sec. 3.1) on D's hidden layer `feature_layer` (-1: the last).
            "g_objective": "adversarial",
            "feature_layer": -1,
            # 'sum': the paper's squared L2 norm; 'mean': divided by the feature count, as the
            # authors' code (which matters under Adam only through its epsilon).
            "feature_matching_reduction": "sum",
            # Historical averaging (Salimans et al. 2016, Sec. 3.3) for 'none', 'd', 'g' or
            # 'both': weight x ||theta - the mean of theta's past values||^2.
            "historical_averaging": "none",
            "historical_averaging_weight": 0.0,
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
            # 'alternating': Algorithm 1 of Goodfellow et al. 2014 (d_steps D updates, then one
            # G update, each on its own samples); 'simultaneous': the authors' code (one shared
            # sample; D's and G's gradients both at the current params, applied together).
            "update_rule": "alternating",
            # Iterations per dispatch: 0 dispatches the jitted D and G steps one by one;
            # N > 0 runs N iterations inside one lax.scan (the same numbers, fewer dispatches).
            "scan_steps": 100,
            "log_every": 100,
            "sample_every": 1000,
            "num_samples": 2500,
            "checkpoint_every": 1000,  # a multiple of log_every; 0 saves only at the end
            "keep_checkpoints": 3,
            # > 0: keep an exponential moving average of D's params with this decay (the
            # authors' semi-supervised code: 0.9999), for evaluating D as a classifier.
            "d_ema_decay": 0.0,
            # gan-jax sweep only: how many of a device's members one call computes. N: N at
            # a time, one batch after another (jax.lax.map; N at least their count: all of
            # them, vmapped). 0: 1 on CPUs, where XLA never ran a sweep slower one member at
            # a time and often faster, and all of them on GPUs and TPUs (sweep.members_per_call;
            # README, Sweeps). Each step's numbers are the same to float rounding.
            "member_batch": 0,
        }
    )
    c.parallel = "none"
    # Metrics of gan_jax.metrics computed during training into metrics.jsonl (0: never).
    c.eval = ml_collections.ConfigDict({"every": 0, "metrics": "", "num_samples": 2500})
    c.alarm = alarm_config()
    return c


def alarm_config(**overrides) -> ml_collections.ConfigDict:
    """The collapse alarm (gan_jax/alarm.py). A threshold of 0 turns its test off. The
    defaults flag the collapsed seeds of experiments/gan2014_collapse.py and none of its
    healthy ones (README, "Collapse alarm")."""
    cfg = ml_collections.ConfigDict(
        {
            "action": "warn",  # 'off', 'warn' (log and metrics.jsonl) or 'stop' (also end it)
            "d_fake_below": 1e-3,  # D wins: mean D(G(z)) below this ...
            "g_grad_norm_below": 0.0,  # ... or G's gradient norm below this ...
            "consecutive": 3,  # ... at this many logs in a row
            "every": 1000,  # steps between sample statistics (0: never compute them)
            "num_samples": 256,  # G's samples (and real examples) of the statistics
            "diversity_below": 0.1,  # mode collapse: samples' spread / data's below this ...
            "classes_below": 2,  # ... or fewer classifier classes than this (MNIST)
        }
    )
    cfg.update(overrides)
    return cfg


def load_experiment_file(path: str, variant: str = ""):
    """The config of an experiment file, `get_config(variant)` when a variant is given: what
    `--config FILE[:VARIANT]` loads."""
    spec = importlib.util.spec_from_file_location(os.path.basename(path).removesuffix(".py"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant) if variant else module.get_config()


def _fail(path: str, value, allowed: str, given: str = ""):
    """Raises the one error message of validation; `given` names the other value it clashes with."""
    clash = f" with {given}" if given else ""
    raise ValueError(f"config.{path} = {value!r} is not allowed{clash}; expected {allowed}")


def _check_choice(path, value, choices):
    if value not in choices:
        _fail(path, value, f"one of {sorted(choices)}")


def _check_positive(path, value, kind=numbers.Real, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, kind):
        _fail(path, value, f"a {'whole' if kind is numbers.Integral else ''} number".strip())
    if value < 0 or (value == 0 and not allow_zero):
        _fail(path, value, "a number >= 0" if allow_zero else "a number > 0")


def _check_bool(path, value):
    if not isinstance(value, bool):
        _fail(path, value, "True or False")


def _validate_post_2014(config) -> None:
    """The loss, penalty and architecture options after 2014: LSGAN coding, lazy penalties,
    conditioning, spectral norm, conv nets."""
    loss, model = config.loss, config.model
    if loss.real_label != 1.0 and loss.name not in losses.SIGMOID_LOSSES:
        _fail(
            "loss.real_label",
            loss.real_label,
            f"1.0 with loss.name={loss.name!r} (label smoothing needs one of"
            f" {list(losses.SIGMOID_LOSSES)})",
        )
    for key in ("lsgan_a", "lsgan_b", "lsgan_c"):
        if isinstance(loss[key], bool) or not isinstance(loss[key], numbers.Real):
            _fail(f"loss.{key}", loss[key], "a number")
    if loss.lsgan_a == loss.lsgan_b:
        _fail("loss.lsgan_b", loss.lsgan_b, f"a number other than loss.lsgan_a={loss.lsgan_a}")
    _check_positive("loss.penalty_every", loss.penalty_every, numbers.Integral)
    _check_positive("loss.aux_weight", loss.aux_weight, allow_zero=True)
    _check_positive("data.stacked_size", config.data.stacked_size, numbers.Integral)
    _check_choice("model.conditioning", model.conditioning, models.CONDITIONING)
    _check_positive("model.num_classes", model.num_classes, numbers.Integral, allow_zero=True)
    if model.conditioning != "none":
        classes = data.num_classes(config.data)
        if classes is None:
            _fail(
                "model.conditioning",
                model.conditioning,
                f"'none' for data.name={config.data.name!r}, which has no labels (labelled:"
                f" {sorted(data.CLASSES)}, a folder with class subfolders, an npz with y, IDX"
                " files with labels, a TFDS set with a 'label' feature)",
            )
        if model.num_classes != classes:
            _fail(
                "model.num_classes",
                model.num_classes,
                f"{classes}, the number of classes of data.name={config.data.name!r}",
            )
    _check_bool("model.spectral_norm", model.spectral_norm)
    if model.spectral_norm and model.discriminator not in models.SPECTRAL_NORM_DISCRIMINATORS:
        _fail(
            "model.spectral_norm",
            True,
            f"False for model.discriminator={model.discriminator!r} (spectral norm is an option"
            f" of {list(models.SPECTRAL_NORM_DISCRIMINATORS)})",
        )
    if model.conditioning == "acgan" and model.discriminator not in models.AUX_DISCRIMINATORS:
        _fail(
            "model.discriminator",
            model.discriminator,
            f"one of {list(models.AUX_DISCRIMINATORS)} with model.conditioning='acgan' (they"
            " have AC-GAN's class head)",
        )
    if config.data.name in data.TOY_DATASETS:
        for player in ("generator", "discriminator"):
            if model[player] in models.CONV_NETS:
                _fail(
                    f"model.{player}",
                    model[player],
                    f"a net for vectors (not {list(models.CONV_NETS)}) for data.name="
                    f"{config.data.name!r}",
                )
    for player, nets in (
        ("generator", models.GENERATORS),
        ("discriminator", models.DISCRIMINATORS),
    ):
        allowed = models.net_options(nets[model[player]])
        for key, value in model[f"{player}_kwargs"].items():
            if key not in allowed:
                _fail(f"model.{player}_kwargs.{key}", value, f"an option of {allowed}")
    activation = output_activation(model)
    _check_choice(
        "model.generator_kwargs.output_activation", activation, net_parts.OUTPUT_ACTIVATIONS
    )


def _validate_improved_techniques(config) -> None:
    """Salimans et al. 2016's options: feature matching, historical averaging, the D average,
    and the semi-supervised setting (labelled examples for a D with class logits)."""
    loss, model = config.loss, config.model
    _check_choice("loss.g_objective", loss.g_objective, G_OBJECTIVES)
    _check_choice(
        "loss.feature_matching_reduction",
        loss.get("feature_matching_reduction", "sum"),
        losses.FEATURE_MATCHING_REDUCTIONS,
    )
    if isinstance(loss.feature_layer, bool) or not isinstance(loss.feature_layer, int):
        _fail(
            "loss.feature_layer", loss.feature_layer, "a whole number (-1: D's last hidden layer)"
        )
    _check_choice("loss.historical_averaging", loss.historical_averaging, HISTORICAL_AVERAGING)
    _check_positive(
        "loss.historical_averaging_weight", loss.historical_averaging_weight, allow_zero=True
    )
    decay = config.train.d_ema_decay
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0 <= decay < 1:
        _fail("train.d_ema_decay", decay, "a number in [0, 1) (0: no average)")
    per_class = config.data.labels_per_class
    _check_positive("data.labels_per_class", per_class, numbers.Integral, allow_zero=True)
    d_classes = model.discriminator_kwargs.get("num_classes", 0)
    if d_classes and model.conditioning != "none":
        _fail(
            "model.discriminator_kwargs.num_classes",
            d_classes,
            f"0 with model.conditioning={model.conditioning!r} (a semi-supervised D's class"
            " logits are for an unconditional G)",
        )
    if not per_class:
        return
    classes = data.num_classes(config.data)
    if classes is None:
        _fail(
            "data.labels_per_class",
            per_class,
            f"0 for data.name={config.data.name!r}, which has no labels",
        )
    if d_classes != classes:
        nets = [
            n for n, c in models.DISCRIMINATORS.items() if "num_classes" in c.__dataclass_fields__
        ]
        _fail(
            "model.discriminator_kwargs.num_classes",
            d_classes,
            f"{classes}, the classes of data.name={config.data.name!r}, with"
            f" data.labels_per_class={per_class} (a D with class logits: {nets})",
        )


def output_activation(model_config) -> str:
    """The name of G's last activation (a key of net_parts.OUTPUT_ACTIVATIONS): the
    `output_activation` G's kwargs set, else the net's default for it, else the fixed one of a
    net without the option (the 2014 G's sigmoid). Raises KeyError for a generator name not in
    models.GENERATORS (validate names that first)."""
    name = model_config.generator
    if name in models.FIXED_OUTPUT_ACTIVATIONS:
        return models.FIXED_OUTPUT_ACTIVATIONS[name]
    default = models.GENERATORS[name].__dataclass_fields__["output_activation"].default
    return model_config.generator_kwargs.get("output_activation", default)


def _interval(lo_hi) -> str:
    lo, hi = lo_hi
    return f"{'(' if math.isinf(lo) else '['}{lo:g}, {hi:g}{')' if math.isinf(hi) else ']'}"


def _suits(g_range, data_range) -> bool:
    """Whether G's outputs in `g_range` suit data in `data_range`: G reaches every data value,
    and each bounded end of G's range is the data's end. A bound beyond the data's (tanh for
    [0, 1] pixels) puts the data's edge, MNIST's background 0, mid-range where G cannot rest,
    and gives G values the data never has, which D learns to spot at once."""
    (g_lo, g_hi), (d_lo, d_hi) = g_range, data_range
    return (g_lo == d_lo or g_lo == -math.inf) and (g_hi == d_hi or g_hi == math.inf)


def _validate_output_range(config) -> None:
    """G's output activation against the data's range: sigmoid for pixels in [0, 1] (Goodfellow
    et al. 2014's MNIST G), tanh for [-1, 1] (Radford et al. 2016, Sec. 3), linear for anything
    (the toy data's Gaussian samples). Blames data.scale for images, G's activation otherwise."""
    model, d = config.model, config.data
    activation = output_activation(model)
    g_range = net_parts.OUTPUT_RANGES[activation]
    toy = d.name in data.TOY_DATASETS
    data_range = data.TOY_RANGE if toy else data.SCALE_RANGES[d.scale]
    if _suits(g_range, data_range):
        return
    # softmax is the text G's own (over each position's vocabulary), no option for images.
    suiting = [
        a for a, r in net_parts.OUTPUT_RANGES.items() if _suits(r, data_range) and a != "softmax"
    ]
    other_g = f"a G output activation for data in {_interval(data_range)}: {suiting}"
    g_range_text = f"range {_interval(g_range)}"
    if model.generator in models.FIXED_OUTPUT_ACTIVATIONS:
        nets = sorted(set(models.GENERATORS) - set(models.FIXED_OUTPUT_ACTIVATIONS))
        other_g += f" (an option of model.generator in {nets})"
        g_path, g_value = "model.generator", model.generator
        g_given = (
            f"model.generator={model.generator!r} (a fixed {activation} output, {g_range_text})"
        )
    else:
        g_path, g_value = "model.generator_kwargs.output_activation", activation
        if "output_activation" not in model.generator_kwargs:
            g_range_text = f"the default of model.generator={model.generator!r}, {g_range_text}"
        g_given = f"{g_path}={activation!r} ({g_range_text})"
    if toy:
        given = f"data.name={d.name!r} (Gaussian samples, range {_interval(data_range)})"
        _fail(g_path, g_value, other_g, given)
    scales = [s for s, r in data.SCALE_RANGES.items() if _suits(g_range, r)]
    scale_text = repr(scales[0]) if len(scales) == 1 else f"one of {scales}"
    _fail("data.scale", d.scale, f"{scale_text}, or {other_g}" if scales else other_g, g_given)


def _validate_optimizer(path: str, opt) -> None:
    known = optimizer_config()
    for key in opt.keys():
        if key not in known:
            _fail(f"{path}.{key}", opt[key], f"no such key; known keys: {sorted(known.keys())}")
    _check_choice(f"{path}.name", opt.name, optim.OPTIMIZERS)
    _check_positive(f"{path}.lr", opt.lr)
    _check_positive(f"{path}.min_lr", opt.min_lr, allow_zero=True)
    if opt.min_lr > opt.lr:
        _fail(f"{path}.min_lr", opt.min_lr, f"a number <= {path}.lr={opt.lr}")
    # A factor below 1 would grow the rate, which optax clips to min_lr from the first update.
    _check_positive(f"{path}.lr_decay", opt.lr_decay)
    if opt.lr_decay < 1.0:
        _fail(f"{path}.lr_decay", opt.lr_decay, "a number >= 1 (the lr is divided by it)")
    for key in ("b1", "b2", "decay", "momentum"):
        value = opt[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
            _fail(f"{path}.{key}", value, "a number in [0, 1)")
    _check_positive(f"{path}.eps", opt.eps, allow_zero=True)
    _check_positive(f"{path}.eps_root", opt.get("eps_root", 0.0), allow_zero=True)
    if opt.get("eps_root", 0.0) and opt.name != "adam":
        _fail(f"{path}.eps_root", opt.eps_root, f"0 for {opt.name!r} (Adam alone has eps_root)")
    if opt.final_momentum is not None:
        if isinstance(opt.final_momentum, bool) or not 0 <= opt.final_momentum < 1:
            _fail(f"{path}.final_momentum", opt.final_momentum, "None or a number in [0, 1)")
        _check_positive(
            f"{path}.momentum_start_epoch", opt.momentum_start_epoch, numbers.Integral, True
        )
        if opt.momentum_saturate_epoch <= opt.momentum_start_epoch:
            _fail(
                f"{path}.momentum_saturate_epoch",
                opt.momentum_saturate_epoch,
                f"a whole number > {path}.momentum_start_epoch={opt.momentum_start_epoch}",
            )


def _validate_image_options(d) -> None:
    """data.image_size, channels, flip, cache_dir, and data.dir for the sources that read it."""
    if d.image_size is not None:
        _check_positive("data.image_size", d.image_size, numbers.Integral)
    if d.channels is not None and d.channels not in image_prep.CHANNELS:
        _fail("data.channels", d.channels, f"None or one of {list(image_prep.CHANNELS)}")
    _check_bool("data.flip", d.flip)
    if not isinstance(d.cache_dir, str):
        _fail("data.cache_dir", d.cache_dir, "a path ('' for the default cache)")
    if d.name in data.FILE_DATASETS and not d.dir:
        what = {"idx": "a directory of IDX files", "folder": "a folder of images"}
        _fail("data.dir", d.dir, f"{what.get(d.name, 'a .npz file')} for data.name={d.name!r}")
    set_options = [k for k in ("image_size", "channels") if d[k] is not None]
    if set_options and not image_sets.is_file_source(d.name):
        _fail(
            f"data.{set_options[0]}",
            d[set_options[0]],
            f"None for data.name={d.name!r} (resizing and channel conversion apply to"
            f" {list(data.FILE_DATASETS)} and 'tfds:<name>'; MNIST is data.name='idx')",
        )
    if d.flip and d.name in data.TOY_DATASETS:
        _fail("data.flip", True, f"False for data.name={d.name!r} (flips are for images)")


def _validate_text(config) -> None:
    """The text options, and nets that fit the data: the text nets for text (G a softmax per
    position), never for images or toys."""
    d, model = config.data, config.model
    text = text_data.is_text(d.name)
    for player, nets in (
        ("generator", models.TEXT_GENERATORS),
        ("discriminator", models.TEXT_DISCRIMINATORS),
    ):
        if text and model[player] not in nets:
            _fail(f"model.{player}", model[player], f"one of {list(nets)} for text data")
        if not text and model[player] in models.TEXT_ONLY_NETS:
            _fail(f"model.{player}", model[player], "a net for images or vectors (not text)")
    if not text:
        if model.generator_kwargs.get("output_activation") == "softmax":
            _fail(
                "model.generator_kwargs.output_activation",
                "softmax",
                "tanh, sigmoid or linear (softmax is the text G's, over each position's V)",
            )
        return
    _check_positive("data.seq_len", d.seq_len, numbers.Integral)
    _check_choice("data.text_mode", d.text_mode, text_data.TEXT_MODES)
    _check_positive("data.vocab_size", d.vocab_size, numbers.Integral)
    if d.vocab_size <= text_data.RESERVED:
        _fail("data.vocab_size", d.vocab_size, f"a whole number > {text_data.RESERVED}")
    fraction = d.heldout_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        _fail("data.heldout_fraction", fraction, "a number in (0, 1)")
    if d.name in data.TEXT_DATASETS and not d.dir:
        _fail("data.dir", d.dir, f"a text file or folder for data.name={d.name!r}")
    for key, off in (("flip", False), ("image_size", None), ("channels", None)):
        if d[key] != off:
            _fail(f"data.{key}", d[key], f"{off} for text data.name={d.name!r}")
    if model.conditioning != "none" or d.labels_per_class:
        _fail("model.conditioning", model.conditioning, "'none' for text (it has no labels)")


def host_unsupported(config) -> str | None:
    """Why the config's data cannot be streamed from the host (data.placement='host'), or None.
    Streaming reads the real rows of each D update (and of G's feature-matching stream); data
    made inside the step or options that need the whole set on the device are not covered."""
    d, model = config.data, config.model
    if d.name in data.TOY_DATASETS:
        return f"data.name={d.name!r} is drawn inside the step (nothing to stream)"
    if text_data.is_text(d.name):
        return f"data.name={d.name!r} is text, which is kept on the device as token ids"
    if d.name == "stacked_mnist":
        return "data.name='stacked_mnist' is built in memory from MNIST"
    if d.labels_per_class:
        return (
            f"data.labels_per_class={d.labels_per_class} draws its labelled batches on the device"
        )
    if model.output_bias_from_data:
        return "model.output_bias_from_data=True reads every pixel of the set at init"
    if config.model.discriminator_kwargs.get("data_init", False):
        return "model.discriminator_kwargs.data_init=True initialises D on the set's first rows"
    return None


def _validate_placement(config) -> None:
    placement = config.data.get("placement", "auto")  # configs written before it: 'auto'
    _check_choice("data.placement", placement, data.PLACEMENTS)
    device_bytes = config.data.get("device_bytes", 1)
    _check_positive("data.device_bytes", device_bytes, numbers.Integral)
    reason = host_unsupported(config) if placement == "host" else None
    if reason:
        _fail("data.placement", placement, f"'device' or 'auto' here ({reason})")


def _validate_data(config) -> None:
    d = config.data
    _validate_text(config)
    _validate_image_options(d)
    _validate_placement(config)
    _check_positive("data.start", d.start, numbers.Integral, allow_zero=True)
    if d.stop is not None:
        _check_positive("data.stop", d.stop, numbers.Integral)
        if d.stop <= d.start:
            _fail("data.stop", d.stop, f"None or a whole number > data.start={d.start}")
    generator = config.model.generator
    if config.model.output_bias_from_data and generator not in models.OUTPUT_BIAS_GENERATORS:
        _fail(
            "model.output_bias_from_data",
            True,
            f"False for model.generator={generator!r} (only {list(models.OUTPUT_BIAS_GENERATORS)}"
            " have a sigmoid layer named 'output' to take the bias)",
        )
    if config.model.output_bias_from_data and d.name in data.TOY_DATASETS:
        _fail(
            "model.output_bias_from_data",
            True,
            f"False for data.name={d.name!r} (the bias comes from image pixel marginals)",
        )
    sigmoid_range = net_parts.OUTPUT_RANGES["sigmoid"]
    if config.model.output_bias_from_data and data.SCALE_RANGES.get(d.scale) != sigmoid_range:
        # The bias is the inverse sigmoid of each pixel's mean, which models clips into (0, 1):
        # every negative mean would become the same bias of about -6.9.
        unit = [s for s, r in data.SCALE_RANGES.items() if r == sigmoid_range]
        _fail(
            "model.output_bias_from_data",
            True,
            f"False, or data.scale in {unit} (the bias is the inverse sigmoid of each pixel's"
            f" mean, which needs pixels in {_interval(sigmoid_range)})",
            f"data.scale={d.scale!r} (range {_interval(data.SCALE_RANGES[d.scale])})",
        )


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
    if not isinstance(config.data.name, str) or not data.is_known_dataset(config.data.name):
        _fail("data.name", config.data.name, f"one of {sorted(data.DATASETS)} or 'tfds:<name>'")
    _check_choice("data.scale", config.data.scale, data.SCALES)
    _validate_data(config)
    _check_choice("model.generator", config.model.generator, models.GENERATORS)
    _check_choice("model.discriminator", config.model.discriminator, models.DISCRIMINATORS)
    _check_choice("model.z_dist", config.model.z_dist, net_parts.Z_DISTRIBUTIONS)
    _check_positive("model.z_dim", config.model.z_dim, numbers.Integral)
    _check_choice("loss.name", config.loss.name, losses.LOSSES)
    _check_choice("loss.penalty", config.loss.penalty, penalties.PENALTIES)
    _check_positive("loss.penalty_weight", config.loss.penalty_weight, allow_zero=True)
    _check_positive("loss.clip_weights", config.loss.clip_weights, allow_zero=True)
    if not 0.0 < config.loss.real_label <= 1.0:
        _fail("loss.real_label", config.loss.real_label, "a number in (0, 1]")
    _validate_post_2014(config)
    _validate_improved_techniques(config)
    _validate_output_range(config)
    for player in ("g", "d"):
        _validate_optimizer(f"optim.{player}", config.optim[player])
    t = config.train
    for key in ("batch_size", "num_steps", "d_steps", "log_every"):
        _check_positive(f"train.{key}", t[key], numbers.Integral)
    for key in ("scan_steps", "sample_every", "checkpoint_every"):
        _check_positive(f"train.{key}", t[key], numbers.Integral, allow_zero=True)
    if t.scan_steps and t.num_steps % t.scan_steps:
        _fail("train.num_steps", t.num_steps, f"a multiple of train.scan_steps={t.scan_steps}")
    if t.scan_steps and t.log_every % t.scan_steps:
        _fail("train.log_every", t.log_every, f"a multiple of train.scan_steps={t.scan_steps}")
    # The loop stops on the host only at log steps, so samples and checkpoints fall on them.
    if t.sample_every and t.sample_every % t.log_every:
        _fail("train.sample_every", t.sample_every, f"a multiple of log_every={t.log_every}")
    _check_positive("train.keep_checkpoints", t.keep_checkpoints, numbers.Integral)
    _check_positive("train.member_batch", t.member_batch, numbers.Integral, allow_zero=True)
    _check_choice("train.update_rule", t.update_rule, UPDATE_RULES)
    if t.update_rule == "simultaneous" and t.d_steps != 1:
        _fail("train.d_steps", t.d_steps, "1 with train.update_rule='simultaneous'")
    for key, value, allowed in (
        ("g_objective", config.loss.g_objective, ("adversarial",)),
        ("historical_averaging", config.loss.historical_averaging, ("none", "d")),
    ):
        if t.update_rule == "simultaneous" and value not in allowed:
            _fail(
                f"loss.{key}",
                value,
                f"one of {list(allowed)} with train.update_rule='simultaneous'",
            )
    if t.update_rule == "simultaneous" and config.model.conditioning == "acgan":
        _fail(
            "train.update_rule",
            t.update_rule,
            "'alternating' with model.conditioning='acgan'",
        )
    _check_positive("loss.d_objective_scale", config.loss.d_objective_scale)
    if t.checkpoint_every % t.log_every:
        _fail(
            "train.checkpoint_every", t.checkpoint_every, f"a multiple of log_every={t.log_every}"
        )
    _check_choice("parallel", config.parallel, PARALLEL_MODES)
    _check_positive("eval.every", config.eval.every, numbers.Integral, allow_zero=True)
    _check_positive("eval.num_samples", config.eval.num_samples, numbers.Integral)
    if config.eval.every and config.eval.every % t.log_every:
        _fail("eval.every", config.eval.every, f"a multiple of log_every={t.log_every}")
    if config.eval.every and not config.eval.metrics:
        _fail("eval.metrics", config.eval.metrics, "metric names, e.g. 'mixture' or 'fd,kid'")
    _validate_alarm(config.alarm)


def _validate_alarm(a) -> None:
    """The alarm's action and thresholds (gan_jax/alarm.py)."""
    _check_choice("alarm.action", a.action, ALARM_ACTIONS)
    if isinstance(a.d_fake_below, bool) or not isinstance(a.d_fake_below, numbers.Real):
        _fail("alarm.d_fake_below", a.d_fake_below, "a number in [0, 1] (0: off)")
    if not 0 <= a.d_fake_below <= 1:
        _fail("alarm.d_fake_below", a.d_fake_below, "a number in [0, 1] (0: off)")
    for key in ("g_grad_norm_below", "diversity_below"):
        _check_positive(f"alarm.{key}", a[key], allow_zero=True)
    _check_positive("alarm.consecutive", a.consecutive, numbers.Integral)
    _check_positive("alarm.every", a.every, numbers.Integral, allow_zero=True)
    _check_positive("alarm.num_samples", a.num_samples, numbers.Integral)
    if a.num_samples < 2:
        _fail("alarm.num_samples", a.num_samples, "a whole number >= 2 (pairs of samples)")
    _check_positive("alarm.classes_below", a.classes_below, numbers.Integral, allow_zero=True)
