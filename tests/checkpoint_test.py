import os

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from conftest import fresh_state, tiny_config
from flax import serialization

from gan_jax import train
from gan_jax import workdir as workdir_lib
from gan_jax.checkpoint import Checkpointer, CheckpointError
from gan_jax.writers import read_metrics


def assert_bit_identical(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("d_steps, scan_steps", [(1, 4), (2, 4), (2, 0)])
def test_resumed_run_is_bit_identical_to_an_unbroken_one(tmp_path, d_steps, scan_steps):
    config = tiny_config(d_steps=d_steps, scan_steps=scan_steps, num_steps=16, checkpoint_every=4)
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
    first = tiny_config(d_steps=d_steps, scan_steps=scan_steps, num_steps=8, checkpoint_every=4)
    train.train_and_evaluate(first, str(tmp_path / "resumed"))
    resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert int(resumed.step) == 16 and int(resumed.d_updates) == 16 * d_steps
    assert_bit_identical(straight, resumed)
    steps = [r["step"] for r in read_metrics(str(tmp_path / "resumed"))]
    assert steps == list(range(4, 17, 4))


def test_keeps_the_newest_n(tmp_path):
    config = tiny_config(num_steps=20, checkpoint_every=4, keep_checkpoints=2)
    train.train_and_evaluate(config, str(tmp_path))
    assert Checkpointer(str(tmp_path / "checkpoints")).all_steps() == [16, 20]


def test_checkpoint_of_another_model_is_refused_and_left_alone(tmp_path):
    train.train_and_evaluate(tiny_config(num_steps=4), str(tmp_path))
    before = sorted(os.listdir(tmp_path / "checkpoints"))
    other = tiny_config(num_steps=8)
    other.model.discriminator_kwargs = {"hidden": (32,)}
    with pytest.raises(CheckpointError, match="does not fit this config's model"):
        train.train_and_evaluate(other, str(tmp_path), override_config=True)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == before


def test_workdir_config_wins_unless_overridden(tmp_path):
    train.train_and_evaluate(tiny_config(num_steps=4), str(tmp_path))
    changed = tiny_config(num_steps=8)
    changed.loss.real_label = 0.9
    state = train.train_and_evaluate(changed, str(tmp_path))
    assert int(state.step) == 8  # num_steps may grow on resume
    saved = workdir_lib.resolve_config(changed, str(tmp_path))
    assert saved.loss.real_label == 1.0
    assert workdir_lib.resolve_config(changed, str(tmp_path), override=True).loss.real_label == 0.9


def test_a_sweep_only_setting_takes_the_given_value_without_a_conflict(tmp_path, caplog):
    """A sweep member's config.json keeps its train.member_batch; continued alone, the given
    config's value is used and no conflict is logged."""
    saved = tiny_config()
    saved.train.member_batch = 2
    workdir_lib.write_config(saved, str(tmp_path))
    with caplog.at_level("WARNING"):
        resolved = workdir_lib.resolve_config(tiny_config(), str(tmp_path))
    assert resolved.train.member_batch == 0
    assert "wins over the given config" not in caplog.text


def test_non_finite_training_stops_and_keeps_the_last_finite_checkpoint(tmp_path):
    train.train_and_evaluate(tiny_config(num_steps=8, checkpoint_every=4), str(tmp_path))
    diverging = tiny_config(num_steps=400, checkpoint_every=4)
    diverging.optim.d.lr = 1e30  # Adam steps of ~lr: the params overflow at once
    with pytest.raises(FloatingPointError, match=r"non-finite at step \d+: .*player"):
        train.train_and_evaluate(diverging, str(tmp_path), override_config=True)
    checkpointer = Checkpointer(str(tmp_path / "checkpoints"))
    assert checkpointer.latest_step() == 8
    restored = checkpointer.restore(fresh_state(diverging))
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(restored))


def test_a_checkpoint_with_the_old_schedule_closures_restores(tmp_path):
    """Before the schedules became functions of Hparams, optax kept one state per scheduled
    hyperparameter (a copy of the update count); such a checkpoint restores into today's
    state with every other leaf intact."""
    config = tiny_config()
    config.optim.d.update(
        name="sgd", lr=0.1, lr_decay=1.05, momentum=0.5, final_momentum=0.7,
        momentum_saturate_epoch=3,
    )  # fmt: skip
    state = fresh_state(config)
    old_tx = optax.inject_hyperparams(optax.sgd)(
        learning_rate=optax.exponential_decay(0.1, 1, 1 / 1.05, end_value=0.0),
        momentum=optax.linear_schedule(0.5, 0.7, 8, 4),
    )
    old_opt_state = old_tx.init(state.d.params)
    assert set(old_opt_state.hyperparams_states) == {"learning_rate", "momentum"}
    old = state.replace(d=state.d.replace(opt_state=old_opt_state, tx=old_tx))
    Checkpointer(str(tmp_path)).save(old)
    restored = Checkpointer(str(tmp_path)).restore(state)
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_from_before_the_parameter_averages_restores(tmp_path):
    """Checkpoints written before Player had `history` and `ema` lack those fields; a run that
    keeps neither restores them as they were."""
    state = fresh_state(tiny_config())
    tree = serialization.to_state_dict(jax.device_get(state))
    for player in ("g", "d"):
        assert tree[player].pop("history") is None and tree[player].pop("ema") is None
    checkpointer = Checkpointer(str(tmp_path))
    checkpointer.manager.save(0, args=ocp.args.StandardSave(tree), force=True)
    checkpointer.manager.wait_until_finished()
    restored = checkpointer.restore(state)
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)


def _drop_injected(tree, names):
    """`tree` less the optimizer states' injected entries `names`, as a checkpoint of the code
    before those were injected has it. Returns how many it dropped."""
    dropped = 0
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "hyperparams" and isinstance(value, dict):
                dropped += sum(value.pop(name, None) is not None for name in names)
            else:
                dropped += _drop_injected(value, names)
    return dropped


def test_a_checkpoint_from_before_adams_epsilons_were_injected_restores_and_trains_on(tmp_path):
    """Adam's eps and eps_root became Hparams (injected into the optimizer state); checkpoints
    written before lack them, restore, and the resumed run equals an unbroken one."""
    config = tiny_config(num_steps=8, checkpoint_every=4)
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
    train.train_and_evaluate(tiny_config(num_steps=4, checkpoint_every=4), str(tmp_path / "b"))
    checkpointer = Checkpointer(str(tmp_path / "b" / "checkpoints"))
    tree = checkpointer.manager.restore(4)
    assert _drop_injected(tree, ("eps", "eps_root")) == 4  # two per player
    checkpointer.manager.delete(4)
    checkpointer.manager.save(4, args=ocp.args.StandardSave(tree), force=True)
    checkpointer.manager.wait_until_finished()
    checkpointer.close()
    assert_bit_identical(straight, train.train_and_evaluate(config, str(tmp_path / "b")))
