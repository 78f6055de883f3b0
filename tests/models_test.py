from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from layers_test import np_minibatch_features, np_vbn
from ml_collections import ConfigDict

from gan_jax import conditional_nets, conv_nets, dense_nets, models, net_parts


def count(params):
    return sum(p.size for p in jax.tree.leaves(params))


def test_gan2014_shapes_and_parameter_counts():
    g, d = dense_nets.Gan2014Generator(), dense_nets.Gan2014Discriminator()
    key = jax.random.PRNGKey(0)
    # Jitted inits: op by op, each initialiser and layer compiles on its own.
    g_params = jax.jit(g.init)(key, jnp.zeros((1, 100)))["params"]
    d_params = jax.jit(d.init)(key, jnp.zeros((1, 28, 28, 1)))["params"]
    assert count(g_params) == 100 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 784 + 784
    assert count(d_params) == 785 * 1200 + 241 * 1200 + 241  # maxout: 240 units x 5 pieces
    z = jax.random.uniform(key, (5, 100), minval=-1, maxval=1)
    x = jax.jit(g.apply)({"params": g_params}, z)
    assert x.shape == (5, 28, 28, 1) and float(x.min()) >= 0 and float(x.max()) <= 1
    logits = jax.jit(d.apply, static_argnames="train")({"params": d_params}, x, train=False)
    assert logits.shape == (5,)


def test_maxout_is_max_over_pieces():
    layer = dense_nets.Maxout(units=3, pieces=4, init_scale=1.0)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 5))
    params = layer.init(jax.random.PRNGKey(0), x)["params"]["Dense_0"]
    affine = np.asarray(x @ params["kernel"] + params["bias"]).reshape(2, 3, 4)
    np.testing.assert_allclose(
        layer.apply({"params": {"Dense_0": params}}, x), affine.max(-1), rtol=1e-6
    )


def test_dropout_only_in_training():
    d = dense_nets.Gan2014Discriminator()
    x = jax.random.uniform(jax.random.PRNGKey(0), (8, 28, 28, 1))
    params = d.init(jax.random.PRNGKey(1), x, train=False)
    eval_a = d.apply(params, x, train=False)
    eval_b = d.apply(params, x, train=False)
    train_a = d.apply(params, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    train_b = d.apply(params, x, train=True, rngs={"dropout": jax.random.PRNGKey(3)})
    np.testing.assert_array_equal(eval_a, eval_b)
    assert not np.allclose(train_a, train_b)


def test_output_bias_from_marginals_reproduces_pixel_means():
    g = dense_nets.Gan2014Generator(output_shape=(4,))
    params = g.init(jax.random.PRNGKey(0), jnp.zeros((1, 10)))["params"]
    x = jnp.array([[0.0, 0.2, 0.5, 1.0], [0.0, 0.4, 0.5, 1.0]])
    bias = models.sigmoid_bias_from_marginals(x)
    params = models.with_output_bias(params, bias)
    zero_kernel = dict(params["output"], kernel=jnp.zeros_like(params["output"]["kernel"]))
    out = g.apply({"params": dict(params, output=zero_kernel)}, jnp.zeros((1, 10)))
    np.testing.assert_allclose(out[0], [1e-3, 0.3, 0.5, 1 - 1e-3], rtol=1e-4)


def test_keras_mlp_defaults():
    cfg = ConfigDict({"generator": "mlp", "discriminator": "mlp"})
    g = models.make_generator(cfg, (28, 28, 1))
    d = models.make_discriminator(cfg)
    g_params = jax.jit(g.init)(jax.random.PRNGKey(0), jnp.zeros((1, 100)))["params"]
    d_params = jax.jit(d.init)(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))["params"]
    widths = [g_params[f"Dense_{i}"]["kernel"].shape for i in range(4)]
    assert widths == [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    assert [d_params[f"Dense_{i}"]["kernel"].shape for i in range(3)] == [
        (784, 512),
        (512, 256),
        (256, 1),
    ]
    x = jax.jit(g.apply)({"params": g_params}, jnp.full((2, 100), 10.0))
    assert float(jnp.abs(x).max()) <= 1.0


# ----------------------------------------------------------------------------- after 2014

import flax.linen as nn  # noqa: E402
import pytest  # noqa: E402


def shapes(tree):
    return jax.tree.map(lambda x: tuple(x.shape), tree)


def test_upsampling_plan():
    assert [net_parts.upsampling_plan(s) for s in (28, 32, 64, 16)] == [
        (7, 2),
        (4, 3),
        (4, 4),
        (4, 2),
    ]
    assert net_parts.upsampling_plan(30) == (15, 1)
    for size in (7, 27):
        with pytest.raises(ValueError, match=f"image size {size} is not"):
            net_parts.upsampling_plan(size)


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (28, 28, 3), (32, 32, 3)])
def test_dcgan_layer_shapes(image_shape):
    # Radford et al. 2016: project z, then fractionally-strided convs doubling the size and
    # halving the features; D mirrors it with strided convs and batch norm after the first.
    g = conv_nets.DCGANGenerator(output_shape=image_shape, base_features=8)
    d = conv_nets.DCGANDiscriminator(base_features=8)
    key, z = jax.random.PRNGKey(0), jnp.zeros((2, 10))
    g_vars = jax.eval_shape(lambda: g.init(key, z, train=False))
    start, n = net_parts.upsampling_plan(image_shape[0])
    widths = [8 * 2 ** (n - 1 - i) for i in range(n)] + [image_shape[2]]
    assert shapes(g_vars["params"])["Dense_0"]["kernel"] == (10, start * start * widths[0])
    convs = [shapes(g_vars["params"])[f"ConvTranspose_{i}"]["kernel"] for i in range(n)]
    assert convs == [(4, 4, widths[i], widths[i + 1]) for i in range(n)]
    assert len(g_vars["batch_stats"]) == n  # after the projection and each hidden layer
    x = jax.eval_shape(lambda v: g.apply(v, z, train=False), g_vars)
    assert x.shape == (2, *image_shape)
    d_vars = jax.eval_shape(lambda: d.init(key, jnp.zeros((2, *image_shape)), train=False))
    assert len(d_vars["batch_stats"]) == n - 1  # none at the input layer
    logits = jax.eval_shape(lambda v: d.apply(v, jnp.zeros((2, *image_shape)), train=False), d_vars)
    assert logits.shape == (2,)


