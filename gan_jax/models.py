"""Generator and discriminator networks (Flax linen). D returns logits; G returns samples.

Every G is called as `G(z_BxZ, train=...)` and returns x_Bx<data shape>; every D is called as
`D(x_Bx..., train=...)` and returns logits_B: D's raw outputs, a sigmoid's input for the
sigmoid losses and the value itself for LSGAN, WGAN and hinge. A PatchGAN D returns logits_BxPxP,
and an AC-GAN D returns (logits_B, class_logits_BxK), as does a semi-supervised D (K+1 classes,
Salimans et al. 2016), whose logits_B are the logsumexp of its K class logits. Every D sows its
hidden layers' outputs, in order, as 'intermediates'/'features' (feature matching). Conditional nets
(`ConditionalGenerator`, `ConditionalDiscriminator`) take the class labels y_B as a second
argument. Dropout draws from the 'dropout' RNG stream; batch statistics live in 'batch_stats'
and spectral-norm power iterates in 'spectral', both updated only when called with `train=True`
and made mutable.
"""

from __future__ import annotations

import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax import conditional_nets, conv_nets, dense_nets, resnet_nets, text_nets

GENERATORS = {
    "gan2014": dense_nets.Gan2014Generator,
    "mlp": dense_nets.MLPGenerator,
    "improved_gan_mnist": dense_nets.ImprovedGANMNISTGenerator,
    "dcgan": conv_nets.DCGANGenerator,
    "resnet": resnet_nets.ResNetGenerator,
    # The WGAN-GP language model's nets (Gulrajani et al. 2017, Sec. 5.2) for one-hot text.
    "text_resnet": text_nets.TextGenerator,
}
DISCRIMINATORS = {
    "gan2014": dense_nets.Gan2014Discriminator,
    "mlp": dense_nets.MLPDiscriminator,
    "improved_gan_mnist": dense_nets.ImprovedGANMNISTDiscriminator,
    "dcgan": conv_nets.DCGANDiscriminator,
    "patch": conv_nets.PatchDiscriminator,
    "resnet": resnet_nets.ResNetDiscriminator,
    "text_resnet": text_nets.TextDiscriminator,
}
# Generators whose sigmoid layer named 'output' can take its bias from the data's marginals.
OUTPUT_BIAS_GENERATORS = ("gan2014",)
# The last activation of generators that have no `output_activation` option.
FIXED_OUTPUT_ACTIVATIONS = {
    "gan2014": "sigmoid",
    "improved_gan_mnist": "sigmoid",
    "text_resnet": "softmax",
}
CONV_NETS = ("dcgan", "patch", "resnet")  # nets that need image data [H, W, C]
SPECTRAL_NORM_DISCRIMINATORS = ("mlp", "dcgan", "patch", "resnet")
AUX_DISCRIMINATORS = ("mlp", "dcgan", "resnet")  # those with an AC-GAN class head
CONDITIONING = ("none", "concat", "acgan")
TEXT_GENERATORS = ("text_resnet",)  # a softmax over the vocabulary at each position
TEXT_DISCRIMINATORS = ("text_resnet", "mlp")  # nets that read sequences [L, V]
TEXT_ONLY_NETS = ("text_resnet",)  # nets that fit text alone


def _accepts(module_cls, field: str) -> bool:
    return field in module_cls.__dataclass_fields__


def net_options(module_cls) -> list[str]:
    """The keyword options a config's `*_kwargs` may set for a net (not the ones the config
    sets through other keys)."""
    set_elsewhere = {"output_shape", "axis_name", "spectral_norm", "aux_classes", "parent", "name"}
    return sorted(set(module_cls.__dataclass_fields__) - set_elsewhere)


def _with_axis(module_cls, kwargs: dict, axis_name: str | None) -> dict:
    """The kwargs plus the pmap axis for nets with batch norm (the others do not take one)."""
    return {**kwargs, "axis_name": axis_name} if _accepts(module_cls, "axis_name") else kwargs


