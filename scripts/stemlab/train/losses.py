"""Audio losses shared by the model families (torch.stft only; no torchaudio / auraloss)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """|STFT| of (N, T) float32 signals → (N, n_fft // 2 + 1, frames); power floored at `eps` (-80 dB),
    which keeps gradients finite at silence and the log-magnitude term from chasing inaudible bins."""
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=n_fft, window=window, center=True, return_complex=True)
    return (spec.real.square() + spec.imag.square()).clamp_min(eps).sqrt()


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over FFT sizes (Yamamoto et al., 2020).

    Inputs are (batch, channels, time); channels are folded into the batch. `per_item` returns one
    distance per batch element (the evaluation metric); `forward` is the batch-level training loss.
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = (512, 1024, 2048),
        hop_ratio: float = 0.25,
        sc_weight: float = 1.0,
        logmag_weight: float = 1.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        if not fft_sizes or any(n < 16 for n in fft_sizes):
            raise ValueError("fft_sizes must be a non-empty list of sizes >= 16")
        self.fft_sizes = tuple(int(n) for n in fft_sizes)
        self.hops = tuple(max(1, int(n * hop_ratio)) for n in self.fft_sizes)
        self.sc_weight = sc_weight
        self.logmag_weight = logmag_weight
        self.eps = eps
        for n in self.fft_sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def _magnitudes(self, pred: torch.Tensor, target: torch.Tensor):
        if pred.shape != target.shape or pred.dim() != 3:
            raise ValueError(f"expected two (batch, channels, time) tensors of one shape, got {pred.shape}, {target.shape}")
        batch = pred.shape[0]
        x = pred.float().reshape(-1, pred.shape[-1])
        y = target.float().reshape(-1, target.shape[-1])
        for n, hop in zip(self.fft_sizes, self.hops):
            window = getattr(self, f"window_{n}")
            mx = stft_magnitude(x, n, hop, window, self.eps).reshape(batch, -1)
            my = stft_magnitude(y, n, hop, window, self.eps).reshape(batch, -1)
            yield mx, my

    def per_item(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One distance per batch element (spectral convergence normalised by that element's target)."""
        with torch.autocast(pred.device.type, enabled=False):
            total = torch.zeros(pred.shape[0], device=pred.device)
            for mx, my in self._magnitudes(pred, target):
                sc = torch.linalg.vector_norm(my - mx, dim=1) / torch.linalg.vector_norm(my, dim=1)
                logmag = (my.log() - mx.log()).abs().mean(dim=1)
                total = total + self.sc_weight * sc + self.logmag_weight * logmag
        return total / len(self.fft_sizes)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss: spectral convergence over the whole batch (as in Yamamoto et al.), so a crop whose
        target is near-silent cannot dominate the step through a vanishing denominator."""
        with torch.autocast(pred.device.type, enabled=False):
            total = torch.zeros((), device=pred.device)
            for mx, my in self._magnitudes(pred, target):
                sc = torch.linalg.vector_norm(my - mx) / torch.linalg.vector_norm(my)
                logmag = (my.log() - mx.log()).abs().mean()
                total = total + self.sc_weight * sc + self.logmag_weight * logmag
        return total / len(self.fft_sizes)