def test_batch_norm_uses_batch_statistics_only_in_training():
    g = conv_nets.DCGANGenerator(output_shape=(16, 16, 1), base_features=2)
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
    variables = jax.jit(g.init, static_argnames="train")(jax.random.PRNGKey(1), z, train=False)
    apply = jax.jit(g.apply, static_argnames=("train", "mutable"))
    # Eval: running averages, so an example's output does not depend on its batch.
    np.testing.assert_allclose(
        apply(variables, z, train=False)[:1], apply(variables, z[:1], train=False), atol=1e-6
    )
    full, new_vars = apply(variables, z, train=True, mutable=("batch_stats",))
    part, _ = apply(variables, z[:2], train=True, mutable=("batch_stats",))
    assert not np.allclose(full[:2], part)  # training: normalised by the batch's statistics
    assert float(jnp.abs(full).max()) <= 1.0  # tanh output
    old, new = jax.tree.leaves(variables["batch_stats"]), jax.tree.leaves(new_vars["batch_stats"])
    assert any(not np.allclose(a, b) for a, b in zip(old, new, strict=True))


class _OneLayer(nn.Module):
    @nn.compact
    def __call__(self, x, train=True):
        return net_parts.normalised(nn.Dense(4, use_bias=False), x, True, train)


def test_spectral_norm_divides_the_weight_by_its_largest_singular_value():
    # Miyato et al. 2018, eq. 8: W_SN = W / sigma(W); power iteration converges to sigma(W).
    layer, eye = _OneLayer(), jnp.eye(6)
    variables = layer.init(jax.random.PRNGKey(0), eye, train=False)
    kernel = np.asarray(variables["params"]["Dense_0"]["kernel"])
    step = jax.jit(lambda v: layer.apply(v, eye, train=True, mutable=[net_parts.SPECTRAL]))
    for _ in range(30):
        _, updates = step(variables)
        variables = {**variables, **updates}
    out = layer.apply(variables, eye, train=False)  # rows of W / sigma
    np.testing.assert_allclose(out, kernel / np.linalg.svd(kernel)[1][0], rtol=1e-4)
    assert np.linalg.svd(np.asarray(out))[1][0] == pytest.approx(1.0, abs=1e-4)
    frozen = layer.apply(variables, eye, train=False, mutable=[net_parts.SPECTRAL])[1]
    jax.tree.map(np.testing.assert_array_equal, frozen, {net_parts.SPECTRAL: variables["spectral"]})


