"""Dry/wet stem pairs for the FxProcessor, addressed through segment tables (stemlab.data.segment_tables)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stemlab.data.segment_tables import read_window, song_dir, song_json, stem_entry, stem_files
from stemlab.errors import StemlabError
from stemlab.seeding import rng
from stemlab.train.sampling import step_indices


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
            entry = stem_entry(song_json(str(directory / "song.json")), row.stem, directory / "song.json")
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
