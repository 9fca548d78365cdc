"""Re-generation metrics of one predicted symbol sequence against the target's true one.

TPP: the percentage of the target's non-pad symbols predicted at their position. LCP: at each non-pad
position i, the length of the longest common prefix of prediction[i:] and target[i:] (how long the
prediction stays right from there); lcp is its mean over positions.
"""

from __future__ import annotations

import numpy as np

# the systems of the relations table (stemlab.relations.task), in the order tables and figures show them
SYSTEMS = ("relations", "relations_constrained", "random", "random_constrained", "unigram", "copy_guide")


def tpp(predicted: np.ndarray, target: np.ndarray, pad: int) -> float:
    real = target != pad
    if not real.any():
        return float("nan")
    return 100.0 * float(((predicted == target) & real).sum()) / float(real.sum())


def lcp_lengths(predicted: np.ndarray, target: np.ndarray, pad: int) -> np.ndarray:
    """Per non-pad position: the run of correct symbols starting there."""
    hit = (np.asarray(predicted) == np.asarray(target)) & (np.asarray(target) != pad)
    runs = np.zeros(len(hit) + 1, dtype=np.int64)
    for i in range(len(hit) - 1, -1, -1):
        runs[i] = runs[i + 1] + 1 if hit[i] else 0
    return runs[:-1][np.asarray(target) != pad]


def lcp_mean(predicted: np.ndarray, target: np.ndarray, pad: int) -> float:
    lengths = lcp_lengths(predicted, target, pad)
    return float(lengths.mean()) if len(lengths) else float("nan")
