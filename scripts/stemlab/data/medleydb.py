"""MedleyDB 2.0: `<TrackId>/` with `<TrackId>_MIX.wav`, `<TrackId>_STEMS/`, `<TrackId>_RAW/` and the
per-song `<TrackId>_METADATA.yaml` (in the song folder or in a Metadata/ folder anywhere in the corpus):

    mix_filename: ..._MIX.wav
    stem_dir: ..._STEMS
    raw_dir: ..._RAW
    stems:
      S01: {filename: ..._STEM_01.wav, instrument: drum set, raw: {R01: {filename: ..._RAW_01_01.wav, instrument: kick drum}}}

Wet = STEM files times their mixing coefficient (so the wet stems sum to the MIX); dry = the stem's RAW
files, summed (only when every stem of the category has RAW files). Coefficients come from a per-stem
`mixing_coefficient` key in the METADATA when present, else the corpus's mixing-coefficients yaml
({TrackId: {audio: {1: c, ...}, stft: {...}}}), chosen by data.corpora.medleydb.coefficients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from stemlab.data.spec import SongSpec, SourceTrack, StemSpec, inside, merge_stems, song_id
from stemlab.errors import StemlabError

MAX_DEPTH = 4
COEFFICIENTS = "audio"  # default of data.corpora.medleydb.coefficients

# MedleyDB instrument labels -> taxonomy category. Labels not listed fall back to keyword rules below.
INSTRUMENTS: dict[str, str] = {
    # vocals
    "male singer": "vocals", "female singer": "vocals", "male speaker": "vocals", "female speaker": "vocals",
    "male rapper": "vocals", "female rapper": "vocals", "vocalists": "vocals", "choir": "vocals",
    "beatboxing": "vocals", "male screamer": "vocals", "female screamer": "vocals",
    # bass
    "electric bass": "bass", "double bass": "bass", "acoustic bass": "bass", "bass synthesizer": "bass",
    # drums
    "drum set": "drums", "kick drum": "drums", "snare drum": "drums", "toms": "drums", "high hat": "drums",
    "cymbal": "drums", "drum machine": "drums", "bass drum": "drums",
    # percussion (un-pitched and mallets)
    "auxiliary percussion": "percussion", "shaker": "percussion", "tambourine": "percussion",
    "bongo": "percussion", "conga": "percussion", "cabasa": "percussion", "cowbell": "percussion",
    "claps": "percussion", "snaps": "percussion", "gong": "percussion", "darbuka": "percussion",
    "doumbek": "percussion", "tabla": "percussion", "timpani": "percussion", "glockenspiel": "percussion",
    "vibraphone": "percussion", "xylophone": "percussion", "marimba": "percussion", "chimes": "percussion",
    "triangle": "percussion", "castanet": "percussion", "guiro": "percussion", "cajon": "percussion",
    "djembe": "percussion", "frame drum": "percussion", "timbales": "percussion", "sleigh bells": "percussion",
    "bamboo chimes": "percussion", "tubular bells": "percussion",
    # guitar
    "acoustic guitar": "guitar", "clean electric guitar": "guitar", "distorted electric guitar": "guitar",
    "electric guitar": "guitar", "lap steel guitar": "guitar", "slide guitar": "guitar", "steel guitar": "guitar",
    # piano
    "piano": "piano", "electric piano": "piano", "tack piano": "piano",
    # other keys
    "synthesizer": "other_keys", "organ": "other_keys", "harpsichord": "other_keys", "accordion": "other_keys",
    "clavinet": "other_keys", "celesta": "other_keys", "mellotron": "other_keys", "keyboard": "other_keys",
    # bowed strings
    "violin": "bowed_strings", "viola": "bowed_strings", "cello": "bowed_strings", "string section": "bowed_strings",
    "violin section": "bowed_strings", "viola section": "bowed_strings", "cello section": "bowed_strings",
    "erhu": "bowed_strings", "fiddle": "bowed_strings",
    # wind
    "flute": "wind", "piccolo": "wind", "clarinet": "wind", "bass clarinet": "wind", "oboe": "wind",
    "bassoon": "wind", "english horn": "wind", "alto saxophone": "wind", "tenor saxophone": "wind",
    "baritone saxophone": "wind", "soprano saxophone": "wind", "saxophone": "wind", "trumpet": "wind",
    "cornet": "wind", "flugelhorn": "wind", "trombone": "wind", "bass trombone": "wind", "french horn": "wind",
    "horn section": "wind", "brass section": "wind", "tuba": "wind", "euphonium": "wind", "harmonica": "wind",
    "melodica": "wind", "bamboo flute": "wind", "dizi": "wind", "recorder": "wind", "whistle": "wind",
    "bagpipe": "wind", "flute section": "wind", "clarinet section": "wind", "trumpet section": "wind",
    "trombone section": "wind", "french horn section": "wind", "oboe section": "wind", "woodwind section": "wind",
    # other plucked
    "banjo": "other_plucked", "mandolin": "other_plucked", "harp": "other_plucked", "ukulele": "other_plucked",
    "sitar": "other_plucked", "zhongruan": "other_plucked", "liuqin": "other_plucked", "guzheng": "other_plucked",
    "yangqin": "other_plucked", "oud": "other_plucked", "lute": "other_plucked", "dulcimer": "other_plucked",
    "koto": "other_plucked", "bouzouki": "other_plucked", "pipa": "other_plucked",
    # other
    "fx/processed sound": "other", "sampler": "other", "scratches": "other", "crowd": "other",
    "main system": "other", "theremin": "other",
}
KEYWORDS: tuple[tuple[str, str], ...] = (
    ("singer", "vocals"), ("vocal", "vocals"), ("rapper", "vocals"), ("speaker", "vocals"), ("choir", "vocals"),
    ("guitar", "guitar"), ("bass", "bass"), ("drum", "drums"), ("piano", "piano"), ("synth", "other_keys"),
    ("organ", "other_keys"), ("violin", "bowed_strings"), ("viola", "bowed_strings"), ("cello", "bowed_strings"),
    ("string", "bowed_strings"), ("sax", "wind"), ("trumpet", "wind"), ("trombone", "wind"), ("horn", "wind"),
    ("flute", "wind"), ("clarinet", "wind"), ("percussion", "percussion"),
)


def category_of(instrument: str) -> str:
    label = " ".join(str(instrument or "").lower().split())
    if label in INSTRUMENTS:
        return INSTRUMENTS[label]
    for word, category in KEYWORDS:
        if word in label:
            return category
    return "other"


@dataclass(frozen=True)
class MedleySong:
    path: Path  # the song's audio folder
    metadata: Path


def _walk_dirs(root: Path):
    todo = [(root, 0)]
    while todo:
        path, depth = todo.pop(0)
        yield path
        if depth < MAX_DEPTH:
            todo += [(p, depth + 1) for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def discover(root: Path, cfg: dict) -> dict[str, MedleySong]:
    metadata: dict[str, Path] = {}
    audio_dirs: dict[str, Path] = {}
    for folder in _walk_dirs(root):
        for f in sorted(folder.glob("*_METADATA.yaml")):
            metadata.setdefault(f.name[: -len("_METADATA.yaml")], f)
        for stems in sorted(folder.glob("*_STEMS")):
            if stems.is_dir():
                audio_dirs.setdefault(stems.name[: -len("_STEMS")], folder)
    if not audio_dirs:
        raise StemlabError(f"{root}: no MedleyDB song folders (<TrackId>/<TrackId>_STEMS/) found; check data.corpora.medleydb.path")
    songs: dict[str, MedleySong] = {}
    for track_id, folder in sorted(audio_dirs.items()):
        meta = metadata.get(track_id)
        if meta is None:
            raise StemlabError(
                f"{folder / (track_id + '_METADATA.yaml')}: missing; put the song's METADATA yaml (from the MedleyDB "
                "release or the medleydb package's Metadata/ folder) in the corpus folder"
            )
        sid = song_id(track_id)
        if sid in songs:
            raise StemlabError(f"{folder}: song id {sid} also used by {songs[sid].path}; remove the duplicate folder")
        songs[sid] = MedleySong(folder, meta)
    return songs


def _load_yaml(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0]
        raise StemlabError(f"{path}: not valid YAML ({reason}); re-extract the corpus") from exc
    return doc if isinstance(doc, dict) else {}


def coefficients_file(root: Path, cfg: dict) -> Path | None:
    configured = cfg.get("coefficients_file")
    if configured:
        path = Path(configured)
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise StemlabError(f"{path}: not found; fix data.corpora.medleydb.coefficients_file (or set it to null)")
        return path
    for folder in _walk_dirs(root):
        found = sorted(folder.glob("mixing_coefficients*.yaml"))
        if found:
            return found[-1]  # mixing_coefficients_version2.yaml sorts after mixing_coefficients.yaml
    return None


def load_coefficients(root: Path, cfg: dict) -> tuple[dict, Path | None]:
    """{TrackId: that song's raw entry} of the corpus's mixing-coefficients yaml, and the file it came from.

    The values are checked per song (song_coefficients), so one bad entry fails or skips only its song.
    """
    kind = cfg.get("coefficients", COEFFICIENTS)
    if kind == "none":
        return {}, None
    path = coefficients_file(root, cfg)
    if path is None:
        return {}, None
    return {str(track): entry for track, entry in _load_yaml(path).items()}, path


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(value: object, where: Path, song: str, key: str, fix: str) -> float:
    """A finite float, else one line naming the file, the song, the key and the value."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise StemlabError(f"{where}: song {song}: {key} is {_shown(value)}, not a finite number; {fix}")
    return number


def song_coefficients(table: dict, track_id: str, kind: str, path: Path | None) -> dict[int, float]:
    """{stem index: coefficient} of one song from load_coefficients' table (empty when it has none)."""
    entry = table.get(track_id)
    if entry is None or path is None:
        return {}
    fix = "fix the file or set data.corpora.medleydb.coefficients: none"
    values = entry.get(kind) if isinstance(entry, dict) else entry
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise StemlabError(f"{path}: song {track_id}: {kind} is {_shown(values)}, not a mapping of stem index to coefficient; {fix}")
    out = {}
    for key, value in values.items():
        index = _stem_index(key)
        if index is None:
            raise StemlabError(f"{path}: song {track_id}: {kind} key {_shown(key)} is not a stem index; {fix}")
        out[index] = _number(value, path, track_id, f"{kind}.{key}", fix)
    return out


def _stem_index(key: object) -> int | None:
    digits = "".join(ch for ch in str(key) if ch.isdigit())
    return int(digits) if digits else None


def _mapping(value: object, where: Path, song: str, key: str) -> dict:
    """A METADATA entry that must be a mapping (None counts as empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StemlabError(f"{where}: song {song}: {key} is {_shown(value)}, not a mapping; fix the METADATA file")
    return value


def _instrument(entry: dict) -> str:
    value = entry.get("instrument")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


def _gain(entry: dict, index: int | None, song_coef: dict, coef_source: str, meta: Path, track_id: str, key: object) -> tuple[float, str]:
    if "mixing_coefficient" in entry:
        fix = "fix the METADATA file (or delete the key to use the mixing-coefficients table)"
        return _number(entry["mixing_coefficient"], meta, track_id, f"stems.{key}.mixing_coefficient", fix), "metadata"
    if index in song_coef:
        return song_coef[index], coef_source
    return 1.0, "none"


def _dry_tracks(entry: dict, raw_dir: Path, meta: Path, track_id: str, key: object) -> tuple[list[SourceTrack] | None, str | None]:
    """A stem's RAW tracks, or (None, why there are none)."""
    raw_entries = _mapping(entry.get("raw"), meta, track_id, f"stems.{key}.raw")
    dry: list[SourceTrack] = []
    for raw_key in sorted(raw_entries, key=str):
        raw = _mapping(raw_entries[raw_key], meta, track_id, f"stems.{key}.raw.{raw_key}")
        if not raw.get("filename"):
            return None, f"RAW track {raw_key} of stem {key} has no filename"
        raw_path = inside(raw_dir, raw["filename"], song=track_id, field=f"stems.{key}.raw.{raw_key}.filename", where=meta)
        if not raw_path.is_file():
            return None, f"RAW file {raw_path.name} of stem {key} is missing"
        dry.append(SourceTrack(raw_path, label=str(raw.get("instrument") or "")))
    if not dry:
        return None, f"stem {key} has no RAW tracks"
    return dry, None


def song_spec(song: MedleySong, split: str, coefficients: dict, coef_path: Path | None, kind: str) -> SongSpec:
    meta = _load_yaml(song.metadata)
    track_id = song.metadata.name[: -len("_METADATA.yaml")]
    stems_meta = meta.get("stems")
    if not isinstance(stems_meta, dict) or not stems_meta:
        raise StemlabError(f"{song.metadata}: no 'stems' mapping; this is not a MedleyDB METADATA file")
    here = {"song": track_id, "where": song.metadata}
    stem_dir = inside(song.path, meta.get("stem_dir") or f"{track_id}_STEMS", field="stem_dir", **here)
    raw_dir = inside(song.path, meta.get("raw_dir") or f"{track_id}_RAW", field="raw_dir", **here)
    song_coef = song_coefficients(coefficients, track_id, kind, coef_path)
    coef_source = f"{coef_path.name}:{kind}" if coef_path is not None else "none"
    stems, gains = [], {}
    for key in sorted(stems_meta, key=lambda k: (_stem_index(k) or 0, str(k))):
        entry = _mapping(stems_meta[key], song.metadata, track_id, f"stems.{key}")
        filename = entry.get("filename")
        if not filename:
            raise StemlabError(f"{song.metadata}: stem {key} has no filename; fix the METADATA file")
        path = inside(stem_dir, filename, field=f"stems.{key}.filename", **here)
        if not path.is_file():
            raise StemlabError(f"{path}: listed in {song.metadata} but missing; re-extract the corpus")
        instrument = _instrument(entry)
        gain, source = _gain(entry, _stem_index(key), song_coef, coef_source, song.metadata, track_id, key)
        gains[str(key)] = {"coefficient": gain, "source": source, "instrument": instrument}
        dry, missing = _dry_tracks(entry, raw_dir, song.metadata, track_id, key)
        stems.append(StemSpec(category_of(instrument), [SourceTrack(path, label=instrument, gain=gain)], dry, missing))
    mix_path = inside(song.path, meta.get("mix_filename") or f"{track_id}_MIX.wav", field="mix_filename", **here)
    if not mix_path.is_file():
        raise StemlabError(f"{mix_path}: missing (mix_filename in {song.metadata}); re-extract the corpus")
    extras = {k: meta.get(k) for k in ("artist", "title", "genre", "version", "has_bleed", "instrumental") if meta.get(k) is not None}
    extras["track_id"] = track_id
    extras["mixing_coefficients"] = gains
    return SongSpec(
        id=song_id(track_id),
        corpus="medleydb",
        split=split,
        source_dir=song.path,
        stems=merge_stems(stems),
        mix=SourceTrack(mix_path, label="mix"),
        extras=extras,
    )
