import importlib.util
import inspect
import json
import os
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from absl import flags
from conftest import tiny_config
from experiments_loader import EXPERIMENTS, load_experiment
from ml_collections import config_flags
from ml_collections.config_dict import FieldReference

from gan_jax import data, dense_nets, evaluate, models, net_parts
from gan_jax import workdir as workdir_lib
from gan_jax.config import default_config, load_experiment_file, output_activation, validate

TRAINING_EXPERIMENTS = sorted(
    p.stem for p in EXPERIMENTS.glob("*.py") if "def get_config" in p.read_text()
)


def experiment_variants(name: str) -> list[str]:
    """The variants `get_config` of experiments/<name>.py takes ('' for a file without any): its
    VARIANTS, or for the mixture tables (toy_mode_coverage's LOSSES, improved_techniques_toys's
    TECHNIQUES) every 'mixture,row'."""
    path = EXPERIMENTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "VARIANTS"):
        return list(module.VARIANTS)
    rows = getattr(module, "LOSSES", None) or getattr(module, "TECHNIQUES", None)
    if hasattr(module, "MIXTURES") and rows is not None:
        return [f"{m},{row}" for m in module.MIXTURES for row in rows]
    takes = inspect.signature(module.get_config).parameters
    assert not takes, f"{path}: get_config takes {list(takes)}; list its variants in VARIANTS"
    return [""]


EXPERIMENT_VARIANTS = [(n, v) for n in TRAINING_EXPERIMENTS for v in experiment_variants(n)]


def test_every_variant_is_found():
    found = {n: [v for m, v in EXPERIMENT_VARIANTS if m == n] for n in TRAINING_EXPERIMENTS}
    assert found["stacked_mnist_dcgan"] == ["plain", "r1"]
    assert found["conditional_mnist"] == ["dcgan", "cgan", "acgan"]
    assert (
        len(found["toy_mode_coverage"]) == 2 * 15 and "grid25,tuned" in found["toy_mode_coverage"]
    )
    assert found["gan2014_mnist"] == [""]
    assert len(found["improved_techniques_toys"]) == 2 * 6


@pytest.mark.parametrize("name, variant", EXPERIMENT_VARIANTS)
def test_every_experiment_config_and_variant_is_valid(name, variant):
    validate(load_experiment_file(str(EXPERIMENTS / f"{name}.py"), variant))


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("optim.d.lr", 0.0, r"config.optim.d.lr = 0.0 .* > 0"),
        ("optim.g.lr", -1e-3, r"config.optim.g.lr = -0.001"),
        ("train.batch_size", 0, r"config.train.batch_size = 0 .* > 0"),
        ("train.d_steps", 0, r"config.train.d_steps = 0"),
        ("loss.name", "wasserstein-ish", r"config.loss.name = 'wasserstein-ish' .*non_saturating"),
        ("model.generator", "resnet9000", r"config.model.generator = 'resnet9000' .*gan2014"),
        ("data.name", "cifar100", r"config.data.name = 'cifar100' .*mnist"),
        ("loss.penalty", "l2", r"config.loss.penalty = 'l2' .*'gp'"),
        ("loss.real_label", 1.5, r"config.loss.real_label = 1.5 .*\(0, 1\]"),
        ("train.num_steps", 10, r"config.train.num_steps = 10 .*multiple of train.scan_steps=4"),
        ("parallel", "tpu-magic", r"config.parallel = 'tpu-magic'"),
        ("train.member_batch", -1, r"config.train.member_batch = -1 .*>= 0"),
        # optax would clip a growing rate to min_lr = 0 from the first update: no training.
        ("optim.d.lr_decay", 0.999, r"config.optim.d.lr_decay = 0.999 .*>= 1"),
        ("optim.g.min_lr", 0.5, r"config.optim.g.min_lr = 0.5 .*<= optim.g.lr=0.001"),
        ("optim.d.b1", 2.0, r"config.optim.d.b1 = 2.0 .*\[0, 1\)"),
        ("optim.d.eps_root", -1e-8, r"config.optim.d.eps_root = -1e-08 .*>= 0"),
        ("optim.g.momentum", 1.5, r"config.optim.g.momentum = 1.5 .*\[0, 1\)"),
        ("optim.d.nesterov", True, r"config.optim.d.nesterov = True .*no such key.*lr_decay"),
        ("train.sample_every", 6, r"config.train.sample_every = 6 .*multiple of log_every=4"),
        ("data.stop", 0, r"config.data.stop = 0 .*> 0"),
        ("data.start", -5, r"config.data.start = -5 .*>= 0"),
        (
            "model.discriminator_kwargs",
            {"hiden": (8,)},
            r"kwargs.hiden = \(8,\) .*\['hidden', 'minibatch_discrimination'",
        ),
        (
            "model.generator_kwargs",
            {"hidden": (8,), "output_activation": "relu"},
            r"output_activation = 'relu' .*'sigmoid'",
        ),
        ("model.output_bias_from_data", True, r"output_bias_from_data = True .*'mlp'"),
    ],
)
def test_bad_values_are_named_with_what_is_allowed(path, value, message):
    config = tiny_config()
    *parents, leaf = path.split(".")
    node = config
    for parent in parents:
        node = node[parent]
    node[leaf] = value
    with pytest.raises(ValueError, match=message):
        validate(config)


