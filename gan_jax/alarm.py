"""The collapse alarm: training and every sweep member watch for the two ways GANs fail here.

- D wins outright: mean D(G(z)) on G's samples (`d_fake`, a probability for the sigmoid losses)
  stays below `alarm.d_fake_below` for `alarm.consecutive` logs in a row (the collapse
  criterion of experiments/gan2014_collapse.py, made robust to one bad batch), or G's
  gradient norm (`g_grad_norm`) stays below `alarm.g_grad_norm_below` as long: G no longer
  learns. Goodfellow et al. 2014 (Sec. 3) describe the first: early in learning D rejects G's
  samples with high confidence.
- Mode collapse: G's samples are far less spread than the data. `sample_stats` draws a fixed
  batch of `alarm.num_samples` samples and gives their mean pairwise L2 distance divided by the
  same statistic of a fixed batch of real data (`alarm_diversity`, about 1 for a healthy G,
  near 0 when G maps every z to one image), and for MNIST-shaped data the number of the
  classifier's classes its samples fall in (`alarm_classes`, of 10). Both are computed in one
  jitted function at the log steps that cross a multiple of `alarm.every`, with no extra host
  round trips between them.

`check(history, config)` is a pure function of the logged records, so the thresholds can be
tested and tuned on any metrics.jsonl. The action (config.alarm.action: 'off', 'warn' or
'stop', config.ALARM_ACTIONS) decides what the host loops do with a reason: 'warn' writes
it to the log and as `alarm` to metrics.jsonl; 'stop' also ends the run (a solo run saves
its checkpoint and raises `CollapseAlarmError`; a sweep member is frozen and marked, like a
non-finite one).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import classifier, data, losses, steps

HIGHEST = jax.lax.Precision.HIGHEST  # default TPU/GPU matmuls (bf16/tf32) ruin distances
ALARM_SEED = 1812  # the fixed latent codes and real rows of `sample_stats`
CLASSIFIER_SHAPE = (28, 28, 1)


class CollapseAlarmError(Exception):
    """A run stopped by the alarm (action 'stop'); its checkpoint at that step is saved."""


def mean_pairwise_distance(x_NxD) -> jax.Array:
    """Mean Euclidean distance between the N (N - 1) ordered pairs of distinct rows (float32,
    Precision.HIGHEST Gram matrix). Rows are centred first: distances are unchanged and the
    float32 rounding of |a|^2 + |b|^2 - 2 a.b shrinks with the norms."""
    x_NxD = x_NxD.reshape(x_NxD.shape[0], -1).astype(jnp.float32)
    x_NxD = x_NxD - jnp.mean(x_NxD, axis=0)
    sq_N = jnp.sum(x_NxD**2, axis=1)
    d2_NxN = sq_N[:, None] + sq_N[None, :] - 2.0 * jnp.matmul(x_NxD, x_NxD.T, precision=HIGHEST)
    n = x_NxD.shape[0]
    off_diagonal = 1.0 - jnp.eye(n)
    return jnp.sum(jnp.sqrt(jnp.maximum(d2_NxN, 0.0)) * off_diagonal) / (n * (n - 1))


def uses_classifier(config) -> bool:
    """Whether `sample_stats` counts classes: labelled MNIST-shaped digits, the classifier's."""
    return config.data.name == "mnist" and tuple(data.data_shape(config.data)) == CLASSIFIER_SHAPE


def sample_stats_fn(state, z_NxZ, real_spread, classifier_params, value_range: str = "unit"):
    """{'alarm_diversity': [], and 'alarm_classes': [] when `classifier_params` is not None}:
    the diversity of G(z_NxZ) (inference mode; a conditional G's labels i mod K) relative to
    `real_spread`, the real data's `mean_pairwise_distance`, and the number of classes the
    MNIST classifier's argmax gives its samples (value_range: the data's scale). Unjitted, so
    a sweep can vmap it over members."""
    x_Nx = steps.generate(state, z_NxZ)
    stats = {"alarm_diversity": mean_pairwise_distance(x_Nx) / real_spread}
    if classifier_params is not None:
        unit = classifier.to_unit_range(x_Nx, value_range)
        logits_NxK = classifier.MODEL.apply({"params": classifier_params}, unit)[0]
        counts_K = jnp.sum(jax.nn.one_hot(jnp.argmax(logits_NxK, axis=-1), logits_NxK.shape[-1]), 0)
        stats["alarm_classes"] = jnp.sum(counts_K > 0)
    return stats


sample_stats = jax.jit(sample_stats_fn, static_argnames=("value_range",))


@functools.partial(jax.jit, static_argnames=("toy", "num_samples", "z_dim", "z_dist"))
def _draws(key, real_Nx, *, toy: str, num_samples: int, z_dim: int, z_dist: str):
    """(z_NxZ, real spread) of `Reference`, in one compiled call (op by op it took ~1 s):
    the spread of `real_Nx`, the drawn real rows, or for a `toy` of its own samples."""
    key_z, key_real = jax.random.split(key)
    z_NxZ = steps.sample_z(key_z, num_samples, z_dim, z_dist)
    real = data.sample_toy(toy, key_real, num_samples) if toy else real_Nx
    return z_NxZ, mean_pairwise_distance(real)


