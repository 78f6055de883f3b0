"""Counter-based randomness: random bits as a pure hash of (seed, counters).

Used where a random draw must be addressable by position: the permutation of an epoch
evaluated at a few rows (data.shuffled_index).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def mix32(x):
    """A 32-bit integer hash (the murmur3 finaliser): a bijection of uint32 with good avalanche."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def mix32_np(x_u32: np.ndarray) -> np.ndarray:
    """`mix32` in numpy on uint32 arrays, bit for bit (the host's twin for `stream`)."""
    x_u32 = x_u32 ^ (x_u32 >> np.uint32(16))
    x_u32 = x_u32 * np.uint32(0x85EBCA6B)
    x_u32 = x_u32 ^ (x_u32 >> np.uint32(13))
    x_u32 = x_u32 * np.uint32(0xC2B2AE35)
    return x_u32 ^ (x_u32 >> np.uint32(16))
