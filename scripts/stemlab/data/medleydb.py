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

from dataclasses import dataclass
from pathlib import Path

import yaml

from stemlab.data.spec import SongSpec, SourceTrack, StemSpec, merge_stems, song_id
from stemlab.errors import StemlabError

MAX_DEPTH = 4

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


def load_coefficients(root: Path, cfg: dict) -> tuple[dict, str | None]:
    """{TrackId: {stem index: coefficient}} for the configured kind, and the file they came from."""
    kind = cfg.get("coefficients", "audio")
    if kind == "none":
        return {}, None
    path = coefficients_file(root, cfg)
    if path is None:
        return {}, None
    table = {}
    for track, entry in _load_yaml(path).items():
        if isinstance(entry, dict) and isinstance(entry.get(kind), dict):
            table[str(track)] = {int(k): float(v) for k, v in entry[kind].items()}
    return table, path.name


def _stem_index(key: str) -> int | None:
    digits = "".join(ch for ch in str(key) if ch.isdigit())
    return int(digits) if digits else None


def song_spec(song: MedleySong, split: str, coefficients: dict, coef_source: str | None, kind: str) -> SongSpec:
    meta = _load_yaml(song.metadata)
    track_id = song.metadata.name[: -len("_METADATA.yaml")]
    stems_meta = meta.get("stems")
    if not isinstance(stems_meta, dict) or not stems_meta:
        raise StemlabError(f"{song.metadata}: no 'stems' mapping; this is not a MedleyDB METADATA file")
    stem_dir = song.path / str(meta.get("stem_dir") or f"{track_id}_STEMS")
    raw_dir = song.path / str(meta.get("raw_dir") or f"{track_id}_RAW")
    song_coef = coefficients.get(track_id, {})
    stems, gains = [], {}
    for key in sorted(stems_meta, key=lambda k: (_stem_index(k) or 0, str(k))):
        entry = stems_meta[key] or {}
        filename = entry.get("filename")
        if not filename:
            raise StemlabError(f"{song.metadata}: stem {key} has no filename; fix the METADATA file")
        path = stem_dir / str(filename)
        if not path.is_file():
            raise StemlabError(f"{path}: listed in {song.metadata} but missing; re-extract the corpus")
        instrument = str(entry.get("instrument") or "")
        if isinstance(entry.get("instrument"), list):
            instrument = str(entry["instrument"][0])
        index = _stem_index(key)
        if "mixing_coefficient" in entry:
            gain, source = float(entry["mixing_coefficient"]), "metadata"
        elif index in song_coef:
            gain, source = song_coef[index], f"{coef_source}:{kind}"
        else:
            gain, source = 1.0, "none"
        gains[str(key)] = {"coefficient": gain, "source": source, "instrument": instrument}
        raw_entries = entry.get("raw") or {}
        dry: list[SourceTrack] | None = []
        missing: str | None = None
        for raw_key in sorted(raw_entries, key=str):
            raw = raw_entries[raw_key] or {}
            raw_path = raw_dir / str(raw.get("filename", ""))
            if not raw.get("filename") or not raw_path.is_file():
                dry, missing = None, f"RAW file {raw_path.name} of stem {key} is missing"
                break
            dry.append(SourceTrack(raw_path, label=str(raw.get("instrument") or "")))
        if dry == []:
            dry, missing = None, f"stem {key} has no RAW tracks"
        stems.append(StemSpec(category_of(instrument), [SourceTrack(path, label=instrument, gain=gain)], dry, missing))
    mix_name = meta.get("mix_filename") or f"{track_id}_MIX.wav"
    mix_path = song.path / str(mix_name)
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
