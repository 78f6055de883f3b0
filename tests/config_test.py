import ml_collections
import pytest
from conftest import tiny_config
from experiments_loader import EXPERIMENTS, load_experiment

from gan_jax.config import default_config, validate

TRAINING_EXPERIMENTS = sorted(
    p.stem for p in EXPERIMENTS.glob("*.py") if "def get_config" in p.read_text()
)


@pytest.mark.parametrize("name", TRAINING_EXPERIMENTS)
def test_every_experiment_config_is_valid(name):
    validate(load_experiment(name))


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
        # optax would clip a growing rate to min_lr = 0 from the first update: no training.
        ("optim.d.lr_decay", 0.999, r"config.optim.d.lr_decay = 0.999 .*>= 1"),
        ("optim.g.min_lr", 0.5, r"config.optim.g.min_lr = 0.5 .*<= optim.g.lr=0.001"),
        ("optim.d.b1", 2.0, r"config.optim.d.b1 = 2.0 .*\[0, 1\)"),
        ("optim.g.momentum", 1.5, r"config.optim.g.momentum = 1.5 .*\[0, 1\)"),
        ("optim.d.nesterov", True, r"config.optim.d.nesterov = True .*no such key.*lr_decay"),
        ("train.sample_every", 6, r"config.train.sample_every = 6 .*multiple of log_every=4"),
        ("data.stop", 0, r"config.data.stop = 0 .*> 0"),
        ("data.start", -5, r"config.data.start = -5 .*>= 0"),
        ("model.discriminator_kwargs", {"hiden": (8,)}, r"kwargs.hiden = \(8,\) .*\['hidden'\]"),
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
