"""Set distances between embedding sets for the stage evaluation: the Fréchet distance (FAD's formula) and
KAD (stemlab.megami.kad), each with per-group jackknife pseudo-values over the evaluated set.

    FD = |mu_x − mu_y|² + tr(S_x + S_y − 2 (S_x^½ S_y S_x^½)^½)

(the matrix square root through symmetric eigendecompositions, so singular covariances of small sets are
fine). The reference set is held fixed and groups (songs) of the evaluated set are left out one at a time:
pseudo-value g = G·D − (G−1)·D₋g, shifted so that their mean is D, and the frame's item bootstrap turns
them into an interval (as stemlab.megami.kad.jackknife_items does for a shared reference).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from stemlab.errors import StemlabError
from stemlab.megami import kad as kad_mod


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(reference: np.ndarray, evaluated: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the two sets (rows are embeddings)."""
    x, y = np.asarray(reference, dtype=np.float64), np.asarray(evaluated, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) < 2 or len(y) < 2 or x.shape[1] != y.shape[1]:
        raise StemlabError(f"Fréchet distance: needs two sets of at least 2 embeddings of one dimension, got {x.shape} and {y.shape}")
    mu = x.mean(axis=0) - y.mean(axis=0)
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = _psd_sqrt(sx)
    cross = _psd_sqrt(root @ sy @ root)
    return float(mu @ mu + np.trace(sx) + np.trace(sy) - 2.0 * np.trace(cross))


def kad(reference: np.ndarray, evaluated: np.ndarray, bandwidth: float | None = None) -> float:
    return kad_mod.kad(reference, evaluated, bandwidth)


def jackknife_evaluated(
    distance: Callable[[np.ndarray, np.ndarray], float], reference: np.ndarray, evaluated: np.ndarray, groups: Sequence[str]
) -> tuple[float, dict[str, float]]:
    """(distance of the full sets, {group: centred jackknife pseudo-value}) leaving out each group of the
    evaluated set; with fewer than 3 groups every group gets the full distance."""
    groups = np.asarray(groups, dtype=object)
    if len(groups) != len(evaluated):
        raise ValueError("one group label per evaluated embedding is required")
    total = distance(reference, evaluated)
    names = list(dict.fromkeys(groups.tolist()))
    if len(names) < 3:
        return total, dict.fromkeys(names, total)
    pseudo = {}
    for g in names:
        keep = groups != g
        if keep.sum() < 2:
            raise StemlabError(f"jackknife: leaving out {g!r} leaves fewer than 2 embeddings; evaluate more songs")
        pseudo[g] = len(names) * total - (len(names) - 1) * distance(reference, evaluated[keep])
    shift = total - float(np.mean(list(pseudo.values())))
    return total, {g: v + shift for g, v in pseudo.items()}


def kad_fixed_bandwidth(reference: np.ndarray) -> Callable[[np.ndarray, np.ndarray], float]:
    """KAD with the bandwidth of the whole reference set, for every leave-one-out set."""
    h = kad_mod.bandwidth_of(reference)
    return lambda x, y: kad_mod.kad(x, y, h)
