"""Layers the nets share that Flax does not provide."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.hashing import hash_bits


class RowDropout(nn.Module):
    """Inverted dropout whose mask on row r is a hash of (the 'dropout' key, example_ids[r]).

    A row gets the same mask whichever device holds it, so a pmap run matches a single-device
    run, and the whole mask costs one PRNG call plus a cheap elementwise hash.
    """

    rate: float

    @nn.compact
    def __call__(self, x_BxN, deterministic: bool, example_ids_B=None):
        if deterministic or self.rate == 0.0:
            return x_BxN
        seed = jax.random.bits(self.make_rng("dropout"), (), jnp.uint32)
        rows = jnp.arange(x_BxN.shape[0]) if example_ids_B is None else example_ids_B
        bits = hash_bits(seed, rows, jnp.arange(x_BxN.shape[1]))
        keep = bits >= jnp.uint32(int(self.rate * 2**32))
        return jnp.where(keep, x_BxN / (1.0 - self.rate), 0.0)
