"""Seeds derived from (global seed, keys...): no global random state anywhere in stemlab."""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed that depends only on `seed` and `keys` (stable across processes and platforms)."""
    text = "\x1f".join([str(int(seed)), *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1


def rng(seed: int, *keys: object) -> np.random.Generator:
    """A private numpy Generator for one purpose, e.g. rng(42, "song", 17, "chords")."""
    return np.random.Generator(np.random.PCG64(derive_seed(seed, *keys)))
