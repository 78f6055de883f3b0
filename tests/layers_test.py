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
    np.testing.assert_allclose(ours.apply(params, x), reference.apply(params, x), atol=2e-6)

    def grads(module):
        return jax.grad(lambda p, x: jnp.sum(jnp.sin(module.apply(p, x))), argnums=(0, 1))(
            params, x
        )

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
