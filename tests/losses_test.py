import jax
import numpy as np
import pytest

from gan_jax import losses


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture
def logits():
    rng = np.random.default_rng(0)
    return rng.normal(0, 2, 64).astype(np.float32), rng.normal(0, 2, 64).astype(np.float32)


def test_value_function_matches_numpy(logits):
    real, fake = logits
    expected = np.mean(np.log(np_sigmoid(real))) + np.mean(np.log(1 - np_sigmoid(fake)))
    np.testing.assert_allclose(losses.value_function(real, fake), expected, rtol=1e-5)


def test_d_loss_is_minus_value(logits):
    real, fake = logits
    np.testing.assert_allclose(
        losses.minimax_d_loss(real, fake), -losses.value_function(real, fake), rtol=1e-6
    )


def test_one_sided_label_smoothing_matches_numpy(logits):
    real, fake = logits
    a, dr, df = 0.9, np_sigmoid(real), np_sigmoid(fake)
    expected = -np.mean(a * np.log(dr) + (1 - a) * np.log(1 - dr)) - np.mean(np.log(1 - df))
    np.testing.assert_allclose(losses.minimax_d_loss(real, fake, 0.9), expected, rtol=1e-5)


def test_generator_losses_match_numpy(logits):
    _, fake = logits
    df = np_sigmoid(fake)
    np.testing.assert_allclose(losses.saturating_g_loss(fake), np.mean(np.log(1 - df)), rtol=1e-5)
    np.testing.assert_allclose(losses.non_saturating_g_loss(fake), -np.mean(np.log(df)), rtol=1e-5)


def test_losses_stay_finite_for_extreme_logits():
    extreme = np.array([-200.0, -50.0, 0.0, 50.0, 200.0], np.float32)
    for value in (
        losses.minimax_d_loss(extreme, extreme),
        losses.saturating_g_loss(extreme),
        losses.non_saturating_g_loss(extreme),
        jax.grad(losses.non_saturating_g_loss)(extreme),
    ):
        assert np.all(np.isfinite(value))


def test_saturating_gradient_vanishes_when_d_rejects_fakes():
    # D(G(z)) ~ 0: the minimax G gradient is ~ -D while the non-saturating one is ~ -(1 - D).
    fake = np.full(4, -8.0, np.float32)
    sat = jax.grad(losses.saturating_g_loss)(fake)
    non_sat = jax.grad(losses.non_saturating_g_loss)(fake)
    d = np_sigmoid(-8.0)
    np.testing.assert_allclose(sat, -d / 4, rtol=1e-4)
    np.testing.assert_allclose(non_sat, -(1 - d) / 4, rtol=1e-4)


def test_unknown_loss_names_allowed():
    with pytest.raises(ValueError, match="allowed"):
        losses.get_loss("nope")


# ----------------------------------------------------------------------------- after 2014


@pytest.mark.parametrize("a, b, c", [(0.0, 1.0, 1.0), (-1.0, 1.0, 0.0)])
def test_lsgan_matches_numpy(logits, a, b, c):
    # Mao et al. 2017, eq. 2 on D's raw outputs, for the 0-1 and the -1/1/0 codings.
    real, fake = logits
    loss = losses.get_loss("lsgan", a=a, b=b, c=c)
    expected_d = 0.5 * np.mean((real - b) ** 2) + 0.5 * np.mean((fake - a) ** 2)
    np.testing.assert_allclose(loss.d_loss(real, fake), expected_d, rtol=1e-5)
    np.testing.assert_allclose(loss.g_loss(fake), 0.5 * np.mean((fake - c) ** 2), rtol=1e-5)
    np.testing.assert_array_equal(loss.d_output(real), real)  # no sigmoid: D(x) is the output


def test_lsgan_optimal_d_is_the_weighted_label_average():
    # Mao et al. 2017, eq. 4: D*(x) = (b p_data(x) + a p_g(x)) / (p_data(x) + p_g(x)). On a
    # two-point support with p_data = (3/4, 1/4) and p_g = (1/4, 3/4), D is a free table t; the
    # loss is quadratic in t, so one Newton step from 0 lands on its minimiser.
    a, b = -1.0, 1.0
    real_idx, fake_idx = np.array([0, 0, 0, 1]), np.array([0, 1, 1, 1])
    d_loss = losses.get_loss("lsgan", a=a, b=b).d_loss
    table_loss = lambda t: d_loss(t[real_idx], t[fake_idx])
    t0 = jax.numpy.zeros(2)
    t_star = t0 - np.linalg.solve(jax.hessian(table_loss)(t0), jax.grad(table_loss)(t0))
    p_data, p_g = np.array([0.75, 0.25]), np.array([0.25, 0.75])
    np.testing.assert_allclose(t_star, (b * p_data + a * p_g) / (p_data + p_g), rtol=1e-5)


def test_wgan_and_hinge_match_numpy(logits):
    real, fake = logits
    wgan, hinge = losses.get_loss("wgan"), losses.get_loss("hinge")
    np.testing.assert_allclose(wgan.d_loss(real, fake), fake.mean() - real.mean(), rtol=1e-5)
    np.testing.assert_allclose(wgan.g_loss(fake), -fake.mean(), rtol=1e-5)
    expected = np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake))
    np.testing.assert_allclose(hinge.d_loss(real, fake), expected, rtol=1e-5)
    np.testing.assert_allclose(hinge.g_loss(fake), -fake.mean(), rtol=1e-5)


