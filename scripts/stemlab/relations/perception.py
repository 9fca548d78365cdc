"""The perception part: a frozen encoder turns a track into frame features, pooled into uniform segments.

Encoders (settings `encoder.name`):
- `mel`: log-mel frames (dB) at `encoder.mel.sample_rate`; a segment is the mean and standard deviation of
  its frames (log-mel statistics).
- `clap`: the frame-level features (HTSAT's fine-grained latent) of the shared CLAP audio branch, the
  trained model `encoder.clap.model` (an upstream model of the job) loaded with load_trained; clips of the
  CLAP model's length cover the track.
- `wav2vec2`: a transformers Wav2Vec2Model from a pretrained folder (`encoder.wav2vec2.snapshot`, a
  `pretrained` download), 16 kHz input normalised per track, hidden states of `encoder.wav2vec2.layer`.
A segment of the neural encoders is the mean of its frames. Every encoder takes canonical 44.1 kHz audio
(mono) and resamples itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stemlab.audio import SAMPLE_RATE, resample
from stemlab.device import torch_threads
from stemlab.errors import StemlabError

ENCODERS = ("mel", "clap", "wav2vec2")


@dataclass(frozen=True)
class MelSettings:
    sample_rate: int
    n_fft: int
    hop: int
    n_mels: int
    fmin: float
    fmax: float


@dataclass(frozen=True)
class EncoderSettings:
    """settings.encoder of a relations model (complete: the schema's defaults filled in)."""

    name: str
    mel: MelSettings
    clap_model: str  # the upstream model whose audio branch is used
    wav2vec2_snapshot: str  # the pretrained download holding the checkpoint folder
    wav2vec2_subdir: str  # the checkpoint folder inside the snapshot ("" = its root)
    wav2vec2_layer: int | None  # hidden-state index (None = the last layer's output)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> EncoderSettings:
        name = str(section["name"])
        if name not in ENCODERS:
            raise StemlabError(f"relations encoder {name!r} is not one of {', '.join(ENCODERS)}; fix settings.encoder.name")
        w2v = section["wav2vec2"]
        return cls(
            name=name,
            mel=MelSettings(**section["mel"]),
            clap_model=str(section["clap"]["model"]),
            wav2vec2_snapshot=str(w2v["snapshot"]),
            wav2vec2_subdir=str(w2v["subdir"] or ""),
            wav2vec2_layer=None if w2v["layer"] is None else int(w2v["layer"]),
        )


class Perception:
    """Frame features of one mono 44.1 kHz track: (frames, dim) float32 and each frame's centre time (s)."""

    pooling = "mean"
    dim = 0

    def frames(self, mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def segment_dim(self) -> int:
        return self.dim * (2 if self.pooling == "mean_std" else 1)

    def segments(self, mono: np.ndarray, segment_s: float, n_segments: int) -> np.ndarray:
        """(n_segments, segment_dim) features of the uniform segments [j s, (j + 1) s) of the track."""
        feats, times = self.frames(mono)
        return pool_segments(feats, times, segment_s, n_segments, self.pooling)


def pool_segments(feats: np.ndarray, times: np.ndarray, segment_s: float, n_segments: int, pooling: str) -> np.ndarray:
    """Pool frames into segments by their centre times; a segment without frames takes the nearest frame."""
    index = np.floor(times / segment_s).astype(np.int64)
    dim = feats.shape[1]
    out = np.zeros((n_segments, dim * (2 if pooling == "mean_std" else 1)), dtype=np.float32)
    centres = (np.arange(n_segments) + 0.5) * segment_s
    for j in range(n_segments):
        mine = feats[index == j]
        if not len(mine):
            mine = feats[[int(np.argmin(np.abs(times - centres[j])))]]
        out[j, :dim] = mine.mean(axis=0)
        if pooling == "mean_std":
            out[j, dim:] = mine.std(axis=0)
    return out


class MelPerception(Perception):
    pooling = "mean_std"

    def __init__(self, cfg: MelSettings) -> None:
        from stemlab.encoders.fx.net import mel_filterbank

        self.cfg = cfg
        self.dim = cfg.n_mels
        self.window = torch.hann_window(cfg.n_fft, periodic=True)
        self.fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, min(cfg.fmax, cfg.sample_rate / 2))

    def frames(self, mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        audio = resample(np.asarray(mono, dtype=np.float32)[:, None], SAMPLE_RATE, cfg.sample_rate)[:, 0]
        if len(audio) < cfg.n_fft // 2 + 1:
            audio = np.pad(audio, (0, cfg.n_fft // 2 + 1 - len(audio)))
        with torch_threads(1):  # ops this small only lose time to a second thread
            spec = torch.stft(torch.from_numpy(np.ascontiguousarray(audio)), cfg.n_fft, cfg.hop, window=self.window,
                              center=True, pad_mode="reflect", return_complex=True)  # fmt: skip
            power = spec.abs().square() * (2.0 / float(self.window.sum())) ** 2
            db = 10.0 * torch.log10(torch.matmul(self.fb, power).clamp(min=1e-10))  # (mels, frames)
        feats = db.T.numpy().astype(np.float32)
        times = np.arange(feats.shape[0]) * cfg.hop / cfg.sample_rate
        return feats, times


class ClapPerception(Perception):
    def __init__(self, final_pt: Path, device: torch.device, inputs: Mapping[str, Any] | None = None) -> None:
        from stemlab.train.task import load_trained

        self.task, self.model, _ = load_trained(final_pt, device, inputs)
        if not hasattr(self.task.settings, "clip_samples"):
            raise StemlabError(f"{final_pt}: model {self.task.job.model!r} is not a CLAP model; point encoder.clap.model at one")
        self.device = device
        self.clip = int(self.task.settings.clip_samples)
        self.dim = int(self._encode(torch.zeros(1, self.clip)).shape[-1])

    @torch.no_grad()
    def _encode(self, clips: torch.Tensor) -> torch.Tensor:
        out = self.model.encode_audio({"waveform": clips.to(self.device)}, device=self.device)
        return out["fine_grained_embedding"].float().cpu()  # (batch, frames, dim)

    def frames(self, mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from stemlab.encoders.clap.windows import CLAP_RATE, clip_offsets, to_clap_audio

        stereo = np.asarray(mono, dtype=np.float32)[None, :]
        offsets = clip_offsets(stereo.shape[-1], self.clip)
        clips = torch.from_numpy(np.stack([to_clap_audio(stereo, self.clip, o) for o in offsets]))
        fine = self._encode(clips).numpy()  # (clips, frames, dim)
        per_clip = fine.shape[1]
        clip_s = self.clip / CLAP_RATE
        times = np.concatenate([o / CLAP_RATE + (np.arange(per_clip) + 0.5) * clip_s / per_clip for o in offsets])
        feats = fine.reshape(-1, fine.shape[-1])
        keep = times < len(mono) / SAMPLE_RATE
        return feats[keep], times[keep]


class Wav2Vec2Perception(Perception):
    RATE = 16_000

    def __init__(self, folder: Path, layer: int | None, device: torch.device) -> None:
        from transformers import Wav2Vec2Model

        if not (folder / "config.json").is_file():
            raise StemlabError(f"{folder}: no config.json of a Wav2Vec2Model; point encoder.wav2vec2 at the checkpoint folder")
        try:
            self.model = Wav2Vec2Model.from_pretrained(str(folder), local_files_only=True).to(device).eval()
        except (OSError, ValueError) as exc:
            raise StemlabError(f"{folder}: cannot load the wav2vec 2.0 checkpoint ({str(exc).splitlines()[0]}); re-download it") from exc
        self.layer = layer
        self.device = device
        self.dim = int(self.model.config.hidden_size)
        self.stride = int(np.prod(self.model.config.conv_stride))
        self.field = 400  # samples of the first frame's receptive field at 16 kHz (wav2vec 2.0 base)

    @torch.no_grad()
    def frames(self, mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        audio = resample(np.asarray(mono, dtype=np.float32)[:, None], SAMPLE_RATE, self.RATE)[:, 0]
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        x = torch.from_numpy(np.ascontiguousarray(audio))[None].to(self.device)
        out = self.model(x, output_hidden_states=self.layer is not None)
        hidden = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
        feats = hidden[0].float().cpu().numpy()
        times = (np.arange(feats.shape[0]) * self.stride + self.field / 2) / self.RATE
        return feats, times


def build_perception(
    cfg: EncoderSettings,
    upstream: Mapping[str, str | Path],
    pretrained: Mapping[str, str | Path],
    device: torch.device | str = "cpu",
) -> Perception:
    """The encoder of `cfg`; `upstream` / `pretrained` map model and download names to their files."""
    device = torch.device(device)
    if cfg.name == "mel":
        return MelPerception(cfg.mel)
    if cfg.name == "clap":
        if cfg.clap_model not in upstream:
            raise StemlabError(f"encoder clap needs model {cfg.clap_model!r}; add it to the model's inputs.upstream")
        return ClapPerception(Path(upstream[cfg.clap_model]), device, {"pretrained": dict(pretrained)})
    if cfg.wav2vec2_snapshot not in pretrained:
        raise StemlabError(f"encoder wav2vec2 needs pretrained {cfg.wav2vec2_snapshot!r}; add it to the model's inputs.pretrained")
    folder = Path(pretrained[cfg.wav2vec2_snapshot]) / cfg.wav2vec2_subdir
    return Wav2Vec2Perception(folder, cfg.wav2vec2_layer, device)
