"""The tracks and pairs of the relations model: windows of melodic/harmonic stems and their ordered pairs.

A track row is one window (data.segments.track_relationship) of one stem of a song whose category is not
excluded (drums, percussion, other): its audio is the stem's wet file times the stem's `average_scale`
(the per-category average of its sub-tracks, canonical layout), mixed to mono. A pair is an ordered
(guide, target) of two different stems of one song over the same window.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stemlab.data.segment_tables import read_segment_tables, read_window, song_dir, song_json, stem_entry, stem_files
from stemlab.errors import StemlabError

ROW_KEYS = ("corpus", "shard", "song", "stem", "start", "length", "split")


def track_rows(tables: Sequence[str | os.PathLike[str]], stems_root: str | os.PathLike[str], exclude: Sequence[str]) -> pd.DataFrame:
    """Active windows of the stems whose category (song.json) is not in `exclude`, in table order."""
    table = read_segment_tables(tables)
    table = table[table["active"].astype(bool)]
    keep = []
    for row in table.itertuples(index=False):
        directory = song_dir(stems_root, row.corpus, row.shard, row.song)
        entry = stem_entry(song_json(str(directory / "song.json")), str(row.stem), directory)
        keep.append(str(entry.get("category") or row.stem) not in exclude and str(row.stem) not in exclude)
    rows = table[np.asarray(keep, dtype=bool)] if len(table) else table
    return rows[list(ROW_KEYS)].reset_index(drop=True)


def track_audio(stems_root: str | os.PathLike[str], corpus: str, shard: str, song: str, stem: str, start: int, length: int) -> np.ndarray:
    """Mono float32 (length,) at 44.1 kHz: the stem's wet window times its average_scale."""
    directory = song_dir(stems_root, corpus, shard, song)
    entry = stem_entry(song_json(str(directory / "song.json")), stem, directory)
    _, wet = stem_files(directory, entry)
    scale = float(entry.get("average_scale", 1.0))
    return read_window(Path(wet), int(start), int(length)).mean(axis=0) * np.float32(scale)


def pairs(rows: pd.DataFrame, split: str | None = None) -> np.ndarray:
    """(n, 2) row indices (guide, target) of every ordered pair of stems of one song and window."""
    frame = rows if split is None else rows[rows["split"] == split]
    out = []
    for _, group in frame.groupby(["corpus", "song", "start"], sort=True):
        index = group.index.to_numpy()
        for g in index:
            for t in index:
                if g != t:
                    out.append((g, t))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def n_segments(window_samples: int, segment_s: float, sample_rate: int = 44_100) -> int:
    n = int(np.floor(window_samples / sample_rate / segment_s + 1e-9))
    if n < 1:
        raise StemlabError(f"segment length {segment_s} s is longer than the {window_samples / sample_rate:.2f} s window; shorten it")
    return n
