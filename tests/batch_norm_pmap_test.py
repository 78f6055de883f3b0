"""Batch norm and labels under pmap: a sharded batch must give the single-device numbers."""

import jax
import numpy as np
import pytest
from steps_test import image_config, image_dataset

from gan_jax import engine, hparams

AXIS = "devices"
DEVICES = 4
pytestmark = pytest.mark.skipif(jax.device_count() < DEVICES, reason="needs 4 (fake) devices")


def pmap(fn):
    return jax.pmap(fn, axis_name=AXIS, devices=jax.devices()[:DEVICES])


def replicate(tree):
    return jax.tree.map(lambda x: np.broadcast_to(x, (DEVICES, *np.shape(x))), tree)


def test_pmap_equals_single_device_with_batch_norm_and_labels():
    # DCGAN G with batch norm, a D(x, y) fed the batch's labels, uniform fake labels drawn for
    # the global batch: one D and one G update on 4 devices equal one on a single device.
    config = image_config("dcgan", "mlp", conditioning="concat", num_classes=10)
    config.loss.name = "lsgan"
    dataset = image_dataset()
    single = engine.make_spec(config, 16)
    sharded = engine.make_spec(config, 16, axis_name=AXIS)
    hp = hparams.from_config(config)

    def both(spec, state, dataset):
        state, d_metrics = engine.d_update(state, dataset, hp, spec=spec)
        state, g_metrics = engine.g_update(state, dataset, hp, spec=spec)
        return state, {**d_metrics, **g_metrics}

    state = jax.jit(lambda key, d: engine.init(key, hp, d, spec=single))(
        jax.random.PRNGKey(0), dataset
    )
    expected, expected_metrics = jax.jit(lambda s, d: both(single, s, d))(state, dataset)
    # The networks are static fields of the state: the pmap run needs the ones that know the
    # axis (without it, batch norm would normalise each device's rows alone and this fails).
    nets = jax.eval_shape(
        lambda key, d: engine.init(key, hp, d, spec=sharded), jax.random.PRNGKey(0), dataset
    )
    assert nets.g.apply_fn.__self__.generator.axis_name == AXIS
    sharded_state = state.replace(
        g=state.g.replace(apply_fn=nets.g.apply_fn), d=state.d.replace(apply_fn=nets.d.apply_fn)
    )
    got, metrics = pmap(lambda s, d: both(sharded, s, d))(
        replicate(sharded_state), replicate(dataset)
    )
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a[0], b, rtol=1e-4, atol=1e-6)
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        np.testing.assert_allclose(metrics[name][0], expected_metrics[name], rtol=1e-4)
