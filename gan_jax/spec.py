"""What shapes the compiled training program: `Spec`, static and hashable.

A config splits in two: `Spec` (nets, loss family, batch size, d_steps, dataset, penalty kind
and interval, whether weights are clipped, the optimizers' kinds and momentum ramps) and
`hparams.Hparams` (the numbers). Runs with equal specs share one program; the engine's steps
take the spec as a static keyword argument.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import ml_collections

from gan_jax import data, models, optim
from gan_jax.config import validate


@dataclasses.dataclass(frozen=True)
class Spec:
    """The static, hashable description of one training program (see the module docstring);
    `make_spec(config)` builds it. Two configs with equal specs differ only in Hparams."""

    generator: nn.Module
    discriminator: nn.Module
    g_opt: optim.OptSpec
    d_opt: optim.OptSpec
    loss: str  # a key of losses.LOSSES
    data_name: str
    data_shape: tuple[int, ...]  # one example's shape
    batch_size: int  # the global batch
    d_steps: int  # D updates per G update
    update_rule: str  # 'alternating' or 'simultaneous' (config.UPDATE_RULES)
    scan_steps: int  # iterations per dispatch of `engine.run_chunk` (0: one update each)
    z_dim: int
    z_dist: str
    conditioning: str  # 'none', 'concat' or 'acgan'
    num_classes: int
    penalty: str  # a key of penalties.PENALTIES, or 'none'
    penalty_every: int  # lazy regularisation interval (1: every D update)
    clip_weights: bool  # WGAN clipping on (its bound is Hparams.clip_weights)
    output_bias_from_data: bool
    g_objective: str  # 'adversarial' or 'feature_matching' (config.G_OBJECTIVES)
    feature_layer: int  # D's hidden layer feature matching matches (-1: the last)
    feature_matching_reduction: str  # losses.feature_matching's 'sum' or 'mean'
    historical_averaging: str  # the players with the penalty: 'none', 'd', 'g' or 'both'
    labels_per_class: int  # > 0: semi-supervised, D's class logits see these many per class
    d_ema: bool  # keep an exponential moving average of D's params (Hparams.d_ema_decay)
    axis_name: str | None = None  # the pmap axis the steps average over (None: one device)


def updates_per_epoch(config, dataset_size: int | None) -> int:
    """D updates per pass over the data, which epoch-based schedules count in."""
    epoch_based = [
        f"optim.{player}.final_momentum"
        for player in ("g", "d")
        if config.optim[player].final_momentum not in (None, config.optim[player].momentum)
    ]
    if dataset_size is None and epoch_based and config.data.name not in data.TOY_DATASETS:
        raise ValueError(
            f"{epoch_based[0]} sets a schedule counted in epochs of data.name="
            f"{config.data.name!r}; pass dataset_size (the number of training examples)"
        )
    return max(1, (dataset_size or 0) // config.train.batch_size)


def make_spec(
    config: ml_collections.ConfigDict,
    dataset_size: int | None = None,
    axis_name: str | None = None,
    data_shape: tuple[int, ...] | None = None,
) -> Spec:
    """The static half of a config, validated first (ValueError naming a bad value).

    `dataset_size` (training examples) places an epoch-based momentum ramp; with `axis_name`
    the steps are meant to run under `jax.pmap` over that axis: batch norm and gradients are
    averaged across devices. `data_shape`, one example's shape, when known without reading the
    data (a text run's saved vocabulary gives it); None: `data.data_shape` of the config.
    """
    validate(config)
    shape = tuple(data.data_shape(config.data) if data_shape is None else data_shape)
    per_epoch = updates_per_epoch(config, dataset_size)
    t, loss, model = config.train, config.loss, config.model
    return Spec(
        generator=models.make_generator(model, shape, axis_name=axis_name),
        discriminator=models.make_discriminator(model, axis_name=axis_name),
        g_opt=optim.opt_spec(config.optim.g, per_epoch // t.d_steps or 1),
        d_opt=optim.opt_spec(config.optim.d, per_epoch),
        loss=loss.name,
        data_name=config.data.name,
        data_shape=shape,
        batch_size=t.batch_size,
        d_steps=t.d_steps,
        update_rule=t.update_rule,
        scan_steps=t.scan_steps,
        z_dim=model.z_dim,
        z_dist=model.z_dist,
        conditioning=model.conditioning,
        num_classes=model.num_classes,
        penalty=loss.penalty,
        penalty_every=loss.penalty_every,
        clip_weights=bool(loss.clip_weights),
        output_bias_from_data=model.output_bias_from_data,
        g_objective=loss.g_objective,
        feature_layer=loss.feature_layer,
        feature_matching_reduction=loss.get("feature_matching_reduction", "sum"),
        historical_averaging=loss.historical_averaging,
        labels_per_class=config.data.labels_per_class,
        d_ema=config.train.d_ema_decay > 0,
        axis_name=axis_name,
    )
