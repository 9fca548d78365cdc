"""What an adapter says about one song before any audio is read: its files, categories and gains."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from stemlab.errors import StemlabError
from stemlab.taxonomy import STEMS

SPLITS: tuple[str, ...] = ("train", "valid", "test")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class SourceTrack:
    """One source file; `gain` scales it before it is summed into its stem (MedleyDB mixing coefficients)."""

    path: Path
    label: str = ""
    gain: float = 1.0


@dataclass
class StemSpec:
    category: str
    wet: list[SourceTrack]
    dry: list[SourceTrack] | None = None
    dry_missing: str | None = None  # why there is no dry stem although the corpus has dry tracks


@dataclass
class SongSpec:
    id: str
    corpus: str
    split: str
    source_dir: Path
    stems: list[StemSpec]
    mix: SourceTrack | None = None  # None: the mix is the sum of the wet stems
    extras: dict = field(default_factory=dict)

    def all_tracks(self) -> list[SourceTrack]:
        tracks = [t for s in self.stems for t in s.wet + (s.dry or [])]
        return tracks + ([self.mix] if self.mix else [])


def song_id(name: str) -> str:
    """A filesystem- and wildcard-safe song id from a corpus's song name ("A - B & C" -> "A_-_B_C")."""
    text = _UNSAFE.sub("_", name.strip()).strip("._")
    if not text:
        raise StemlabError(f"song name {name!r} gives an empty song id; rename the song folder")
    return text


def inside(folder: Path, name: object, *, song: str, field: str, where: Path) -> Path:
    """`folder / name` for a path taken from corpus metadata, refused unless it stays inside `folder`.

    The check is lexical (no '..' component, not absolute, no NUL): resources/corpora/<c> may be a tree
    of symlinks into the user's folder, so resolving links would always leave it.
    """
    text = str(name)
    parts = [p for p in re.split(r"[/\\]", text) if p not in ("", ".")]
    if "\x00" in text or text.startswith(("/", "\\")) or _DRIVE.match(text) or ".." in parts or not parts:
        raise StemlabError(
            f"{where}: {field} {text!r} of song {song} is not a path inside the song folder {folder}; "
            "fix the metadata (paths must be relative, without '..')"
        )
    return folder / text


def check_category(name: str, where: str) -> str:
    if name not in STEMS:
        raise StemlabError(f"{where}: stem category {name!r} is not in the taxonomy ({', '.join(STEMS)}); fix the mapping")
    return name


def merge_stems(stems: list[StemSpec]) -> list[StemSpec]:
    """One StemSpec per category, in taxonomy order (sub-tracks of one category are summed later)."""
    by_cat: dict[str, StemSpec] = {}
    for stem in stems:
        have = by_cat.get(stem.category)
        if have is None:
            by_cat[stem.category] = StemSpec(stem.category, list(stem.wet), None if stem.dry is None else list(stem.dry), stem.dry_missing)
            continue
        have.wet.extend(stem.wet)
        if have.dry is not None and stem.dry is not None:
            have.dry.extend(stem.dry)
        elif have.dry is None and stem.dry is None:
            have.dry_missing = have.dry_missing or stem.dry_missing
        else:
            lacking = stem if stem.dry is None else have
            have.dry = None
            have.dry_missing = lacking.dry_missing or f"{lacking.wet[0].path.name} has no dry recording"
    return [by_cat[c] for c in STEMS if c in by_cat]
