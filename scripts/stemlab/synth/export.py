"""Export generated songs to a Hugging Face `audiofolder` layout plus a parquet metadata table.

Layout (split directories are what `datasets` recognises as splits: train, valid -> validation, test):

    OUT/
      songs.parquet                     one row per song: every metadata column + paths relative to OUT
      <split>/metadata.jsonl            one line per song; `file_name` is the mix
      <split>/<song_id>/mix.flac
      <split>/<song_id>/wet/<stem>.flac   with --stems wet  (column `stems`: list of audio)
      <split>/<song_id>/dry/<stem>.flac   with --stems dry  (column `dry_stems`)
      <split>/<song_id>/midi/<stem>.mid   always (column `midi_files`: paths, not decoded)

`datasets.load_dataset("audiofolder", data_dir=OUT)` loads it offline. Audio files are hard links to
the generated ones when OUT is on the same filesystem (no extra disk), copies otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from stemlab.atomic import atomic_dir
from stemlab.errors import StemlabError
from stemlab.logs import progress
from stemlab.synth.songdir import load_song, time_signature_text

STEM_KINDS = ("wet", "dry")
# song.json keys copied as plain columns (scalars); everything else stays in the `annotation` column
SCALAR_KEYS = ("genre", "tempo_bpm", "time_signature", "key", "mode", "swing", "sample_rate", "n_frames", "seed", "index")


def _place(src: Path, dst: Path, copy: bool) -> None:
    if not src.is_file():
        raise StemlabError(f"{src}: listed in song.json but missing; regenerate the shard")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not copy:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another filesystem, or links not allowed: copy instead
    shutil.copyfile(src, dst)


def _scalar(value: object) -> object:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return value


def song_record(song_dir: Path, meta: dict, stems: Sequence[str]) -> tuple[dict, list[tuple[Path, str]]]:
    """The metadata row of one song (paths relative to its split directory) and the files to place."""
    song_id = str(meta.get("id") or song_dir.name)
    split = str(meta.get("split") or "")
    if not split:
        raise StemlabError(f"{song_dir / 'song.json'}: no 'split'; regenerate the shard")
    files: list[tuple[Path, str]] = [(song_dir / "mix.flac", f"{song_id}/mix.flac")]
    row: dict = {"file_name": f"{song_id}/mix.flac", "song_id": song_id, "split": split}
    for key in SCALAR_KEYS:
        if key in meta:
            row[key] = time_signature_text(meta[key]) if key == "time_signature" else _scalar(meta[key])
    stem_list = meta.get("stems", [])
    row["stem_names"] = [str(s["name"]) for s in stem_list]
    row["stem_categories"] = [str(s.get("category", s["name"])) for s in stem_list]
    row["stem_roles"] = [str(s.get("role", "")) for s in stem_list]
    row["stem_loudness_lufs"] = [_float(s.get("loudness_lufs")) for s in stem_list]
    row["beats"] = [float(b) for b in meta.get("beats", [])]
    row["downbeats"] = [float(b) for b in meta.get("downbeats", [])]
    for kind in stems:
        column = "stems_file_names" if kind == "wet" else f"{kind}_stems_file_names"
        row[column] = []
        for s in stem_list:
            rel = (s.get("files") or {}).get(kind)
            if not rel:
                raise StemlabError(f"{song_dir / 'song.json'}: stem {s['name']!r} has no {kind} file; export without --stems {kind}")
            files.append((song_dir / rel, f"{song_id}/{rel}"))
            row[column].append(f"{song_id}/{rel}")
    row["midi_files"] = []
    for s in stem_list:
        rel = (s.get("files") or {}).get("midi")
        if rel:
            files.append((song_dir / rel, f"{song_id}/{rel}"))
            row["midi_files"].append(f"{song_id}/{rel}")
    row["annotation"] = json.dumps(meta, sort_keys=True)
    return row, files


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def export_audiofolder(
    song_dirs: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    stems: Sequence[str] = (),
    splits: Sequence[str] | None = None,
    copy: bool = False,
) -> pd.DataFrame:
    """Write the audiofolder export of `song_dirs` into `out` (replaced atomically); returns the table."""
    for kind in stems:
        if kind not in STEM_KINDS:
            raise StemlabError(f"--stems {kind!r}: choose from {', '.join(STEM_KINDS)}")
    out = Path(out)
    records = []
    for song_dir in sorted({Path(d) for d in song_dirs}):
        meta = load_song(song_dir)
        if splits is not None and meta.get("split") not in splits:
            continue
        records.append((song_dir, meta))
    if not records:
        raise StemlabError(f"no songs to export to {out} (splits {list(splits or [])}); check --manifest and --splits")

    rows = []
    with atomic_dir(out) as tmp:
        by_split: dict[str, list[dict]] = {}
        for song_dir, meta in progress(records, desc="export"):
            row, files = song_record(song_dir, meta, stems)
            for src, rel in files:
                _place(src, tmp / row["split"] / rel, copy)
            by_split.setdefault(row["split"], []).append(row)
        for split, split_rows in sorted(by_split.items()):
            split_rows.sort(key=lambda r: r["song_id"])
            with open(tmp / split / "metadata.jsonl", "w", encoding="utf-8") as fh:
                for row in split_rows:
                    fh.write(json.dumps(row, sort_keys=False, ensure_ascii=False) + "\n")
            for row in split_rows:
                flat = dict(row)
                for key in [k for k in flat if k == "file_name" or k.endswith("_file_names") or k == "midi_files"]:
                    value = flat[key]
                    flat[key] = f"{split}/{value}" if isinstance(value, str) else [f"{split}/{v}" for v in value]
                rows.append(flat)
        table = pd.DataFrame(rows).sort_values("song_id", kind="stable").reset_index(drop=True)
        table.to_parquet(tmp / "songs.parquet", index=False)
    return table
