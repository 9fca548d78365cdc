"""The effect encoder trained here: a convolutional network over stereo log-mel at 44.1 kHz (the shape of
Fx-Encoder++'s encoder: blocks of two 3x3 convolutions + batch norm + ReLU with 2x2 average pooling, the
two channels as input planes so pan and width stay visible, frequency mean then time max + mean), a
linear embedding of `embedding_dim` (the learned part of MEGAMI's embedding) and a projection head that
only the contrastive loss sees (SimCLR: the embedding before the head is what is used downstream).

The log-mel is absolute, not normalised per clip: the STFT is scaled so a full-scale sine reads 0 dB in
its bin, band powers are clamped to [DB_FLOOR, DB_CEIL] dB and mapped to [-1, 1], so level (the fader) is
part of what the network hears.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stemlab.encoders.fx.features import af_embedding, join
from stemlab.errors import StemlabError

SAMPLE_RATE = 44_100
DB_FLOOR, DB_CEIL = -100.0, 20.0


@dataclass(frozen=True)
class FxNetConfig:
    n_fft: int = 2048
    hop: int = 512
    mel_bins: int = 64
    fmin: float = 50.0
    fmax: float = 18_000.0
    channels: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    embedding_dim: int = 2048
    projection_dim: int = 128
    dropout: float = 0.0

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FxNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise StemlabError(f"models.fx_encoder.settings.model: unknown key {unknown[0]!r}; see config/README.md")
        kwargs = dict(values)
        if "channels" in kwargs:
            kwargs["channels"] = tuple(int(c) for c in kwargs["channels"])
        cfg = cls(**kwargs)
        if not cfg.channels:
            raise StemlabError("models.fx_encoder.settings.model.channels: list at least one block width")
        if not 0 < cfg.fmin < cfg.fmax <= SAMPLE_RATE / 2:
            raise StemlabError("models.fx_encoder.settings.model: need 0 < fmin < fmax <= 22050")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["channels"] = list(self.channels)
        return out

    @property
    def min_samples(self) -> int:
        """Shortest clip the pooling stack accepts (shorter clips are zero-padded by `embed`)."""
        pools = max(0, len(self.channels) - 1)
        return self.hop * (2**pools) + self.n_fft


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale, peak 1."""
    def mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    edges_mel = torch.linspace(mel(fmin), mel(fmax), n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    freqs = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - lo) / (centre - lo)
    down = (hi - freqs) / (hi - centre)
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


class LogMel(nn.Module):
    def __init__(self, cfg: FxNetConfig) -> None:
        super().__init__()
        self.n_fft, self.hop = cfg.n_fft, cfg.hop
        window = torch.hann_window(cfg.n_fft, periodic=True)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("fb", mel_filterbank(SAMPLE_RATE, cfg.n_fft, cfg.mel_bins, cfg.fmin, cfg.fmax), persistent=False)
        self.scale = 2.0 / float(window.sum())  # full-scale sine -> magnitude 1 in its bin

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, 2, time) -> (batch, 2, frames, mel_bins) in [-1, 1]."""
        b, c, t = audio.shape
        spec = torch.stft(audio.reshape(b * c, t).float(), self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)  # fmt: skip
        power = (spec.abs() * self.scale).square()  # (b*c, freq, frames)
        mel = torch.matmul(self.fb, power)  # (b*c, mels, frames)
        db = 10.0 * torch.log10(mel.clamp(min=10.0 ** (DB_FLOOR / 10.0)))
        x = (db.clamp(DB_FLOOR, DB_CEIL) - DB_FLOOR) / (DB_CEIL - DB_FLOOR) * 2.0 - 1.0
        return x.reshape(b, c, x.shape[-2], x.shape[-1]).transpose(2, 3)


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: bool) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, 2) if pool else x


class FxEncoderNet(nn.Module):
    """audio (batch, 2, time) at 44.1 kHz -> learned embedding (batch, embedding_dim)."""

    def __init__(self, cfg: FxNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = LogMel(cfg)
        widths = (2, *cfg.channels)
        self.blocks = nn.ModuleList(ConvBlock(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.channels[-1], cfg.embedding_dim)
        self.head = nn.Sequential(
            nn.Linear(cfg.embedding_dim, cfg.projection_dim), nn.ReLU(), nn.Linear(cfg.projection_dim, cfg.projection_dim)
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.frontend(audio)
        for i, block in enumerate(self.blocks):
            x = self.dropout(block(x, pool=i < len(self.blocks) - 1))
        x = x.mean(dim=3)  # over mel bins: (batch, channels, frames)
        x = x.amax(dim=2) + x.mean(dim=2)
        return self.fc(x)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(embedding), dim=-1)


def pad_to(audio: torch.Tensor, samples: int) -> torch.Tensor:
    return F.pad(audio, (0, samples - audio.shape[-1])) if audio.shape[-1] < samples else audio


class FxEmbedder(nn.Module):
    """The whole effect embedding of a trained encoder: join(learned, MEGAMI features), unit norm."""

    def __init__(self, net: FxEncoderNet) -> None:
        super().__init__()
        self.net = net

    @property
    def dim(self) -> int:
        return self.net.cfg.embedding_dim + 64

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        learned = self.net(pad_to(audio, self.net.cfg.min_samples))
        return join(learned, af_embedding(audio, SAMPLE_RATE))
