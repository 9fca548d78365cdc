"""MoisesDB: `<song uuid>/data.json` plus one folder per stem category holding one or more track files.

data.json: {"song", "artist", "genre", "stems": [{"stemName", "tracks": [{"id", "trackType",
"extension", "has_bleed"}]}]}; track files are `<song>/<stemName>/<track id>.<extension>`. MoisesDB has
no mixture file: the mix is the sum of the stems. Its stem names are the taxonomy's categories.
"""

from __future__ import annotations

import json
from pathlib import Path

from stemlab.data.spec import SongSpec, SourceTrack, StemSpec, check_category, inside, merge_stems, song_id
from stemlab.errors import StemlabError
from stemlab.taxonomy import STEMS

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff")
MAX_DEPTH = 4  # an archive may wrap the songs in a folder or two (moisesdb/moisesdb_v0.1/<uuid>/)


def _is_song_dir(path: Path) -> bool:
    if (path / "data.json").is_file():
        return True
    # a song folder without data.json still has stem-category folders with audio in them
    for sub in path.iterdir():
        if sub.is_dir() and sub.name in STEMS and any(f.suffix.lower() in AUDIO_SUFFIXES for f in sub.iterdir()):
            return True
    return False


def song_dirs(root: Path) -> list[Path]:
    """Every song folder under root (sorted); a folder that looks like a song but lacks data.json is an error."""
    found: list[Path] = []

    def walk(path: Path, depth: int) -> None:
        for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if _is_song_dir(sub):
                found.append(sub)
            elif depth < MAX_DEPTH:
                walk(sub, depth + 1)

    walk(root, 1)
    for song in found:
        if not (song / "data.json").is_file():
            raise StemlabError(
                f"{song / 'data.json'}: missing; every MoisesDB song folder needs its data.json — re-extract the "
                "corpus archive (or delete this folder)"
            )
    if not found:
        raise StemlabError(f"{root}: no MoisesDB song folders (<uuid>/data.json) found; check data.corpora.moisesdb.path")
    return found


def _load_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StemlabError(f"{path}: not valid JSON ({exc}); re-extract the corpus archive") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("stems"), list):
        raise StemlabError(f"{path}: no 'stems' list; this is not a MoisesDB data.json, re-extract the corpus")
    return doc


def category_of(stem_name: str, where: str) -> str:
    name = stem_name.strip().lower().replace(" ", "_").replace("-", "_")
    return check_category(name, where)


def _track_path(stem_dir: Path, track: dict, song: str, meta_path: Path) -> Path:
    """<stem folder>/<track id>.<extension>; both fields must keep the path inside the song folder."""
    ext = str(track.get("extension") or "wav").lstrip(".")
    inside(stem_dir, track.get("id"), song=song, field="track id", where=meta_path)
    return inside(stem_dir, f"{track.get('id')}.{ext}", song=song, field="track extension", where=meta_path)


def song_spec(song_dir: Path, split: str) -> SongSpec:
    meta_path = song_dir / "data.json"
    meta = _load_json(meta_path)
    stems = []
    for stem in meta["stems"]:
        if not isinstance(stem, dict):
            raise StemlabError(f"{meta_path}: a stems entry is {stem!r}, not a mapping; re-extract the corpus archive")
        stem_name = str(stem.get("stemName", ""))
        category = category_of(stem_name, str(meta_path))
        stem_dir = inside(song_dir, stem_name, song=song_dir.name, field="stemName", where=meta_path)
        tracks = []
        for track in stem.get("tracks") or []:
            if not isinstance(track, dict):
                raise StemlabError(f"{meta_path}: a {stem_name} track is {track!r}, not a mapping; re-extract the corpus archive")
            path = _track_path(stem_dir, track, song_dir.name, meta_path)
            if not path.is_file():
                raise StemlabError(
                    f"{path}: listed in {meta_path} but missing; re-extract the corpus archive"
                )
            tracks.append(SourceTrack(path, label=str(track.get("trackType", ""))))
        if tracks:
            stems.append(StemSpec(category, tracks))
    if not stems:
        raise StemlabError(f"{meta_path}: lists no track files; re-extract the corpus archive")
    return SongSpec(
        id=song_id(song_dir.name),
        corpus="moisesdb",
        split=split,
        source_dir=song_dir,
        stems=merge_stems(stems),
        mix=None,
        extras={k: meta.get(k) for k in ("song", "artist", "genre") if meta.get(k) is not None},
    )


def discover(root: Path, cfg: dict) -> dict[str, Path]:
    """song id -> song folder for the whole corpus (cheap: directory listing only)."""
    songs: dict[str, Path] = {}
    for path in song_dirs(root):
        sid = song_id(path.name)
        if sid in songs:
            raise StemlabError(f"{path}: song id {sid} also used by {songs[sid]}; remove the duplicate folder")
        songs[sid] = path
    return songs
