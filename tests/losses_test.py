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
