"""Adversarial losses, computed from D's raw outputs ("logits") so that no log of a rounded
sigmoid is taken.

For the sigmoid losses (minimax, non-saturating) D(x) = sigmoid(l): log D = -softplus(-l) and
log(1 - D) = -softplus(l). For LSGAN, WGAN and hinge the raw output l *is* the paper's D(x) (no
sigmoid). Each loss is a pair of functions to *minimise*: `d_loss(real_logits, fake_logits)` and
`g_loss(fake_logits)`. Every term is a mean over all elements, so a PatchGAN D's logits_BxPxP are
averaged over patches and examples alike. Hyperparameters are keyword-only, bound by `get_loss`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


def log_sigmoid(logits):
    """log D(x)."""
    return -jax.nn.softplus(-logits)


def log_one_minus_sigmoid(logits):
    """log(1 - D(x))."""
    return -jax.nn.softplus(logits)


def value_function(real_logits_B, fake_logits_B):
    """Minibatch estimate of V(D, G) = E log D(x) + E log(1 - D(G(z))) (Goodfellow 2014, eq. 1)."""
    return jnp.mean(log_sigmoid(real_logits_B)) + jnp.mean(log_one_minus_sigmoid(fake_logits_B))


def minimax_d_loss(real_logits_B, fake_logits_B, real_label: float = 1.0):
    """D maximises V, so it minimises -V: the cross-entropy of D(x) against target 1 on real
    rows and 0 on fake ones.

    `real_label` = alpha < 1 is one-sided label smoothing (Salimans et al. 2016, Sec. 3.4): the
    real rows' target becomes alpha, the fake rows' stays 0, and G's losses do not change. With
    targets alpha (real) and beta (fake) the optimal D is D*(x) = (alpha p_data(x) + beta
    p_model(x)) / (p_data(x) + p_model(x)); a beta > 0 would make D* large where p_data is small
    and p_model is not, so G would get no push to move those samples towards the data, which is
    why only the real label is smoothed. The authors (openai/improved-gan imagenet/build_model.py,
    alpha = 0.75) subtract the target's entropy to make the loss a KL: a constant, same gradients.
    """
    return -(
        real_label * jnp.mean(log_sigmoid(real_logits_B))
        + (1.0 - real_label) * jnp.mean(log_one_minus_sigmoid(real_logits_B))
        + jnp.mean(log_one_minus_sigmoid(fake_logits_B))
    )


def saturating_g_loss(fake_logits_B):
    """The paper's minimax G: minimise E log(1 - D(G(z)))."""
    return jnp.mean(log_one_minus_sigmoid(fake_logits_B))


def non_saturating_g_loss(fake_logits_B):
    """The paper's practical G (Section 3): maximise E log D(G(z)), i.e. minimise its negative."""
    return -jnp.mean(log_sigmoid(fake_logits_B))


def lsgan_d_loss(real_B, fake_B, *, a: float = 0.0, b: float = 1.0):
    """LSGAN D (Mao et al. 2017, eq. 2): 1/2 E(D(x) - b)^2 + 1/2 E(D(G(z)) - a)^2.

    D(x) is D's raw output. a and b are the labels of fake and real data: the 0-1 coding is
    a=0, b=1 (eq. 9); a=-1, b=1 with c=0 makes G minimise the Pearson chi^2 (eq. 8).
    """
    return 0.5 * jnp.mean((real_B - b) ** 2) + 0.5 * jnp.mean((fake_B - a) ** 2)


def lsgan_g_loss(fake_B, *, c: float = 1.0):
    """LSGAN G (Mao et al. 2017, eq. 2): 1/2 E(D(G(z)) - c)^2, c the value G wants D to believe."""
    return 0.5 * jnp.mean((fake_B - c) ** 2)


def wgan_d_loss(real_B, fake_B):
    """WGAN critic (Arjovsky et al. 2017, eq. 3 / Algorithm 1): maximise E f(x) - E f(G(z)),
    i.e. minimise its negative; f is D's raw output, kept K-Lipschitz by clipping or a penalty."""
    return jnp.mean(fake_B) - jnp.mean(real_B)


def wgan_g_loss(fake_B):
    """WGAN G (Arjovsky et al. 2017, Algorithm 1): minimise -E f(G(z))."""
    return -jnp.mean(fake_B)


def hinge_d_loss(real_B, fake_B):
    """Hinge D (Lim & Ye 2017; Miyato et al. 2018, eq. 16):
    E max(0, 1 - D(x)) + E max(0, 1 + D(G(z))), with D(x) the raw output."""
    return jnp.mean(jax.nn.relu(1.0 - real_B)) + jnp.mean(jax.nn.relu(1.0 + fake_B))


def hinge_g_loss(fake_B):
    """Hinge G (Miyato et al. 2018, eq. 17): -E D(G(z)), the same as WGAN's G."""
    return wgan_g_loss(fake_B)