def test_wrong_types_and_unknown_keys():
    as_dict = default_config().to_dict()
    as_dict["train"]["batch_size"] = 12.5  # a float where a whole number is needed
    config = ml_collections.ConfigDict(as_dict)
    with pytest.raises(ValueError, match=r"batch_size = 12.5 .*whole number"):
        validate(config)
    config = default_config()
    with config.unlocked():
        config.train.n_critic = 5
    with pytest.raises(ValueError, match=r"train.n_critic .*no such key.*d_steps"):
        validate(config)


def test_a_momentum_schedule_must_rise_over_some_epochs():
    config = tiny_config()
    config.optim.g.update(momentum=0.5, final_momentum=0.7, momentum_start_epoch=3)
    config.optim.g.momentum_saturate_epoch = 3
    with pytest.raises(ValueError, match=r"momentum_saturate_epoch = 3 .*> optim.g.momentum_start"):
        validate(config)
    config.optim.g.momentum_saturate_epoch = 4
    validate(config)


def test_a_data_slice_must_be_nonempty():
    config = tiny_config()
    config.data.update(name="mnist", start=100, stop=50)
    with pytest.raises(ValueError, match=r"config.data.stop = 50 .*> data.start=100"):
        validate(config)


def test_the_data_bias_needs_image_data():
    config = tiny_config()
    config.model.update(generator="gan2014", output_bias_from_data=True)
    config.model.generator_kwargs = {}
    with pytest.raises(ValueError, match=r"output_bias_from_data = True .*data.name='ring8'"):
        validate(config)


# ----------------------------------------------------------------------------- G's range vs data's


def with_changes(name: str, **changes):
    """experiments/<name>.py's config with `section__key=value` changes."""
    config = load_experiment(name)
    for key, value in changes.items():
        section, leaf = key.split("__")
        config[section][leaf] = value
    return config


