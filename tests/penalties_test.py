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


def test_dragan_perturbs_real_data_by_a_mixed_fraction_of_half_its_std():
    """D(x) = x^2 / 2 has gradient x, so with target 0 the penalty is E[x_hat^2]. Real data half
    0s and half 2s (std 1), x_hat = x + alpha * 0.5 * 1 * u with alpha, u ~ U[0, 1] independent:
    E[x_hat^2] = E[x^2] + E[x] E[alpha u] + E[alpha^2 u^2] / 4 = 2 + 1/4 + 1/36. Unperturbed
    points give 2, x + noise without alpha 2.583, noise of the full std 2.611, Gaussian noise
    in place of U[0, 1] 2.083."""
    real = jnp.tile(jnp.array([[0.0], [2.0]]), (8192, 1))
    square = lambda x: 0.5 * jnp.sum(x**2, axis=1)
    value = penalties.dragan_penalty(square, real, jax.random.PRNGKey(3), target=0.0)
    np.testing.assert_allclose(value, 2.0 + 0.25 + 1.0 / 36.0, atol=0.02)


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


def nonlinear_d(x):
    """D(x) = sum_i W_i sin(x_i) + ||x||^2 / 4: its input gradient W cos(x) + x / 2 changes
    with the position, so each penalty's points (real, fake, between, perturbed) give their own
    value, where a linear D gives every penalty the same."""
    x = x.reshape(x.shape[0], -1)
    return jnp.sin(x) @ W + 0.25 * jnp.sum(x**2, axis=1)


def reference_penalties(real, fake, key) -> dict[str, float]:
    """Each penalty's formula in float64 numpy on `nonlinear_d`'s gradient, drawn from the same
    uniforms as gan_jax (one eps per row for GP; DRAGAN's key split into the noise's per-element
    and the mixing fraction's per-row draws)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    w = np.asarray(W, np.float64)
    grad_norm = lambda x: np.linalg.norm(w * np.cos(x) + 0.5 * x, axis=1)
    eps = np.asarray(jax.random.uniform(key, (real.shape[0], 1)), np.float64)
    key_noise, key_mix = jax.random.split(key)
    u = np.asarray(jax.random.uniform(key_noise, real.shape), np.float64)
    alpha = np.asarray(jax.random.uniform(key_mix, (real.shape[0], 1)), np.float64)
    return {
        "none": 0.0,
        "gp": np.mean((grad_norm(eps * real + (1 - eps) * fake) - 1) ** 2),  # Gulrajani eq. 3
        "dragan": np.mean((grad_norm(real + alpha * 0.5 * real.std() * u) - 1) ** 2),  # Kodali
        "r1": np.mean(grad_norm(real) ** 2),  # Mescheder et al. eq. 9 without gamma / 2
        "r2": np.mean(grad_norm(fake) ** 2),
    }


def test_each_named_penalty_is_its_formula_on_a_nonlinear_d(batches):
    real, fake = batches
    key = jax.random.PRNGKey(5)
    expected = reference_penalties(real, fake, key)
    assert set(expected) == set(penalties.PENALTIES), "a new penalty needs its reference here"
    assert len({round(float(v), 3) for v in expected.values()}) == len(expected)  # all differ
    for name in penalties.PENALTIES:
        value = penalties.penalty(name, nonlinear_d, real, fake, key)
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-7, err_msg=name)
    with pytest.raises(ValueError, match="allowed"):
        penalties.penalty("bogus", linear_d, real, fake, key)


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


def test_historical_averaging_is_the_squared_distance_to_the_running_mean():
    rng = np.random.default_rng(0)
    history = [{"w": rng.normal(size=(3, 2)), "b": {"c": rng.normal(size=4)}} for _ in range(4)]
    update = jax.jit(penalties.update_historical_average)
    average = history[0]
    for count, params in enumerate(history[1:], start=1):
        average = update(average, params, count)
    for key, leaf in (("w", lambda p: p["w"]), ("c", lambda p: p["b"]["c"])):
        expected = np.mean([leaf(p) for p in history], axis=0)  # theta_bar, Sec. 3.3
        np.testing.assert_allclose(leaf(average), expected, rtol=1e-5, err_msg=key)
    # count 0 starts the average at the first value, whatever was there.
    zeros = jax.tree.map(np.zeros_like, history[0])
    first = update(zeros, history[0], 0)
    np.testing.assert_allclose(first["w"], history[0]["w"], rtol=1e-6)

    theta = {"w": rng.normal(size=(3, 2)), "b": {"c": rng.normal(size=4)}}
    expected = np.sum((theta["w"] - average["w"]) ** 2) + np.sum(
        (theta["b"]["c"] - average["b"]["c"]) ** 2
    )
    value, (grad_theta, grad_average) = jax.jit(
        jax.value_and_grad(penalties.historical_averaging, argnums=(0, 1))
    )(theta, average)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    np.testing.assert_allclose(grad_theta["w"], 2 * (theta["w"] - average["w"]), rtol=1e-5)
    assert all(np.all(g == 0) for g in jax.tree.leaves(grad_average))  # the average is fixed


def test_historical_averaging_names_mismatched_trees():
    with pytest.raises(ValueError, match=r"a parameter of shape \(2,\) has an average of shape"):
        penalties.historical_averaging({"w": np.zeros(2)}, {"w": np.zeros(3)})
    with pytest.raises(ValueError, match="differ in structure"):
        penalties.update_historical_average({"w": np.zeros(2)}, {"v": np.zeros(2)}, 1)
    with pytest.raises(ValueError, match="count = -1 is not allowed"):
        penalties.update_historical_average({"w": np.zeros(2)}, {"w": np.zeros(2)}, -1)
