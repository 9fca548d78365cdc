"""MEGAMI's 8 interpretable mixing features, their Fourier embedding (64-d) and how MEGAMI joins them to a
learned effect embedding.

The features, per clip of stereo audio x (batch, 2, time), follow MEGAMI's code
(SonyResearch/MEGAMI, utils/feature_extractors/dsp_features.py and AF_features_embedding.py):

    0, 1  log-RMS of L and R: the loudest 400 ms frame (100 ms hop) in dB ("gated max"; the paper text
          speaks of a gate at -60 dBFS, the code takes the maximum frame, which is what is used here)
    2, 3  crest factor of L and R: 20 log10(peak / RMS)
    4, 5  log spread of L and R: mean over samples of 20 log10|x| - 20 log10 RMS
    6     stereo width: E[(L - R)^2] / E[(L + R)^2]
    7     stereo imbalance: (E[R^2] - E[L^2]) / (E[R^2] + E[L^2])

standardised with MEGAMI's dataset constants (shift, scale) below, then mapped to 64 Fourier features
[cos(f P), sin(f P)] * sqrt(2/64) with MEGAMI's fixed projection P[i, j] = 0.2 cos(pi (i + 1/2)(j + 1) / 32)
(8 x 32), which have unit norm by construction. Clips shorter than one 400 ms frame use the whole clip as
their one frame (MEGAMI's windows are always longer).

`join` builds MEGAMI's effect embedding from a learned part z (dim D, 2,048 in the paper) and these
features: [sqrt(D) z/|z|, sqrt(64) af] / sqrt(D + 64), a unit vector of D + 64 dimensions (2,112 in the
paper) in which both parts keep the weight of their dimension count.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

AF_DIM = 64
FEATURES = ("log_rms_l", "log_rms_r", "crest_l", "crest_r", "log_spread_l", "log_spread_r", "stereo_width", "stereo_imbalance")
# MEGAMI's standardisation constants (means and standard deviations of its training data), per feature
SHIFT = (-26.5, -26.5, 16.7, 16.7, -20.0, -20.0, 0.28, 0.0)
SCALE = (7.0, 7.0, 6.3, 6.3, 20.0, 20.0, 0.39, 0.35)
SIGMA = 0.2
FRAME_S, HOP_S = 0.4, 0.1
_EPS = 1e-8


def _db(x: torch.Tensor) -> torch.Tensor:
    return 20.0 * torch.log10(x.clamp(min=_EPS))


def interpretable_features(audio: torch.Tensor, sample_rate: int = 44_100) -> torch.Tensor:
    """(batch, 2, time) -> (batch, 8) in the order of FEATURES (unstandardised: dB, ratios)."""
    if audio.ndim != 3 or audio.shape[1] != 2:
        raise ValueError(f"audio must be (batch, 2, time), got {tuple(audio.shape)}")
    x = audio.float()
    frame, hop = int(sample_rate * FRAME_S), int(sample_rate * HOP_S)
    frames = x.unfold(2, frame, hop) if x.shape[-1] >= frame else x.unsqueeze(2)
    log_rms = _db(frames.square().mean(-1).clamp(min=_EPS**2).sqrt()).amax(-1)  # (batch, 2)
    rms = x.square().mean(-1).clamp(min=_EPS**2).sqrt()  # floored before the root: silence keeps a finite gradient
    crest = _db(x.abs().amax(-1) / rms)
    spread = (_db(x.abs()) - _db(rms).unsqueeze(-1)).mean(-1)
    left, right = x[:, 0], x[:, 1]
    width = (left - right).square().mean(-1) / (left + right).square().mean(-1).clamp(min=_EPS)
    e_l, e_r = left.square().mean(-1), right.square().mean(-1)
    imbalance = (e_r - e_l) / (e_r + e_l).clamp(min=_EPS)
    return torch.cat([log_rms, crest, spread, width[:, None], imbalance[:, None]], dim=1)


def projection(device: torch.device | str = "cpu") -> torch.Tensor:
    """MEGAMI's deterministic cosine projection (8, 32), scaled by SIGMA."""
    i = torch.arange(len(FEATURES), dtype=torch.float64)[:, None]
    j = torch.arange(AF_DIM // 2, dtype=torch.float64)[None, :]
    return (SIGMA * torch.cos(math.pi * (i + 0.5) * (j + 1) / (AF_DIM // 2))).float().to(device)


def standardise(features: torch.Tensor) -> torch.Tensor:
    shift = torch.tensor(SHIFT, device=features.device)
    scale = torch.tensor(SCALE, device=features.device)
    return (features - shift) / scale


def fourier_features(features: torch.Tensor) -> torch.Tensor:
    """(batch, 8) raw features -> (batch, 64) unit-norm Fourier features."""
    projected = standardise(features) @ projection(features.device)
    return torch.cat([projected.cos(), projected.sin()], dim=-1) * math.sqrt(2.0 / AF_DIM)


def af_embedding(audio: torch.Tensor, sample_rate: int = 44_100) -> torch.Tensor:
    """(batch, 2, time) -> (batch, 64): MEGAMI's interpretable-feature part of the effect embedding."""
    return fourier_features(interpretable_features(audio, sample_rate))


def join(learned: torch.Tensor, af: torch.Tensor) -> torch.Tensor:
    """MEGAMI's effect embedding: each part at unit norm, weighted by sqrt(its dim), the whole at unit norm."""
    d, k = learned.shape[-1], af.shape[-1]
    z = torch.cat([F.normalize(learned.float(), dim=-1) * math.sqrt(d), F.normalize(af.float(), dim=-1) * math.sqrt(k)], dim=-1)
    return z / math.sqrt(d + k)
