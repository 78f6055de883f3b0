"""Counter-based randomness: random bits as a pure hash of (seed, counters).

Used where a random draw must be addressable by position, e.g. the permutation of an epoch
evaluated at a few rows, or a dropout mask that must not depend on how a batch is split.
"""

from __future__ import annotations

import jax.numpy as jnp

GOLDEN = 0x9E3779B9  # 2^32 / golden ratio: spreads consecutive counters apart


def mix32(x):
    """A 32-bit integer hash (the murmur3 finaliser): a bijection of uint32 with good avalanche."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def hash_bits(seed, rows_B, columns_N):
    """uint32 bits [B, N], each a hash of (seed, row, column)."""
    rows = mix32(jnp.asarray(seed, jnp.uint32) ^ (rows_B.astype(jnp.uint32) * jnp.uint32(GOLDEN)))
    columns = columns_N.astype(jnp.uint32) * jnp.uint32(0x85EBCA77)
    return mix32(mix32(rows[:, None] + columns[None, :]) ^ jnp.uint32(0x27D4EB2F))