def test_patch_logits_are_averaged_over_patches_and_examples():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(4, 3, 3)), rng.normal(size=(4, 3, 3))
    expected = np.mean(np.log1p(np.exp(-real))) + np.mean(np.log1p(np.exp(fake)))
    np.testing.assert_allclose(losses.minimax_d_loss(real, fake), expected, rtol=1e-5)
    np.testing.assert_allclose(
        losses.hinge_d_loss(real, fake),
        np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake)),
        rtol=1e-6,
    )


def test_class_cross_entropy_matches_numpy():
    rng = np.random.default_rng(2)
    logits, labels = rng.normal(size=(6, 4)).astype(np.float32), np.array([0, 1, 2, 3, 3, 0])
    log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    expected = -np.mean(log_p[np.arange(6), labels])
    np.testing.assert_allclose(losses.class_cross_entropy(logits, labels), expected, rtol=1e-5)


def test_hyperparameters_bind_from_config_and_bad_ones_are_named():
    from gan_jax.config import default_config

    cfg = default_config().loss
    cfg.update(name="lsgan", lsgan_a=-1.0, lsgan_b=1.0, lsgan_c=0.0)
    loss = losses.from_config(cfg)
    fake = np.array([0.0, 2.0], np.float32)
    np.testing.assert_allclose(loss.g_loss(fake), 0.5 * np.mean(fake**2))
    np.testing.assert_allclose(
        loss.d_loss(fake, fake), 0.5 * np.mean((fake - 1) ** 2 + (fake + 1) ** 2)
    )
    cfg.update(name="non_saturating", real_label=0.9)
    smoothed = losses.from_config(cfg)
    np.testing.assert_allclose(smoothed.d_loss(fake, fake), losses.minimax_d_loss(fake, fake, 0.9))
    with pytest.raises(ValueError, match=r"'wgan' takes no hyperparameter \['a'\]"):
        losses.get_loss("wgan", a=0.0)


def test_feature_matching_matches_numpy_and_its_gradient_is_the_closed_form():
    rng = np.random.default_rng(1)
    f_real, f_fake = rng.normal(1.0, 2.0, (6, 4)), rng.normal(0.0, 1.0, (5, 4))
    mu_real, mu_fake = f_real.mean(0), f_fake.mean(0)
    expected = np.sum((mu_real - mu_fake) ** 2)  # Sec. 3.1: ||E f(x) - E f(G(z))||_2^2

    @jax.jit
    def run(f_real, f_fake):
        return [
            jax.value_and_grad(losses.feature_matching, argnums=1)(f_real, f_fake, reduction=r)
            for r in ("sum", "mean")
        ]

    (value, grad), (mean_value, mean_grad) = run(f_real, f_fake)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    np.testing.assert_allclose(mean_value, expected / 4, rtol=1e-5)  # the authors' scaling
    closed_form = np.broadcast_to(2.0 / 5 * (mu_fake - mu_real), (5, 4))  # 2/B (mu_f - mu_r)
    np.testing.assert_allclose(grad, closed_form, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(mean_grad, closed_form / 4, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"same F; got \(6, 4\) and \(5, 3\)"):
        losses.feature_matching(f_real, f_fake[:, :3])
    with pytest.raises(ValueError, match="reduction 'max' is not allowed"):
        losses.feature_matching(f_real, f_fake, reduction="max")


def test_one_sided_label_smoothing_changes_only_the_real_target(logits):
    """real_label < 1 moves D's real target only: the fake rows' term and its gradient stay
    those of target 0, and G's losses are the unsmoothed ones (Salimans et al. 2016, Sec. 3.4)."""
    real, fake = logits
    smooth = losses.get_loss("non_saturating", real_label=0.9)
    plain = losses.get_loss("non_saturating")
    minimax = losses.get_loss("minimax", real_label=0.9)

    @jax.jit
    def run(real, fake):
        d_value, (grad_real, grad_fake) = jax.value_and_grad(smooth.d_loss, (0, 1))(real, fake)
        g_values = (smooth.g_loss(fake), plain.g_loss(fake))
        return d_value, grad_real, grad_fake, g_values, minimax.g_loss(fake)

    d_value, grad_real, grad_fake, (g_smooth, g_plain), g_minimax = run(real, fake)
    dr = np_sigmoid(real)
    real_term = -np.mean(0.9 * np.log(dr) + 0.1 * np.log(1 - dr))
    # With the real term removed, what is left is the fake rows' loss at target 0.
    fake_term = -np.mean(np.log(1 - np_sigmoid(fake)))
    np.testing.assert_allclose(d_value - real_term, fake_term, rtol=1e-5)
    np.testing.assert_allclose(grad_fake, np_sigmoid(fake) / fake.size, rtol=1e-5)  # target 0
    np.testing.assert_allclose(grad_real, (dr - 0.9) / real.size, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(g_smooth, g_plain)  # G's loss is not smoothed
    np.testing.assert_allclose(g_minimax, np.mean(np.log(1 - np_sigmoid(fake))), rtol=1e-5)
