"""The ResNet G and D of Gulrajani et al. 2017 and Miyato et al. 2018: each residual block
equals the authors' layer order written with plain lax convs (shortcut conv after upsampling,
before pooling), the papers' widths give their parameter counts, the two poolings differ by
H*W, and the D sows each block and carries spectral-norm state for every layer."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import net_parts, resnet_nets

KEY = jax.random.PRNGKey(0)


def conv_ref(x, p):
    y = jax.lax.conv_general_dilated(
        x, p["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y + p["bias"]


def pool_ref(x):  # tflib's ConvMeanPool: the mean of the four strided views
    return (x[:, ::2, ::2] + x[:, 1::2, ::2] + x[:, ::2, 1::2] + x[:, 1::2, 1::2]) / 4.0


def up_ref(x):  # tflib's UpsampleConv: depth_to_space of 4 copies, each pixel a 2x2 block
    b, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None], (b, h, 2, w, 2, c)).reshape(b, 2 * h, 2 * w, c)


relu = jax.nn.relu


def down_ref(p, x, first, downsample=True):
    pool = pool_ref if downsample else (lambda v: v)
    main = pool(conv_ref(relu(conv_ref(x if first else relu(x), p["conv1"])), p["conv2"]))
    if "shortcut" not in p:
        return main + x
    # OptimizedBlock pools then convolves its shortcut, Block convolves then pools.
    if first:
        return main + conv_ref(pool_ref(x), p["shortcut"])
    return main + pool(conv_ref(x, p["shortcut"]))


def up_ref_block(p, x):
    main = conv_ref(relu(conv_ref(up_ref(relu(x)), p["conv1"])), p["conv2"])
    return main + conv_ref(up_ref(x), p["shortcut"])


BLOCKS = {  # name: (block, its input shape, the reference)
    "down": (resnet_nets.ResBlockDown(5), (2, 8, 8, 3), lambda p, x: down_ref(p, x, False)),
    "first": (
        resnet_nets.ResBlockDown(5, first=True),
        (2, 8, 8, 3),
        lambda p, x: down_ref(p, x, True),
    ),
    "plain": (
        resnet_nets.ResBlockDown(6, downsample=False),
        (2, 4, 4, 6),
        lambda p, x: down_ref(p, x, False, False),
    ),
    "up": (resnet_nets.ResBlockUp(4, norm=False), (2, 4, 4, 3), up_ref_block),
}


def random_like(tree, seed=0):
    """Normal draws in the shapes of `tree` (numpy: no init to compile)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32) * 0.3, tree)


def blocks_and_references():
    """{name: (params, block output, reference output)}, in one compile."""
    inputs = {}
    for i, (name, (block, shape, _)) in enumerate(BLOCKS.items()):
        x = np.random.default_rng(i).normal(size=shape).astype(np.float32)
        inputs[name] = (random_like(jax.eval_shape(block.init, KEY, x)["params"], i), x)

    @jax.jit
    def run(inputs):
        return {
            name: (p, block.apply({"params": p}, x), reference(p, x))
            for (name, (p, x)), (block, _, reference) in zip(
                inputs.items(), BLOCKS.values(), strict=True
            )
        }

    return run(inputs)


def test_residual_blocks_are_the_authors_layer_order():
    out = blocks_and_references()
    for name, (_, got, expected) in out.items():
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=name)
    assert out["down"][1].shape == (2, 4, 4, 5) and out["up"][1].shape == (2, 8, 8, 4)
    assert out["plain"][1].shape == (2, 4, 4, 6) and "shortcut" not in out["plain"][0]
    # The hidden width: the input's in Block, the output's in OptimizedBlock.
    assert out["down"][0]["conv1"]["kernel"].shape == (3, 3, 3, 3)
    assert out["first"][0]["conv1"]["kernel"].shape == (3, 3, 3, 5)


