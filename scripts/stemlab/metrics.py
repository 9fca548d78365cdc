"""Audio evaluation metrics on (channels, time) float arrays: SI-SDR, integrated loudness, MR-STFT distance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SILENCE_LUFS = -70.0  # floor for silent or near-silent signals (BS.1770 absolute gate)


def si_sdr(estimate: np.ndarray, reference: np.ndarray, eps: float = 1e-12) -> float:
    """Scale-invariant SDR in dB (Le Roux et al., 2019) over all channels jointly; no mean removal."""
    est = np.asarray(estimate, dtype=np.float64).ravel()
    ref = np.asarray(reference, dtype=np.float64).ravel()
    if est.shape != ref.shape:
        raise ValueError(f"estimate and reference differ in shape: {np.shape(estimate)} vs {np.shape(reference)}")
    alpha = np.dot(est, ref) / (np.dot(ref, ref) + eps)
    target = alpha * ref
    noise = est - target
    return float(10.0 * np.log10((np.dot(target, target) + eps) / (np.dot(noise, noise) + eps)))


def integrated_loudness(audio: np.ndarray, sr: int) -> float:
    """ITU-R BS.1770-4 integrated loudness (LUFS) of (channels, time) audio, floored at SILENCE_LUFS.

    Signals shorter than one 400 ms gating block are measured on a periodic extension of themselves.
    """
    from stemlab.loudness import integrated_loudness as meter

    data = np.asarray(audio, dtype=np.float64).T
    block = int(0.4 * sr) + 1
    if data.shape[0] < block:
        reps = -(-block // max(1, data.shape[0]))
        data = np.tile(data, (reps, 1))
    value = meter(data, sr)
    return float(max(value, SILENCE_LUFS)) if np.isfinite(value) else SILENCE_LUFS


def mrstft_distance(estimate: np.ndarray, reference: np.ndarray, fft_sizes: Sequence[int] = (512, 1024, 2048)) -> float:
    """The training MR-STFT loss (spectral convergence + log magnitude) between two (channels, time) signals."""
    import torch

    from stemlab.train.losses import MultiResolutionSTFTLoss

    loss = MultiResolutionSTFTLoss(fft_sizes)
    with torch.no_grad():
        est = torch.as_tensor(np.asarray(estimate, dtype=np.float32))[None]
        ref = torch.as_tensor(np.asarray(reference, dtype=np.float32))[None]
        return float(loss.per_item(est, ref)[0])
