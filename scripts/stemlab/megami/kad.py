"""Kernel Audio Distance (KAD; Chung et al., 2025): the unbiased MMD² between two sets of embeddings with
a Gaussian kernel, scaled by 100, as kadtk computes it (kadtk itself cannot be installed here).

    k(a, b) = exp(-|a - b|² / (2 h²)),   h = median pairwise distance of the reference set
    KAD = 100 · [ mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j) ]

with x the reference and y the evaluated embeddings. It is unbiased, so a system that matches the reference
distribution scores 0 on average and may score slightly below 0.

KAD is a property of a set, not of one song. `jackknife_items` gives each song a centred jackknife
pseudo-value (leave the song's embeddings out of both sets, bandwidth fixed): their mean is the KAD of the
whole set and the spread of their mean is the jackknife standard error, so the frame's item bootstrap
(stemlab.evaluate.summary) turns them into a confidence interval over songs (and seeds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stemlab.errors import StemlabError

SCALE = 100.0


def _as_set(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise StemlabError(f"KAD: the {what} set needs at least 2 embeddings of one dimension, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise StemlabError(f"KAD: the {what} embeddings are not all finite; check the encoder and the audio")
    return x


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances, clipped at 0 against rounding."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d2 = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)


def median_pairwise_distance(x: np.ndarray) -> float:
    """The median Euclidean distance over the pairs i < j of `x` (rows)."""
    x = _as_set(x, "reference")
    i, j = np.triu_indices(len(x), k=1)
    return float(np.median(np.sqrt(squared_distances(x, x)[i, j])))


def _kernels(reference: np.ndarray, evaluated: np.ndarray, bandwidth: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gamma = 1.0 / (2.0 * bandwidth**2)
    return (
        np.exp(-gamma * squared_distances(reference, reference)),
        np.exp(-gamma * squared_distances(evaluated, evaluated)),
        np.exp(-gamma * squared_distances(reference, evaluated)),
    )


def _mmd2(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    m, n = len(k_xx), len(k_yy)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def bandwidth_of(reference: np.ndarray) -> float:
    h = median_pairwise_distance(reference)
    if not h > 0:
        raise StemlabError("KAD: every reference embedding is the same point (median distance 0); the bandwidth is undefined")
    return h


def kad(reference: np.ndarray, evaluated: np.ndarray, bandwidth: float | None = None) -> float:
    """KAD (×100) of `evaluated` against `reference` (rows are embeddings); `bandwidth` defaults to the
    median pairwise distance of `reference`."""
    x, y = _as_set(reference, "reference"), _as_set(evaluated, "evaluated")
    if x.shape[1] != y.shape[1]:
        raise StemlabError(f"KAD: reference embeddings have {x.shape[1]} dimensions, evaluated ones {y.shape[1]}")
    h = bandwidth_of(x) if bandwidth is None else float(bandwidth)
    return SCALE * _mmd2(*_kernels(x, y, h))


def jackknife_items(
    reference: np.ndarray, evaluated: np.ndarray, ref_groups: Sequence[str], eval_groups: Sequence[str]
) -> tuple[float, dict[str, float]]:
    """(KAD of the sets, {group: centred jackknife pseudo-value}). Groups (songs) label the rows of both
    sets; leaving group g out removes its rows from both, with the bandwidth of the full reference set.
    Pseudo-value g = G·KAD − (G−1)·KAD₋g, shifted so that their mean is exactly KAD."""
    x, y = _as_set(reference, "reference"), _as_set(evaluated, "evaluated")
    ref_groups, eval_groups = np.asarray(ref_groups, dtype=object), np.asarray(eval_groups, dtype=object)
    if len(ref_groups) != len(x) or len(eval_groups) != len(y):
        raise ValueError("one group label per embedding is required")
    h = bandwidth_of(x)
    k_xx, k_yy, k_xy = _kernels(x, y, h)
    total = SCALE * _mmd2(k_xx, k_yy, k_xy)
    groups = list(dict.fromkeys([*ref_groups.tolist(), *eval_groups.tolist()]))
    if len(groups) < 3:
        return total, dict.fromkeys(groups, total)
    count = len(groups)
    pseudo = {}
    for g in groups:
        kx, ky = ref_groups != g, eval_groups != g
        if kx.sum() < 2 or ky.sum() < 2:
            raise StemlabError(f"KAD jackknife: leaving out {g!r} leaves fewer than 2 embeddings; evaluate more songs")
        left_out = SCALE * _mmd2(k_xx[np.ix_(kx, kx)], k_yy[np.ix_(ky, ky)], k_xy[np.ix_(kx, ky)])
        pseudo[g] = count * total - (count - 1) * left_out
    shift = total - float(np.mean(list(pseudo.values())))
    return total, {g: v + shift for g, v in pseudo.items()}
