"""Generation from audio: a guide track and a memory track in, the memory recombined to follow the guide out.

The guide and the memory are cut into the model's uniform segments and mapped to codebook symbols; the
decision model writes the target's symbols from the guide's in sliding windows of the model's length
(each window after the first continues the previous one's last (1 - hop) share as its prefix); the factor
oracle of the memory's symbols turns them into memory segment indices (scenario generation) and the
crossfade renderer plays those segments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stemlab.audio import SAMPLE_RATE, read_audio, resample
from stemlab.errors import StemlabError
from stemlab.relations import oracle, render
from stemlab.relations.codebook_task import center
from stemlab.relations.decision import decode
from stemlab.relations.perception import EncoderSettings, Perception, build_perception
from stemlab.seeding import derive_seed


@dataclass
class Generator:
    task: Any  # the RelationsTask of the loaded model
    model: torch.nn.Module
    perception: Perception

    @property
    def segment_s(self) -> float:
        return float(self.task.codebook_export["segment_s"])

    def symbols(self, mono: np.ndarray) -> np.ndarray:
        """Codebook symbols of every whole segment of a mono 44.1 kHz track (a last partial one included)."""
        n = max(1, int(np.ceil(len(mono) / SAMPLE_RATE / self.segment_s - 1e-9)))
        padded = np.pad(mono, (0, max(0, int(round(n * self.segment_s * SAMPLE_RATE)) - len(mono))))
        feats = self.perception.segments(padded, self.segment_s, n)
        if self.task.codebook_export.get("center_tracks"):  # centred over the whole track (the codebook: per window)
            feats = center(feats)
        feats = torch.from_numpy(feats)
        return self.model.assign(feats.to(self.model.mean.device)).cpu().numpy()

    @torch.no_grad()
    def predict(self, guide: np.ndarray, memory_symbols: np.ndarray | None, seed: int) -> np.ndarray:
        """Target symbols for guide symbols (n,), window by window; constrained to memory_symbols when given."""
        decision = self.model.decision
        device = self.model.mean.device
        width = int(self.task.codebook_export["n_segments"])
        hop = max(1, int(round(self.task.settings.window_hop * width)))
        allowed = None
        if memory_symbols is not None:
            allowed = torch.zeros(1, decision.k, dtype=torch.bool, device=device)
            allowed[0, torch.from_numpy(memory_symbols).long().to(device)] = True
        out = np.zeros(len(guide), dtype=np.int64)
        start, done = 0, 0
        while done < len(guide):
            end = min(start + width, len(guide))
            g = torch.from_numpy(guide[start:end])[None].long().to(device)
            prefix = torch.from_numpy(out[start:done])[None].to(device)
            gen = torch.Generator().manual_seed(derive_seed(seed, "generate", start))
            symbols = decode(decision, g, end - start, self.task.settings.top_p, gen, allowed, prefix)
            out[done:end] = symbols[0, done - start :].cpu().numpy()
            done = end
            start += hop
        return out

    def realise(self, guide_mono: np.ndarray, memory_mono: np.ndarray, memory_audio: np.ndarray, rate: int,
                seed: int = 0, constrained: bool = True) -> np.ndarray:  # fmt: skip
        """(channels, len(guide) at `rate`): memory_audio (channels, frames at `rate`) recombined."""
        guide_symbols = self.symbols(guide_mono)
        memory_symbols = self.symbols(memory_mono)[: max(1, int(len(memory_mono) / SAMPLE_RATE / self.segment_s))]
        scenario = self.predict(guide_symbols, memory_symbols if constrained else None, seed)
        fo = oracle.FactorOracle(memory_symbols.tolist())
        indices = oracle.generate(fo, scenario.tolist())
        length = int(round(len(guide_mono) / SAMPLE_RATE * rate))
        fade = int(round(self.task.settings.crossfade_s * rate))
        return render.render(memory_audio, indices, self.segment_s * rate, fade, length)


def load_generator(model_dir: str | os.PathLike[str], encoder_path: str | os.PathLike[str] | None = None,
                   device: str = "cpu") -> Generator:  # fmt: skip
    """The generator of a trained relations model (its final.pt in `model_dir`); `encoder_path` is the CLAP
    final.pt or the wav2vec 2.0 folder when the codebook's encoder is not mel."""
    from stemlab.train.task import load_trained

    path = Path(model_dir) / "final.pt" if Path(model_dir).is_dir() else Path(model_dir)
    task, model, _ = load_trained(path, device)
    if not hasattr(task, "codebook_export"):
        raise StemlabError(f"{path}: not a relations model; point --model at results/models/relations/<cell>/seed-<s>")
    cfg = EncoderSettings.from_config(task.codebook_export["encoder"])  # complete: stored with the schema's defaults
    upstream, pretrained = {}, {}
    if cfg.name != "mel":
        if encoder_path is None:
            raise StemlabError(f"{path}: the codebook's encoder is {cfg.name}; pass its model with --encoder")
        if cfg.name == "clap":
            upstream[cfg.clap_model] = encoder_path
        else:
            pretrained[cfg.wav2vec2_snapshot] = encoder_path
            cfg = EncoderSettings(**{**cfg.__dict__, "wav2vec2_subdir": ""})
    return Generator(task, model, build_perception(cfg, upstream, pretrained, device))


def to_mono_44k(audio: np.ndarray, rate: int) -> np.ndarray:
    """(frames, channels) at any rate -> mono float32 at 44.1 kHz."""
    return resample(audio.mean(axis=1, keepdims=True), rate, SAMPLE_RATE)[:, 0]


def generate_files(guide: str | os.PathLike[str], memory: str | os.PathLike[str], model_dir: str | os.PathLike[str],
                   out: str | os.PathLike[str], *, encoder: str | None = None, seed: int = 0, constrained: bool = True,
                   device: str = "cpu") -> dict[str, Any]:  # fmt: skip
    """Write `out`: the memory track recombined along the guide, at the guide's rate and length, with the
    guide's channel count."""
    from stemlab.audio import write_audio

    guide_audio, guide_rate = read_audio(guide)
    memory_audio, memory_rate = read_audio(memory)
    gen = load_generator(model_dir, encoder, device)
    if len(memory_audio) / memory_rate < gen.segment_s:
        raise StemlabError(f"{memory}: shorter than one {gen.segment_s} s segment; give a longer memory track")
    memory_at_rate = resample(memory_audio, memory_rate, guide_rate)
    channels = guide_audio.shape[1]
    if memory_at_rate.shape[1] != channels:
        memory_at_rate = np.repeat(memory_at_rate.mean(axis=1, keepdims=True), channels, axis=1)
    audio = gen.realise(to_mono_44k(guide_audio, guide_rate), to_mono_44k(memory_audio, memory_rate), memory_at_rate.T,
                        guide_rate, seed, constrained)  # fmt: skip
    write_audio(out, np.clip(audio.T, -1.0, 1.0), guide_rate, subtype="FLOAT" if str(out).endswith(".wav") else "PCM_24")
    return {"frames": audio.shape[1], "rate": guide_rate, "channels": audio.shape[0]}
