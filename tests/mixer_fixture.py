"""A tiny corpus for the mixer: the effect-fixture songs (tests/fx_fixture.py) with their mixes, tiny encoders
(tests/cache_tasks.py) standing in for clap and fx_encoder, and the clap cache of wet stems and mixes."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from tests.fx_fixture import SR, write_corpus

WINDOW = 16384
SHARD = "shard-00000"


def write_mixer_corpus(root: Path, songs: int = 6) -> dict:
    """Returns the job inputs (segments, stems_root, upstream, cache) a mixer job of this corpus needs."""
    from stemlab.encoders.cache import CacheJob, cache_job
    from stemlab.train.job import Job, JobInputs
    from stemlab.train.run import train_job

    table = root / "segments.parquet"
    if not table.is_file():
        write_corpus(root, songs=songs, seconds=1.0, window=WINDOW)
        for song in sorted((root / "stems" / "synthetic" / SHARD).iterdir()):
            mix = sum(sf.read(f, dtype="float32")[0] for f in sorted((song / "wet").glob("*.flac")))
            sf.write(song / "mix.flac", mix, SR, subtype="PCM_24")
    upstream, cache = {}, {}
    for name, dim in (("clap", 8), ("fx_encoder", 6)):
        model_dir = root / "encoders" / name
        if not (model_dir / "final.pt").is_file():
            job = Job(model="tiny_encoder", task="tests.cache_tasks", seed=1, loop={"steps": 2, "batch_size": 2, "checkpoint_every": 0,
                      "checkpoint_seconds": 0}, settings={"dim": dim}, eval={}, inputs=JobInputs(), device="cpu")  # fmt: skip
            train_job(job, model_dir)
        upstream[name] = str(model_dir / "final.pt")
    out = root / "cache" / "clap" / "synthetic" / f"{SHARD}.parquet"
    if not out.is_file():
        spec = {"encoder": "tiny_encoder", "seed": 1, "corpus": "synthetic", "shard": SHARD, "model": upstream["clap"],
                "stems": str(root / "stems" / "synthetic" / SHARD), "segments": {"megami": str(table)}, "sources": ["wet", "mix"],
                "device": "cpu", "batch_size": 16}  # fmt: skip
        cache_job(CacheJob.from_dict(spec), out)
    cache["clap"] = [str(out)]
    return {"segments": {"megami": [str(table)]}, "stems_root": str(root / "stems"), "upstream": upstream, "cache": cache}


SMALL = {
    "segment_samples": 8192, "examples_per_window": 2, "text_encoder": {"source": "minilm"},
    "decoder": {"source": "config", "hidden_size": 32, "layers": 1, "heads": 2, "kv_heads": 1, "intermediate_size": 64,
                "gradient_checkpointing": False},
    "lora": {"enabled": False}, "prefix_tokens": 2, "fusion_hidden": 32, "regressor_hidden": 32, "dropout": 0.0,
    "min_rms_db": -80.0, "max_answer_tokens": 160,
}  # fmt: skip
