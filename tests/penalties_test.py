import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import penalties

W = jnp.array([0.3, -1.2, 2.0, 0.5])


def linear_d(x):
    return x.reshape(x.shape[0], -1) @ W + 0.7


@pytest.fixture
def batches():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return jax.random.normal(k1, (16, 4)), jax.random.normal(k2, (16, 4))


def test_gradient_penalty_of_linear_d_is_closed_form(batches):
    real, fake = batches
    value = penalties.gradient_penalty(linear_d, real, fake, jax.random.PRNGKey(1))
    np.testing.assert_allclose(value, (jnp.linalg.norm(W) - 1.0) ** 2, rtol=1e-5)


def test_dragan_of_linear_d_is_closed_form(batches):
    real, _ = batches
    value = penalties.dragan_penalty(linear_d, real, jax.random.PRNGKey(1))
    np.testing.assert_allclose(value, (jnp.linalg.norm(W) - 1.0) ** 2, rtol=1e-5)


def test_r1_r2_of_linear_and_quadratic_d(batches):
    real, fake = batches
    np.testing.assert_allclose(penalties.r1_penalty(linear_d, real), jnp.sum(W**2), rtol=1e-5)
    quadratic = lambda x: 0.5 * jnp.sum(x**2, axis=1)  # grad = x
    expected = jnp.mean(jnp.sum(fake**2, axis=1))
    np.testing.assert_allclose(penalties.r2_penalty(quadratic, fake), expected, rtol=1e-5)


def test_gradient_penalty_uses_interpolates_between_real_and_fake():
    # D(x) = 0.5 ||x||^2 has grad x, so the penalty sees |x_hat| with x_hat on the segment.
    real, fake = jnp.full((1000, 1), 2.0), jnp.zeros((1000, 1))
    quadratic = lambda x: 0.5 * jnp.sum(x**2, axis=1)
    value = penalties.gradient_penalty(quadratic, real, fake, jax.random.PRNGKey(2))
    # x_hat = 2 eps, eps ~ U[0,1]: E(2 eps - 1)^2 = 1/3.
    np.testing.assert_allclose(value, 1.0 / 3.0, atol=0.03)


def test_penalty_dispatch_and_gradient_is_finite(batches):
    real, fake = batches
    for name in penalties.PENALTIES:
        value = penalties.penalty(name, linear_d, real, fake, jax.random.PRNGKey(0))
        assert np.isfinite(value)
    with pytest.raises(ValueError, match="allowed"):
        penalties.penalty("bogus", linear_d, real, fake, jax.random.PRNGKey(0))


def test_penalties_see_a_patch_discriminator_through_its_mean_over_patches(batches):
    # A PatchGAN's loss averages its patch logits, so the D a penalty measures is that mean:
    # with patch p's logit x . W_p, grad_x = mean_p W_p and R1 = ||mean_p W_p||^2.
    from gan_jax.steps import per_example

    w_4xP = jnp.stack([W, -0.5 * W, 2.0 * W], axis=1)
    patch_d = lambda x: per_example((x @ w_4xP).reshape(x.shape[0], 3, 1))
    real, _ = batches
    expected = jnp.sum(jnp.mean(w_4xP, axis=1) ** 2)
    np.testing.assert_allclose(penalties.r1_penalty(patch_d, real), expected, rtol=1e-5)


@pytest.mark.parametrize("per_element", [False, True])
def test_a_devices_noise_is_its_rows_of_the_global_draw(per_element):
    key, x_6x3 = jax.random.PRNGKey(4), jnp.zeros((6, 3))
    whole = penalties.Rows().uniform(key, x_6x3, per_element)
    part = penalties.Rows(offset=2, global_batch=6).uniform(key, x_6x3[2:4], per_element)
    np.testing.assert_array_equal(part, whole[2:4])
    assert whole.shape == ((6, 3) if per_element else (6, 1))
