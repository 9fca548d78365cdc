"""Per-song and per-stem tables of a generated set, read from the song.json annotations (no audio).

These are what the distribution figure plots, so plotting never opens a song directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from stemlab.errors import StemlabError
from stemlab.synth.songdir import load_song, time_signature_text


def duration_s(meta: dict, where: Path) -> float:
    if meta.get("n_frames") is not None and meta.get("sample_rate"):
        return float(meta["n_frames"]) / float(meta["sample_rate"])
    if meta.get("duration_s") is not None:
        return float(meta["duration_s"])
    raise StemlabError(f"{where / 'song.json'}: neither n_frames+sample_rate nor duration_s; regenerate the shard")


def song_tables(song_dirs: Iterable[str | os.PathLike[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(songs, stems): one row per song (id, split, genre, tempo, meter, key, mode, duration, stem
    count, mix loudness) and one row per stem (id, name, category, role, loudness of wet and dry)."""
    songs, stems = [], []
    for song_dir in sorted({Path(d) for d in song_dirs}):
        meta = load_song(song_dir)
        song_id = str(meta.get("id") or song_dir.name)
        stem_list = meta.get("stems") or []
        songs.append(
            {
                "song_id": song_id,
                "split": meta.get("split", ""),
                "genre": meta.get("genre", ""),
                "source": meta.get("composition_source", "generated"),
                "tempo_bpm": float(meta["tempo_bpm"]) if meta.get("tempo_bpm") is not None else float("nan"),
                "time_signature": time_signature_text(meta.get("time_signature")),
                "key": str(meta.get("key", "")),
                "mode": str(meta.get("mode", "")),
                "duration_s": duration_s(meta, song_dir),
                "n_stems": len(stem_list),
                "mix_loudness_lufs": _loudness(meta.get("mix_loudness_lufs")),
            }
        )
        for stem in stem_list:
            stems.append(
                {
                    "song_id": song_id,
                    "genre": meta.get("genre", ""),
                    "name": stem["name"],
                    "category": stem.get("category", stem["name"]),
                    "role": stem.get("role", ""),
                    # the soundfont file, "samples" for a part of the sample library
                    "soundfont": stem.get("soundfont", ""),
                    "loudness_lufs": _loudness(stem.get("loudness_lufs")),
                    "dry_loudness_lufs": _loudness(stem.get("dry_loudness_lufs")),
                }
            )
    if not songs:
        raise StemlabError("no songs given to the stats tables; check the manifest")
    return pd.DataFrame(songs), pd.DataFrame(stems)


def _loudness(value: object) -> float:
    """Loudness as a float; missing or silent (null in song.json) -> NaN."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