def class_cross_entropy(class_logits_BxK, labels_B):
    """AC-GAN's class term (Odena et al. 2017, eq. 2): -L_C = -E log P(C = c | X), per batch."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits_BxK, labels_B))


FEATURE_MATCHING_REDUCTIONS = ("sum", "mean")


def feature_matching(f_real_BxF, f_fake_BxF, *, reduction: str = "sum"):
    """Feature matching, G's loss in Salimans et al. 2016, Sec. 3.1: ||E f(x) - E f(G(z))||_2^2,
    with f an intermediate layer of D and each expectation a batch mean (the two batches may
    differ in size).

    `reduction='sum'` is the paper's squared L2 norm (the default); 'mean' divides it by F, as the
    authors' code does (openai/improved-gan mnist_svhn_cifar10/train_mnist_feature_matching.py:
    `T.mean(T.square(mom_gen - mom_real))`), a constant factor that Adam, the authors' optimiser,
    all but ignores. The gradient with respect to each fake row is 2 / B_fake (mu_fake -
    mu_real) (times 1/F for 'mean'); D is not trained on this loss (the caller differentiates
    it with respect to G's parameters only). Returns a scalar. Raises ValueError unless both
    inputs are [B, F] with the same F, or for an unknown reduction.
    """
    if reduction not in FEATURE_MATCHING_REDUCTIONS:
        raise ValueError(
            f"feature_matching: reduction {reduction!r} is not allowed; expected one of"
            f" {FEATURE_MATCHING_REDUCTIONS}"
        )
    real_shape, fake_shape = jnp.shape(f_real_BxF), jnp.shape(f_fake_BxF)
    if len(real_shape) != 2 or len(fake_shape) != 2 or real_shape[1] != fake_shape[1]:
        raise ValueError(
            "feature_matching needs features [B_real, F] and [B_fake, F] with the same F; got"
            f" {real_shape} and {fake_shape}"
        )
    diff_F = jnp.mean(f_real_BxF, axis=0) - jnp.mean(f_fake_BxF, axis=0)
    return jnp.sum(diff_F**2) if reduction == "sum" else jnp.mean(diff_F**2)


def identity(outputs):
    """D's raw output as the reported D(x): for losses whose D is a score, not a probability."""
    return outputs


class GANLoss(NamedTuple):
    """One loss family: D's loss on real and fake logits [B], G's loss on fake logits [B],
    and the map from D's raw output to the D(x) reported in metrics."""

    d_loss: Callable  # (real_logits_B, fake_logits_B) -> scalar
    g_loss: Callable  # (fake_logits_B) -> scalar
    # D's raw output -> the paper's D(x), for metrics: a probability for the sigmoid losses, the
    # raw value itself for LSGAN (a regression target), WGAN (a critic score) and hinge.
    d_output: Callable = jax.nn.sigmoid


LOSSES = {
    "minimax": GANLoss(minimax_d_loss, saturating_g_loss),
    "non_saturating": GANLoss(minimax_d_loss, non_saturating_g_loss),
    "lsgan": GANLoss(lsgan_d_loss, lsgan_g_loss, identity),
    "wgan": GANLoss(wgan_d_loss, wgan_g_loss, identity),
    "hinge": GANLoss(hinge_d_loss, hinge_g_loss, identity),
}
SIGMOID_LOSSES = ("minimax", "non_saturating")

# config.loss key -> the keyword of the loss functions it sets, per loss.
CONFIG_KEYS = {
    "minimax": {"real_label": "real_label"},
    "non_saturating": {"real_label": "real_label"},
    "lsgan": {"lsgan_a": "a", "lsgan_b": "b", "lsgan_c": "c"},
}


def _hyperparams(fn: Callable) -> set[str]:
    """A loss function's hyperparameters: its arguments with defaults."""
    params = inspect.signature(fn).parameters.values()
    return {p.name for p in params if p.default is not inspect.Parameter.empty}


def _bind(fn: Callable, hyperparams: dict) -> Callable:
    accepted = {k: v for k, v in hyperparams.items() if k in _hyperparams(fn)}
    return functools.partial(fn, **accepted) if accepted else fn


def get_loss(name: str, **hyperparams) -> GANLoss:
    """The named loss pair, each function bound to the keyword hyperparameters it takes."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; allowed: {sorted(LOSSES)}")
    loss = LOSSES[name]
    allowed = _hyperparams(loss.d_loss) | _hyperparams(loss.g_loss)
    unknown = sorted(set(hyperparams) - allowed)
    if unknown:
        raise ValueError(
            f"loss {name!r} takes no hyperparameter {unknown}; allowed: {sorted(allowed)}"
        )
    return loss._replace(
        d_loss=_bind(loss.d_loss, hyperparams), g_loss=_bind(loss.g_loss, hyperparams)
    )


def from_config(loss_config) -> GANLoss:
    """The loss a `config.loss` section names, with that loss's hyperparameters bound."""
    keys = CONFIG_KEYS.get(loss_config.name, {})
    return get_loss(loss_config.name, **{kw: loss_config[key] for key, kw in keys.items()})
