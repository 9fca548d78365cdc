"""Reading what the data stage wrote for the models: segment tables, song.json files and audio windows.

A segment table (results/data/segments/<corpus>/<window>.parquet) has one row per window of one stem:
song, stem, start, length, active, corpus, shard, split (+ category, active_fraction, rms_db). Audio lives
in canonical song directories <stems_root>/<corpus>/<shard>/<song>/{dry,wet}/<stem>.flac beside song.json.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from stemlab.audio import SAMPLE_RATE
from stemlab.errors import StemlabError

SEGMENT_COLUMNS = ("song", "stem", "start", "length", "active", "corpus", "shard", "split")


def read_segment_tables(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """The rows of every table (one per corpus), sorted by (corpus, shard, song, stem, start)."""
    frames = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise StemlabError(f"{path}: segment table not found; run the data stage (snakemake data) first")
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001
            raise StemlabError(f"{path}: cannot read segment table ({type(exc).__name__}); re-run its rule") from exc
        missing = [c for c in SEGMENT_COLUMNS if c not in frame.columns]
        if missing:
            raise StemlabError(f"{path}: segment table lacks columns {', '.join(missing)}; re-run the data stage")
        frames.append(frame[list(SEGMENT_COLUMNS)])
    if not frames:
        raise StemlabError("no segment tables given; list at least one corpus in models.<model>.inputs.corpora")
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["corpus", "shard", "song", "stem", "start"], kind="stable").reset_index(drop=True)


def song_dir(stems_root: str | os.PathLike[str], corpus: str, shard: str, song: str) -> Path:
    return Path(stems_root) / corpus / shard / song


@lru_cache(maxsize=65536)
def song_json(path: str) -> dict[str, Any]:
    """A canonical song.json (cached: the file of a finished data stage does not change)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise StemlabError(f"{path}: song.json not found; re-run the data stage for this shard") from None
    except json.JSONDecodeError as exc:
        raise StemlabError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno}); re-run the rule that wrote it") from exc


def stem_entry(song: dict[str, Any], stem: str, where: Path) -> dict[str, Any]:
    for entry in song.get("stems", []):
        if entry.get("name") == stem:
            return entry
    raise StemlabError(f"{where}: song.json has no stem named {stem!r}; the segment table is out of date, re-run the data stage")


def stem_files(directory: Path, entry: dict[str, Any]) -> tuple[Path, Path]:
    """(dry, wet) paths of a stem: song.json `files` when given, else dry/<name>.flac, wet/<name>.flac."""
    files = entry.get("files") or {}
    name = entry["name"]
    dry, wet = files.get("dry") or f"dry/{name}.flac", files.get("wet") or f"wet/{name}.flac"
    return directory / dry, directory / wet


def read_window(path: Path, start: int, frames: int, channels: int = 2) -> np.ndarray:
    """(channels, frames) float32 from `start`; zero-padded past the end, mono duplicated to stereo."""
    try:
        with sf.SoundFile(path) as fh:
            if fh.samplerate != SAMPLE_RATE:
                raise StemlabError(f"{path}: sample rate {fh.samplerate} Hz, expected {SAMPLE_RATE}; re-run the data stage")
            fh.seek(min(start, fh.frames))
            data = fh.read(frames, dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise StemlabError(f"{path}: cannot decode audio ({exc}); re-run the rule that wrote it") from exc
    if data.shape[1] == 1:
        data = np.repeat(data, channels, axis=1)
    elif data.shape[1] != channels:
        data = data[:, :channels]
    out = np.zeros((channels, frames), dtype=np.float32)
    out[:, : data.shape[0]] = data.T
    return out
