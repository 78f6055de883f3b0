"""Hyperparameters as data: one compiled program trains GANs with different numbers.

Member i of `jax.vmap(make_train(config), in_axes=(0, 0, None))` over stacked Hparams must be the
solo run of member i's own config and seed (issue 17, "Exactness").
"""

import functools

import jax
import numpy as np
from conftest import tiny_config
from experiments_loader import load_experiment
from jax.extend import core as jax_core

from gan_jax import data, engine, hparams


def member(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def assert_trees_close(a, b, **tol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)


def leaves_differ(a, b) -> bool:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return any(not np.allclose(x, y) for x, y in pairs)


def sweep_and_solo(configs, seeds, dataset=None):
    """The vmapped run of all (config, seed) members, built from configs[0]'s program, and
    each member's solo run from its own config."""
    size = None if dataset is None else dataset.x.shape[0]
    run = engine.make_train(configs[0], size)
    keys = jax.vmap(jax.random.PRNGKey)(np.asarray(seeds))
    stacked = hparams.stack([hparams.from_config(c) for c in configs])
    swept = jax.jit(jax.vmap(run, in_axes=(0, 0, None)))(keys, stacked, dataset)
    solos = [
        jax.jit(engine.make_train(c, size))(jax.random.PRNGKey(s), hparams.from_config(c), dataset)
        for c, s in zip(configs, seeds, strict=True)
    ]
    return swept, solos


def with_lr(config, lr):
    config = config.copy_and_resolve_references()
    config.optim.g.lr = config.optim.d.lr = lr
    return config


def test_member_i_of_an_lr_and_seed_sweep_equals_its_solo_run_ring8_adam():
    base = tiny_config(num_steps=40, scan_steps=4, log_every=4)
    lrs, seeds = (1e-3, 3e-3, 1e-3, 3e-3), (0, 0, 1, 1)
    configs = [with_lr(base, lr) for lr in lrs]
    (state, metrics), solos = sweep_and_solo(configs, seeds)
    for i, (solo_state, solo_metrics) in enumerate(solos):
        assert_trees_close(member(state, i), solo_state, rtol=1e-4, atol=1e-5)
        assert_trees_close(member(metrics, i), solo_metrics, rtol=1e-3, atol=1e-5)
        lr = float(member(state, i).d.opt_state.hyperparams["learning_rate"])
        np.testing.assert_allclose(lr, lrs[i], rtol=1e-7)
    # The same seed at another lr is another run: the numbers reached every member.
    assert leaves_differ(member(state, 0).g.params, member(state, 1).g.params)


def narrow_2014_config(num_steps):
    """The 2014 MNIST program (maxout D with dropout, SGD with lr decay and a momentum ramp,
    G's output bias from the data) on narrow nets, with a ramp and a decay short enough that
    both move within `num_steps` updates of an 8-example batch."""
    config = load_experiment("gan2014_mnist")
    config.model.generator_kwargs = {"hidden": 64}
    config.model.discriminator_kwargs = {"units": 16}
    config.train.update(batch_size=8, num_steps=num_steps, scan_steps=2, log_every=2)
    for player in ("g", "d"):
        # Epochs of 32 / 8 = 4 updates: momentum 0.5 at update 4 rises to 0.7 at update 12.
        config.optim[player].update(lr_decay=1.05, momentum_saturate_epoch=3)
    return config


@functools.cache
def image_dataset(n=32):
    x = np.random.default_rng(0).uniform(0.0, 1.0, (n, 28, 28, 1)).astype(np.float32)
    return data.make_dataset(x)


def test_an_lr_override_changes_a_run_with_lr_decay():
    """The old silent bug: with lr_decay != 1 the schedule closure held the config's lr, so an
    lr put into the optimizer state was ignored and swept members came out identical. Here
    the lr is data: each member's decayed lr follows its own base lr, and so do its params."""
    config = narrow_2014_config(num_steps=4)
    spec, base = engine.make_spec(config, 32), hparams.from_config(config)
    lowered = base.replace(d=base.d.replace(lr=np.float32(0.01)))
    compiled = engine.jit_steps(spec)
    finals = []
    for hp in (base, lowered):
        state = compiled.init(jax.random.PRNGKey(0), hp, image_dataset())
        state, _ = engine.advance(compiled, state, image_dataset(), hp, 4)
        finals.append(state)
        lr = float(state.d.opt_state.hyperparams["learning_rate"])
        np.testing.assert_allclose(lr, float(hp.d.lr) / 1.05**3, rtol=1e-5)
    assert leaves_differ(finals[0].d.params, finals[1].d.params)
    # G's numbers were not overridden: its lr is the config's in both runs.
    for state in finals:
        np.testing.assert_allclose(
            state.g.opt_state.hyperparams["learning_rate"], 0.1 / 1.05**3, rtol=1e-5
        )


def test_a_lazy_penalty_stays_a_cond_over_members_with_shared_counters():
    """A vmapped lax.cond whose predicate is batched becomes a select that runs both branches
    (the penalty's double backward pass on every update); `member_axes` keeps the update
    counters shared, so a chunked sweep of stacked states keeps the cond."""
    config = tiny_config()
    config.loss.update(penalty="r1", penalty_weight=1.0, penalty_every=4)
    spec, hp = engine.make_spec(config), hparams.from_config(config)
    stacked_hp = hparams.stack([hp, hp.replace(penalty_weight=np.float32(10.0))])
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    state = jax.vmap(functools.partial(engine.init, spec=spec), in_axes=(0, 0))(keys, stacked_hp)
    state = state.replace(step=state.step[0], d_updates=state.d_updates[0])
    axes = engine.member_axes(state)
    chunk = functools.partial(engine.run_chunk, spec=spec, num_iterations=2)
    swept = jax.vmap(chunk, in_axes=(axes, None, 0), out_axes=(axes, 0))
    primitives = primitive_names(jax.make_jaxpr(swept)(state, None, stacked_hp).jaxpr)
    assert "cond" in primitives
    # The chunk also runs: both members advance with the shared counters.
    after, _ = jax.jit(swept)(state, None, stacked_hp)
    assert int(after.d_updates) == 2 and after.d.params["Dense_0"]["kernel"].shape[0] == 2


def primitive_names(jaxpr) -> set:
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", None)
                if isinstance(sub, jax_core.Jaxpr):
                    names |= primitive_names(sub)
                elif inner is not None and hasattr(inner, "eqns"):
                    names |= primitive_names(inner)
    return names


def test_wgan_clip_bounds_are_swept_as_data():
    """`spec.clip_weights` says that D is clipped, the member's Hparams by how much: each
    member's D weights end inside, and at, its own bound (Arjovsky et al. 2017, Algorithm 1)."""
    config = tiny_config(num_steps=4, scan_steps=2, log_every=2)
    config.loss.update(name="wgan", clip_weights=0.01)
    hp = hparams.from_config(config)
    bounds = (0.01, 0.05)
    stacked = hparams.stack([hp.replace(clip_weights=np.float32(b)) for b in bounds])
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    run = jax.jit(jax.vmap(engine.make_train(config), in_axes=(0, 0, None)))
    state, _ = run(keys, stacked, None)
    for i, bound in enumerate(bounds):
        largest = max(float(np.max(np.abs(p))) for p in jax.tree.leaves(member(state, i).d.params))
        np.testing.assert_allclose(largest, bound, rtol=1e-6)
