"""Integrated loudness (ITU-R BS.1770, pyloudnorm) with JSON-safe results."""

from __future__ import annotations

import math

import numpy as np

from stemlab.audio import SAMPLE_RATE


def integrated_lufs(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float | None:
    """LUFS of float (frames, channels) audio; None when silent or shorter than one 400 ms gating block."""
    import pyloudnorm

    if audio.shape[0] < int(0.4 * sr) + 1 or not np.any(audio):
        return None
    value = pyloudnorm.Meter(sr).integrated_loudness(np.asarray(audio, dtype=np.float64))
    return round(float(value), 3) if math.isfinite(value) else None
