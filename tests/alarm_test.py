import json
import os

import jax
import numpy as np
import pytest
from conftest import tiny_config

from gan_jax import alarm, data, evaluate, steps, sweep, train
from gan_jax.checkpoint import Checkpointer
from gan_jax.config import default_config, validate


def logs(d_fake, g_grad_norm=None, **last):
    """Log records at steps 100, 200, ...; `last` adds sample statistics to the last one."""
    g_grad_norm = g_grad_norm or [1.0] * len(d_fake)
    records = [
        {"step": 100 * (i + 1), "d_fake": d, "g_grad_norm": g}
        for i, (d, g) in enumerate(zip(d_fake, g_grad_norm, strict=True))
    ]
    records[-1].update(last)
    return records


def test_check_flags_d_winning_only_at_consecutive_logs_and_only_for_sigmoid_losses():
    config = default_config()  # non_saturating; alarm: d_fake < 1e-3 at 3 logs in a row
    assert alarm.check(logs([0.3, 1e-4, 1e-4]), config) is None
    assert alarm.check(logs([1e-4, 0.3, 1e-4, 1e-4]), config) is None
    assert alarm.check(logs([1e-4, 1e-4]), config) is None  # fewer logs than `consecutive`
    reason = alarm.check(logs([0.3, 1e-4, 2e-4, 5e-4]), config)
    assert reason.startswith("D wins: mean D(G(z)) below 0.001 at 3 logs in a row")
    assert "(steps 200-400; last 0.0005)" in reason
    assert alarm.check(logs([0.3, 1e-4, 2e-4, 1e-3]), config) is None  # strictly below
    config.loss.name = "wasserstein"  # D's raw output: no probability to compare
    assert alarm.check(logs([-5.0] * 3), config) is None
    config.loss.name = "non_saturating"
    config.alarm.action = "off"
    assert alarm.check(logs([1e-4] * 3), config) is None


def test_check_flags_a_vanished_g_gradient_low_diversity_and_few_classes():
    config = default_config()
    config.alarm.update(g_grad_norm_below=0.01, consecutive=2)
    assert alarm.check(logs([0.3] * 3, [1.0, 0.005, 0.02]), config) is None
    reason = alarm.check(logs([0.3] * 3, [1.0, 0.005, 0.002]), config)
    assert reason.startswith("G's gradient vanished: its norm below 0.01 at 2 logs in a row")
    # The sample statistics count at the last log only (they are computed at some logs).
    config.alarm.update(diversity_below=0.5, classes_below=5)
    assert alarm.check(logs([0.3] * 2, alarm_diversity=0.51, alarm_classes=5), config) is None
    reason = alarm.check(logs([0.3] * 2, alarm_diversity=0.2, alarm_classes=4), config)
    assert "G's samples spread 0.200 times as far as real data's (below 0.5)" in reason
    assert "the classifier sees 4 of 10 classes in 256 samples (below 5)" in reason
    history = logs([0.3] * 2, alarm_diversity=0.2)
    history.append({"step": 300, "d_fake": 0.3, "g_grad_norm": 1.0})
    assert alarm.check(history, config) is None
    config.alarm.update(diversity_below=0.0, classes_below=0)  # 0: the tests are off
    assert alarm.check(logs([0.3], alarm_diversity=0.0, alarm_classes=0), config) is None


def test_a_tracker_reports_the_start_of_each_alarmed_stretch_once():
    tracker = alarm.Tracker(default_config())
    d_fake = [1e-4, 1e-4, 1e-4, 1e-4, 0.3, 1e-4, 1e-4, 1e-4]
    seen = [tracker.observe(r) for r in logs(d_fake)]
    assert [reason is not None for reason, _ in seen] == [False] * 2 + [True] * 2 + [False] * 3 + [
        True
    ]
    assert [starts for _, starts in seen] == [False] * 2 + [True] + [False] * 4 + [True]


# Logs of experiments/gan2014_collapse.py's `paper` sweep (steps 100-1200, every 100), and
# the statistics of its step-1000 checkpoint: seed 5 collapsed (one blotch), seeds 0 and 10
# dipped below 0.001 once and recovered, seed 14 has the lowest healthy diversity, seed 15
# the fewest healthy classes.
SEED_5_D_FAKE = [0.5, 2.2e-2, 9.0e-3, 6.7e-3, 3.1e-3, 2.0e-3, 1.4e-3, 1.2e-3, 8.5e-4, 7.5e-4]
SEED_0_D_FAKE = [0.5, 0.12, 7.5e-3, 9.6e-4, 5.0e-2, 8.0e-3, 8.1e-2, 9.8e-2, 0.16, 5.8e-2]
SEED_10_D_FAKE = [0.5, 0.14, 1.3e-2, 9.6e-4, 0.35, 9.7e-2, 1.2e-2, 5.1e-2, 8.8e-3, 3.7e-2]


def first_alarm(d_fake, stats_at_1000):
    config = default_config()
    history = logs(d_fake)
    for r in history:
        if r["step"] == 1000:
            r.update(stats_at_1000)
    for end in range(1, len(history) + 1):
        if alarm.check(history[:end], config):
            return history[end - 1]["step"]
    return None