G_RANGE_CASES = {
    # The issue's case: a sigmoid G for pixels in [-1, 1]. The data bias is named first.
    "gan2014 symmetric": (
        with_changes("gan2014_mnist", data__scale="symmetric"),
        "config.model.output_bias_from_data = True is not allowed with data.scale='symmetric'"
        " (range [-1, 1]); expected False, or data.scale in ['unit'] (the bias is the inverse"
        " sigmoid of each pixel's mean, which needs pixels in [0, 1])",
    ),
    "gan2014 symmetric, no bias": (
        with_changes("gan2014_mnist", data__scale="symmetric", model__output_bias_from_data=False),
        "config.data.scale = 'symmetric' is not allowed with model.generator='gan2014' (a fixed"
        " sigmoid output, range [0, 1]); expected 'unit', or a G output activation for data in"
        " [-1, 1]: ['tanh', 'linear'] (an option of model.generator in ['dcgan', 'mlp', 'resnet'])",
    ),
    "sigmoid dcgan symmetric": (
        with_changes("wgan_gp_mnist", data__scale="symmetric"),
        "config.data.scale = 'symmetric' is not allowed with"
        " model.generator_kwargs.output_activation='sigmoid' (range [0, 1]); expected 'unit', or"
        " a G output activation for data in [-1, 1]: ['tanh', 'linear']",
    ),
    "tanh mlp unit": (
        with_changes("keras_mlp_mnist", data__scale="unit"),
        "config.data.scale = 'unit' is not allowed with"
        " model.generator_kwargs.output_activation='tanh' (range [-1, 1]); expected"
        " 'symmetric', or a G output activation for data in [0, 1]: ['sigmoid', 'linear']",
    ),
    "default tanh dcgan unit": (
        with_changes("lsgan_mnist", data__scale="unit", model__generator_kwargs={}),
        "config.data.scale = 'unit' is not allowed with"
        " model.generator_kwargs.output_activation='tanh' (the default of"
        " model.generator='dcgan', range [-1, 1]); expected 'symmetric', or a G output"
        " activation for data in [0, 1]: ['sigmoid', 'linear']",
    ),
    "tanh mlp ring8": (
        with_changes("ring8", model__generator_kwargs={"output_activation": "tanh"}),
        "config.model.generator_kwargs.output_activation = 'tanh' is not allowed with"
        " data.name='ring8' (Gaussian samples, range (-inf, inf)); expected a G output"
        " activation for data in (-inf, inf): ['linear']",
    ),
    "gan2014 gaussian_1d": (
        with_changes(
            "figure1_1d", model__generator="gan2014", model__generator_kwargs={"hidden": 8}
        ),
        "config.model.generator = 'gan2014' is not allowed with data.name='gaussian_1d'"
        " (Gaussian samples, range (-inf, inf)); expected a G output activation for data in"
        " (-inf, inf): ['linear'] (an option of model.generator in ['dcgan', 'mlp', 'resnet'])",
    ),
}


@pytest.mark.parametrize("case", G_RANGE_CASES)
def test_a_g_that_cannot_reach_the_data_is_named(case):
    config, message = G_RANGE_CASES[case]
    with pytest.raises(ValueError) as err:
        validate(config)
    assert str(err.value) == message


@pytest.mark.parametrize("generator", sorted(models.GENERATORS))
def test_which_g_output_activations_suit_which_data(generator):
    """Bounded G ranges must be the data's own; a linear G suits any data."""
    allowed = {
        ("sigmoid", "unit"),
        ("tanh", "symmetric"),
        ("linear", "unit"),
        ("linear", "symmetric"),
        ("linear", "toy"),
    }
    if generator in models.TEXT_ONLY_NETS:
        pytest.skip("a text G is refused on images and vectors (tests/text_test.py)")
    # softmax is the text G's own, over each position's vocabulary (tests/text_test.py).
    image_activations = [a for a in net_parts.OUTPUT_ACTIVATIONS if a != "softmax"]
    options = [None] if generator in models.FIXED_OUTPUT_ACTIVATIONS else image_activations
    for activation in options:
        for where in ("unit", "symmetric", "toy"):
            config = tiny_config()
            name = "gaussian_1d" if where == "toy" else "mnist"
            config.data.update(name=name, scale="unit" if where == "toy" else where)
            config.model.update(generator=generator, discriminator="mlp")
            config.model.generator_kwargs = (
                {} if activation is None else {"output_activation": activation}
            )
            effective = output_activation(config.model)
            if where == "toy" and generator in models.CONV_NETS:
                continue  # a conv G is refused on vectors before its range is looked at
            if (effective, where) in allowed:
                validate(config)
            else:
                with pytest.raises(ValueError, match=r"is not allowed with (model.g|data.n)"):
                    validate(config)


