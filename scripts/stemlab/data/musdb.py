"""MUSDB18-HQ: `train/<Artist - Title>/` and `test/<Artist - Title>/`, each with mixture.wav and the four
stems drums, bass, other, vocals (WAV, 44.1 kHz stereo). The mixture file is the canonical mix.

Splits: the test folder is test; train songs named in data.corpora.musdb18hq.valid_songs are valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stemlab.data.spec import SongSpec, SourceTrack, StemSpec, merge_stems, song_id
from stemlab.errors import StemlabError

STEM_FILES = {"drums": "drums", "bass": "bass", "other": "other", "vocals": "vocals"}  # file stem -> category
MIX_FILE = "mixture"
SUBSETS = ("train", "test")
MAX_DEPTH = 3
# default of data.corpora.musdb18hq.valid_songs: the 14 train songs of the musdb package's valid split
VALID_SONGS = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)


@dataclass(frozen=True)
class MusdbSong:
    path: Path
    subset: str


def _find_root(root: Path) -> Path:
    """The folder holding train/ and test/ (the zip may wrap them in musdb18hq/)."""
    todo = [(root, 0)]
    while todo:
        path, depth = todo.pop(0)
        if all((path / s).is_dir() for s in SUBSETS):
            return path
        if depth < MAX_DEPTH:
            todo += [(p, depth + 1) for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    raise StemlabError(
        f"{root}: no MUSDB18-HQ train/ and test/ folders found; point data.corpora.musdb18hq.path at the extracted "
        "musdb18hq.zip"
    )


def _audio_file(folder: Path, stem: str) -> Path:
    for suffix in (".wav", ".flac"):
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise StemlabError(f"{folder / (stem + '.wav')}: missing; every MUSDB18-HQ song has {', '.join([MIX_FILE, *STEM_FILES])} — re-extract the corpus")


def discover(root: Path, cfg: dict) -> dict[str, MusdbSong]:
    base = _find_root(root)
    songs: dict[str, MusdbSong] = {}
    for subset in SUBSETS:
        for folder in sorted(p for p in (base / subset).iterdir() if p.is_dir() and not p.name.startswith(".")):
            sid = song_id(folder.name)
            if sid in songs:
                raise StemlabError(f"{folder}: song id {sid} also used by {songs[sid].path}; remove the duplicate folder")
            songs[sid] = MusdbSong(folder, subset)
    if not songs:
        raise StemlabError(f"{base}: train/ and test/ hold no song folders; re-extract musdb18hq.zip")
    return songs


def splits(songs: dict[str, MusdbSong], cfg: dict) -> dict[str, str]:
    valid = set(cfg.get("valid_songs", VALID_SONGS) or [])
    out = {}
    for sid, song in songs.items():
        if song.subset == "test":
            out[sid] = "test"
        else:
            out[sid] = "valid" if song.path.name in valid or sid in valid else "train"
    return out


def song_spec(song: MusdbSong, split: str) -> SongSpec:
    stems = [
        StemSpec(category, [SourceTrack(_audio_file(song.path, stem), label=stem)])
        for stem, category in STEM_FILES.items()
    ]
    return SongSpec(
        id=song_id(song.path.name),
        corpus="musdb18hq",
        split=split,
        source_dir=song.path,
        stems=merge_stems(stems),
        mix=SourceTrack(_audio_file(song.path, MIX_FILE), label=MIX_FILE),
        extras={"name": song.path.name, "subset": song.subset},
    )