def count(variables):
    return sum(math.prod(a.shape) for a in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize("g_width", [128, 256])  # Gulrajani et al. / Miyato et al.
def test_cifar_nets_have_the_papers_sizes(g_width):
    g = resnet_nets.ResNetGenerator((32, 32, 3), base_features=g_width)
    g_vars = jax.eval_shape(g.init, KEY, jnp.zeros((2, 128)))
    f = g_width
    up_block = 2 * (9 * f * f + f) + (f * f + f) + 2 * 2 * f  # two 3x3 convs, 1x1, two BNs
    g_expected = (128 * 16 * f + 16 * f) + 3 * up_block + 2 * f + (9 * f * 3 + 3)
    assert count(g_vars) == g_expected  # 1,204,483 and 4,276,739
    d = resnet_nets.ResNetDiscriminator(features=128)
    d_vars = jax.eval_shape(d.init, KEY, jnp.zeros((2, 32, 32, 3)))
    c = 128
    conv3 = 9 * c * c + c
    first = (9 * 3 * c + c) + conv3 + (3 * c + c)
    d_expected = first + (2 * conv3 + c * c + c) + 2 * (2 * conv3) + (c + 1)
    assert count(d_vars) == d_expected == 1_053_825
    x = jax.eval_shape(
        lambda v: g.apply(v, jnp.zeros((2, 128)), mutable=["batch_stats"])[0], g_vars
    )
    assert x.shape == (2, 32, 32, 3)


def test_sum_pooling_is_hw_times_mean_pooling_and_blocks_are_sown():
    x = jax.random.normal(KEY, (3, 16, 16, 3))
    mean_d = resnet_nets.ResNetDiscriminator(features=4, pooling="mean", output_bias=False)
    sum_d = resnet_nets.ResNetDiscriminator(features=4, pooling="sum", output_bias=False)
    params = random_like(jax.eval_shape(mean_d.init, KEY, x))

    @jax.jit
    def both(params, x):
        logits, sown = mean_d.apply(params, x, mutable=["intermediates"])
        return logits, sown, sum_d.apply(params, x)

    logits, sown, sum_logits = both(params, x)
    np.testing.assert_allclose(sum_logits, 4 * 4 * logits, rtol=1e-5)
    features = net_parts.sown_features(sown["intermediates"])
    assert [f.shape for f in features] == [(3, 8, 8, 4), (3, 4, 4, 4)] + [(3, 4, 4, 4)] * 2


def test_spectral_norm_covers_every_layer_and_64_pixels_get_a_fourth_up_block():
    d = resnet_nets.ResNetDiscriminator(features=4, spectral_norm=True, aux_classes=3)
    variables = jax.eval_shape(d.init, KEY, jnp.zeros((2, 64, 64, 3)))
    kernels = [p for p in jax.tree_util.tree_leaves_with_path(variables["params"])]
    kernels = [p for p, _ in kernels if jax.tree_util.keystr(p).endswith("['kernel']")]
    sigmas = jax.tree.leaves(variables["spectral"])
    assert len(sigmas) == 2 * len(kernels) == 2 * (3 + 3 + 2 + 2 + 1)  # u and sigma per layer
    out = jax.eval_shape(lambda v: d.apply(v, jnp.zeros((2, 64, 64, 3)), train=False), variables)
    assert out[0].shape == (2,) and out[1].shape == (2, 3)
    g = resnet_nets.ResNetGenerator((64, 64, 3), base_features=4)
    g_vars = jax.eval_shape(g.init, KEY, jnp.zeros((2, 8)))
    assert sum(name.startswith("ResBlockUp") for name in g_vars["params"]) == 4


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="pooling 'max'.*'mean', 'sum'"):
        resnet_nets.ResNetDiscriminator(pooling="max").init(KEY, jnp.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"images \(6, 6\) cannot be halved 2 times"):
        resnet_nets.ResNetDiscriminator().init(KEY, jnp.zeros((1, 6, 6, 3)))
    with pytest.raises(ValueError, match="norm 'layer'"):
        resnet_nets.ResNetGenerator(norm="layer").init(KEY, jnp.zeros((1, 8)))