def test_the_activation_ranges_are_the_activations_own():
    logits_N = jnp.array([-60.0, -1.0, 0.0, 1.0, 60.0])
    for name, (lo, hi) in net_parts.OUTPUT_RANGES.items():
        out_N = np.asarray(net_parts.OUTPUT_ACTIVATIONS[name](logits_N))
        bounded_lo, bounded_hi = np.isfinite(lo), np.isfinite(hi)
        # A bounded end is reached (to float32) at a large logit; an unbounded one is passed.
        assert out_N[0] == pytest.approx(lo, abs=1e-6) if bounded_lo else out_N[0] <= -60.0
        assert out_N[-1] == pytest.approx(hi, abs=1e-6) if bounded_hi else out_N[-1] >= 60.0
        assert np.all((out_N >= lo) & (out_N <= hi)), name


def test_every_generator_has_a_known_output_activation():
    for name, cls in models.GENERATORS.items():
        option = "output_activation" in cls.__dataclass_fields__
        assert option != (name in models.FIXED_OUTPUT_ACTIVATIONS), name
        model = ml_collections.ConfigDict({"generator": name, "generator_kwargs": {}})
        assert output_activation(model) in net_parts.OUTPUT_RANGES


def test_the_2014_generator_ends_in_the_sigmoid_the_table_names():
    g = dense_nets.Gan2014Generator(output_shape=(6,), hidden=5, init_scale=3.0)
    z_BxZ = jax.random.uniform(jax.random.PRNGKey(0), (4, 3), minval=-1.0, maxval=1.0)
    params = g.init(jax.random.PRNGKey(1), z_BxZ)
    x_Bx6, state = g.apply(params, z_BxZ, capture_intermediates=True)
    (logits_Bx6,) = state["intermediates"]["output"]["__call__"]
    fixed = net_parts.OUTPUT_ACTIVATIONS[models.FIXED_OUTPUT_ACTIVATIONS["gan2014"]]
    np.testing.assert_allclose(x_Bx6, fixed(logits_Bx6), rtol=1e-6)
    assert fixed is nn.sigmoid


@pytest.mark.parametrize("scale", data.SCALES)
def test_the_scale_ranges_are_what_scale_images_makes(scale):
    pixels_1x2 = np.array([[0, 255]], np.uint8)
    x = data.scale_images(pixels_1x2, scale).ravel()
    assert (float(x[0]), float(x[1])) == data.SCALE_RANGES[scale]


# ----------------------------------------------------------------------------- optional fields


def optional_fields(config, prefix: str = "") -> dict[str, type]:
    """{path: declared type} of every field of `config` whose value is None: a placeholder's
    type, or NoneType for a bare None (which the command line cannot set)."""
    found = {}
    for key, value in config.items(preserve_field_references=True):
        path = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict):
            found.update(optional_fields(value, f"{path}."))
        elif isinstance(value, FieldReference) and value.get() is None:
            found[path] = value.get_type()
        elif value is None:
            found[path] = type(None)
    return found


# A command-line spelling and the value it must give, per declared type.
EXAMPLE_VALUES = {
    int: ("5000", 5000),
    float: ("0.7", 0.7),
    str: ("text", "text"),
    bool: ("true", True),
}


def parse_config_flags(experiment: str, *overrides: str) -> ml_collections.ConfigDict:
    """The config `gan-jax train --config <experiment> <overrides>` gets: the flag cli.py
    defines, on fresh flag values so that each call parses anew."""
    argv = ["gan-jax", f"--config={EXPERIMENTS / experiment}", *overrides]
    values = flags.FlagValues()
    holder = config_flags.DEFINE_config_file("config", None, flag_values=values, sys_argv=argv)
    with warnings.catch_warnings():  # ml_collections loads the file with the old load_module
        warnings.simplefilter("ignore", DeprecationWarning)
        values(argv)
    return holder.value


def get(config, path: str):
    for name in path.split("."):
        config = config[name]
    return config


def test_the_optional_fields_are_found_and_typed():
    found = optional_fields(default_config())
    assert {"data.stop", "optim.g.final_momentum", "optim.d.final_momentum"} <= set(found)
    assert found["data.stop"] is int and found["optim.g.final_momentum"] is float
    untyped = [path for path, kind in found.items() if kind not in EXAMPLE_VALUES]
    assert not untyped, f"give these a typed placeholder (ml_collections placeholder): {untyped}"


