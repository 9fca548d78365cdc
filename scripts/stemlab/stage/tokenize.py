"""Tokenise one corpus shard with the codec: `python -m stemlab.stage.tokenize --config JOB --out SHARD.parquet`.

The tokenize_stage rule (workflow/rules/stage.smk) runs it once per (corpus, shard), with the job config of
stemlab.stage.tokenplan. For every song of the shard's segment table it encodes, whole (or its first
`max_seconds`), in mono at the codec's rate, one stem at a time: each target category's summed wet tracks,
every other non-silent stem outside `exclude` (a stem is non-silent when the segment table marks one of its
`window` windows active), and a metronome click track rendered from the song's beats and downbeats. The file
format is stemlab.stage.tokens; its bytes depend only on the job (torch with `cpu_threads` threads and
deterministic algorithms, a fixed row order, written atomically).

Text prompts (`describe`): "Genres: <genre>. Moods: <moods>." The annotations have no mood labels, so the
moods are read off what they do have: the mode (major "bright", minor "dark"), the tempo (below 90 bpm
"laid-back", from 125 bpm "driving", else "steady") and the mix loudness (from -11 LUFS "energetic", below
-15 LUFS "mellow"). Synthetic songs use their annotations (genre, mode, tempo_bpm, mix_loudness_lufs); real
corpora the genre their metadata gives and the features table's essentia scale, bpm and mix_lufs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import log, progress, setup_logging
from stemlab.stage.tokens import CLICK, FORMAT, ROLES
from stemlab.taxonomy import STEMS

SLOW_BPM, FAST_BPM = 90.0, 125.0
LOUD_LUFS, SOFT_LUFS = -11.0, -15.0
BEATS_PER_BAR = 4  # real corpora: no downbeat tracker, a downbeat every fourth beat from the first


@dataclass(frozen=True)
class TokenJob:
    """What the tokenize_stage rule hands one job (stemlab.stage.tokenplan.token_job_config)."""

    codec: str
    seed: int
    corpus: str
    shard: str
    model: str  # the codec's final.pt
    segments: str  # the shard's segment table results/data/segments/<corpus>/shards/<shard>.parquet
    stems: str  # the canonical stem shard folder
    features: str  # results/data/features/<corpus>/<shard>.parquet
    pretrained: dict[str, str] = field(default_factory=dict)
    window: str = "stage"
    targets: tuple[str, ...] = ("drums", "bass")
    exclude: tuple[str, ...] = ("vocals", "percussion", "wind", "other_plucked")
    max_seconds: float | None = None
    device: str = "auto"
    cpu_threads: int = 2

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TokenJob:
        required = ("codec", "seed", "corpus", "shard", "model", "segments", "stems", "features")
        missing = [k for k in required if k not in values]
        if missing:
            raise StemlabError(f"token job config lacks {missing[0]!r}; pass the JSON the workflow writes (stemlab.stage.tokenplan)")
        known = {*required, "pretrained", "window", "targets", "exclude", "max_seconds", "device", "cpu_threads"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise StemlabError(f"token job config: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        job = cls(
            codec=str(values["codec"]), seed=int(values["seed"]), corpus=str(values["corpus"]), shard=str(values["shard"]),
            model=str(values["model"]), segments=str(values["segments"]), stems=str(values["stems"]),
            features=str(values["features"]), pretrained={str(k): str(v) for k, v in (values.get("pretrained") or {}).items()},
            window=str(values.get("window", cls.window)), targets=tuple(values.get("targets", cls.targets)),
            exclude=tuple(values.get("exclude", cls.exclude)), max_seconds=values.get("max_seconds"),
            device=str(values.get("device", "auto")), cpu_threads=int(values.get("cpu_threads", 2)),
        )  # fmt: skip
        bad = [c for c in (*job.targets, *job.exclude) if c not in STEMS]
        if bad:
            raise StemlabError(f"stage_tokens: {bad[0]!r} is not a stem category; the taxonomy is {', '.join(STEMS)}")
        if set(job.targets) & set(job.exclude):
            raise StemlabError(f"stage_tokens: {sorted(set(job.targets) & set(job.exclude))[0]} is both a target and excluded; drop it from one list")
        if job.max_seconds is not None and float(job.max_seconds) <= 0:
            raise StemlabError("stage_tokens.max_seconds must be > 0 or null")
        return job


def read_job(text: str) -> TokenJob:
    from stemlab.errors import json_config_arg

    return TokenJob.from_dict(json_config_arg(text, "--config", "pass the JSON the tokenize_stage rule writes"))


# --------------------------------------------------------------------------- songs


def describe(genre: str, mode: str | None, tempo_bpm: float | None, loudness_lufs: float | None) -> str:
    """The text prompt of a song (moods from mode, tempo and loudness; see the module docstring)."""
    moods = []
    if mode in ("major", "minor"):
        moods.append("bright" if mode == "major" else "dark")
    if tempo_bpm is not None and math.isfinite(tempo_bpm):
        moods.append("laid-back" if tempo_bpm < SLOW_BPM else "driving" if tempo_bpm >= FAST_BPM else "steady")
    if loudness_lufs is not None and math.isfinite(loudness_lufs):
        if loudness_lufs >= LOUD_LUFS:
            moods.append("energetic")
        elif loudness_lufs < SOFT_LUFS:
            moods.append("mellow")
    parts = []
    if genre:
        parts.append(f"Genres: {genre}.")
    if moods:
        parts.append(f"Moods: {', '.join(moods)}.")
    return " ".join(parts)


@dataclass(frozen=True)
class Song:
    song: str
    split: str
    directory: Path
    stems: tuple[tuple[str, str, Path], ...]  # (name, category, wet file) of the non-silent stems
    n_samples: int  # at 44.1 kHz
    beats: tuple[float, ...]
    downbeats: tuple[float, ...]
    tempo_bpm: float | None
    genre: str
    description: str


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def shard_songs(job: TokenJob) -> list[Song]:
    from stemlab.audio import SAMPLE_RATE
    from stemlab.data.segment_tables import song_json, stem_files

    for path, what in ((job.segments, "segment table"), (job.features, "features table")):
        if not Path(path).is_file():
            raise StemlabError(f"{path}: {what} not found; run the data stage (snakemake data) first")
    if not Path(job.stems).is_dir():
        raise StemlabError(f"{job.stems}: canonical stem shard not found; run the data stage (snakemake data) first")
    table = pd.read_parquet(job.segments)
    if "window" not in table.columns or not (table["window"] == job.window).any():
        raise StemlabError(f"{job.segments}: no {job.window!r} windows; add data.segments.{job.window} and re-run the data stage")
    table = table[table["window"] == job.window]
    active = table.groupby(["song", "stem"])["active"].any()
    features = pd.read_parquet(job.features).set_index("song")
    songs = []
    for name in sorted(table["song"].unique()):
        directory = Path(job.stems) / name
        meta = song_json(str(directory / "song.json"))
        stems = []
        for entry in meta.get("stems", []):
            stem = entry["name"]
            if bool(active.get((name, stem), False)):
                stems.append((stem, str(entry.get("category") or stem), stem_files(directory, entry)[1]))
        feats = features.loc[name] if name in features.index else None
        synthetic = "beats" in meta and "downbeats" in meta
        if synthetic:
            beats, downbeats = [float(b) for b in meta["beats"]], [float(b) for b in meta["downbeats"]]
            tempo, mode, loudness = _finite(meta.get("tempo_bpm")), meta.get("mode"), _finite(meta.get("mix_loudness_lufs"))
        else:
            beats = [float(b) for b in (feats["beats"] if feats is not None and feats["beats"] is not None else [])]
            downbeats = beats[::BEATS_PER_BAR]
            tempo = _finite(feats["bpm"]) if feats is not None else None
            mode = feats["scale"] if feats is not None else None
            loudness = _finite(feats["mix_lufs"]) if feats is not None else None
        genre = str(meta.get("genre") or (meta.get("source") or {}).get("genre") or "")
        n_samples = int(meta["n_frames"])
        if job.max_seconds is not None:
            n_samples = min(n_samples, int(round(float(job.max_seconds) * SAMPLE_RATE)))
            limit = n_samples / SAMPLE_RATE
            beats, downbeats = [b for b in beats if b < limit], [b for b in downbeats if b < limit]
        split = str(table.loc[table["song"] == name, "split"].iloc[0])
        songs.append(Song(name, split, directory, tuple(stems), n_samples, tuple(beats), tuple(downbeats), tempo, genre,
                          describe(genre, mode, tempo, loudness)))  # fmt: skip
    return songs


def mono_at(path: Path, n_samples: int, sample_rate: int) -> np.ndarray:
    """(samples at sample_rate,) float32: the first n_samples (44.1 kHz) of a file, mono, resampled."""
    from stemlab.audio import SAMPLE_RATE, read_audio, resample

    audio, _ = read_audio(path, expected_sr=SAMPLE_RATE)
    mono = np.zeros(n_samples, dtype=np.float32)
    take = min(mono.shape[0], audio.shape[0])
    mono[:take] = audio[:take].mean(axis=1)
    return resample(mono[:, None], SAMPLE_RATE, sample_rate)[:, 0] if sample_rate != SAMPLE_RATE else mono


def fit(wave: np.ndarray, length: int) -> np.ndarray:
    """`wave` cut or zero-padded to `length` samples (resamplers may differ by a sample)."""
    if wave.shape[0] >= length:
        return wave[:length]
    return np.pad(wave, (0, length - wave.shape[0]))


# --------------------------------------------------------------------------- the job


def token_rows(job: TokenJob, codec: Any, songs: Sequence[Song], device: Any) -> list[dict[str, Any]]:
    import torch

    from stemlab.audio import SAMPLE_RATE
    from stemlab.stage.metronome import click_track

    sr = int(codec.sample_rate)
    rows = []

    def encode(wave: np.ndarray) -> np.ndarray:
        if not np.isfinite(wave).all():
            raise StemlabError(f"{job.stems}: non-finite audio while tokenising; re-run the data stage for this shard")
        codes = codec.encode(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None, None].to(device))
        return codes[0].cpu().numpy()

    for song in progress(songs, desc=f"tokenize {job.corpus}/{job.shard}"):
        n = song.n_samples
        base = {"corpus": job.corpus, "shard": job.shard, "split": song.split, "song": song.song, "beats": list(song.beats),
                "downbeats": list(song.downbeats), "tempo_bpm": song.tempo_bpm, "genre": song.genre, "description": song.description}  # fmt: skip
        waves: list[tuple[str, str, np.ndarray]] = []
        for target in job.targets:
            files = [path for _, category, path in song.stems if category == target]
            if files:
                waves.append(("target", target, np.sum([mono_at(p, n, sr) for p in files], axis=0)))
        context: dict[str, np.ndarray] = {}
        for _, category, path in song.stems:
            if category not in job.targets and category not in job.exclude:
                audio = mono_at(path, n, sr)
                context[category] = context[category] + audio if category in context else audio
        waves += [("context", c, context[c]) for c in sorted(context)]
        length = int(round(n * sr / SAMPLE_RATE))  # every row of a song has the same frames
        waves = [(role, stem, fit(w, length)) for role, stem, w in waves]
        waves.append(("metronome", CLICK, click_track(song.beats, song.downbeats, length, sr)))
        for role, stem, wave in sorted(waves, key=lambda w: (ROLES.index(w[0]), w[1])):
            codes = encode(wave)
            rows.append({**base, "role": role, "stem": stem, "n_frames": int(codes.shape[1]), "codes": codes})
    return rows


def tokenize_job(job: TokenJob, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Tokenise the job's shard and write `out` atomically; returns the file's metadata."""
    import pyarrow.parquet as pq

    from stemlab.atomic import atomic_path
    from stemlab.device import resolve_device, torch_threads
    from stemlab.encoders.cache import _deterministic, sha256_file
    from stemlab.stage.codec import load_codec
    from stemlab.stage.tokens import tokens_table

    t0 = time.perf_counter()
    songs = shard_songs(job)  # before torch work: a missing input fails at once
    with torch_threads(job.cpu_threads), _deterministic():
        device = resolve_device(job.device)
        codec = load_codec(job.model, device, job.pretrained)
        log.info("%s %s/%s: %d songs, %s codec at %d Hz (%d x %d codes, %.1f frames/s) on %s", job.codec, job.corpus, job.shard,
                 len(songs), codec.kind, codec.sample_rate, codec.n_codebooks, codec.cardinality, codec.frame_rate, device)  # fmt: skip
        rows = token_rows(job, codec, songs, device)
    info = codec.describe()
    meta = {
        "format": FORMAT, "codec": job.codec, "kind": info["kind"], "seed": job.seed, "model_sha256": sha256_file(job.model),
        "sample_rate": info["sample_rate"], "n_codebooks": info["n_codebooks"], "cardinality": info["cardinality"],
        "frame_rate": info["frame_rate"], "hop": info["hop"], "corpus": job.corpus, "shard": job.shard, "window": job.window,
        "max_seconds": job.max_seconds, "rows": len(rows),
    }  # fmt: skip
    table = tokens_table(rows, meta)
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    log.info("%s: %d rows of %d songs in %.1f s", out, len(rows), len(songs), time.perf_counter() - t0)
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.stage.tokenize", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="token job config: inline JSON or a JSON file (stemlab.stage.tokenplan)")
    parser.add_argument("--out", required=True, help="the token shard (results/stage/tokens/<corpus>/<shard>.parquet)")
    parser.add_argument("--log", default=None, help="also log to this file")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    meta = tokenize_job(read_job(args.config), args.out)
    print(json.dumps(meta, sort_keys=True), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
