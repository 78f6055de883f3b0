from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import layers

# (image size, in channels, out channels, kernel, stride): DCGAN's 4x4 / 2, odd sizes, kernels
# not a multiple of the stride (DCGAN-tensorflow's 5x5), kernels smaller than the stride.
CASES = [(7, 5, 3, 4, 2), (14, 4, 6, 4, 2), (9, 2, 3, 6, 3), (7, 3, 2, 5, 2), (6, 2, 2, 1, 2)]
PAIRS = [(nn.Conv, layers.Conv), (nn.ConvTranspose, layers.ConvTranspose)]


@pytest.mark.parametrize("flax_layer,layer", PAIRS, ids=["conv", "conv_transpose"])
@pytest.mark.parametrize("size,c_in,c_out,k,s", CASES)
def test_space_to_depth_layers_equal_flax(flax_layer, layer, size, c_in, c_out, k, s):
    """Same parameters, same outputs and same gradients as flax's 'SAME'-padded layers."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size + 1, c_in))
    reference, ours = flax_layer(c_out, (k, k), (s, s), "SAME"), layer(c_out, (k, k), (s, s))
    params = reference.init(jax.random.PRNGKey(1), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(1), x)) == jax.tree.map(
        jnp.shape, params
    )
    # Jitted: op by op, every primitive of both layers compiles on its own (1.5x slower here).
    outputs = [jax.jit(module.apply)(params, x) for module in (ours, reference)]
    np.testing.assert_allclose(*outputs, atol=2e-6)

    def grads(module):
        loss = lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)

    for a, b in zip(jax.tree.leaves(grads(ours)), jax.tree.leaves(grads(reference)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5)


def test_space_to_depth_layers_reject_unequal_strides():
    x = jnp.zeros((1, 8, 8, 1))
    with pytest.raises(ValueError, match=r"strides \(2, 1\)"):
        layers.Conv(2, (4, 4), (2, 1)).init(jax.random.PRNGKey(0), x)


def test_row_dropout_mask_follows_example_ids():
    """A row's mask depends on its example id, not its position: split batches agree."""
    x = jnp.ones((6, 50))
    drop = layers.RowDropout(0.5)
    rngs = {"dropout": jax.random.PRNGKey(3)}
    ids = jnp.arange(6)
    whole = drop.apply({}, x, False, ids, rngs=rngs)
    halves = [drop.apply({}, x[i : i + 3], False, ids[i : i + 3], rngs=rngs) for i in (0, 3)]
    np.testing.assert_array_equal(whole, jnp.concatenate(halves))
    assert set(np.unique(whole)) == {0.0, 2.0}
    assert 0.35 < float(jnp.mean(whole == 0.0)) < 0.65