@pytest.mark.parametrize("name", TRAINING_EXPERIMENTS)
def test_every_optional_field_can_be_set_on_the_command_line(name):
    """Each field that is None by default or in this experiment (any variant), set by a real
    flag through ml_collections' parser."""
    for variant in experiment_variants(name):
        experiment = f"{name}.py:{variant}" if variant else f"{name}.py"
        config = load_experiment_file(str(EXPERIMENTS / f"{name}.py"), variant)
        fields = optional_fields(default_config()) | optional_fields(config)
        for path, kind in fields.items():
            # A bare None has no type to parse with: ml_collections refuses any value for it.
            text, value = EXAMPLE_VALUES.get(kind, EXAMPLE_VALUES[float])
            expected = config.to_dict()
            *parents, leaf = path.split(".")
            node = expected
            for parent in parents:
                node = node[parent]
            node[leaf] = value
            parsed = parse_config_flags(experiment, f"--config.{path}={text}")
            assert type(get(parsed, path)) is kind and get(parsed, path) == value, (name, path)
            # Only that field changed (a placeholder shared by two fields would move both).
            assert parsed.to_dict() == expected, (name, variant, path)


def test_each_optional_field_is_left_unset_by_some_experiment():
    """So that the command-line test above covers each one as an experiment inherits it."""
    inherited = set()
    for name, variant in EXPERIMENT_VARIANTS:
        config = load_experiment_file(str(EXPERIMENTS / f"{name}.py"), variant)
        inherited |= set(optional_fields(config))
    assert set(optional_fields(default_config())) <= inherited


@pytest.mark.parametrize(
    "name", ["keras_mlp_mnist", "ring8", "lsgan_mnist", "wgan_gp_mnist", "stacked_mnist_dcgan"]
)
def test_the_issue_command_lines_give_valid_configs(name):
    config = parse_config_flags(f"{name}.py", "--config.data.stop=5000")
    assert config.data.stop == 5000
    validate(config)


def test_an_experiment_that_sets_optional_fields_can_still_change_them():
    config = parse_config_flags(
        "gan2014_mnist.py", "--config.optim.d.final_momentum=0.5", "--config.data.stop=20000"
    )
    assert (config.optim.d.final_momentum, config.optim.g.final_momentum) == (0.5, 0.7)
    assert config.data.stop == 20000
    validate(config)


def test_optional_fields_survive_config_json_and_resume(tmp_path):
    unset = parse_config_flags("ring8.py")  # leaves data.stop at the default's None
    given = parse_config_flags("ring8.py", "--config.data.stop=5000")
    for saved, other, expected_stop in ((unset, given, None), (given, unset, 5000)):
        workdir = str(tmp_path / str(expected_stop))
        workdir_lib.write_config(saved, workdir)
        with open(os.path.join(workdir, "config.json")) as f:
            written = json.load(f)
        assert written["data"]["stop"] == expected_stop
        assert written["optim"]["g"]["final_momentum"] is None
        assert evaluate.load_workdir_config(workdir).data.stop == expected_stop
        # On resume the workdir's value wins over the command line's; --override_config flips it.
        resumed = workdir_lib.resolve_config(other, workdir)
        assert resumed.data.stop == expected_stop
        validate(resumed)
        workdir_lib.write_config(resumed, str(tmp_path / "again"))  # a resolved config writes too
        assert evaluate.load_workdir_config(str(tmp_path / "again")).data.stop == expected_stop
        overridden = workdir_lib.resolve_config(other, workdir, override=True)
        assert overridden.data.stop == other.data.stop


def test_eps_root_is_adams_alone():
    config = tiny_config()
    config.optim.d.update(name="sgd", momentum=0.5, eps_root=1e-8)
    with pytest.raises(ValueError, match=r"optim.d.eps_root = 1e-08 .*0 for 'sgd'"):
        validate(config)
    config.optim.d.update(name="adam")
    validate(config)
