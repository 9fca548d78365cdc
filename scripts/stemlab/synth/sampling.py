"""Weighted choices from a caller's numpy Generator (never global random state)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import numpy as np

K = TypeVar("K")


def weighted_choice(rng: np.random.Generator, weights: Mapping[K, float]) -> K:
    """One key of `weights`, drawn with probability proportional to its weight (insertion order fixed)."""
    keys = list(weights)
    w = np.array([float(weights[k]) for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]