def test_defaults_flag_the_collapsed_2014_seed_and_none_of_the_healthy_ones():
    collapsed = {"alarm_diversity": 0.001, "alarm_classes": 1}
    assert first_alarm(SEED_5_D_FAKE, collapsed) == 1000
    assert first_alarm(SEED_5_D_FAKE + [7.8e-4], {}) == 1100  # D wins, 3 logs in a row
    for d_fake in (SEED_0_D_FAKE, SEED_10_D_FAKE):
        assert first_alarm(d_fake, {"alarm_diversity": 0.54, "alarm_classes": 3}) is None
    assert first_alarm(SEED_0_D_FAKE, {"alarm_diversity": 0.23, "alarm_classes": 4}) is None
    assert first_alarm(SEED_0_D_FAKE, {"alarm_diversity": 0.40, "alarm_classes": 2}) is None


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("action", "loud", "one of ['off', 'stop', 'warn']"),
        ("d_fake_below", 2.0, "a number in [0, 1] (0: off)"),
        ("consecutive", 0, "a number > 0"),
        ("num_samples", 1, "a whole number >= 2"),
        ("diversity_below", -0.5, "a number >= 0"),
    ],
)
def test_bad_alarm_values_are_named(key, value, allowed):
    config = default_config()
    config.alarm[key] = value
    with pytest.raises(ValueError, match=f"config.alarm.{key} = {value!r} is not allowed") as err:
        validate(config)
    assert allowed in str(err.value)


def numpy_mean_pairwise(x_NxD) -> float:
    x_NxD = np.asarray(x_NxD, np.float64).reshape(len(x_NxD), -1)
    n = len(x_NxD)
    return np.linalg.norm(x_NxD[:, None] - x_NxD[None], axis=-1).sum() / (n * (n - 1))


def test_mean_pairwise_distance_equals_numpy():
    x_NxD = np.random.default_rng(1).normal(size=(30, 7)).astype(np.float32) + 100.0
    np.testing.assert_allclose(
        alarm.mean_pairwise_distance(x_NxD), numpy_mean_pairwise(x_NxD), rtol=1e-5
    )


def stop_config():
    config = tiny_config(num_steps=12)
    # Statistics every 8 steps, a diversity threshold no G reaches: the alarm fires at step 8.
    config.alarm.update(action="stop", every=8, num_samples=64, diversity_below=1e6)
    return config


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stopped")
    with pytest.raises(alarm.CollapseAlarmError, match="collapse alarm at step 8: mode collapse"):
        train.train_and_evaluate(stop_config(), str(workdir))
    return workdir


def read_rows(directory):
    with open(os.path.join(directory, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_stop_alarm_ends_a_run_with_a_checkpoint_and_the_reason_in_metrics(stopped_run):
    config = stop_config()
    assert Checkpointer(str(stopped_run / "checkpoints")).latest_step() == 8
    rows = read_rows(stopped_run)
    assert [r["step"] for r in rows] == [4, 8]
    assert "alarm" not in rows[0] and "alarm_diversity" not in rows[0]
    assert rows[1]["alarm"].startswith("mode collapse: G's samples spread")
    # The logged diversity, recomputed in numpy from the saved G and the alarm's fixed draws.
    state = evaluate.restore_state(config, str(stopped_run))
    key_z, key_real = jax.random.split(jax.random.PRNGKey(alarm.ALARM_SEED))
    z_NxZ = steps.sample_z(key_z, 64, config.model.z_dim, config.model.z_dist)
    fake = np.asarray(steps.generate(state, z_NxZ))
    real = np.asarray(data.sample_toy("ring8", key_real, 64))
    ratio = numpy_mean_pairwise(fake) / numpy_mean_pairwise(real)
    assert rows[1]["alarm_diversity"] == pytest.approx(ratio, rel=1e-4)


@pytest.mark.slow  # make test-all: compiles a sweep's programs (~6 s of CPU)
def test_a_stopped_sweep_member_is_marked_and_frozen_at_its_alarm_step(stopped_run, tmp_path):
    # One member: the sweep's own program for a group of one (vmapped statistics all the same).
    members = sweep.run_sweep(stop_config(), {}, 1, str(tmp_path))
    assert members[0].status.startswith("stopped by the collapse alarm at step 8: mode collapse")
    directory = sweep.member_dir(str(tmp_path), 0)
    rows = read_rows(directory)
    assert [r["step"] for r in rows] == [4, 8] and rows[1]["alarm"].startswith("mode collapse")
    # Member 0 (seed 0) is the solo run of the same config, frozen where that run stopped.
    frozen = evaluate.restore_state(stop_config(), directory)
    solo = evaluate.restore_state(stop_config(), str(stopped_run))
    assert int(frozen.step) == 12 and int(solo.step) == 8
    for a, b in zip(jax.tree.leaves(frozen.g.params), jax.tree.leaves(solo.g.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
