import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from gan_jax import models


def count(params):
    return sum(p.size for p in jax.tree.leaves(params))


def test_gan2014_shapes_and_parameter_counts():
    g, d = models.Gan2014Generator(), models.Gan2014Discriminator()
    key = jax.random.PRNGKey(0)
    g_params = g.init(key, jnp.zeros((1, 100)))["params"]
    d_params = d.init(key, jnp.zeros((1, 28, 28, 1)))["params"]
    assert count(g_params) == 100 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 784 + 784
    assert count(d_params) == 785 * 1200 + 241 * 1200 + 241  # maxout: 240 units x 5 pieces
    x = g.apply({"params": g_params}, jax.random.uniform(key, (5, 100), minval=-1, maxval=1))
    assert x.shape == (5, 28, 28, 1) and float(x.min()) >= 0 and float(x.max()) <= 1
    logits = d.apply({"params": d_params}, x, train=False)
    assert logits.shape == (5,)


def test_maxout_is_max_over_pieces():
    layer = models.Maxout(units=3, pieces=4, init_scale=1.0)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 5))
    params = layer.init(jax.random.PRNGKey(0), x)["params"]["Dense_0"]
    affine = np.asarray(x @ params["kernel"] + params["bias"]).reshape(2, 3, 4)
    np.testing.assert_allclose(
        layer.apply({"params": {"Dense_0": params}}, x), affine.max(-1), rtol=1e-6
    )


def test_dropout_only_in_training():
    d = models.Gan2014Discriminator()
    x = jax.random.uniform(jax.random.PRNGKey(0), (8, 28, 28, 1))
    params = d.init(jax.random.PRNGKey(1), x, train=False)
    eval_a = d.apply(params, x, train=False)
    eval_b = d.apply(params, x, train=False)
    train_a = d.apply(params, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    train_b = d.apply(params, x, train=True, rngs={"dropout": jax.random.PRNGKey(3)})
    np.testing.assert_array_equal(eval_a, eval_b)
    assert not np.allclose(train_a, train_b)


def test_output_bias_from_marginals_reproduces_pixel_means():
    g = models.Gan2014Generator(output_shape=(4,))
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
    g_params = g.init(jax.random.PRNGKey(0), jnp.zeros((1, 100)))["params"]
    d_params = d.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))["params"]
    widths = [g_params[f"Dense_{i}"]["kernel"].shape for i in range(4)]
    assert widths == [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    assert [d_params[f"Dense_{i}"]["kernel"].shape for i in range(3)] == [
        (784, 512),
        (512, 256),
        (256, 1),
    ]
    x = g.apply({"params": g_params}, jnp.full((2, 100), 10.0))
    assert float(jnp.abs(x).max()) <= 1.0
