import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import hparams, optim
from gan_jax.config import default_config


def authors_adam(params, grads_seq, lr, b1, b2, eps_root):
    """openai/improved-gan nn.adam_updates in numpy: the step is m_hat / sqrt(v_hat + 1e-8)."""
    m = np.zeros_like(params)
    v = np.zeros_like(params)
    for t, g in enumerate(grads_seq, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        params = params - lr * (m / (1 - b1**t)) / np.sqrt(v / (1 - b2**t) + eps_root)
    return params


@pytest.mark.parametrize("eps_root", [1e-3, 0.0])
def test_adam_with_eps_root_is_the_2016_authors_adam(eps_root):
    config = default_config()
    # A large eps_root, so that an update that ignored it (optax's eps 1e-8 outside) differs.
    config.optim.d.update(lr=0.01, b1=0.5, b2=0.999, eps=0.0, eps_root=eps_root)
    opt_hp = hparams.from_config(config).d
    spec = optim.OptSpec("adam")
    tx = optim.make_optimizer(spec)
    rng = np.random.default_rng(0)
    params0 = rng.normal(size=(5,)).astype(np.float32)
    grads_seq = [0.05 * rng.normal(size=(5,)).astype(np.float32) for _ in range(4)]
    params, opt_state = jnp.asarray(params0), tx.init(jnp.asarray(params0))
    for g in grads_seq:
        injected = optim.hyperparams_at(spec, opt_hp, opt_state.count)
        opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams, **injected})
        updates, opt_state = tx.update(jnp.asarray(g), opt_state, params)
        params = params + updates
    expected = authors_adam(params0.astype(np.float64), grads_seq, 0.01, 0.5, 0.999, eps_root)
    np.testing.assert_allclose(np.asarray(params), expected, rtol=1e-5)
