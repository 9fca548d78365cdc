"""The FxProcessor's training loss as MEGAMI publishes it.

    loss = MRSTFT(mid, side) + MRSTFT(left, right) + w_emb * (1 - cos(E(pred), E(target)))

MRSTFT over FFT sizes N (paper: 4096, 2048, 1024, 512; Hann window, hop N/4) is the mean over sizes of
    w_mag * mean |M_pred - M_target| + w_log * mean (log M_pred - log M_target)^2   (paper: 0.9, 0.1)
with M the STFT magnitude (torch.stft, unnormalised; power floored at EPS so silence keeps finite
gradients), the mean over every bin of both channels of the pair and of the batch. mid = (L + R) / 2,
side = (L - R) / 2. E is the frozen effect encoder (any module mapping (batch, 2, time) audio to
embeddings): gradients flow through it into the prediction, the target's embedding is a constant.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-8


def mid_side(x: torch.Tensor) -> torch.Tensor:
    """(batch, 2, time) L/R -> (batch, 2, time) mid = (L + R) / 2, side = (L - R) / 2."""
    left, right = x[:, 0], x[:, 1]
    return torch.stack([(left + right) * 0.5, (left - right) * 0.5], dim=1)


class SpectralLoss(nn.Module):
    """Multi-resolution STFT loss: per size w_mag * L1 magnitude + w_log * MSE log-magnitude, mean over sizes."""

    def __init__(self, fft_sizes: Sequence[int], magnitude_weight: float = 0.9, log_weight: float = 0.1) -> None:
        super().__init__()
        if not fft_sizes or any(int(n) < 16 for n in fft_sizes):
            raise ValueError("fft_sizes must be a non-empty list of sizes >= 16")
        self.fft_sizes = tuple(int(n) for n in fft_sizes)
        self.magnitude_weight = float(magnitude_weight)
        self.log_weight = float(log_weight)
        for n in self.fft_sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def magnitude(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """|STFT| of (N, time) float32 signals, hop n/4, centred frames."""
        spec = torch.stft(x, n, hop_length=n // 4, win_length=n, window=getattr(self, f"window_{n}"), center=True, return_complex=True)
        return (spec.real.square() + spec.imag.square()).clamp_min(EPS).sqrt()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape or pred.dim() != 3:
            raise ValueError(f"expected two (batch, channels, time) tensors of one shape, got {tuple(pred.shape)}, {tuple(target.shape)}")
        x = pred.float().reshape(-1, pred.shape[-1])
        y = target.float().reshape(-1, target.shape[-1])
        total = torch.zeros((), device=pred.device)
        for n in self.fft_sizes:
            mx, my = self.magnitude(x, n), self.magnitude(y, n)
            total = total + self.magnitude_weight * (mx - my).abs().mean() + self.log_weight * (mx.log() - my.log()).square().mean()
        return total / len(self.fft_sizes)


class FxProcessorLoss(nn.Module):
    """MRSTFT on mid/side + MRSTFT on L/R + w_emb (1 - cos) of effect embeddings; returns (loss, metrics)."""

    def __init__(
        self,
        fft_sizes: Sequence[int],
        magnitude_weight: float = 0.9,
        log_weight: float = 0.1,
        embedding_weight: float = 1.5,
        embedder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if embedding_weight > 0 and embedder is None:
            raise ValueError("an embedding weight > 0 needs the effect encoder (embedder)")
        self.spectral = SpectralLoss(fft_sizes, magnitude_weight, log_weight)
        self.embedding_weight = float(embedding_weight)
        # kept out of this module's parameters and state: the encoder is frozen and rebuilt from its own file
        self._embedder = [embedder] if embedder is not None and embedding_weight > 0 else []

    @property
    def embedder(self) -> nn.Module | None:
        return self._embedder[0] if self._embedder else None

    def embedding_distance(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of 1 - cos(E(pred), E(target)); differentiable in `pred`."""
        embedder = self.embedder
        assert embedder is not None
        device = pred.device
        if next(embedder.parameters(), torch.empty(0, device=device)).device != device:
            embedder.to(device)
        embedder.eval()
        with torch.no_grad():
            ref = embedder(target.float()).float()
        out = embedder(pred.float()).float()
        return (1.0 - F.cosine_similarity(out, ref, dim=-1)).mean()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if pred.shape != target.shape or pred.dim() != 3 or pred.shape[1] != 2:
            raise ValueError(f"expected two (batch, 2, time) tensors of one shape, got {tuple(pred.shape)}, {tuple(target.shape)}")
        with torch.autocast(pred.device.type, enabled=False):
            ms = self.spectral(mid_side(pred.float()), mid_side(target.float()))
            lr = self.spectral(pred, target)
            total = ms + lr
            metrics = {"mrstft_ms": float(ms.detach()), "mrstft_lr": float(lr.detach())}
            if self.embedder is not None:
                emb = self.embedding_distance(pred, target)
                total = total + self.embedding_weight * emb
                metrics["embedding_distance"] = float(emb.detach())
        return total, metrics
