"""CLAP's items: mix windows (and, for training, active stem windows) of the `clap` segment tables, each
with its caption facts (a mix window's instruments: the stems the table marks active in it), and the audio CLAP hears (48 kHz mono, a fixed clip length)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stemlab.audio import SAMPLE_RATE, resample
from stemlab.data.segment_tables import read_window, song_dir, song_json, stem_entry, stem_files
from stemlab.encoders.clap.captions import WindowFacts, window_facts

CLAP_RATE = 48_000
WINDOW = "clap"  # the data.segments window CLAP trains and evaluates on


@dataclass(frozen=True)
class ClapItem:
    song: str
    stem: str  # "mix" for the mix window
    start: int
    length: int
    path: Path
    facts: WindowFacts
    split: str

    @property
    def key(self) -> str:
        return f"{self.song}/{self.stem}/{self.start}"


def clap_items(table: pd.DataFrame, stems_root: str | os.PathLike[str], split: str, with_stems: bool) -> list[ClapItem]:
    """Mix windows of `split` (one per song window) and, with `with_stems`, the active wet stem windows."""
    rows = table[table["split"] == split]
    items: list[ClapItem] = []
    for (corpus, shard, song, start, length), group in rows.groupby(["corpus", "shard", "song", "start", "length"], sort=True):
        directory = song_dir(stems_root, corpus, shard, song)
        meta = song_json(str(directory / "song.json"))
        start_s, length_s = start / SAMPLE_RATE, length / SAMPLE_RATE
        playing = group.loc[group["active"].astype(bool), "stem"].astype(str).tolist()
        items.append(ClapItem(song, "mix", int(start), int(length), directory / str(meta.get("mix", "mix.flac")),
                              window_facts(meta, start_s, length_s, playing=playing), split))  # fmt: skip
        if not with_stems:
            continue
        for row in group[group["active"].astype(bool)].sort_values("stem").itertuples(index=False):
            entry = stem_entry(meta, row.stem, directory / "song.json")
            _, wet = stem_files(directory, entry)
            items.append(ClapItem(song, str(row.stem), int(start), int(length), wet,
                                  window_facts(meta, start_s, length_s, stem=str(row.stem)), split))  # fmt: skip
    return items


def to_clap_audio(stereo: np.ndarray, clip_samples: int, offset: int = 0) -> np.ndarray:
    """(channels, time) at 44.1 kHz -> mono 48 kHz float32 of exactly `clip_samples`, from `offset` (at
    48 kHz) of the resampled audio, zero-padded when shorter."""
    mono = np.asarray(stereo, dtype=np.float32).mean(axis=0)
    audio = resample(mono[:, None], SAMPLE_RATE, CLAP_RATE)[:, 0]
    out = np.zeros(clip_samples, dtype=np.float32)
    piece = audio[offset : offset + clip_samples]
    out[: len(piece)] = piece
    return out


def clip_offsets(length_44k: int, clip_samples: int) -> list[int]:
    """Offsets (48 kHz samples) of non-overlapping clips covering a window (the last one may be short)."""
    total = int(round(length_44k * CLAP_RATE / SAMPLE_RATE))
    return list(range(0, max(1, total - clip_samples // 4), clip_samples)) or [0]


def item_audio(item: ClapItem) -> np.ndarray:
    return read_window(item.path, item.start, item.length)