def test_max_over_pieces_equals_jnp_max_and_routes_a_tie_to_the_first_piece():
    h = jax.random.normal(jax.random.PRNGKey(0), (6, 4, 5))
    g = jax.random.normal(jax.random.PRNGKey(1), (6, 4))
    out, vjp = jax.vjp(layers.max_over_pieces, h)
    ref_out, ref_vjp = jax.vjp(lambda h: jnp.max(h, axis=-1), h)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(vjp(g)[0], ref_vjp(g)[0])  # no ties: the same gradient

    tied = h.at[0, 0].set(jnp.array([0.0, 2.0, 1.0, 2.0, 2.0]))
    grad = jax.grad(lambda h: jnp.sum(layers.max_over_pieces(h) * g))(tied)
    np.testing.assert_array_equal(grad[0, 0], [0.0, g[0, 0], 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(grad[1:], ref_vjp(g)[0][1:])


# ----------------------------------------------------------------------------- Salimans et al. 2016


def np_minibatch_features(f_BxA, t_AxBxC):
    """Sec. 3.2 in plain numpy: o(x_i)_b = sum_{j != i} exp(-||M_i,b - M_j,b||_1)."""
    m = np.einsum("na,abc->nbc", f_BxA, t_AxBxC)
    n, kernels = m.shape[0], m.shape[1]
    o = np.zeros((n, kernels))
    for i in range(n):
        for j in range(n):
            if j != i:
                o[i] += np.exp(-np.abs(m[i] - m[j]).sum(axis=-1))
    return np.concatenate([f_BxA, o], axis=1)


def test_minibatch_discrimination_matches_numpy_without_the_self_term():
    f = np.random.default_rng(0).normal(size=(5, 40)).astype(np.float32)
    layer = layers.MinibatchDiscrimination(3, 2)

    @jax.jit
    def run(key):
        t = layer.init(key, f)["params"]["kernel"]
        return t, layer.apply({"params": {"kernel": 4.0 * t}}, f)  # distances of order 1

    t, out = run(jax.random.PRNGKey(1))
    assert t.shape == (40, 3, 2)
    assert np.std(t) == pytest.approx(0.05, rel=0.2)  # the authors' init, N(0, 0.05)
    expected = np_minibatch_features(f, 4.0 * np.asarray(t, np.float64))
    np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize("kernel_size", [1, 4, 5])
def test_conv1d_is_flax_conv_same_with_the_same_parameters(kernel_size):
    x = np.random.default_rng(0).normal(size=(3, 7, 6)).astype(np.float32)
    flax_conv = nn.Conv(4, (kernel_size,), padding="SAME")
    ours = layers.Conv1D(4, kernel_size)
    key = jax.random.PRNGKey(2)
    params = flax_conv.init(key, x)
    assert jax.tree.map(np.shape, ours.init(key, x)) == jax.tree.map(np.shape, params)
    np.testing.assert_array_equal(ours.init(key, x)["params"]["kernel"], params["params"]["kernel"])
    bias = {"bias": np.linspace(-1, 1, 4).astype(np.float32)}
    params = {"params": dict(params["params"], **bias)}
    np.testing.assert_allclose(
        ours.apply(params, x), flax_conv.apply(params, x), rtol=1e-5, atol=1e-6
    )


def np_authors_minibatch_layer(f_BxA, theta_AxBxC, log_scale_BxC, bias_B, init=False):
    """openai/improved-gan nn.MinibatchLayer in numpy: (output, log_scale, bias) after the call,
    which with init=True is their data-dependent init pass."""
    w = theta_AxBxC * (np.exp(log_scale_BxC) / np.sqrt(np.sum(theta_AxBxC**2, axis=0)))[None]
    act_NxBxC = np.tensordot(f_BxA, w, [[1], [0]])
    n = f_BxA.shape[0]
    abs_dif_NxBxN = (
        np.sum(np.abs(act_NxBxC[:, :, :, None] - act_NxBxC.transpose(1, 2, 0)[None]), axis=2)
        + 1e6 * np.eye(n)[:, None, :]
    )
    if init:
        mean_min_B = 0.5 * np.mean(np.min(abs_dif_NxBxN, axis=2), axis=0)
        abs_dif_NxBxN = abs_dif_NxBxN / mean_min_B[None, :, None]
        log_scale_BxC = log_scale_BxC - np.log(mean_min_B)[:, None]
    f_NxB = np.sum(np.exp(-abs_dif_NxBxN), axis=2)
    if init:
        bias_B = -np.mean(f_NxB, axis=0)
        f_NxB = f_NxB + bias_B
    else:
        f_NxB = f_NxB + bias_B
    return np.concatenate([f_BxA, f_NxB], axis=1), log_scale_BxC, bias_B


@pytest.mark.parametrize("data_init", [False, True])
def test_minibatch_discrimination_with_the_authors_parametrisation_matches_their_layer(data_init):
    rng = np.random.default_rng(0)
    f_init, f = (rng.normal(size=(6, 10)).astype(np.float32) for _ in range(2))
    layer = layers.MinibatchDiscrimination(3, 2, parametrisation="authors", data_init=data_init)
    variables = jax.jit(layer.init)(jax.random.PRNGKey(1), f_init)
    params = {k: np.asarray(v, np.float64) for k, v in variables["params"].items()}
    theta = params["kernel"]
    zero_scale, start_bias = np.zeros((3, 2)), np.full(3, -1.0)
    init_out, log_scale, bias = np_authors_minibatch_layer(
        f_init, theta, zero_scale, start_bias, init=data_init
    )
    np.testing.assert_allclose(params["log_scale"], log_scale, rtol=1e-5)
    np.testing.assert_allclose(params["bias"], bias, rtol=1e-5)
    # The init pass returns what the set params give on that batch (zero-mean o with data init).
    np.testing.assert_allclose(layer.apply(variables, f_init), init_out, rtol=1e-4, atol=1e-6)
    if data_init:
        np.testing.assert_allclose(init_out[:, 10:].mean(0), 0.0, atol=1e-6)
    # A later call, with a learned scale that differs per kernel column (b, c).
    trained = dict(params, log_scale=params["log_scale"] + rng.normal(0, 0.3, (3, 2)))
    out = layer.apply({"params": trained}, f)
    expected, _, _ = np_authors_minibatch_layer(f, theta, trained["log_scale"], trained["bias"])
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)


def test_minibatch_discrimination_sums_over_the_global_batch_under_pmap():
    """pmap over 2 devices: each device's rows see all 8 rows, outputs and summed parameter
    gradients equal one device's on the same global batch."""
    devices = jax.devices()[:2]
    rng = np.random.default_rng(0)
    f_8xA = rng.normal(size=(8, 6)).astype(np.float32)
    params = {"params": {"kernel": rng.normal(0.0, 0.3, (6, 4, 3)).astype(np.float32)}}
    single = layers.MinibatchDiscrimination(4, 3)
    sharded = layers.MinibatchDiscrimination(4, 3, axis_name="d")

    def out_and_grad(module, p, f):
        return module.apply(p, f), jax.grad(lambda p: jnp.sum(jnp.sin(module.apply(p, f))))(p)

    out, grads = jax.jit(partial(out_and_grad, single))(params, f_8xA)

    def per_device(p, f):
        out, grads = out_and_grad(sharded, p, f)
        return out, jax.lax.psum(grads, "d")

    replicated = jax.tree.map(lambda x: np.stack([x, x]), params)
    got, got_grads = jax.pmap(per_device, axis_name="d", devices=devices)(
        replicated, f_8xA.reshape(2, 4, 6)
    )
    np.testing.assert_allclose(got.reshape(8, -1), out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        got_grads["params"]["kernel"][0], grads["params"]["kernel"], rtol=1e-4, atol=1e-6
    )


def np_vbn(x_BxC, reference_size, gamma_C, beta_C, epsilon):
    """Sec. 3.5 / the authors' VBN in plain numpy, one row at a time."""
    axes = tuple(range(x_BxC.ndim - 1))
    ref = x_BxC[:reference_size]
    ref_mean, ref_sq = ref.mean(axis=axes), (ref**2).mean(axis=axes)
    out = np.empty_like(x_BxC)
    w = 1.0 / (reference_size + 1)
    for i, row in enumerate(x_BxC):
        own = tuple(range(row.ndim - 1))
        if i < reference_size:
            mean, sq = ref_mean, ref_sq
        else:
            mean = w * row.mean(axis=own) + (1 - w) * ref_mean
            sq = w * (row**2).mean(axis=own) + (1 - w) * ref_sq
        out[i] = (row - mean) / np.sqrt(sq - mean**2 + epsilon) * gamma_C + beta_C
    return out


def test_virtual_batch_norm_matches_numpy_and_a_row_sees_the_reference_and_itself_only():
    """On [B, F] and [B, H, W, C]: the numpy formula. A non-reference row's output has zero
    gradient with respect to the other non-reference rows and a non-zero one with respect to
    each reference row (gradients flow through the reference statistics, as the authors')."""
    layer = layers.VirtualBatchNorm(reference_size=3, epsilon=1e-3)
    rng = np.random.default_rng(0)
    x_flat = (2.0 + 3.0 * rng.normal(size=(7, 5))).astype(np.float32)
    x_image = (2.0 + 3.0 * rng.normal(size=(6, 3, 2, 4))).astype(np.float32)

    @jax.jit
    def run(key):
        initial = layer.init(key, x_flat)["params"]
        results = []
        for x in (x_flat, x_image):
            gamma = 1.0 + 0.1 * jnp.arange(x.shape[-1])
            params = {"params": {"scale": gamma, "bias": jnp.full_like(gamma, 0.5)}}
            row_4 = jax.grad(lambda x, p=params: jnp.sum(jnp.sin(layer.apply(p, x)[4])))(x)
            results.append((gamma, layer.apply(params, x), row_4))
        return initial, results

    initial, results = run(jax.random.PRNGKey(2))
    assert 0 < np.std(initial["scale"]) < 0.1 and np.all(initial["bias"] == 0)  # N(1, 0.02), 0
    for x, (gamma, out, grad_row_4) in zip((x_flat, x_image), results, strict=True):
        expected = np_vbn(np.asarray(x, np.float64), 3, np.asarray(gamma), 0.5, 1e-3)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
        others = np.abs(np.asarray(grad_row_4)).reshape(x.shape[0], -1).sum(axis=1)
        assert np.all(others[[3, 5]] == 0.0) and np.all(others[[0, 1, 2, 4]] > 1e-4)


def test_weight_norm_dense_matches_numpy_and_its_data_dependent_init():
    x = (np.random.default_rng(0).normal(size=(9, 5)) + 1.0).astype(np.float32)
    layer, data_layer = layers.WeightNormDense(3), layers.WeightNormDense(3, data_init=True)
    fixed = layers.WeightNormDense(3, train_scale=False)
    g, b = np.array([0.5, 2.0, -1.0], np.float32), np.array([0.1, 0.0, -0.3], np.float32)

    @jax.jit
    def run(key):
        initial = layer.init(key, x)["params"]
        params = {"params": dict(initial, scale=g, bias=b)}
        scale_grads = [
            jax.grad(lambda p, m=m: jnp.sum(m.apply(p, x) ** 2))(params)["params"]["scale"]
            for m in (layer, fixed)
        ]
        data_out = data_layer.apply(data_layer.init(key, x), x)
        return initial, layer.apply(params, x), scale_grads, data_out

    initial, out, (trained, held), data_out = run(jax.random.PRNGKey(1))
    v = np.asarray(initial["kernel"])
    assert np.std(v) == pytest.approx(0.1, rel=0.5)  # the authors' N(0, 0.1)
    assert np.all(initial["scale"] == 1) and np.all(initial["bias"] == 0)
    expected = np.asarray(x) @ (v / np.linalg.norm(v, axis=0)) * np.asarray(g) + np.asarray(b)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # A scale that is not trained gets no gradient; one that is does.
    assert np.all(held == 0.0) and np.all(trained != 0.0)
    # Data-dependent init: the init batch's pre-activations come out with mean 0 and std 1.
    np.testing.assert_allclose(np.mean(data_out, 0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.std(data_out, 0), 1.0, rtol=1e-4)
    with pytest.raises(ValueError, match="data_init needs a batch of >= 2 rows at init.*got 1"):
        jax.eval_shape(data_layer.init, jax.random.PRNGKey(1), x[:1])


def test_gaussian_noise_only_in_training_with_its_std_and_per_example_draws():
    noise = layers.GaussianNoise(0.5)
    x = np.ones((4, 5000), np.float32)
    ids = np.arange(4) + 10

    @jax.jit
    def run(key):
        rngs = {"dropout": key}
        return (
            noise.apply({}, x, True),
            noise.apply({}, x, False, ids, rngs=rngs),
            noise.apply({}, x[2:], False, ids[2:], rngs=rngs),
        )

    off, y, half = run(jax.random.PRNGKey(3))
    np.testing.assert_array_equal(off, x)
    noise_4xN = np.asarray(y) - x
    assert np.std(noise_4xN) == pytest.approx(0.5, rel=0.03) and abs(np.mean(noise_4xN)) < 0.02
    np.testing.assert_array_equal(half, y[2:])  # row r's noise follows its id, not its place


def test_salimans_layers_name_their_bad_settings():
    x = np.zeros((4, 3), np.float32)
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="num_kernels = 0 is not allowed; expected an int >= 1"):
        jax.eval_shape(layers.MinibatchDiscrimination(0).init, key, x)
    with pytest.raises(ValueError, match=r"parametrisation = 'tf' is not allowed; .*'authors'"):
        jax.eval_shape(layers.MinibatchDiscrimination(2, parametrisation="tf").init, key, x)
    with pytest.raises(ValueError, match=r"data_init needs parametrisation='authors'"):
        jax.eval_shape(layers.MinibatchDiscrimination(2, data_init=True).init, key, x)
    authors = layers.MinibatchDiscrimination(2, parametrisation="authors", data_init=True)
    with pytest.raises(ValueError, match=r"data_init needs a batch of >= 2 rows at init; got 1"):
        jax.eval_shape(authors.init, key, x[:1])
    variables = authors.init(key, np.random.default_rng(0).normal(size=(4, 3)))
    assert authors.apply(variables, x[:1]).shape == (1, 5)  # one row after init is fine
    with pytest.raises(ValueError, match=r"reference_size 5 needs .* B >= 5 .*got \(4, 3\)"):
        jax.eval_shape(layers.VirtualBatchNorm(5).init, key, x)
    with pytest.raises(ValueError, match="std = -0.1 is not allowed"):
        layers.GaussianNoise(-0.1).apply({}, x, False, rngs={"dropout": key})