def test_conditional_nets_take_one_hot_labels():
    g = conditional_nets.ConditionalGenerator(
        dense_nets.MLPGenerator(output_shape=(2,), hidden=(8,)), 3
    )
    z = jnp.zeros((6, 4))
    variables = g.init(jax.random.PRNGKey(0), z, train=False)
    assert variables["params"]["generator"]["Dense_0"]["kernel"].shape == (4 + 3, 8)
    by_label = [g.apply(variables, z, jnp.full(6, c), train=False) for c in range(3)]
    assert not np.allclose(by_label[0], by_label[1])
    default = g.apply(variables, z, train=False)  # no labels: y_i = i mod 3
    np.testing.assert_allclose(default[4], by_label[1][4], rtol=1e-6)
    cfg = ConfigDict({"discriminator": "dcgan", "conditioning": "concat", "num_classes": 10})
    cfg.discriminator_kwargs = {"base_features": 4}
    x = jnp.zeros((2, 28, 28, 1))
    d_vars = jax.eval_shape(lambda: models.make_discriminator(cfg).init(jax.random.PRNGKey(0), x))
    assert shapes(d_vars["params"])["discriminator"]["Conv_0"]["kernel"] == (4, 4, 1 + 10, 4)
    cfg = ConfigDict({"discriminator": "mlp", "conditioning": "concat", "num_classes": 10})
    cfg.discriminator_kwargs = {"hidden": (3,)}
    d_vars = jax.eval_shape(lambda: models.make_discriminator(cfg).init(jax.random.PRNGKey(0), x))
    assert shapes(d_vars["params"])["discriminator"]["Dense_0"]["kernel"] == (784 + 10, 3)


def test_acgan_head_patch_logits_and_spectral_state_from_config():
    from gan_jax.config import default_config

    cfg = default_config().model
    cfg.update(discriminator="dcgan", conditioning="acgan", num_classes=10, spectral_norm=True)
    cfg.discriminator_kwargs = {"base_features": 4}
    d = models.make_discriminator(cfg, axis_name="devices")
    assert d.aux_classes == 10 and d.spectral_norm and d.axis_name == "devices"
    x = jnp.zeros((3, 28, 28, 1))
    variables = jax.eval_shape(lambda: d.init(jax.random.PRNGKey(0), x, train=False))
    assert set(variables) == {"params", "batch_stats", net_parts.SPECTRAL}
    logits, classes = jax.eval_shape(lambda v: d.apply(v, x, train=False), variables)
    assert logits.shape == (3,) and classes.shape == (3, 10)
    cfg.update(discriminator="patch", conditioning="none", spectral_norm=False)
    cfg.discriminator_kwargs = {"features": (4, 8)}
    patch = models.make_discriminator(cfg)
    variables = jax.eval_shape(lambda: patch.init(jax.random.PRNGKey(0), x, train=False))
    out = jax.eval_shape(lambda v: patch.apply(v, x, train=False), variables)
    assert out.shape == (3, 7, 7)
    cfg.update(generator="mlp", discriminator="mlp")
    cfg.generator_kwargs, cfg.discriminator_kwargs = {}, {}
    assert not hasattr(models.make_generator(cfg, (2,), axis_name="devices"), "axis_name")


def test_output_bias_reaches_a_wrapped_generator():
    g = conditional_nets.ConditionalGenerator(
        dense_nets.Gan2014Generator(output_shape=(4,), hidden=3), 10
    )
    params = g.init(jax.random.PRNGKey(0), jnp.zeros((1, 5)))["params"]
    bias = jnp.arange(4.0)
    new = models.with_output_bias(params, bias)
    np.testing.assert_array_equal(new["generator"]["output"]["bias"], bias)
    with pytest.raises(ValueError, match="no layer named 'output'"):
        models.with_output_bias({"Dense_0": {"bias": bias}}, bias)


