"""FxProcessor: a non-causal TCN of dilated 1-D convolutions with FiLM conditioning.

Maps a dry stem (batch, 2, time) and an effects-conditioning vector (batch, cond_dim) to the wet stem.
The conditioning is any fixed-size vector (normalized FX parameters today, FxEncoder embeddings later).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint


MAX_GAIN_DB = 40.0
MAX_LOG_GAIN = MAX_GAIN_DB / 20.0 * math.log(10.0)


@dataclass(frozen=True)
class FxProcessorConfig:
    """TCN shape; the defaults are the schema's (models.fxprocessor.settings.model): build with from_dict."""

    channels: int
    blocks: int
    kernel: int
    dilation_growth: int
    dilation_cycle: int  # dilations restart after this many blocks; 0: never
    cond_hidden: int
    audio_channels: int
    residual: bool  # predict wet = dry + net(dry): identity at initialisation
    # with residual: the direct path is scaled by a per-channel gain exp(g(cond)) (starts at 1): level and
    # pan are part of every FX chain and this path learns them in few steps; the TCN learns the rest
    direct_gain: bool
    activation_checkpointing: bool  # recompute block activations in backward (long segments)
    cond_dim: int = 0  # size of the conditioning vector (from the data, not the config); 0: unconditioned

    def __post_init__(self) -> None:
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError("FxProcessor kernel must be odd (centred, non-causal convolutions)")
        if min(self.channels, self.blocks, self.dilation_growth, self.cond_hidden, self.audio_channels) < 1:
            raise ValueError("FxProcessor channels, blocks, dilation_growth, cond_hidden, audio_channels must be >= 1")
        if self.cond_dim < 0 or self.dilation_cycle < 0:
            raise ValueError("FxProcessor cond_dim and dilation_cycle must be >= 0")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FxProcessorConfig:
        """`values` over the schema defaults; unknown keys are an error (the schema allows none)."""
        from stemlab.config import schema_defaults

        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown FxProcessor option {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        return cls(**(schema_defaults("models", "fxprocessor", "settings", "model") | dict(values)))

    def dilations(self) -> list[int]:
        cycle = self.dilation_cycle or self.blocks
        return [self.dilation_growth ** (i % cycle) for i in range(self.blocks)]

    def receptive_field(self) -> int:
        """Input samples that influence one output sample (centred on it)."""
        return 1 + sum((self.kernel - 1) * d for d in self.dilations())


class FiLMBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int, cond_hidden: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=(kernel - 1) * dilation // 2)
        self.film = nn.Linear(cond_hidden, 2 * channels)
        self.act = nn.PReLU(channels)
        self.mix = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.act(self.conv(x) * (1.0 + gamma) + beta)
        return x + self.mix(h)


class FxProcessor(nn.Module):
    def __init__(self, config: FxProcessorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        if c.cond_dim:
            self.cond_net: nn.Module = nn.Sequential(
                nn.Linear(c.cond_dim, c.cond_hidden), nn.SiLU(), nn.Linear(c.cond_hidden, c.cond_hidden), nn.SiLU()
            )
        else:
            self.cond_net = nn.Identity()
        self.inp = nn.Conv1d(c.audio_channels, c.channels, 1)
        self.blocks = nn.ModuleList(FiLMBlock(c.channels, c.kernel, d, c.cond_hidden) for d in c.dilations())
        self.out = nn.Conv1d(c.channels, c.audio_channels, 1)
        if c.residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.gain = nn.Linear(c.cond_hidden, c.audio_channels) if c.residual and c.direct_gain else None
        if self.gain is not None:
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.gain.bias)

    def forward(self, dry: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if dry.dim() != 3 or dry.shape[1] != c.audio_channels:
            raise ValueError(f"dry must be (batch, {c.audio_channels}, time), got {tuple(dry.shape)}")
        if c.cond_dim:
            if cond is None or cond.shape != (dry.shape[0], c.cond_dim):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"cond must be (batch, {c.cond_dim}), got {got}")
            h_cond = self.cond_net(cond)
        else:
            h_cond = dry.new_zeros(dry.shape[0], c.cond_hidden)
        h = self.inp(dry)
        for block in self.blocks:
            if c.activation_checkpointing and self.training and torch.is_grad_enabled():
                h = activation_checkpoint(block, h, h_cond, use_reentrant=False)
            else:
                h = block(h, h_cond)
        out = self.out(h)
        if not c.residual:
            return out
        if self.gain is not None:
            # soft-bounded to +-MAX_GAIN_DB so an out-of-distribution conditioning cannot explode the output
            log_gain = MAX_LOG_GAIN * torch.tanh(self.gain(h_cond).float() / MAX_LOG_GAIN)
            dry = dry * torch.exp(log_gain).unsqueeze(-1).to(dry.dtype)
        return dry + out