def reference_rows(key_real, size: int, num_samples: int) -> jax.Array:
    """The rows of a real set of `size` examples whose spread `Reference` measures:
    min(num_samples, size) of them, drawn without replacement by `key_real`."""
    return jax.random.choice(key_real, size, (min(num_samples, size),), replace=False)


class Reference:
    """What `sample_stats` compares against, built once per run: the fixed latent codes
    (`alarm.num_samples` of them, from ALARM_SEED), the spread of as many real examples drawn
    without replacement (or toy samples), and the classifier params (None where classes are
    not counted)."""

    def __init__(self, config, dataset):
        toy = config.data.name if dataset is None else ""
        key = jax.random.PRNGKey(ALARM_SEED)
        real = None
        if dataset is not None:
            # The drawn rows alone, in the drawn order, so a set streamed from the host
            # (stream.ScaledRows) reads only them and gives the in-device spread bit for bit.
            size = dataset.x.shape[0]
            rows = reference_rows(jax.random.split(key)[1], size, config.alarm.num_samples)
            real = jnp.asarray(dataset.x[np.asarray(rows)])
        self.z_NxZ, self.real_spread = _draws(
            key,
            real,
            toy=toy,
            num_samples=config.alarm.num_samples,
            z_dim=config.model.z_dim,
            z_dist=config.model.z_dist,
        )
        self.classifier_params = classifier.load_classifier() if uses_classifier(config) else None
        self.value_range = config.data.scale


def stats_due(step: int, previous_step: int, every: int) -> bool:
    """Whether the log at `step` (the one before at `previous_step`) crossed a multiple of
    `every` (0: never), so that the statistics come at most once per `every` steps whatever
    the log interval."""
    return bool(every) and step // every > previous_step // every


def _fmt_steps(records: Sequence[dict]) -> str:
    return f"steps {records[0]['step']}-{records[-1]['step']}"


def check(history: Sequence[dict], config) -> str | None:
    """Why the run looks collapsed, or None: a pure function of the logged records.

    Args:
      history: the run's log records, oldest first (dicts with 'step', 'd_fake', 'g_grad_norm',
        and at the steps `sample_stats` ran 'alarm_diversity' and maybe 'alarm_classes');
        only the last `config.alarm.consecutive` matter.
      config: the run's config; reads config.alarm and config.loss.name (the d_fake test is
        only for the sigmoid losses, where D(G(z)) is a probability).

    Returns:
      None, or the reasons found ('; '-joined): D wins (d_fake below its threshold at each of
      the last `consecutive` logs), G's gradient vanished (likewise), low diversity or too
      few classes at the last log (a threshold of 0 turns its test off).
    """
    a = config.alarm
    if a.action == "off" or not history:
        return None
    reasons = []
    last = list(history[-a.consecutive :])
    full = len(last) == a.consecutive
    if full and a.d_fake_below > 0 and config.loss.name in losses.SIGMOID_LOSSES:
        if all(r["d_fake"] < a.d_fake_below for r in last):
            reasons.append(
                f"D wins: mean D(G(z)) below {a.d_fake_below:g} at {a.consecutive} logs in a"
                f" row ({_fmt_steps(last)}; last {last[-1]['d_fake']:.3g})"
            )
    if full and a.g_grad_norm_below > 0 and all("g_grad_norm" in r for r in last):
        if all(r["g_grad_norm"] < a.g_grad_norm_below for r in last):
            reasons.append(
                f"G's gradient vanished: its norm below {a.g_grad_norm_below:g} at"
                f" {a.consecutive} logs in a row ({_fmt_steps(last)}; last"
                f" {last[-1]['g_grad_norm']:.3g})"
            )
    now = last[-1]
    diversity = now.get("alarm_diversity")
    if diversity is not None and diversity < a.diversity_below:
        reasons.append(
            f"mode collapse: G's samples spread {diversity:.3f} times as far as real data's"
            f" (below {a.diversity_below:g}) at step {now['step']}"
        )
    classes = now.get("alarm_classes")
    if classes is not None and classes < a.classes_below:
        reasons.append(
            f"mode collapse: the classifier sees {int(classes)} of {classifier.NUM_CLASSES} classes"
            f" in {a.num_samples} samples (below {a.classes_below}) at step {now['step']}"
        )
    return "; ".join(reasons) or None


class Tracker:
    """One run's (or one sweep member's) alarm across its logs: the last
    `alarm.consecutive` records, and whether the previous log was alarmed, so that a reason
    is logged once per stretch of alarmed logs rather than at every one."""

    def __init__(self, config):
        self.config = config
        self.history: list[dict] = []
        self.alarmed = False

    def observe(self, record: dict) -> tuple[str | None, bool]:
        """(`check` of the history with `record` added, whether it starts a stretch)."""
        self.history = [*self.history, record][-self.config.alarm.consecutive :]
        reason = check(self.history, self.config)
        starts = bool(reason) and not self.alarmed
        self.alarmed = bool(reason)
        return reason, starts


def member_stats(axes, value_range: str):
    """`sample_stats_fn` vmapped over a sweep's stacked state (member axes `axes`, see
    engine.member_axes) and jitted: each entry [K], one per member. Build it once per
    program."""
    return jax.jit(
        jax.vmap(
            functools.partial(sample_stats_fn, value_range=value_range),
            in_axes=(axes, None, None, None),
        )
    )
