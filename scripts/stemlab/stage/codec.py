"""Pluggable neural audio codecs for Stage: mono audio <-> (codebooks K x frames F) int64 tokens.

- `rvq` (RVQCodec): a convolutional autoencoder (strided Conv1d encoder, ConvTranspose1d decoder, one
  residual unit per stage) with residual vector quantisation (vector-quantize-pytorch's ResidualVQ, EMA
  codebooks, dead-code replacement), trained here with MR-STFT + commitment losses (stemlab.stage.codec_task).
- `encodec` (EncodecCodec): transformers' EncodecModel from a pretrained snapshot folder (config.json +
  model.safetensors, e.g. facebook/encodec_32khz: 32 kHz mono, 4 codebooks x 2,048 at 50 Hz), frozen:
  it cannot be trained here (its encoder gets no gradient, its codebooks are buffers).

Both are `Codec`s: `sample_rate`, `n_codebooks`, `cardinality`, `frame_rate`, `hop` (samples per frame),
`encode(wave)` with wave (B, 1, T) float32 at `sample_rate` -> (B, K, F) int64 codes in [0, cardinality),
F = ceil(T / hop) (the wave is zero-padded to whole frames), and `decode(codes)` -> (B, 1, F * hop); both
run under torch.no_grad(). `load_codec(path)` opens the final.pt of a `codec` model (either kind) or a
snapshot folder of EnCodec.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stemlab.errors import StemlabError

KINDS = ("rvq", "encodec")


class Codec(nn.Module):
    """The interface every codec gives the LM and the tokenizer."""

    kind: str = ""
    sample_rate: int
    n_codebooks: int
    cardinality: int
    hop: int

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def describe(self) -> dict[str, Any]:
        """What a token file records about its codec (stemlab.stage.tokens)."""
        return {"kind": self.kind, "sample_rate": int(self.sample_rate), "n_codebooks": int(self.n_codebooks),
                "cardinality": int(self.cardinality), "frame_rate": float(self.frame_rate), "hop": int(self.hop)}  # fmt: skip

    def pad_to_frames(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() != 3 or wave.shape[1] != 1:
            raise ValueError(f"expected a (batch, 1, time) wave, got {tuple(wave.shape)}")
        extra = (-wave.shape[-1]) % self.hop
        return F.pad(wave, (0, extra)) if extra else wave

    def check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.dim() != 3 or codes.shape[1] != self.n_codebooks:
            raise ValueError(f"expected (batch, {self.n_codebooks}, frames) codes, got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.cardinality):
            raise ValueError(f"codes must lie in [0, {self.cardinality}); got {int(codes.min())}..{int(codes.max())}")
        return codes.long()

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


# --------------------------------------------------------------------------- rvq


@dataclass(frozen=True)
class RVQConfig:
    """Sizes of an RVQCodec (models.codec.settings: sample_rate, model, quantizer; defaults in the schema)."""

    sample_rate: int
    channels: int
    max_channels: int
    strides: tuple[int, ...]
    latent_dim: int
    res_units: int
    codebooks: int
    codebook_size: int
    decay: float
    commitment_weight: float
    dead_code_threshold: float
    level_channels: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.strides or any(int(s) < 1 for s in self.strides):
            raise StemlabError(f"models.codec.settings.model.strides {list(self.strides)}: give one or more strides >= 1")
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        levels = [int(self.channels)]
        for _ in self.strides:
            levels.append(min(levels[-1] * 2, int(self.max_channels)))
        object.__setattr__(self, "level_channels", tuple(levels))

    @property
    def hop(self) -> int:
        return math.prod(self.strides)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("level_channels")
        values["strides"] = list(self.strides)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RVQConfig:
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values and k != "level_channels"}
        if "strides" in known:
            known["strides"] = tuple(known["strides"])
        return cls(**known)


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, dilation=dilation, padding=dilation)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(F.elu(self.conv(F.elu(x))))


class Downsample(nn.Module):
    """Conv1d with kernel 2s and stride s: length L (a multiple of s) -> L / s exactly."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(cin, cout, 2 * stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        return self.conv(F.pad(x, ((s + 1) // 2, s // 2)))


