"""Features of tracks and mixes for the mix-level evaluation, and the level a generated effect embedding asks
for.

Per (channels, time) float signal at 44.1 kHz:

    loudness_lufs         integrated loudness (ITU-R BS.1770-4, stemlab.metrics; floored at -70 LUFS)
    centroid_hz           spectral centroid of the long-term power spectrum of the mid signal
                          (Hann frames of 2,048 samples, hop 1,024): sum f P(f) / sum P(f)
    stereo_width          side energy share E[S²] / (E[M²] + E[S²]), M = (L+R)/2, S = (L-R)/2: 0 for mono,
                          0.5 for uncorrelated channels of equal power, 1 for L = -R
    crest_db              20 log10(peak / RMS) over both channels (3.01 dB for a sine)

`effect_features` inverts MEGAMI's Fourier features (stemlab.encoders.fx.features) of an effect embedding:
its last 64 entries are cos/sin of the standardised features times a fixed 8 x 32 projection, so the
phases give the projected features (mod 2π) and least squares the 8 features. It is exact while every
projected feature lies in (-π, π], which holds for features within about ±3.9 standard deviations of
MEGAMI's constants. The FxGenerator's samples are not exactly on that manifold; the phases do not depend on
the pairs' norms, so a sample still decodes to the nearest features in that sense.
"""

from __future__ import annotations

import functools

import numpy as np

from stemlab.audio import SAMPLE_RATE
from stemlab.metrics import integrated_loudness

FEATURES = ("loudness_lufs", "centroid_hz", "stereo_width", "crest_db")
FRAME, HOP = 2048, 1024
_EPS = 1e-12


def _stereo(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"audio must be (channels, time), got shape {x.shape}")
    return np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x[:2]


def spectral_centroid(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Centroid (Hz) of the long-term power spectrum of the mid signal; 0 for silence."""
    mid = _stereo(audio).mean(axis=0)
    if len(mid) < FRAME:
        mid = np.pad(mid, (0, FRAME - len(mid)))
    frames = np.lib.stride_tricks.sliding_window_view(mid, FRAME)[::HOP]
    power = np.square(np.abs(np.fft.rfft(frames * np.hanning(FRAME), axis=-1))).sum(axis=0)
    total = power.sum()
    freqs = np.fft.rfftfreq(FRAME, 1.0 / sr)
    return float((freqs * power).sum() / total) if total > _EPS else 0.0


def stereo_width(audio: np.ndarray) -> float:
    x = _stereo(audio)
    mid, side = (x[0] + x[1]) / 2.0, (x[0] - x[1]) / 2.0
    e_mid, e_side = float(np.mean(mid * mid)), float(np.mean(side * side))
    return e_side / (e_mid + e_side) if e_mid + e_side > _EPS else 0.0


def crest_factor_db(audio: np.ndarray) -> float:
    x = _stereo(audio)
    rms = float(np.sqrt(np.mean(x * x)))
    return float(20.0 * np.log10(np.max(np.abs(x)) / rms)) if rms > _EPS else 0.0


def signal_features(audio: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """FEATURES of one (channels, time) signal."""
    return {
        "loudness_lufs": integrated_loudness(_stereo(audio), sr),
        "centroid_hz": spectral_centroid(audio, sr),
        "stereo_width": stereo_width(audio),
        "crest_db": crest_factor_db(audio),
    }


def feature_distances(estimate: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """Per-feature absolute differences: loudness in LU, centroid in octaves, width, crest factor in dB."""
    c_est, c_ref = max(estimate["centroid_hz"], 1.0), max(reference["centroid_hz"], 1.0)
    return {
        "dist_loudness": abs(estimate["loudness_lufs"] - reference["loudness_lufs"]),
        "dist_centroid": abs(float(np.log2(c_est / c_ref))),
        "dist_width": abs(estimate["stereo_width"] - reference["stereo_width"]),
        "dist_crest": abs(estimate["crest_db"] - reference["crest_db"]),
    }


# --------------------------------------------------------------------------- effect-embedding features


@functools.cache
def _pseudo_inverse() -> np.ndarray:
    from stemlab.encoders.fx.features import projection

    return np.linalg.pinv(projection().double().numpy().T)  # (8, 32): features from the 32 phases


def effect_features(embeddings: np.ndarray) -> np.ndarray:
    """(..., dim) effect embeddings -> (..., 8) MEGAMI features in the order and units of
    stemlab.encoders.fx.features.FEATURES (dB, ratios), decoded from the last 64 entries."""
    from stemlab.encoders.fx.features import AF_DIM, SCALE, SHIFT

    e = np.asarray(embeddings, dtype=np.float64)
    if e.shape[-1] < AF_DIM:
        raise ValueError(f"an effect embedding has at least {AF_DIM} entries, got {e.shape[-1]}")
    af = e[..., -AF_DIM:]
    half = AF_DIM // 2
    phases = np.arctan2(af[..., half:], af[..., :half])
    standardised = phases @ _pseudo_inverse().T
    return standardised * np.asarray(SCALE) + np.asarray(SHIFT)


def effect_level_db(embeddings: np.ndarray) -> np.ndarray:
    """(...,) the log-RMS level (dB, loudest 400 ms frame, mean of L and R) an effect embedding encodes."""
    return effect_features(embeddings)[..., :2].mean(axis=-1)


def measured_level_db(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """The same level feature measured on a (channels, time) signal: per channel the RMS (dB) of the
    loudest 400 ms frame (100 ms hop; the whole signal when shorter), averaged over L and R, as
    stemlab.encoders.fx.features.interpretable_features computes it (from cumulative sums here)."""
    from stemlab.encoders.fx.features import FRAME_S, HOP_S

    x = _stereo(audio)
    frame, hop = int(sr * FRAME_S), int(sr * HOP_S)
    if x.shape[1] < frame:
        frame, hop = x.shape[1], 1
    energy = np.concatenate([np.zeros((2, 1)), np.cumsum(x * x, axis=1)], axis=1)
    starts = np.arange(0, x.shape[1] - frame + 1, hop)
    rms = np.sqrt(np.maximum(energy[:, starts + frame] - energy[:, starts], 0.0) / frame).max(axis=1)
    return float(np.mean(20.0 * np.log10(np.maximum(rms, 1e-8))))
