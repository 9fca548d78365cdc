"""A tiny dry/wet corpus in the canonical layout (written by the tests, not by the synthesizer).

Wet stems are a known processing of the dry ones (gain, one-pole low-pass) whose parameters are written
to song.json `stems[*].fx`, so an FxProcessor can learn the mapping and baselines can be checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import lfilter

from stemlab.seeding import rng

SR = 44_100
STEMS = (("bass", "bass"), ("drums", "drums"))


def one_pole_lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """y[n] = (1 - a) x[n] + a y[n - 1] along time (axis 0)."""
    a = float(np.exp(-2 * np.pi * cutoff_hz / SR))
    return lfilter([1 - a], [1, -a], x, axis=0)


def apply_fixture_fx(dry: np.ndarray, fx: list[dict]) -> np.ndarray:
    out = dry.astype(np.float64)
    for effect in fx:
        if effect["type"] == "lowpass":
            out = one_pole_lowpass(out, effect["cutoff_hz"])
        elif effect["type"] == "gain":
            out = out * 10 ** (effect["gain_db"] / 20)
    return out.astype(np.float32)


def write_corpus(root: Path, songs: int = 6, seconds: float = 1.0, window: int = 8192, seed: int = 0) -> Path:
    """Songs under root/stems/synthetic/shard-00000/, a segment table at root/segments.parquet."""
    n = int(seconds * SR)
    rows = []
    splits = ["train"] * max(1, songs - 2) + ["valid", "test"]
    for s in range(songs):
        song = f"song-{s:04d}"
        d = root / "stems" / "synthetic" / "shard-00000" / song
        (d / "dry").mkdir(parents=True, exist_ok=True)
        (d / "wet").mkdir(parents=True, exist_ok=True)
        entries = []
        for stem, category in STEMS:
            r = rng(seed, song, stem)
            t = np.arange(n) / SR
            f0 = 55 * 2 ** r.integers(0, 24) / 12 if stem == "bass" else 0
            tone = np.sin(2 * np.pi * f0 * t) if f0 else 0
            noise = r.standard_normal(n) * (0.3 if stem == "drums" else 0.05)
            env = np.exp(-((t * 4) % 1) * 6)
            mono = (0.4 * tone + noise) * env
            dry = np.stack([mono, mono * 0.8], axis=1).astype(np.float32) * 0.5
            fx = [
                {"type": "lowpass", "cutoff_hz": float(r.uniform(500, 8000))},
                {"type": "gain", "gain_db": float(r.uniform(-9, 3)), "enabled": True},
            ]
            wet = apply_fixture_fx(dry, fx)
            sf.write(d / "dry" / f"{stem}.flac", dry, SR, subtype="PCM_24")
            sf.write(d / "wet" / f"{stem}.flac", wet, SR, subtype="PCM_24")
            entries.append({"name": stem, "category": category, "fx": fx, "files": {"dry": f"dry/{stem}.flac"}})
            for start in range(0, n - window + 1, window // 2):
                rows.append(
                    {"song": song, "stem": stem, "start": start, "length": window, "active": True,
                     "corpus": "synthetic", "shard": "shard-00000", "split": splits[s % len(splits)]}
                )  # fmt: skip
        meta = {"id": song, "corpus": "synthetic", "split": splits[s % len(splits)], "sample_rate": SR, "stems": entries}
        (d / "song.json").write_text(json.dumps(meta))
    table = root / "segments.parquet"
    pd.DataFrame(rows).to_parquet(table)
    return table


FX_TASK = "stemlab.megami.fxprocessor_task"


FX_DIM, CLAP_DIM = 6, 4  # embedding sizes of the tiny encoders standing in for fx_encoder and clap


def write_caches(root: Path) -> dict[str, dict[str, str]]:
    """Tiny encoders (tests.cache_tasks, a few steps) standing in for fx_encoder and clap, and their embedding
    caches of the corpus's wet and dry windows written by the cache job; returns the job inputs `upstream`
    and `cache` an FxProcessor job of this corpus needs."""
    from stemlab.encoders.cache import CacheJob, cache_job
    from stemlab.train.job import Job, JobInputs
    from stemlab.train.run import train_job

    upstream, cache = {}, {}
    for name, dim in (("fx_encoder", FX_DIM), ("clap", CLAP_DIM)):
        model_dir = root / "encoders" / name
        if not (model_dir / "final.pt").is_file():
            job = Job(model="tiny_encoder", task="tests.cache_tasks", seed=1, loop={"steps": 2, "batch_size": 2,
                      "checkpoint_every": 0, "checkpoint_seconds": 0}, settings={"dim": dim}, eval={}, inputs=JobInputs(),
                      device="cpu")  # fmt: skip
            train_job(job, model_dir)
        out = root / "cache" / name / "synthetic" / "shard-00000.parquet"
        if not out.is_file():
            spec = {
                "encoder": "tiny_encoder", "seed": 1, "corpus": "synthetic", "shard": "shard-00000",
                "model": str(model_dir / "final.pt"), "stems": str(root / "stems" / "synthetic" / "shard-00000"),
                "segments": {"megami": str(root / "segments.parquet")}, "sources": ["wet", "dry"], "device": "cpu",
                "batch_size": 16,
            }  # fmt: skip
            cache_job(CacheJob.from_dict(spec), out)
        upstream[name] = str(model_dir / "final.pt")
        cache[name] = [str(out)]
    return {"upstream": {"fx_encoder": upstream["fx_encoder"]}, "cache": cache}


def fx_job(root: Path, loop: dict, settings: dict, *, seed: int = 9, eval_settings: dict | None = None,
           embeddings: dict | None = None):  # fmt: skip
    """The job config the workflow would hand a train/evaluate job of the FxProcessor on this corpus;
    `embeddings` (from write_caches) adds the upstream effect encoder and the embedding caches."""
    from stemlab.train.job import Job, JobInputs

    inputs = JobInputs(segments={"megami": [str(root / "segments.parquet")]}, stems_root=str(root / "stems"),
                       **(embeddings or {}))  # fmt: skip
    return Job(model="fxprocessor", task=FX_TASK, seed=seed, loop=loop, settings=settings, eval=eval_settings or {},
               inputs=inputs, device="cpu")  # fmt: skip


def job_json(job) -> str:
    import dataclasses

    return json.dumps(dataclasses.asdict(job))