def test_only_nets_known_to_be_per_row_may_see_real_and_fake_rows_in_one_call():
    def answer(module):
        return models.rows_independent(module.apply)

    assert answer(dense_nets.Gan2014Discriminator()) and answer(dense_nets.MLPDiscriminator())
    assert answer(
        conditional_nets.ConditionalDiscriminator(dense_nets.MLPDiscriminator(), num_classes=10)
    )
    assert answer(conv_nets.DCGANDiscriminator(use_batch_norm=False))
    assert not answer(conv_nets.DCGANDiscriminator())  # batch norm couples the rows
    assert not answer(conv_nets.PatchDiscriminator())
    assert not answer(conditional_nets.ConditionalDiscriminator(conv_nets.DCGANDiscriminator(), 10))

    class BatchMeanD(nn.Module):  # an unlisted net, coupling rows like minibatch features
        @nn.compact
        def __call__(self, x, train=True):
            return nn.Dense(1)(x - x.mean(axis=0))[:, 0]

    assert not answer(BatchMeanD())


def test_example_ids_reach_the_2014_d_through_the_conditional_wrapper():
    wrapped = conditional_nets.ConditionalDiscriminator(
        dense_nets.Gan2014Discriminator(units=4, pieces=2), 10
    )
    assert models.takes_example_ids(wrapped.apply)
    assert not models.takes_example_ids(
        conditional_nets.ConditionalDiscriminator(conv_nets.DCGANDiscriminator(), 10).apply
    )
    x_4xN, y_4, key = jnp.ones((4, 6)), jnp.zeros(4, jnp.int32), jax.random.PRNGKey(1)
    params = wrapped.init(key, x_4xN, y_4)
    rows = [
        wrapped.apply(params, x_4xN, y_4, example_ids=ids, rngs={"dropout": key})
        for ids in (jnp.arange(4), jnp.arange(4) + 2)
    ]
    # Row i's dropout mask follows its id: ids 2..5 shifted by two rows give rows 2..3 of 0..3.
    np.testing.assert_array_equal(rows[1][:2], rows[0][2:])
    assert not np.array_equal(rows[0], rows[1])


# ----------------------------------------------------------------------------- Salimans et al. 2016


def test_improved_gan_mnist_nets_have_the_authors_sizes():
    key = jax.random.PRNGKey(0)
    d_shapes = shapes(
        jax.eval_shape(
            partial(dense_nets.ImprovedGANMNISTDiscriminator().init, train=False),
            key,
            np.zeros((2, 28, 28, 1), np.float32),
        )["params"]
    )
    widths = [784, 1000, 500, 250, 250, 250, 10]
    assert [d_shapes[f"WeightNormDense_{i}"]["kernel"] for i in range(6)] == list(
        zip(widths[:-1], widths[1:], strict=True)
    )
    mbd = dense_nets.ImprovedGANMNISTDiscriminator(minibatch_discrimination=100)
    mbd_shapes = shapes(
        jax.eval_shape(partial(mbd.init, train=False), key, np.zeros((2, 784), np.float32))
    )
    mbd_shapes = mbd_shapes["params"]
    assert mbd_shapes["MinibatchDiscrimination_0"]["kernel"] == (250, 100, 5)
    assert mbd_shapes["WeightNormDense_5"]["kernel"] == (350, 10)  # MBD right before the output
    g_vars = jax.eval_shape(
        dense_nets.ImprovedGANMNISTGenerator().init, key, np.zeros((2, 100), np.float32)
    )
    g_shapes = shapes(g_vars["params"])
    assert g_shapes["Dense_0"] == {"kernel": (100, 500)} and g_shapes["BatchNorm_0"] == {
        "bias": (500,)  # an offset, no scale, no dense bias: the authors' batch_norm(g=None)
    }
    assert g_shapes["output"] == {"kernel": (500, 784), "scale": (784,), "bias": (784,)}
    config = ConfigDict({"generator": "improved_gan_mnist", "discriminator": "improved_gan_mnist"})
    assert isinstance(
        models.make_generator(config, (28, 28, 1)), dense_nets.ImprovedGANMNISTGenerator
    )
    d = models.make_discriminator(config, axis_name="devices")
    assert isinstance(d, dense_nets.ImprovedGANMNISTDiscriminator) and d.axis_name == "devices"
    assert models.rows_independent(d.apply)
    assert not models.rows_independent(mbd.apply)  # minibatch features couple the rows
    plain = dense_nets.ImprovedGANMNISTDiscriminator(num_classes=0)
    variables = jax.eval_shape(
        partial(plain.init, train=False), key, np.zeros((2, 784), np.float32)
    )
    logit = jax.eval_shape(
        partial(plain.apply, train=False), variables, np.zeros((2, 784), np.float32)
    )
    assert logit.shape == (2,)  # K = 0: a plain logit