def _upsample(cin: int, cout: int, stride: int) -> nn.ConvTranspose1d:
    """ConvTranspose1d with kernel 2s and stride s: length L -> L * s exactly."""
    return nn.ConvTranspose1d(cin, cout, 2 * stride, stride=stride, padding=(stride + 1) // 2, output_padding=stride % 2)


class RVQCodec(Codec):
    kind = "rvq"

    def __init__(self, config: RVQConfig) -> None:
        super().__init__()
        from vector_quantize_pytorch import ResidualVQ

        self.config = config
        self.sample_rate = int(config.sample_rate)
        self.n_codebooks = int(config.codebooks)
        self.cardinality = int(config.codebook_size)
        self.hop = config.hop
        levels = config.level_channels
        enc: list[nn.Module] = [nn.Conv1d(1, levels[0], 7, padding=3)]
        for i, stride in enumerate(config.strides):
            enc += [ResidualUnit(levels[i], 3**r) for r in range(config.res_units)]
            enc += [nn.ELU(), Downsample(levels[i], levels[i + 1], stride)]
        enc += [nn.ELU(), nn.Conv1d(levels[-1], config.latent_dim, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv1d(config.latent_dim, levels[-1], 3, padding=1)]
        for i in reversed(range(len(config.strides))):
            dec += [nn.ELU(), _upsample(levels[i + 1], levels[i], config.strides[i])]
            dec += [ResidualUnit(levels[i], 3**r) for r in range(config.res_units)]
        dec += [nn.ELU(), nn.Conv1d(levels[0], 1, 7, padding=3)]
        self.decoder = nn.Sequential(*dec)
        self.quantizer = ResidualVQ(
            dim=config.latent_dim, num_quantizers=config.codebooks, codebook_size=config.codebook_size,
            decay=config.decay, commitment_weight=config.commitment_weight,
            threshold_ema_dead_code=config.dead_code_threshold, kmeans_init=False,
        )  # fmt: skip

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction (B, 1, T'), codes (B, K, F), commitment loss) of a wave (B, 1, T); T' = F * hop."""
        x = self.pad_to_frames(wave)
        z = self.encoder(x).transpose(1, 2)
        quantized, indices, commit = self.quantizer(z)
        return self.decoder(quantized.transpose(1, 2)), indices.transpose(1, 2), commit.sum()

    @torch.no_grad()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        z = self.encoder(self.pad_to_frames(wave.float())).transpose(1, 2)
        was_training = self.quantizer.training
        self.quantizer.eval()  # no EMA update or dead-code replacement while encoding
        try:
            _, indices, _ = self.quantizer(z)
        finally:
            self.quantizer.train(was_training)
        return indices.transpose(1, 2).long().contiguous()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        codes = self.check_codes(codes)
        quantized = self.quantizer.get_output_from_indices(codes.transpose(1, 2))
        return self.decoder(quantized.transpose(1, 2))


# --------------------------------------------------------------------------- encodec


def snapshot_config(folder: str | os.PathLike[str]) -> Path:
    config = Path(folder) / "config.json"
    if not config.is_file():
        raise StemlabError(
            f"{config}: not found; the EnCodec snapshot needs config.json and model.safetensors "
            "(run the download_pretrained job of pretrained.encodec_32khz, or point at a transformers EncodecModel folder)"
        )
    return config


class EncodecCodec(Codec):
    """transformers.EncodecModel, frozen, at the snapshot's sample rate; codes of `bandwidth` kbps."""

    kind = "encodec"

    def __init__(self, folder: str | os.PathLike[str], bandwidth: float | None = None) -> None:
        super().__init__()
        from transformers import EncodecModel

        snapshot_config(folder)
        try:
            model = EncodecModel.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StemlabError(f"{folder}: cannot load the EnCodec snapshot ({reason}); re-run its download_pretrained job") from exc
        cfg = model.config
        if int(cfg.audio_channels) != 1:
            raise StemlabError(f"{folder}: EnCodec model of {cfg.audio_channels} channels; Stage tokenises mono audio (use encodec_32khz)")
        if cfg.normalize or cfg.chunk_length_s:
            raise StemlabError(
                f"{folder}: this EnCodec model normalises or chunks its input (its scales are not tokens); use a model with "
                "normalize false and chunk_length_s null, such as facebook/encodec_32khz"
            )
        self.model = model.eval().requires_grad_(False)
        bandwidths = [float(b) for b in cfg.target_bandwidths]
        self.bandwidth = float(bandwidth) if bandwidth is not None else max(bandwidths)
        if self.bandwidth not in bandwidths:
            raise StemlabError(f"{folder}: EnCodec has bandwidths {bandwidths} kbps, not {self.bandwidth}; set models.codec.settings.encodec.bandwidth to one of them")
        self.sample_rate = int(cfg.sampling_rate)
        self.n_codebooks = int(model.quantizer.get_num_quantizers_for_bandwidth(self.bandwidth))
        self.cardinality = int(cfg.codebook_size)
        self.hop = int(math.prod(cfg.upsampling_ratios))

    def train(self, mode: bool = True) -> EncodecCodec:
        super().train(mode)
        self.model.eval()  # frozen: always in inference mode
        return self

    @torch.no_grad()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        out = self.model.encode(self.pad_to_frames(wave.float()), bandwidth=self.bandwidth)
        codes = out.audio_codes
        if codes.dim() == 4:  # (chunks, batch, K, F): one chunk, since the model does not chunk
            codes = codes[0]
        return codes.long().contiguous()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        codes = self.check_codes(codes)
        return self.model.decode(codes[None], [None]).audio_values


# --------------------------------------------------------------------------- loading


def load_codec(path: str | os.PathLike[str], device: torch.device | str = "cpu", pretrained: Mapping[str, str] | None = None) -> Codec:
    """The codec of a `codec` model's final.pt (rvq or encodec), or of an EnCodec snapshot folder, in eval mode.

    An encodec final.pt names the snapshot folder it was made with (relative to the workflow's directory);
    `pretrained` ({name: folder}) points elsewhere."""
    path = Path(path)
    if path.is_dir():
        return EncodecCodec(path).to(device).eval()
    from stemlab.train.task import load_trained, read_final

    payload = read_final(path)
    if payload.get("task") != "stemlab.stage.codec_task":
        raise StemlabError(f"{path}: holds model {payload.get('model')!r} ({payload.get('task')}), not a codec; point at the codec model's final.pt")
    export = payload.get("export") or {}
    folders = {**dict(export.get("pretrained") or {}), **dict(pretrained or {})}
    _, model, _ = load_trained(path, device, {"pretrained": folders})
    if not isinstance(model, Codec):
        raise StemlabError(f"{path}: the codec model file did not build a codec; re-run its train_model job")
    return model.eval()


def stride_text(strides: Sequence[int]) -> str:
    return "x".join(str(s) for s in strides)
