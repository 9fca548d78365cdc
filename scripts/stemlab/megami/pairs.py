"""Dry/wet stem pairs for the FxProcessor, addressed through segment tables.

A segment table (results/data/segments/<corpus>/megami.parquet) has one row per window of one stem:
song, stem, start, length, active, corpus, shard, split. Audio lives in canonical song directories
<stems_root>/<corpus>/<shard>/<song>/{dry,wet}/<stem>.flac with song.json beside them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from stemlab.audio import SAMPLE_RATE
from stemlab.errors import StemlabError
from stemlab.seeding import rng
from stemlab.train.sampling import step_indices

SEGMENT_COLUMNS = ("song", "stem", "start", "length", "active", "corpus", "shard", "split")


def read_segment_tables(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
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
        raise StemlabError("no segment tables given; list at least one corpus in train.fxprocessor.corpora")
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["corpus", "shard", "song", "stem", "start"], kind="stable").reset_index(drop=True)


def song_dir(stems_root: str | os.PathLike[str], corpus: str, shard: str, song: str) -> Path:
    return Path(stems_root) / corpus / shard / song


@lru_cache(maxsize=65536)
def _song_json(path: str) -> dict[str, Any]:
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


@dataclass(frozen=True)
class PairItem:
    song: str
    stem: str
    category: str
    start: int
    length: int
    dry: Path
    wet: Path
    fx: Any


_FX_KEYS = ("fx", "fx_chain", "effects")


def stem_fx(entry: dict[str, Any]) -> Any:
    """The stem's FX annotation (synthetic corpora), None where the corpus has none."""
    return next((entry[k] for k in _FX_KEYS if entry.get(k) is not None), None)


def stem_files(directory: Path, entry: dict[str, Any]) -> tuple[Path, Path]:
    """(dry, wet) paths of a stem: song.json `files` when given, else dry/<name>.flac, wet/<name>.flac."""
    files = entry.get("files") or {}
    name = entry["name"]
    dry, wet = files.get("dry") or f"dry/{name}.flac", files.get("wet") or f"wet/{name}.flac"
    return directory / dry, directory / wet


def pair_items(table: pd.DataFrame, stems_root: str | os.PathLike[str], split: str | None) -> list[PairItem]:
    """Active windows of `split` whose stem has both a dry and a wet file (real corpora may lack dry)."""
    rows = table if split is None else table[table["split"] == split]
    rows = rows[rows["active"].astype(bool)]
    items: list[PairItem] = []
    stems: dict[tuple[str, str, str], tuple[Path, Path, dict[str, Any]] | None] = {}
    for row in rows.itertuples(index=False):
        key = (row.corpus, row.song, row.stem)
        if key not in stems:
            directory = song_dir(stems_root, row.corpus, row.shard, row.song)
            entry = stem_entry(_song_json(str(directory / "song.json")), row.stem, directory / "song.json")
            dry, wet = stem_files(directory, entry)
            stems[key] = (dry, wet, entry) if dry.is_file() and wet.is_file() else None
        found = stems[key]
        if found is None:
            continue
        dry, wet, entry = found
        items.append(
            PairItem(
                song=row.song,
                stem=row.stem,
                category=str(entry.get("category", row.stem)),
                start=int(row.start),
                length=int(row.length),
                dry=dry,
                wet=wet,
                fx=stem_fx(entry),
            )
        )
    return items


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


class PairDataset:
    """Deterministic batches of (dry, wet, cond): batch s is a function of (seed, s) only."""

    def __init__(self, items: Sequence[PairItem], cond: np.ndarray, segment: int, seed: int) -> None:
        if not items:
            raise StemlabError("no active dry/wet stem pairs in the segment tables; check data.synthetic.enabled and the split")
        if cond.shape[0] != len(items):
            raise ValueError("one conditioning vector per item is required")
        self.items = list(items)
        self.cond = cond.astype(np.float32, copy=False)
        self.segment = int(segment)
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.items)

    def example(self, index: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
        item = self.items[index]
        start = item.start + offset
        return read_window(item.dry, start, self.segment), read_window(item.wet, start, self.segment)

    def batch(self, step: int, batch_size: int) -> dict[str, np.ndarray]:
        indices = step_indices(len(self.items), batch_size, self.seed, step)
        crop = rng(self.seed, "crop", step)
        dry, wet = [], []
        for index in indices:
            slack = max(0, self.items[index].length - self.segment)
            d, w = self.example(int(index), int(crop.integers(0, slack + 1)))
            dry.append(d)
            wet.append(w)
        return {"dry": np.stack(dry), "wet": np.stack(wet), "cond": self.cond[indices]}