def vbn_batch_and_alone(g, variables, z_BxZ):
    """(G on the batch in training mode, its updated 'vbn_reference', G on each row alone in
    inference mode): a VBN G's rows must not depend on the batch they come in."""

    @jax.jit
    def run(variables):
        out, new = g.apply(variables, z_BxZ, train=True, mutable=["vbn_reference"])
        alone = jax.vmap(lambda z_1xZ: g.apply(variables, z_1xZ[None], train=False)[0])(z_BxZ)
        return out, new, alone

    return run(variables)


def numpy_variables(module, *inputs, seed=0):
    """A module's variables filled from numpy (scales near 1, reference z uniform on [-1, 1]),
    with the structure of its init but without compiling its random initialisers."""
    rng = np.random.default_rng(seed)
    structure = jax.eval_shape(partial(module.init, train=False), jax.random.PRNGKey(0), *inputs)

    def fill(path, leaf):
        name = jax.tree_util.keystr(path)
        if "vbn_reference" in name:
            return rng.uniform(-1.0, 1.0, leaf.shape).astype(np.float32)
        centre = 1.0 if "scale" in name else 0.0
        return (centre + 0.3 * rng.standard_normal(leaf.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(fill, structure)


def np_weight_norm_dense(x, p):
    v = np.asarray(p["kernel"], np.float64)
    return x @ (v / np.linalg.norm(v, axis=0)) * np.asarray(p["scale"]) + np.asarray(p["bias"])


def test_improved_gan_mnist_d_is_the_k_plus_one_class_d_and_sows_its_hidden_layers():
    """Eval mode against numpy: the hidden layers, sown in order, the K logits, and D(x) =
    sigmoid(logsumexp(l)) = Z / (Z + 1) (Sec. 5). Changing row 0 leaves the other rows' outputs
    alone in training mode (noise drawn per row) without minibatch discrimination, not with it."""
    # No input noise: the first hidden layer's sown output is then the same in training mode,
    # if it is sown before that layer's noise, as the authors' feature layer is.
    d = dense_nets.ImprovedGANMNISTDiscriminator(hidden=(8, 6), num_classes=3, input_noise=0.0)
    mbd = dense_nets.ImprovedGANMNISTDiscriminator(hidden=(8, 6), minibatch_discrimination=2)
    x = np.random.default_rng(0).uniform(size=(4, 5)).astype(np.float32)
    x_other = x.copy()
    x_other[0] = 1.0 - x[0]
    both = np.stack([x, x_other])
    variables, mbd_variables = numpy_variables(d, x), numpy_variables(mbd, x)

    @jax.jit
    def run(variables, mbd_variables, key):
        (lse, logits), sown = d.apply(variables, x, train=False, mutable=["intermediates"])
        rngs = {"dropout": key}

        def train(x):
            (lse, _), sown = d.apply(
                variables, x, True, jnp.arange(4), rngs=rngs, mutable=["intermediates"]
            )
            return lse, sown["intermediates"]["features"][0]

        d_rows, train_features = jax.vmap(train)(both)
        mbd_rows = jax.vmap(lambda x: mbd.apply(mbd_variables, x, train=False)[0])(both)
        features = sown["intermediates"]["features"]
        return lse, logits, features, d_rows, train_features[0], mbd_rows

    lse, logits, features, d_rows, train_features, mbd_rows = run(
        variables, mbd_variables, jax.random.PRNGKey(5)
    )
    np.testing.assert_allclose(train_features, features[0], rtol=1e-6)
    params = variables["params"]
    h = np.asarray(x, np.float64)
    for i, f in enumerate(features):
        h = np.maximum(np_weight_norm_dense(h, params[f"WeightNormDense_{i}"]), 0.0)
        np.testing.assert_allclose(f, h, rtol=1e-4, atol=1e-6)
    assert len(features) == 2 and features[-1].shape == (4, 6)  # the last hidden layer last
    expected_logits = np_weight_norm_dense(h, params["WeightNormDense_2"])
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-6)
    z = np.exp(expected_logits).sum(axis=1)
    np.testing.assert_allclose(jax.nn.sigmoid(lse), z / (z + 1.0), rtol=1e-5)
    assert d_rows[0, 0] != d_rows[1, 0]
    np.testing.assert_array_equal(d_rows[0, 1:], d_rows[1, 1:])
    assert np.all(mbd_rows[0, 1:] != mbd_rows[1, 1:])  # minibatch features couple the rows


def test_improved_gan_mnist_g_ignores_z_offset_and_scale_in_training():
    """Batch norm after the bias-free first layer: the authors' z ~ U[0, 1] and our U[-1, 1]
    (2u - 1) give the same samples, which lie in (0, 1)."""
    g = dense_nets.ImprovedGANMNISTGenerator(hidden=(16, 16))
    u = np.random.default_rng(0).uniform(size=(8, 100)).astype(np.float32)

    @jax.jit
    def run(variables):
        return [
            g.apply(variables, z, train=True, mutable=["batch_stats"])[0] for z in (u, 2 * u - 1)
        ]

    x01, x11 = run(numpy_variables(g, u))
    assert x01.shape == (8, 28, 28, 1) and float(x01.min()) > 0 and float(x01.max()) < 1
    np.testing.assert_allclose(x01, x11, atol=1e-5)


def test_vbn_generator_rows_depend_on_their_own_z_and_the_reference_only():
    """DCGAN G with norm='vbn': G(z) row i is G(z_i) alone, equals a reference computation
    (flax layers and a numpy VBN on concat(z_ref, z)), and z_ref lives in 'vbn_reference',
    drawn once at init and never updated."""
    g = conv_nets.DCGANGenerator((16, 16, 1), base_features=4, norm="vbn", vbn_reference_size=5)
    z = np.random.default_rng(0).uniform(-1.0, 1.0, (3, 8)).astype(np.float32)
    variables = numpy_variables(g, z)

    out, new, alone = vbn_batch_and_alone(g, variables, z)
    z_ref = variables["vbn_reference"]["z"]
    assert z_ref.shape == (5, 8)
    np.testing.assert_array_equal(new["vbn_reference"]["z"], z_ref)  # fixed for good
    np.testing.assert_allclose(alone, out, rtol=1e-5, atol=1e-6)
    drawn = net_parts.reference_z(jax.random.PRNGKey(1), 64, 8, "uniform")
    assert drawn.shape == (64, 8) and -1 <= drawn.min() < -0.9 and 0.9 < drawn.max() <= 1

    p = variables["params"]

    def vbn(h, i):
        scale, bias = (np.asarray(p[f"VirtualBatchNorm_{i}"][k]) for k in ("scale", "bias"))
        return np.maximum(np_vbn(np.asarray(h, np.float64), 5, scale, bias, 1e-5), 0.0)

    h = np.concatenate([z_ref, np.asarray(z)]) @ np.asarray(p["Dense_0"]["kernel"])
    h = vbn(h.reshape(8, 4, 4, 8), 0)
    conv_0 = jax.jit(nn.ConvTranspose(4, (4, 4), (2, 2), "SAME", use_bias=False).apply)
    h = conv_0({"params": p["ConvTranspose_0"]}, h.astype(np.float32))
    conv_1 = jax.jit(nn.ConvTranspose(1, (4, 4), (2, 2), "SAME").apply)
    h = conv_1({"params": p["ConvTranspose_1"]}, vbn(h, 1).astype(np.float32))
    np.testing.assert_allclose(out, np.tanh(h[5:]), rtol=1e-4, atol=1e-5)


def test_dcgan_generator_norm_option_keeps_the_old_nets_and_names_bad_settings():
    key, z = jax.random.PRNGKey(0), np.zeros((2, 10), np.float32)

    def param_shapes(**kwargs):
        g = conv_nets.DCGANGenerator(base_features=4, **kwargs)
        return shapes(jax.eval_shape(partial(g.init, train=False), key, z))

    assert param_shapes() == param_shapes(norm="batch")
    assert param_shapes(use_batch_norm=False) == param_shapes(norm="none")
    assert "batch_stats" not in param_shapes(norm="vbn")
    with pytest.raises(ValueError, match="norm='vbn' contradicts use_batch_norm=False"):
        param_shapes(norm="vbn", use_batch_norm=False)
    with pytest.raises(ValueError, match=r"unknown norm 'layer'; allowed: \('batch', 'vbn'"):
        param_shapes(norm="layer")


def test_mlp_generator_with_vbn_gives_each_row_its_own_z_and_the_reference_only():
    """MLP G with norm='vbn': the batch's rows equal the rows computed one at a time (so no row
    sees another), and both equal numpy's dense -> VBN (reference rows first) -> ReLU stack;
    z_ref is drawn once, in 'vbn_reference'. The default norm keeps the plain net's params."""
    vbn = {"norm": "vbn", "vbn_reference_size": 4, "vbn_reference_z": "normal"}
    g = dense_nets.MLPGenerator((2,), hidden=(6, 5), output_activation="linear", **vbn)
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 2))
    variables = numpy_variables(g, z)

    out, new, alone = vbn_batch_and_alone(g, variables, z)
    z_ref, p = variables["vbn_reference"]["z"], variables["params"]
    np.testing.assert_array_equal(new["vbn_reference"]["z"], z_ref)  # fixed for good
    np.testing.assert_allclose(alone, out, rtol=1e-5, atol=1e-6)
    h = np.concatenate([z_ref, np.asarray(z)]).astype(np.float64)
    for i in range(2):
        vbn = [np.asarray(p[f"VirtualBatchNorm_{i}"][k]) for k in ("scale", "bias")]
        h = np.maximum(np_vbn(h @ np.asarray(p[f"Dense_{i}"]["kernel"]), 4, *vbn, 1e-5), 0.0)
    expected = h @ np.asarray(p["Dense_2"]["kernel"]) + np.asarray(p["Dense_2"]["bias"])
    np.testing.assert_allclose(out, expected[4:], rtol=1e-4, atol=1e-5)
    assert out.shape == (3, 2) and "bias" not in p["Dense_0"]  # VBN removes a dense bias
    plain = dense_nets.MLPGenerator((2,), hidden=(6, 5))
    plain_shapes = jax.eval_shape(partial(plain.init, train=False), jax.random.PRNGKey(0), z)
    assert set(plain_shapes) == {"params"} and "bias" in plain_shapes["params"]["Dense_0"]
    with pytest.raises(ValueError, match=r"unknown norm 'batch'; allowed: \('none', 'vbn'\)"):
        dense_nets.MLPGenerator((2,), norm="batch").init(jax.random.PRNGKey(0), z)


