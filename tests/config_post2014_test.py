"""Validation of the config keys for the losses, penalties and nets after 2014."""

import ml_collections
import pytest
from conftest import tiny_config

from gan_jax.config import validate


def image(config, **model):
    """MNIST in [-1, 1] (for the conv G's default tanh) with the given nets, each with its own
    default options (the tiny MLP options of `tiny_config` are not options of the conv nets)."""
    config.data.update(name="mnist", scale="symmetric")
    config.model.update(**model)
    for player in ("generator", "discriminator"):
        if config.model[player] != "mlp":
            config.model[f"{player}_kwargs"] = {}
    return config


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda c: c.loss.update(name="lsgan", lsgan_a=1.0), r"lsgan_b = 1.0 .*other than"),
        (lambda c: c.loss.update(penalty_every=0), r"config.loss.penalty_every = 0 .* > 0"),
        (lambda c: c.loss.update(aux_weight=-1.0), r"config.loss.aux_weight = -1.0"),
        (
            lambda c: c.loss.update(name="wgan", real_label=0.9),
            r"real_label = 0.9 .*1.0 with loss.name='wgan'",
        ),
        (lambda c: c.model.update(conditioning="film"), r"conditioning = 'film' .*'acgan'"),
        (
            lambda c: c.model.update(conditioning="concat", num_classes=8),
            r"conditioning = 'concat' .*'none' for data.name='ring8'",
        ),
        (
            lambda c: image(c, conditioning="concat", num_classes=8),
            r"num_classes = 8 .*10, the number of classes of data.name='mnist'",
        ),
        (
            lambda c: image(c, discriminator="gan2014", spectral_norm=True),
            r"spectral_norm = True .*False for model.discriminator='gan2014'",
        ),
        (
            lambda c: image(c, discriminator="gan2014", conditioning="acgan", num_classes=10),
            r"discriminator = 'gan2014' .*\['mlp', 'dcgan', 'resnet'\] with"
            r" model.conditioning='acgan'",
        ),
        (lambda c: c.model.update(generator="dcgan"), r"generator = 'dcgan' .*data.name='ring8'"),
        (lambda c: c.data.update(stacked_size=0), r"config.data.stacked_size = 0"),
    ],
)
def test_bad_post_2014_values_are_named_with_what_is_allowed(setup, message):
    config = tiny_config()
    setup(config)
    with pytest.raises(ValueError, match=message):
        validate(config)


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("loss", "lsgan_c", "one", r"config.loss.lsgan_c = 'one' .*a number"),
        ("model", "spectral_norm", 1, r"config.model.spectral_norm = 1 .*True or False"),
        ("loss", "penalty_every", 2.5, r"config.loss.penalty_every = 2.5 .*whole number"),
    ],
)
def test_wrong_types_of_post_2014_keys(section, key, value, message):
    # ConfigDict checks types on assignment; a config built from a dict (e.g. JSON) is not.
    as_dict = tiny_config().to_dict()
    as_dict[section][key] = value
    with pytest.raises(ValueError, match=message):
        validate(ml_collections.ConfigDict(as_dict))


def test_good_post_2014_settings_pass():
    for setup in (
        lambda c: c.loss.update(name="lsgan", lsgan_a=-1.0, lsgan_b=1.0, lsgan_c=0.0),
        lambda c: c.loss.update(name="hinge", penalty="r1", penalty_every=16),
        lambda c: image(c, generator="dcgan", discriminator="patch", spectral_norm=True),
        lambda c: image(c, discriminator="dcgan", conditioning="acgan", num_classes=10),
        lambda c: (
            c.data.update(name="stacked_mnist")
            or c.model.update(conditioning="concat", num_classes=1000)
        ),
    ):
        config = tiny_config()
        setup(config)
        validate(config)