def make_generator(model_config, data_shape, axis_name: str | None = None) -> nn.Module:
    """The generator a config names, producing samples of `data_shape`; G(z, y) when the config
    conditions on labels ('concat' or 'acgan'). `axis_name` is the pmap axis for batch norm."""
    name = model_config.generator
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; allowed: {sorted(GENERATORS)}")
    kwargs = _with_axis(GENERATORS[name], dict(model_config.get("generator_kwargs", {})), axis_name)
    generator = GENERATORS[name](output_shape=tuple(data_shape), **kwargs)
    if model_config.get("conditioning", "none") == "none":
        return generator
    return conditional_nets.ConditionalGenerator(generator, model_config.num_classes)


def make_discriminator(model_config, axis_name: str | None = None) -> nn.Module:
    """The discriminator a config names: D(x, y) for 'concat' conditioning, an extra K class
    logits for 'acgan', spectrally normalised when `model.spectral_norm`."""
    name = model_config.discriminator
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}; allowed: {sorted(DISCRIMINATORS)}")
    cls = DISCRIMINATORS[name]
    kwargs = _with_axis(cls, dict(model_config.get("discriminator_kwargs", {})), axis_name)
    conditioning = model_config.get("conditioning", "none")
    if model_config.get("spectral_norm", False):
        if not _accepts(cls, "spectral_norm"):
            raise ValueError(f"discriminator {name!r} has no spectral-norm option")
        kwargs["spectral_norm"] = True
    if conditioning == "acgan":
        if not _accepts(cls, "aux_classes"):
            raise ValueError(f"discriminator {name!r} has no AC-GAN class head")
        kwargs["aux_classes"] = model_config.num_classes
    discriminator = cls(**kwargs)
    if conditioning == "concat":
        return conditional_nets.ConditionalDiscriminator(
            discriminator, model_config.num_classes, labels_as_channels=name in CONV_NETS
        )
    return discriminator


def sigmoid_bias_from_marginals(x_Nx, eps: float = 1e-3) -> jax.Array:
    """Inverse sigmoid of the mean pixel, so an untrained sigmoid G outputs the data's marginals
    (pylearn2's init_sigmoid_bias_from_marginals)."""
    mean = jnp.clip(jnp.mean(x_Nx.reshape(x_Nx.shape[0], -1), axis=0), eps, 1.0 - eps)
    return jnp.log(mean) - jnp.log1p(-mean)


def with_output_bias(g_params, bias):
    """G params with the output layer's bias replaced: the layer named 'output', at the top or
    inside a wrapper (e.g. a conditional G's inner net)."""
    if "output" in g_params:
        output = dict(g_params["output"], bias=jnp.asarray(bias, jnp.float32))
        return dict(g_params, output=output)
    for name, sub in g_params.items():
        if isinstance(sub, dict) and _has_output_layer(sub):
            return dict(g_params, **{name: with_output_bias(sub, bias)})
    raise ValueError(f"generator has no layer named 'output'; layers: {sorted(g_params)}")


def _has_output_layer(params) -> bool:
    return "output" in params or any(
        isinstance(sub, dict) and _has_output_layer(sub) for sub in params.values()
    )


def takes_example_ids(apply_fn) -> bool:
    """Whether a module's `apply` accepts `example_ids` (nets whose randomness is per row),
    looking through the conditional wrapper to the D it wraps."""
    return _module_takes_example_ids(getattr(apply_fn, "__self__", None))


def _module_takes_example_ids(module) -> bool:
    if isinstance(module, conditional_nets.ConditionalDiscriminator):
        return _module_takes_example_ids(module.discriminator)
    return module is not None and "example_ids" in inspect.signature(module.__call__).parameters


def rows_independent(apply_fn) -> bool:
    """Whether a D's training-mode output on each row depends on that row alone, so that real
    and fake rows may share one call. Only nets known to be per-row say yes: a net with a
    batch-coupled layer (batch norm, minibatch discrimination), or one not listed here, says no."""
    module = getattr(apply_fn, "__self__", None)
    if isinstance(module, conditional_nets.ConditionalDiscriminator):
        module = module.discriminator
    if isinstance(module, dense_nets.Gan2014Discriminator | text_nets.TextDiscriminator):
        return True
    if isinstance(module, dense_nets.MLPDiscriminator | dense_nets.ImprovedGANMNISTDiscriminator):
        return not module.minibatch_discrimination
    if isinstance(module, conv_nets.DCGANDiscriminator | conv_nets.PatchDiscriminator):
        return not module.use_batch_norm
    if isinstance(module, resnet_nets.ResNetDiscriminator):
        return True
    return False
