"""Synthetic shards -> canonical layout: every file hard-linked (copied across filesystems), song.json
validated and completed with the canonical fields, so the rest of the data stage treats synthetic songs
exactly like real ones.

Checks per song: song.json parses; id, split, sample_rate, n_frames and a non-empty stems list are
present; each stem's category is in the taxonomy and its wet file (and dry file, when named) exists
with 44.1 kHz, the song's channel count and n_frames frames; the same for mix.flac.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from stemlab.audio import SAMPLE_RATE, audio_info
from stemlab.data.build import DATA_LAYOUT_VERSION, write_song_json
from stemlab.data.spec import SPLITS
from stemlab.errors import StemlabError
from stemlab.taxonomy import STEMS


def _fix(shard: str) -> str:
    return f"re-run the synth_shard rule for {shard} (delete results/synth/shards/{shard} first)"


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)  # another filesystem, or hard links not allowed


def _check_audio(path: Path, n_frames: int, channels: int | None, shard: str) -> int:
    frames, sr, ch = audio_info(path)
    if sr != SAMPLE_RATE:
        raise StemlabError(f"{path}: {sr} Hz, expected {SAMPLE_RATE} Hz; {_fix(shard)}")
    if frames != n_frames:
        raise StemlabError(f"{path}: {frames} frames but song.json says n_frames={n_frames}; {_fix(shard)}")
    if channels is not None and ch != channels:
        raise StemlabError(f"{path}: {ch} channels, the song's mix has {channels}; {_fix(shard)}")
    return ch


def canonical_song(song_dir: Path, shard: str) -> dict:
    """Validate one synthetic song folder; return its song.json completed with the canonical fields."""
    path = song_dir / "song.json"
    if not path.is_file():
        raise StemlabError(f"{path}: missing; {_fix(shard)}")
    try:
        song = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StemlabError(f"{path}: invalid JSON ({exc}); {_fix(shard)}") from exc
    for key in ("split", "sample_rate", "n_frames", "stems"):
        if key not in song:
            raise StemlabError(f"{path}: no {key!r}; {_fix(shard)}")
    song.setdefault("id", song_dir.name)
    if str(song["id"]) != song_dir.name:
        raise StemlabError(f"{path}: id {song['id']!r} differs from its folder name {song_dir.name!r}; {_fix(shard)}")
    if song["split"] not in SPLITS:
        raise StemlabError(f"{path}: split {song['split']!r} is not one of {', '.join(SPLITS)}; {_fix(shard)}")
    if int(song["sample_rate"]) != SAMPLE_RATE:
        raise StemlabError(f"{path}: sample_rate {song['sample_rate']}, expected {SAMPLE_RATE}; {_fix(shard)}")
    n = int(song["n_frames"])
    if not song["stems"]:
        raise StemlabError(f"{path}: empty stems list; {_fix(shard)}")
    if not song.get("mix", "mix.flac"):
        raise StemlabError(f"{path}: no mix file; generate the shard with mix in its outputs")
    mix = str(song.get("mix", "mix.flac"))
    channels = _check_audio(song_dir / mix, n, None, shard)
    names = set()
    for stem in song["stems"]:
        name = str(stem.get("name", ""))
        if not name or name in names:
            raise StemlabError(f"{path}: stem name {name!r} is empty or repeated; {_fix(shard)}")
        names.add(name)
        category = str(stem.setdefault("category", name))
        if category not in STEMS:
            raise StemlabError(f"{path}: stem {name!r} has category {category!r}, not in the taxonomy; {_fix(shard)}")
        files = stem.get("files") or {}
        stem["files"] = {k: v for k, v in files.items() if v}  # the synth writes null for outputs it skipped
        if not stem["files"].get("wet"):
            raise StemlabError(f"{path}: stem {name!r} has no wet file; generate the shard with stems in its outputs")
        files = stem["files"]
        for kind in ("wet", "dry"):
            if files.get(kind):
                _check_audio(song_dir / files[kind], n, channels, shard)
        stem.setdefault("n_tracks", 1)
        stem.setdefault("reduction", "sum")
        stem.setdefault("average_scale", 1.0 / int(stem["n_tracks"]))
    song.update(
        corpus="synthetic",
        mix=mix,
        channels=channels,
        duration_s=round(n / SAMPLE_RATE, 6),
    )
    song["data"] = {
        "layout_version": DATA_LAYOUT_VERSION,
        "mix_source": "file",
        "linked_from": f"results/synth/shards/{shard}/{song_dir.name}",
        "average": "per-category average = wet file x average_scale (1 / n_tracks)",
    }
    return song


def link_song(song_dir: Path, out_dir: Path, shard: str) -> dict:
    song = canonical_song(song_dir, shard)
    for src in sorted(song_dir.rglob("*")):
        if src.is_file() and src.name != "song.json" and not src.name.startswith("."):
            _link(src, out_dir / src.relative_to(song_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_song_json(out_dir, song)
    return song


def song_dirs(shard_dir: Path) -> list[Path]:
    if not shard_dir.is_dir():
        raise StemlabError(f"{shard_dir}: synthetic shard missing; run the synth_shard rule for it")
    return sorted(p for p in shard_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