def test_mlp_discriminator_minibatch_features_sit_before_the_output_and_couple_the_rows():
    """MLP D with minibatch discrimination: numpy's hidden layers -> Sec. 3.2's features ->
    dense logit; changing row 0 changes every other row's logit (not so without it), so the D
    is not rows_independent; make_discriminator passes it the pmap axis."""
    d = dense_nets.MLPDiscriminator(
        hidden=(6, 5), minibatch_discrimination=3, minibatch_kernel_dim=2
    )
    plain = dense_nets.MLPDiscriminator(hidden=(6, 5))
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 2))
    both = jnp.stack([x, x.at[0].set(x[0] + 1.0)])
    variables, plain_variables = numpy_variables(d, x), numpy_variables(plain, x)

    @jax.jit
    def run(variables, plain_variables):
        logits = jax.vmap(lambda x: d.apply(variables, x))(both)
        return logits, jax.vmap(lambda x: plain.apply(plain_variables, x))(both)

    logits, plain_logits = run(variables, plain_variables)
    p = variables["params"]
    h = np.asarray(x, np.float64)
    for i in range(2):
        h = np.maximum(h @ np.asarray(p[f"Dense_{i}"]["kernel"]) + p[f"Dense_{i}"]["bias"], 0.0)
    h = np_minibatch_features(h, np.asarray(p["MinibatchDiscrimination_0"]["kernel"], np.float64))
    expected = h @ np.asarray(p["Dense_2"]["kernel"]) + np.asarray(p["Dense_2"]["bias"])
    np.testing.assert_allclose(logits[0], expected[:, 0], rtol=1e-4, atol=1e-5)
    assert p["Dense_2"]["kernel"].shape == (5 + 3, 1)
    assert np.all(logits[0, 1:] != logits[1, 1:])  # minibatch features couple the rows
    np.testing.assert_array_equal(plain_logits[0, 1:], plain_logits[1, 1:])
    assert not models.rows_independent(d.apply) and models.rows_independent(plain.apply)
    config = ConfigDict(
        {"discriminator": "mlp", "discriminator_kwargs": {"minibatch_discrimination": 3}}
    )
    assert models.make_discriminator(config, axis_name="devices").axis_name == "devices"
    with pytest.raises(ValueError, match="minibatch_discrimination = -1: must be >= 0"):
        dense_nets.MLPDiscriminator(minibatch_discrimination=-1).init(jax.random.PRNGKey(0), x)
