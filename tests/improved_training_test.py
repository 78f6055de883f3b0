"""Salimans et al. 2016 in the engine: feature matching as G's objective, historical averaging,
D's moving average, and semi-supervised training with a labelled subset (the building blocks
themselves are tested against numpy in losses_test, penalties_test and layers_test)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config
from parallel_test import assert_trees_close, run_both

from gan_jax import averaging, data, engine, evaluate, hparams, steps
from gan_jax.config import default_config, validate


def softplus(x):
    return np.logaddexp(0.0, x)


def logsumexp(l_BxK):
    m = l_BxK.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(l_BxK - m).sum(axis=1, keepdims=True)))[:, 0]


def labelled_images(n=120, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (n, 28, 28, 1)).astype(np.float32)
    return data.make_dataset(x, rng.permutation(np.arange(n) % classes), by_class=True)


def ssl_config(**train):
    """A semi-supervised MNIST-shaped config with tiny MLPs (data passed in, not read)."""
    c = default_config()
    c.data.update(name="mnist", labels_per_class=2)
    c.model.update(z_dim=4, generator="mlp", discriminator="mlp")
    c.model.generator_kwargs = {"hidden": (8,), "output_activation": "sigmoid"}
    c.model.discriminator_kwargs = {"hidden": (16, 8), "num_classes": 10}
    c.loss.update(name="minimax", d_objective_scale=0.5, g_objective="feature_matching")
    c.train.update(batch_size=12, num_steps=4, scan_steps=2, log_every=2, sample_every=0)
    c.train.update(**train)
    return c


def init(config, dataset=None, seed=0):
    """(initial state, Hparams, the jitted steps) of a config."""
    size = None if dataset is None else dataset.x.shape[0]
    compiled = engine.jit_steps(engine.make_spec(config, size))
    hp = hparams.from_config(config)
    return compiled.init(jax.random.PRNGKey(seed), hp, dataset), hp, compiled


def test_the_labelled_subset_holds_per_class_examples_of_each_class_visited_once_per_pass():
    dataset = labelled_images(n=70, classes=4)  # classes of 18, 18, 17, 17 examples
    batch = jax.jit(lambda key, i: data.labelled_batch(dataset, key, i, 5, 3))
    batches = [batch(jax.random.PRNGKey(3), i) for i in range(12)]  # 5 passes of 12
    x = np.concatenate([np.asarray(b[0]) for b in batches]).reshape(60, -1)
    y = np.concatenate([np.asarray(b[1]) for b in batches])
    rows = [int(np.flatnonzero((np.asarray(dataset.x).reshape(70, -1) == r).all(1))[0]) for r in x]
    np.testing.assert_array_equal(np.asarray(dataset.y)[rows], y)
    first_pass = sorted(rows[:12])
    assert len(set(first_pass)) == 12 and np.bincount(y[:12], minlength=4).tolist() == [3] * 4
    for p in range(5):  # every pass is the same 12 examples, in its own order
        assert sorted(rows[12 * p : 12 * p + 12]) == first_pass
    assert rows[:12] != rows[12:24]
    other = np.concatenate([np.asarray(batch(jax.random.PRNGKey(4), i)[0]) for i in (0, 1, 2)])
    assert sorted(other[:12].reshape(12, -1).sum(1)) != sorted(x[:12].sum(1))


@pytest.mark.parametrize("reduction, divisor", [("sum", 1), ("mean", 8)])
def test_feature_matching_is_g_loss_on_the_chosen_layer_and_a_bad_layer_is_named(
    reduction, divisor
):
    config, dataset = ssl_config(), labelled_images()
    config.loss.feature_matching_reduction = reduction  # 'mean': the authors' T.mean over F = 8
    state, hp, compiled = init(config, dataset)
    spec = compiled.spec
    _, metrics = compiled.g_update(state, dataset, hp)
    state = compiled.init(jax.random.PRNGKey(0), hp, dataset)  # g_update donated it
    # The reference: D's sown features on G's real batch and on G's samples, then the paper's
    # ||mean f(x) - mean f(G(z))||^2 in numpy.
    ids, g_inputs, _, (key_g, key_d) = steps.update_draws(state, spec, steps.G_STREAM, 0, 3)
    x_fake = steps.apply_player(state.g, state.g.params, *g_inputs, train=True, key=key_g)[0]
    x_real = steps.g_batch(state, dataset, spec=spec)[0]
    means = []
    for x in (x_real, x_fake):
        (_, sown), _ = steps.apply_player(state.d, state.d.params, x, train=True, features=True)
        assert [f.shape for f in sown] == [(12, 16), (12, 8)]
        means.append(np.asarray(sown[-1]).mean(0))
    expected = np.sum((means[0] - means[1]) ** 2) / divisor
    np.testing.assert_allclose(metrics["g_loss"], expected, rtol=1e-5)
    config.loss.feature_layer = 2
    with pytest.raises(ValueError, match=r"config.loss.feature_layer = 2 .* -2..1"):
        engine.g_update(state, dataset, hp, spec=engine.make_spec(config, 120))


def test_semi_supervised_d_loss_is_the_papers_supervised_plus_unsupervised_loss():
    config, dataset = ssl_config(), labelled_images()
    state, hp, compiled = init(config, dataset)
    spec = compiled.spec
    batch = steps.d_batch(state, dataset, spec=spec)
    x_real, _, x_lab, y_lab = batch
    assert (
        np.bincount(np.asarray(y_lab), minlength=10).tolist() == [1] * 10 + [0] * 0
        or len(y_lab) == 12
    )
    x_fake = jnp.asarray(np.random.default_rng(1).uniform(size=x_real.shape), jnp.float32)
    keys = (jax.random.PRNGKey(0), jax.random.PRNGKey(1))
    total, aux = steps.d_loss(state.d.params, state, batch, (x_fake, None), keys, hp, spec=spec)

    def class_logits(x):
        return np.asarray(steps.apply_player(state.d, state.d.params, x, train=True)[0][1])

    l_real, l_fake, l_lab = map(class_logits, (x_real, x_fake, x_lab))
    supervised = np.mean(logsumexp(l_lab) - l_lab[np.arange(12), np.asarray(y_lab)])
    # openai/improved-gan's loss_unl: -1/2 E log D(x) - 1/2 E log(1 - D(G(z))), D = Z / (Z + 1).
    unsupervised = 0.5 * np.mean(softplus(-logsumexp(l_real))) + 0.5 * np.mean(
        softplus(logsumexp(l_fake))
    )
    np.testing.assert_allclose(total, supervised + unsupervised, rtol=1e-5)
    np.testing.assert_allclose(aux[4], supervised, rtol=1e-5)


def test_historical_average_and_the_d_average_follow_the_param_trajectory():
    config = tiny_config(scan_steps=0)
    config.loss.update(historical_averaging="d", historical_averaging_weight=0.5)
    config.train.d_ema_decay = 0.9
    state, hp, compiled = init(config)
    plain_state, plain_hp, plain = init(tiny_config(scan_steps=0))

    def copy(tree):  # the steps donate their input states
        return jax.tree.map(np.array, tree)

    trajectory = [copy(state.d.params)]
    for i in range(3):
        state, _ = compiled.d_update(state, None, hp)
        plain_state, _ = plain.d_update(plain_state, None, plain_hp)
        trajectory.append(copy(state.d.params))
        leaves = zip(
            jax.tree.leaves(state.d.params), jax.tree.leaves(plain_state.d.params), strict=True
        )
        same = all(np.array_equal(a, b) for a, b in leaves)
        # The penalty is 0 at the first update (the mean is the initial params), not after.
        assert same == (i == 0)
    for name, avg in (("history", state.d.history), ("ema", averaging.ema_params(state.d, 0.9))):
        for path_leaves, got in zip(
            zip(*[jax.tree.leaves(p) for p in trajectory], strict=True),
            jax.tree.leaves(avg),
            strict=True,
        ):
            p = np.stack([np.asarray(leaf) for leaf in path_leaves])
            if name == "history":
                want = p.mean(0)
            else:  # zero-started EMA over updates 1..3, divided by 1 - 0.9^3
                want = sum(0.1 * 0.9 ** (3 - t) * p[t] for t in (1, 2, 3)) / (1 - 0.9**3)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_d_test_errors_count_argmax_mistakes_with_raw_and_averaged_params():
    config, dataset = ssl_config(), labelled_images()
    config.train.d_ema_decay = 0.5
    state, hp, compiled = init(config, dataset)
    state, _ = compiled.d_update(state, dataset, hp)
    x, y = np.asarray(dataset.x[:50]), np.asarray(dataset.y[:50])
    got = evaluate.d_test_errors(config, state, x, y, batch_size=20)
    for suffix, params in (("", state.d.params), ("_ema", averaging.ema_params(state.d, 0.5))):
        logits = np.asarray(steps.apply_player(state.d, params, x, train=False)[0][1])
        assert got[f"d_errors{suffix}"] == int(np.sum(logits.argmax(1) != y))
        assert got[f"d_error{suffix}"] == got[f"d_errors{suffix}"] / 50


# make test-all: the pmap test below draws the labelled batches by global row in the default run.
@pytest.mark.slow
def test_a_semi_supervised_sweep_member_depends_on_its_own_key_alone():
    # Each member draws its own labelled subset from its own key: swapping the members' order
    # swaps their results exactly (one program; the engine's tests show a member equals its
    # solo run).
    config, dataset = ssl_config(num_steps=2), labelled_images()
    config.loss.update(historical_averaging="both", historical_averaging_weight=0.1)
    config.train.d_ema_decay = 0.9
    hp = hparams.from_config(config)
    sweep = jax.jit(jax.vmap(engine.make_train(config, 120), in_axes=(0, 0, None)))
    keys = [jax.random.PRNGKey(0), jax.random.PRNGKey(1)]
    ab, _ = sweep(jnp.stack(keys), hparams.stack([hp, hp]), dataset)
    ba, _ = sweep(jnp.stack(keys[::-1]), hparams.stack([hp, hp]), dataset)
    for x, y in zip(jax.tree.leaves(ab), jax.tree.leaves(ba), strict=True):
        np.testing.assert_array_equal(np.asarray(x)[::-1], np.asarray(y))
    assert not np.array_equal(*np.asarray(ab.d.ema["Dense_0"]["kernel"]))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss.g_objective": "fm"}, r"loss.g_objective = 'fm'"),
        ({"loss.historical_averaging": "x"}, r"loss.historical_averaging = 'x'"),
        ({"loss.feature_matching_reduction": "max"}, r"reduction = 'max' .*'mean', 'sum'"),
        ({"train.d_ema_decay": 1.0}, r"train.d_ema_decay = 1.0 .* \[0, 1\)"),
        ({"data.labels_per_class": 5}, r"data.labels_per_class = 5 .* no labels"),
        ({"train.update_rule": "simultaneous", "loss.g_objective": "feature_matching"}, "simult"),
    ],
)
def test_bad_improved_technique_options_are_named(overrides, message):
    config = default_config()
    for key, value in overrides.items():
        section, name = key.split(".")
        config[section][name] = value
    with pytest.raises(ValueError, match=message):
        validate(config)


def test_semi_supervised_needs_a_d_with_the_datasets_classes():
    config = ssl_config()
    config.model.discriminator_kwargs = {"hidden": (16,), "num_classes": 3}
    with pytest.raises(ValueError, match=r"num_classes = 3 .* 10, the classes"):
        validate(config)


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (fake) devices")
def test_pmap_equals_one_device_with_every_improved_technique():
    # Feature matching's batch means, the labelled rows and the averages are the global batch's.
    config, dataset = ssl_config(batch_size=16, scan_steps=0), labelled_images(n=160)
    config.loss.update(historical_averaging="both", historical_averaging_weight=0.1)
    config.train.d_ema_decay = 0.9
    (s_state, s_metrics), (p_state, p_metrics) = run_both(config, dataset, iterations=3)
    assert_trees_close(s_state, p_state, atol=1e-5)
    assert_trees_close(s_metrics, p_metrics, rtol=1e-3)


def test_the_data_dependent_init_runs_d_with_its_noise_as_the_authors_init_pass():
    """The authors init their D on 500 images in training mode, noise on: the hidden scales
    g = 1 / std(x v / ||v|| + noise) then make the *noisy* pre-activations unit-variance. For
    the first layer (input noise std 0.3) that is 1 / sqrt(var(x v / ||v||) + 0.09) per unit;
    an init without noise would give 1 / std(x v / ||v||), here about 1.4 times as large."""
    config = ssl_config()
    config.model.discriminator = "improved_gan_mnist"
    config.model.discriminator_kwargs = {"hidden": (16,), "num_classes": 10, "data_init": True}
    dataset = labelled_images(n=400)
    state, _, _ = init(config, dataset)
    first = state.d.params["WeightNormDense_0"]
    v = np.asarray(first["kernel"], np.float64)
    x = np.asarray(dataset.x, np.float64).reshape(400, -1)
    clean_var = np.var(x @ (v / np.linalg.norm(v, axis=0)), axis=0)
    ratio = np.asarray(first["scale"]) * np.sqrt(clean_var + 0.3**2)
    assert abs(np.mean(ratio) - 1.0) < 0.05, ratio
