"""FxProcessor: MEGAMI's non-causal TCN that applies an effect embedding to a dry track.

    dry (batch, 1 | 2, time) at 44.1 kHz -> mono mixdown -> FxNorm (stemlab.megami.fxnorm) -> TCN -> wet (batch, 2, time)

TCN (paper: 14 blocks, kernel 15, dilations 1, 2, ..., 8192, 128 channels, receptive field 229,363 samples
= 5.2 s): a 1x1 input convolution, then blocks of dilated convolution -> BatchNorm -> LeakyReLU -> FiLM
(gamma, beta from the conditioning), each added to its input, and a 1x1 convolution to two channels.
The conditioning (paper: effect embedding of the target wet stem joined with the CLAP embedding of the dry
stem) passes an MLP shared by all blocks; each part of it is scaled by sqrt(its dimension) first, so unit
embeddings enter at unit entry scale. With `residual` the output is added to the normalised input copied to
both channels, each scaled by a gain exp(g(cond)) when `direct_gain` (level and pan, which every chain
has, are then one linear map away from the conditioning); both paths start as the identity.

`process_track` runs a trained model over a whole track in overlapping blocks (the inference API of full-song
mixing).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from stemlab.megami.fxnorm import FxNorm

MAX_GAIN_DB = 40.0
MAX_LOG_GAIN = MAX_GAIN_DB / 20.0 * math.log(10.0)
LEAKY_SLOPE = 0.2
OUT_CHANNELS = 2


@dataclass(frozen=True)
class FxProcessorConfig:
    """TCN shape; the defaults are the schema's (models.fxprocessor.settings.model): build with from_dict."""

    channels: int
    blocks: int
    kernel: int
    dilation_growth: int
    dilation_cycle: int  # dilations restart after this many blocks; 0: never
    cond_hidden: int
    input_channels: int  # 1: the dry stem is mixed to mono first (paper); 2: stereo in
    residual: bool
    direct_gain: bool
    fxnorm: bool
    fxnorm_rms_db: float
    activation_checkpointing: bool  # recompute block activations in backward (long segments)
    cond_dim: int = 0  # size of the conditioning vector (from the data, not the config); 0: unconditioned
    cond_parts: tuple[int, ...] = ()  # sizes of the joined embeddings (e.g. effect, CLAP); () = one z-scored vector

    def __post_init__(self) -> None:
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError("FxProcessor kernel must be odd (centred, non-causal convolutions)")
        if min(self.channels, self.blocks, self.dilation_growth, self.cond_hidden) < 1:
            raise ValueError("FxProcessor channels, blocks, dilation_growth, cond_hidden must be >= 1")
        if self.input_channels not in (1, 2):
            raise ValueError("FxProcessor input_channels must be 1 (mono) or 2 (stereo)")
        if self.cond_dim < 0 or self.dilation_cycle < 0:
            raise ValueError("FxProcessor cond_dim and dilation_cycle must be >= 0")
        if self.cond_parts and sum(self.cond_parts) != self.cond_dim:
            raise ValueError(f"FxProcessor cond_parts {list(self.cond_parts)} do not add up to cond_dim {self.cond_dim}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FxProcessorConfig:
        """`values` over the schema defaults; unknown keys are an error (the schema allows none)."""
        from stemlab.config import schema_defaults

        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown FxProcessor option {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        merged = schema_defaults("models", "fxprocessor", "settings", "model") | dict(values)
        merged["cond_parts"] = tuple(int(n) for n in merged.get("cond_parts") or ())
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["cond_parts"] = list(self.cond_parts)
        return out

    def dilations(self) -> list[int]:
        cycle = self.dilation_cycle or self.blocks
        return [self.dilation_growth ** (i % cycle) for i in range(self.blocks)]

    def receptive_field(self) -> int:
        """Input samples that influence one output sample (centred on it)."""
        return 1 + sum((self.kernel - 1) * d for d in self.dilations())


class TCNBlock(nn.Module):
    """x + FiLM(LeakyReLU(BatchNorm(dilated conv(x)))), FiLM = (1 + gamma(cond)) h + beta(cond)."""

    def __init__(self, channels: int, kernel: int, dilation: int, cond_hidden: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=(kernel - 1) * dilation // 2)
        self.norm = nn.BatchNorm1d(channels)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        self.film = nn.Linear(cond_hidden, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.act(self.norm(self.conv(x)))
        return x + h * (1.0 + gamma) + beta


class FxProcessor(nn.Module):
    def __init__(self, config: FxProcessorConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.cond_dim:
            self.cond_net: nn.Module = nn.Sequential(
                nn.Linear(c.cond_dim, c.cond_hidden), nn.SiLU(), nn.Linear(c.cond_hidden, c.cond_hidden), nn.SiLU()
            )
        else:
            self.cond_net = nn.Identity()
        self.fxnorm = FxNorm(c.fxnorm_rms_db) if c.fxnorm else None
        self.inp = nn.Conv1d(c.input_channels, c.channels, 1)
        self.blocks = nn.ModuleList(TCNBlock(c.channels, c.kernel, d, c.cond_hidden) for d in c.dilations())
        self.out = nn.Conv1d(c.channels, OUT_CHANNELS, 1)
        if c.residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.gain = nn.Linear(c.cond_hidden, OUT_CHANNELS) if c.residual and c.direct_gain else None
        if self.gain is not None:
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.gain.bias)
        scale = torch.cat([torch.full((n,), math.sqrt(n)) for n in c.cond_parts]) if c.cond_parts else torch.ones(c.cond_dim)
        self.register_buffer("cond_scale", scale, persistent=False)

    def receptive_field(self) -> int:
        return self.config.receptive_field()

    def set_level_offset(self, db: float) -> None:
        """Start the direct path's gain at `db` on both channels (the training data's mean wet/input level)."""
        if self.gain is None:
            raise ValueError("the FxProcessor has no direct gain (residual and direct_gain are off)")
        log_gain = float(np.clip(db, -MAX_GAIN_DB * 0.9, MAX_GAIN_DB * 0.9)) / 20.0 * math.log(10.0)
        with torch.no_grad():  # the inverse of the soft bound in `process`
            self.gain.bias.fill_(MAX_LOG_GAIN * math.atanh(log_gain / MAX_LOG_GAIN))

    def prepare(self, dry: torch.Tensor) -> torch.Tensor:
        """(batch, 1 | 2, time) dry audio -> (batch, input_channels, time) TCN input (mono mixdown, FxNorm)."""
        if dry.dim() != 3 or dry.shape[1] not in (1, 2):
            raise ValueError(f"dry must be (batch, 1 or 2, time), got {tuple(dry.shape)}")
        x = dry.float()
        if self.config.input_channels == 1:
            x = x.mean(dim=1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.expand(-1, 2, -1)
        if self.fxnorm is not None:
            x = torch.stack([self.fxnorm(x[:, ch]) for ch in range(x.shape[1])], dim=1)
        return x

    def condition(self, cond: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor:
        c = self.config
        if not c.cond_dim:
            return like.new_zeros(batch, c.cond_hidden)
        if cond is None or tuple(cond.shape) != (batch, c.cond_dim):
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"cond must be (batch, {c.cond_dim}), got {got}")
        return self.cond_net(cond.to(like.dtype) * self.cond_scale.to(like.dtype))

    def process(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """The TCN on prepared input (batch, input_channels, time) -> (batch, 2, time)."""
        c = self.config
        if x.dim() != 3 or x.shape[1] != c.input_channels:
            raise ValueError(f"prepared input must be (batch, {c.input_channels}, time), got {tuple(x.shape)}")
        h_cond = self.condition(cond, x.shape[0], x)
        h = self.inp(x)
        for block in self.blocks:
            if c.activation_checkpointing and self.training and torch.is_grad_enabled():
                h = activation_checkpoint(block, h, h_cond, use_reentrant=False)
            else:
                h = block(h, h_cond)
        out = self.out(h)
        if not c.residual:
            return out
        direct = x.expand(-1, OUT_CHANNELS, -1) if x.shape[1] == 1 else x
        if self.gain is not None:
            # soft-bounded to +-MAX_GAIN_DB so an out-of-distribution conditioning cannot explode the output
            log_gain = MAX_LOG_GAIN * torch.tanh(self.gain(h_cond).float() / MAX_LOG_GAIN)
            direct = direct * torch.exp(log_gain).unsqueeze(-1).to(direct.dtype)
        return direct + out

    def forward(self, dry: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.process(self.prepare(dry), cond)


def crossfade_weights(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    """(length,) weights: raised-cosine ramps of `fade_in` / `fade_out` samples at the ends, 1 between;
    a fade-out and the next block's fade-in over the same samples add up to 1."""
    w = np.ones(length, dtype=np.float64)
    if fade_in:
        w[:fade_in] = np.sin(0.5 * np.pi * (np.arange(fade_in) + 0.5) / fade_in) ** 2
    if fade_out:
        w[length - fade_out :] *= np.cos(0.5 * np.pi * (np.arange(fade_out) + 0.5) / fade_out) ** 2
    return w


def block_starts(n: int, block_samples: int, overlap: int) -> list[int]:
    """Starts of blocks of `block_samples` that step by block_samples - overlap and cover n samples."""
    hop = block_samples - overlap
    starts = [0]
    while starts[-1] + block_samples < n:
        starts.append(starts[-1] + hop)
    return starts


def process_track(
    model: FxProcessor,
    dry: np.ndarray,
    fx_embedding: np.ndarray,
    clap_embedding: np.ndarray,
    block_samples: int,
    *,
    overlap: int | None = None,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Apply a trained FxProcessor to a whole dry track; returns the wet track, float32 (2, n).

    dry: (channels, n) or (n,) float audio at 44.1 kHz (the caller resamples), any n >= 1 and 1 or 2
    channels (more are averaged to mono, as the model hears mono). fx_embedding: the effect embedding that
    the output should have, (d_fx,) = the model's first conditioning part (the effect encoder's dim).
    clap_embedding: CLAP embedding of the dry track, (d_clap,) = its second part. block_samples: samples
    per block the TCN sees at once (memory); at least 2 * overlap. overlap: samples shared by
    consecutive blocks, default (and at least) the model's receptive field; the output is crossfaded over
    them with raised-cosine ramps that sum to 1. Away from the overlaps the result equals one pass over the
    whole track up to float rounding; inside them it differs only by the receptive field's edge effects,
    weighted by the ramps.

    FxNorm (peak, average-spectrum EQ, gated RMS) is applied once to the whole track, not per block. The
    model runs in eval mode (BatchNorm running statistics) under no_grad on `device` (default: the
    model's); the result depends only on the inputs (deterministic), and the model's train/eval mode is
    restored afterwards.
    """
    cfg = model.config
    if len(cfg.cond_parts) != 2:
        raise ValueError("process_track needs a model conditioned on (effect embedding, CLAP embedding); this one is not")
    fx = np.asarray(fx_embedding, dtype=np.float32).reshape(-1)
    clap = np.asarray(clap_embedding, dtype=np.float32).reshape(-1)
    if (fx.size, clap.size) != tuple(cfg.cond_parts):
        raise ValueError(f"embeddings of sizes ({fx.size}, {clap.size}) given; the model takes ({cfg.cond_parts[0]}, {cfg.cond_parts[1]})")
    audio = np.asarray(dry, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[1] < 1:
        raise ValueError(f"dry must be (channels, samples), got shape {tuple(np.shape(dry))}")
    if audio.shape[0] > 2:
        audio = audio.mean(axis=0, keepdims=True)
    rf = cfg.receptive_field()
    overlap = rf if overlap is None else int(overlap)
    if overlap < rf:
        raise ValueError(f"overlap {overlap} is shorter than the receptive field ({rf} samples)")
    if block_samples < 2 * overlap:
        raise ValueError(f"block_samples {block_samples} must be at least twice the overlap ({overlap} samples)")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    n = audio.shape[1]
    out = np.zeros((OUT_CHANNELS, n), dtype=np.float64)
    try:
        with torch.no_grad():
            model.to(dev)
            cond = torch.from_numpy(np.concatenate([fx, clap]))[None].to(dev)
            x = model.prepare(torch.from_numpy(audio)[None].to(dev))
            starts = block_starts(n, block_samples, overlap)
            for i, start in enumerate(starts):
                stop = min(n, start + block_samples)
                y = model.process(x[..., start:stop], cond)[0].double().cpu().numpy()
                fade_in = overlap if i > 0 else 0
                fade_out = overlap if i + 1 < len(starts) else 0
                out[:, start:stop] += y * crossfade_weights(stop - start, fade_in, fade_out)
    finally:
        model.train(was_training)
    return out.astype(np.float32)


def load_fxprocessor(path: str, device: torch.device | str = "cpu") -> FxProcessor:
    """The trained FxProcessor of a final.pt (results/models/fxprocessor/seed-<s>/final.pt), eval mode."""
    from stemlab.train.task import load_trained

    _, model, _ = load_trained(path, device)
    return model

