"""Stand-ins for the stage LM tests: token rows in the token-shard format (stemlab.stage.tokens), a tiny
deterministic codec and a tiny audio encoder, so the LM, its training and its evaluation run in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from stemlab.seeding import rng
from stemlab.train.job import Job, JobInputs

K, CARD, SR, HOP = 2, 16, 8000, 160  # 50 frames a second
RATE = SR / HOP


class ToyCodec(nn.Module):
    """Codebook 0: the frame's RMS level (16 steps); codebook 1: a zero-crossing-rate band. Decoding
    renders each frame as a sine of the band's pitch at the level's amplitude."""

    sample_rate, n_codebooks, cardinality, frame_rate, hop = SR, K, CARD, RATE, HOP

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        b, _, t = wave.shape
        f = max(1, t // HOP)
        frames = wave[:, 0, : f * HOP].reshape(b, f, HOP)
        rms = frames.square().mean(-1).sqrt()
        level = (rms.clamp(0, 0.5) * 30).long().clamp(0, CARD - 1)
        zcr = (frames[..., 1:] * frames[..., :-1] < 0).float().mean(-1)
        band = (zcr * 40).long().clamp(0, CARD - 1)
        return torch.stack([level, band], dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        b, _, f = codes.shape
        amp = codes[:, 0].float() / 30.0
        freq = 100.0 + 150.0 * codes[:, 1].float()
        t = torch.arange(HOP) / SR
        frames = amp[..., None] * torch.sin(2 * np.pi * freq[..., None] * t)
        return frames.reshape(b, 1, f * HOP)


class ToyEncoder:
    """An 'encoder task': embeds (B, 2, T) audio by band energies (8-d)."""

    def embed(self, net: nn.Module, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(audio.mean(1), 512, return_complex=True, window=torch.hann_window(512)).abs().mean(-1)
        bands = torch.stack([c.mean(-1) for c in spec.chunk(8, dim=-1)], dim=-1)
        return nn.functional.normalize(torch.log1p(bands * 10), dim=-1)


def click_codes(beats: np.ndarray, frames: int) -> np.ndarray:
    codes = np.zeros((K, frames), dtype=np.int64)
    idx = (beats * RATE).astype(int)
    idx = idx[idx < frames]
    codes[0, idx] = 12
    codes[1, idx] = 9
    return codes


def token_rows(n_songs: int = 8, seconds: float = 4.0) -> pd.DataFrame:
    """Songs whose drum codes pulse on their beats, with a bass and a keys context stem and a click row."""
    rows = []
    frames = int(seconds * RATE)
    for i in range(n_songs):
        g = rng(0, "stage-fixture", i)
        tempo = float(g.choice([100.0, 120.0, 140.0]))
        beats = np.arange(0.0, seconds, 60.0 / tempo)
        split = ["train", "train", "train", "train", "valid", "test"][i % 6] if i < n_songs - 2 else "test"
        drums = click_codes(beats, frames)
        drums[1] = np.where(drums[0] > 0, drums[1], g.integers(0, 3, frames))
        common = {"corpus": "synthetic", "shard": "shard-00000", "split": split, "song": f"song-{i:03d}", "n_frames": frames,
                  "beats": beats, "downbeats": beats[::4], "tempo_bpm": tempo, "genre": "rock",
                  "description": "Genres: rock. Moods: energetic, bright."}  # fmt: skip
        rows.append({**common, "role": "target", "stem": "drums", "codes": drums})
        rows.append({**common, "role": "context", "stem": "bass", "codes": np.roll(drums, 2, axis=1) // 2})
        rows.append({**common, "role": "context", "stem": "keys", "codes": g.integers(0, CARD, (K, frames))})
        rows.append({**common, "role": "metronome", "stem": "click", "codes": click_codes(beats, frames)})
    frame = pd.DataFrame(rows)
    frame.attrs["tokens"] = {"format": 1, "sample_rate": SR, "n_codebooks": K, "cardinality": CARD, "frame_rate": RATE}
    return frame


def write_shard(path: Path, frame: pd.DataFrame) -> Path:
    """The rows as a token shard file (stemlab.stage.tokens format)."""
    import pyarrow.parquet as pq

    from stemlab.stage.tokens import tokens_table

    meta = {**frame.attrs["tokens"], "codec": "codec", "kind": "toy", "model_sha256": "0" * 64, "hop": HOP,
            "corpus": "synthetic", "shard": "shard-00000", "rows": len(frame)}  # fmt: skip
    pq.write_table(tokens_table(frame.to_dict("records"), meta), path)
    return path


def install(monkeypatch) -> None:
    """Point the stage evaluation at the toy codec and the toy encoder."""
    from stemlab.stage import evaluate

    monkeypatch.setattr(evaluate, "load_codec", lambda path: ToyCodec())
    monkeypatch.setattr(evaluate, "load_clap", lambda task, cfg: (ToyEncoder(), nn.Linear(1, 1)))


def stage_job(root: Path, steps: int = 6, **eval_cfg) -> Job:
    loop = {"steps": steps, "batch_size": 4, "lr": 0.003, "warmup_steps": 1, "checkpoint_every": 2, "checkpoint_seconds": 0,
            "eval_every": 0, "valid_batches": 1, "workers": 0, "precision": "fp32"}  # fmt: skip
    settings = {"target": "drums", "clip_seconds": 2.0, "context_seconds": [1.0, 2.0], "text_encoder": {"source": "minilm"},
                "model": {"d_model": 32, "layers": 1, "heads": 2, "ffn": 64}}  # fmt: skip
    ev = {"max_items": 6, "cfg_scales": [1.0], "top_k": 8, "batch_size": 8, "beat_tracker": "librosa", "beat_trim_s": 0.0,
          "reference_items": 6, "spectrogram_items": 1, "spectrogram_bands": 16, **eval_cfg}  # fmt: skip
    codec = root / "codec.pt"
    codec.write_bytes(b"stand-in")
    tokens = write_shard(root / "tokens.parquet", token_rows())
    return Job(model="stage", task="stemlab.stage.task", seed=1, loop=loop, settings=settings, eval=ev,
               inputs=JobInputs(upstream={"codec": str(codec), "clap": str(codec)}, tokens=[str(tokens)]), device="cpu",
               cpu_threads=1)  # fmt: skip
