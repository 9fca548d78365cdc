"""FxNorm: the FxProcessor's input normalisation (MEGAMI, after Martinez-Ramirez et al.'s FxNorm-automix).

A dry track x (mono, 44.1 kHz) is, in order:
1. peak-normalised: x / max|x|;
2. EQ-matched to the average spectrum of the training dry stems: the clip's band spectrum (BANDS triangular
   log-spaced bands from FMIN to FMAX over a Welch power spectrum, FFT N_FFT, hop N_FFT/4, frames below
   the RMS gate left out) is compared with the stored average, both shape-normalised (band powers summing
   to 1, in dB); the difference, clamped to +-MAX_EQ_DB and 0 where the clip has no energy in a band, is
   interpolated on log frequency to every FFT bin of the whole clip and applied as a zero-phase filter;
3. scaled to a gated RMS of `rms_db` (paper: -16 dBFS): the RMS over 100 ms blocks above an absolute gate
   of ABS_GATE_DB and a relative gate REL_GATE_DB below their mean power (the structure of BS.1770's gate).

The average spectrum is `fit_spectrum` over training dry windows; the model keeps it as a buffer, so it is
stored with the weights. A silent clip passes through unchanged (zeros stay zeros).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 44_100
N_FFT = 4096
BANDS = 40
FMIN, FMAX = 30.0, 20_000.0
MAX_EQ_DB = 18.0
EMPTY_BAND_DB = -80.0  # a band this far below the clip's total power is not boosted
BLOCK_S = 0.1
ABS_GATE_DB = -70.0
REL_GATE_DB = -20.0
_TINY = 1e-12


def band_centres() -> np.ndarray:
    return np.geomspace(FMIN, FMAX, BANDS)


def band_filters(n_fft: int = N_FFT) -> torch.Tensor:
    """(BANDS, n_fft // 2 + 1) triangular filters on log frequency, peaking at band_centres()."""
    centres = np.log(band_centres())
    step = centres[1] - centres[0]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    logf = np.log(np.maximum(freqs, 1e-3))
    weights = np.clip(1.0 - np.abs(logf[None, :] - centres[:, None]) / step, 0.0, None)
    return torch.from_numpy(weights.astype(np.float32))


def block_powers(x: torch.Tensor) -> torch.Tensor:
    """(batch, time) -> (batch, blocks) mean power of BLOCK_S blocks (a clip shorter than one block: one block)."""
    block = int(SAMPLE_RATE * BLOCK_S)
    if x.shape[-1] < block:
        return x.square().mean(-1, keepdim=True)
    n = x.shape[-1] // block * block
    return x[:, :n].reshape(x.shape[0], -1, block).square().mean(-1)


def gate_mask(powers: torch.Tensor) -> torch.Tensor:
    """Blocks above the absolute gate and REL_GATE_DB below the mean power of those (batch, blocks) -> bool."""
    absolute = powers > 10.0 ** (ABS_GATE_DB / 10.0)
    count = absolute.sum(-1, keepdim=True).clamp(min=1)
    mean = (powers * absolute).sum(-1, keepdim=True) / count
    return absolute & (powers > mean * 10.0 ** (REL_GATE_DB / 10.0))


def gated_rms_db(x: torch.Tensor) -> torch.Tensor:
    """(batch, time) -> (batch,) gated RMS in dBFS; -inf where no block passes the gate."""
    powers = block_powers(x.float())
    mask = gate_mask(powers)
    mean = (powers * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    db = 10.0 * torch.log10(mean.clamp(min=_TINY))
    return torch.where(mask.any(-1), db, torch.full_like(db, -math.inf))


def band_spectrum_db(x: torch.Tensor, filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, time) -> shape-normalised band spectrum (batch, BANDS) in dB (band powers summing to 1) over
    frames above the gate, and whether the clip had any such frame (batch,)."""
    n_fft = (filters.shape[1] - 1) * 2
    x = x.float()
    if x.shape[-1] < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=window, center=False, return_complex=True)
    power = spec.real.square() + spec.imag.square()  # (batch, bins, frames)
    frame_power = power.mean(1)
    mask = gate_mask(frame_power / window.square().sum())  # ~ the frame's mean square (Parseval)
    mean_power = (power * mask[:, None, :]).sum(-1) / mask.sum(-1, keepdim=True).clamp(min=1)
    bands = mean_power @ filters.to(x.device).T
    total = bands.sum(-1, keepdim=True).clamp(min=_TINY)
    return 10.0 * torch.log10(bands.clamp(min=_TINY) / total), mask.any(-1)


def fit_spectrum(clips: Iterable[np.ndarray]) -> np.ndarray:
    """The average shape-normalised band spectrum (BANDS,) in dB of mono clips (time,); silent clips are skipped."""
    filters = band_filters()
    total, count = np.zeros(BANDS, dtype=np.float64), 0
    for clip in clips:
        with torch.no_grad():
            db, active = band_spectrum_db(torch.as_tensor(np.asarray(clip, dtype=np.float32))[None], filters)
        if bool(active[0]):
            total += db[0].double().numpy()
            count += 1
    if count == 0:
        raise ValueError("FxNorm: every clip given to fit the average spectrum is silent")
    return (total / count).astype(np.float32)


def eq_gains(clip_db: torch.Tensor, target_db: torch.Tensor, n: int) -> torch.Tensor:
    """(batch, BANDS) clip and (BANDS,) target band spectra -> (batch, n // 2 + 1) linear gains per rfft bin."""
    diff = (target_db[None].to(clip_db) - clip_db).clamp(-MAX_EQ_DB, MAX_EQ_DB)
    diff = torch.where(clip_db > EMPTY_BAND_DB, diff, torch.zeros_like(diff))
    centres = torch.from_numpy(np.log(band_centres())).to(clip_db)
    freqs = torch.fft.rfftfreq(n, 1.0 / SAMPLE_RATE, device=clip_db.device).to(clip_db)
    logf = torch.log(freqs.clamp(min=FMIN)).clamp(max=float(centres[-1]))
    upper = torch.searchsorted(centres, logf).clamp(1, BANDS - 1)
    lower = upper - 1
    t = ((logf - centres[lower]) / (centres[upper] - centres[lower])).clamp(0.0, 1.0)
    db = diff[:, lower] * (1.0 - t) + diff[:, upper] * t
    return 10.0 ** (db / 20.0)


class FxNorm(nn.Module):
    """Peak-normalise, EQ-match to the stored average spectrum, gated RMS to `rms_db`: (batch, time) mono."""

    def __init__(self, rms_db: float = -16.0) -> None:
        super().__init__()
        self.rms_db = float(rms_db)
        self.register_buffer("target_db", torch.zeros(BANDS))  # persistent: saved with the weights
        self.register_buffer("filters", band_filters(), persistent=False)

    def set_spectrum(self, spectrum_db: np.ndarray) -> None:
        spectrum = torch.as_tensor(np.asarray(spectrum_db, dtype=np.float32))
        if spectrum.shape != (BANDS,):
            raise ValueError(f"FxNorm spectrum must have {BANDS} bands, got {tuple(spectrum.shape)}")
        with torch.no_grad():
            self.target_db.copy_(spectrum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"FxNorm takes (batch, time) mono audio, got {tuple(x.shape)}")
        x = x.float()
        peak = x.abs().amax(-1, keepdim=True)
        x = torch.where(peak > 0, x / peak.clamp(min=_TINY), x)
        clip_db, active = band_spectrum_db(x, self.filters)
        n = x.shape[-1]
        gains = eq_gains(clip_db, self.target_db, n)
        gains = torch.where(active[:, None], gains, torch.ones_like(gains))
        x = torch.fft.irfft(torch.fft.rfft(x.double()) * gains.double(), n=n).float()
        level = gated_rms_db(x)
        gain = torch.where(torch.isfinite(level), 10.0 ** ((self.rms_db - level) / 20.0), torch.ones_like(level))
        return x * gain[:, None]
