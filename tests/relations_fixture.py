"""A tiny corpus for the relations model: songs whose melodic stems play related note patterns (the piano
doubles the bass an octave and a fifth up, the vocals answer one step later), a drum stem that is left out,
a track_relationship table of 2 s windows; job configs of the codebook and the decision model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from stemlab.seeding import rng
from stemlab.train.job import Job, JobInputs

SR = 44_100
SPLITS = ("train", "train", "train", "train", "valid", "test", "test")
WINDOW = 2 * SR
STEMS = {"bass": 1.0, "piano": 3.0, "vocals": 2.0, "drums": None}  # frequency multiple of the note


def _track(notes: np.ndarray, multiple: float | None, seconds: float, seed: int, shift: int = 0) -> np.ndarray:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    if multiple is None:  # drums: noise bursts
        return (np.exp(-((t % 0.5) * 30)) * 0.3 * rng(seed, "drums").standard_normal(n)).astype(np.float32)
    step = (np.arange(n) // (SR // 4) + shift) % len(notes)
    freq = 110.0 * multiple * 2 ** (notes[step] / 12)
    phase = 2 * np.pi * np.cumsum(freq) / SR
    return (0.25 * np.exp(-((t % 0.25) * 6)) * np.sin(phase)).astype(np.float32)


def write_corpus(root: Path, seconds: float = 6.0) -> Path:
    rows = []
    for i, split in enumerate(SPLITS):
        song = f"syn-{i:06d}"
        d = root / "stems" / "synthetic" / "shard-00000" / song
        (d / "wet").mkdir(parents=True)
        notes = rng(0, "relations-notes", i % 3).integers(0, 12, size=8)
        entries = []
        for name, multiple in STEMS.items():
            x = _track(notes, multiple, seconds, i, shift=1 if name == "vocals" else 0)
            sf.write(d / "wet" / f"{name}.flac", np.stack([x, x], 1), SR, subtype="PCM_24")
            entries.append({"name": name, "category": name, "files": {"wet": f"wet/{name}.flac"}, "n_tracks": 2,
                            "average_scale": 0.5})  # fmt: skip
        (d / "song.json").write_text(json.dumps({"id": song, "split": split, "stems": entries}))
        for start in range(0, int(seconds * SR) - WINDOW + 1, WINDOW // 2):
            for name in STEMS:
                rows.append({"song": song, "stem": name, "start": start, "length": WINDOW, "active": True,
                             "corpus": "synthetic", "shard": "shard-00000", "split": split})  # fmt: skip
    pd.DataFrame(rows).to_parquet(root / "track_relationship.parquet")
    return root


CODEBOOK = {"k": 8, "segment_s": 0.25, "center_tracks": True, "fit": {"batch_size": 64, "max_iter": 20, "n_init": 1},
            "encoder": {"mel": {"n_mels": 16}}}  # fmt: skip
DECISION = {"k": 8, "segment_s": 0.25, "model": {"layers": 1, "d_model": 16, "heads": 2, "ffn": 32, "dropout": 0.0},
            "scheduled_sampling": 0.5}  # fmt: skip


def codebook_job(root: Path, settings: dict | None = None, seed: int = 1) -> Job:
    inputs = JobInputs(segments={"track_relationship": [str(root / "track_relationship.parquet")]},
                       stems_root=str(root / "stems"))  # fmt: skip
    loop = {"steps": 1, "batch_size": 1, "checkpoint_every": 0, "checkpoint_seconds": 0, "workers": 0}
    return Job(model="relations_codebook", task="stemlab.relations.codebook_task", seed=seed, loop=loop,
               settings=settings or CODEBOOK, eval={}, inputs=inputs, device="cpu")  # fmt: skip


def decision_job(root: Path, codebook: Path, *, steps: int = 30, seed: int = 1, eval_settings: dict | None = None) -> Job:
    inputs = JobInputs(upstream={"relations_codebook": str(codebook)})
    loop = {"steps": steps, "batch_size": 16, "lr": 3e-3, "grad_clip": 0.25, "checkpoint_every": 10, "checkpoint_seconds": 0,
            "workers": 0, "valid_batches": 1}  # fmt: skip
    return Job(model="relations", task="stemlab.relations.task", seed=seed, loop=loop, settings=DECISION,
               eval=eval_settings or {}, inputs=inputs, device="cpu")  # fmt: skip
