"""Deterministic song-level splits: a seeded permutation of the sorted song ids (independent of shards)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from stemlab.errors import StemlabError


def split_counts(n: int, train: float, valid: float) -> tuple[int, int, int]:
    if train < 0 or valid < 0 or train + valid > 1 + 1e-9:
        raise StemlabError(f"split fractions train={train} valid={valid} must be >= 0 and sum to at most 1; fix the split config")
    n_train = int(round(train * n))
    n_valid = min(int(round(valid * n)), n - n_train)
    return n_train, n_valid, n - n_train - n_valid


def random_split(song_ids: Iterable[str], seed: int, train: float, valid: float) -> dict[str, str]:
    """song id -> train/valid/test; the same ids and seed always give the same split (240 -> 192/24/24)."""
    ids = sorted(set(song_ids))
    n_train, n_valid, _ = split_counts(len(ids), train, valid)
    order = np.random.Generator(np.random.PCG64(int(seed))).permutation(len(ids))
    out = {}
    for rank, index in enumerate(order):
        out[ids[index]] = "train" if rank < n_train else "valid" if rank < n_train + n_valid else "test"
    return out
