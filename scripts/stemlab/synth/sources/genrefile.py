"""User-defined genres from YAML files (synth.genre_files), validated by workflow/schemas/genre.schema.yaml.

A genre with `base` is that built-in preset with the keys the file gives replaced; one without `base`
gives every required key and takes the schema's defaults for the rest. Beyond the schema, each genre is
checked against what the engine can play (programs, kits, styles, pattern lengths per meter, chord
tokens), so a bad file fails before any song with one line naming the file, the genre and the fix.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from stemlab.errors import StemlabError
from stemlab.synth import instruments as gm
from stemlab.synth.genres import GENRES, ChordGrammar, Genre, MixStyle, PoolEntry
from stemlab.synth.parts import BASS_PATTERNS, COMP_PATTERNS
from stemlab.synth.theory import parse_roman
from stemlab.synth.timing import Meter

SCHEMA_PATH = Path(__file__).resolve().parents[4] / "workflow" / "schemas" / "genre.schema.yaml"
BASS_STYLES = frozenset({"walking", *BASS_PATTERNS})
COMP_STYLES = frozenset({"pad", "arpeggio", "alberti", "shuffle", *COMP_PATTERNS})
DRUM_NAMES = {
    "kick": gm.KICK, "sidestick": gm.SIDESTICK, "snare": gm.SNARE, "clap": gm.CLAP, "floor_tom": gm.FLOOR_TOM,
    "closed_hat": gm.CLOSED_HAT, "low_tom": gm.LOW_TOM, "pedal_hat": gm.PEDAL_HAT, "mid_tom": gm.MID_TOM,
    "open_hat": gm.OPEN_HAT, "high_tom": gm.HIGH_TOM, "crash": gm.CRASH, "ride": gm.RIDE, "ride_bell": gm.RIDE_BELL,
    "tambourine": gm.TAMBOURINE, "cowbell": gm.COWBELL, "hi_bongo": gm.HI_BONGO, "lo_bongo": gm.LO_BONGO,
    "mute_conga": gm.MUTE_CONGA, "open_conga": gm.OPEN_CONGA, "lo_conga": gm.LO_CONGA, "hi_timbale": gm.HI_TIMBALE,
    "lo_timbale": gm.LO_TIMBALE, "cabasa": gm.CABASA, "maracas": gm.MARACAS, "claves": gm.CLAVES,
    "woodblock": gm.WOODBLOCK, "triangle": gm.TRIANGLE,
}  # fmt: skip
RANGES = ("tempo", "compound_tempo", "swing", "velocity")


def _schema_errors(doc: dict, schema_path: Path) -> tuple[list[str], dict]:
    from stemlab.config import _default_filling_validator, _key_path, _schema

    filled = copy.deepcopy(doc)
    validator = _default_filling_validator(_schema(os.fspath(schema_path)))
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{_key_path(e)}: {e.message.splitlines()[0][:160]}" for e in errors], filled


def _drum_key(name: str, where: str) -> int:
    if name.isdigit() and 27 <= int(name) <= 87:
        return int(name)
    if name in DRUM_NAMES:
        return DRUM_NAMES[name]
    raise ValueError(f"{where}: unknown drum key {name!r}; use a GM key 27..87 or one of {', '.join(DRUM_NAMES)}")


def _patterns(spec: Mapping, where: str) -> dict[str, tuple[dict[int, str], ...]]:
    out = {}
    for meter_text, grooves in spec.items():
        num, den = (int(x) for x in meter_text.split("/"))
        steps = Meter(num, den).steps_per_bar
        rows = []
        for i, groove in enumerate(grooves):
            row = {}
            for key, pattern in groove.items():
                if len(pattern) != steps:
                    raise ValueError(f"{where}.{meter_text}[{i}].{key}: {len(pattern)} steps, a {meter_text} bar has {steps}")
                row[_drum_key(str(key), f"{where}.{meter_text}[{i}]")] = pattern
            rows.append(row)
        out[meter_text] = tuple(rows)
    return out


def _grammar(spec: Mapping, mode: str, where: str) -> ChordGrammar:
    tokens = {spec["tonic"], *spec["starts"], *spec["first"]}
    for weights in (*spec["first"].values(), *spec.get("second", {}).values()):
        tokens |= set(weights)
    for pair, weights in spec.get("second", {}).items():
        tokens |= set(pair.split())
        if len(pair.split()) != 2:
            raise ValueError(f"{where}.second: {pair!r} is not two chords separated by a space")
    for token in sorted(tokens):
        try:
            parse_roman(token, mode)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
    if spec["tonic"] not in spec["first"]:
        raise ValueError(f"{where}: the tonic {spec['tonic']!r} needs its row in `first`")
    return ChordGrammar(
        {k: dict(v) for k, v in spec["first"].items()},
        {tuple(k.split()): dict(v) for k, v in spec.get("second", {}).items()},
        spec["tonic"],
        dict(spec["starts"]),
        float(spec.get("return_penalty", 0.35)),
    )


def _fields(spec: Mapping, name: str) -> dict:
    """The Genre fields a genre entry sets."""
    out: dict = {}
    for key in RANGES:
        if key in spec:
            lo, hi = (float(x) for x in spec[key])
            if not 0 <= lo <= hi:
                raise ValueError(f"{key}: need 0 <= low <= high, got {lo}..{hi}")
            out[key] = (lo, hi)
    if "velocity" in out:
        out["velocity"] = tuple(int(round(v)) for v in out["velocity"])
    for key in ("meters", "modes", "bass_styles", "comp_styles", "melody_rhythm"):
        if key in spec:
            out[key] = {str(k): float(v) for k, v in spec[key].items()}
    if "swing_unit" in spec:
        out["swing_unit"] = spec["swing_unit"]
    if "tonics" in spec:
        out["tonics"] = tuple(float(x) for x in spec["tonics"])
    if "chords" in spec:
        out["grammars"] = {mode: _grammar(g, mode, f"chords.{mode}") for mode, g in spec["chords"].items()}
    if "chords_per_bar" in spec:
        out["chords_per_bar"] = {float(k): float(v) for k, v in spec["chords_per_bar"].items()}
    if "drums" in spec:
        out["drums_prob"] = float(spec["drums"])
    if "drum_kits" in spec:
        out["drum_kits"] = tuple(int(k) for k in spec["drum_kits"])
    for key in ("grooves", "percussion"):
        if key in spec:
            out[key] = _patterns(spec[key], key)
    if "bass_programs" in spec:
        out["bass_programs"] = tuple(int(p) for p in spec["bass_programs"])
    if "pool" in spec:
        out["pool"] = tuple(PoolEntry(int(e["program"]), tuple(e["roles"]), float(e.get("weight", 1.0))) for e in spec["pool"])
    if "melody_steps" in spec:
        out["melody_steps"] = {int(k): float(v) for k, v in spec["melody_steps"].items()}
    if "chord_tone_prob" in spec:
        out["chord_tone_prob"] = float(spec["chord_tone_prob"])
    if "humanize_ticks" in spec:
        out["humanize_ticks"] = int(spec["humanize_ticks"])
    return out


def _mix(spec: Mapping, base: MixStyle) -> MixStyle:
    values = {k: (tuple(float(x) for x in v) if isinstance(v, list) else float(v)) for k, v in spec.items()}
    return dataclasses.replace(base, **values)


def check_playable(g: Genre) -> None:
    """What the engine needs of a genre beyond the schema's shapes; ValueError naming the key."""
    if not any(w > 0 for w in g.meters.values()):
        raise ValueError("meters: give at least one meter a weight above 0")
    missing = [m for m in g.modes if m not in g.grammars]
    if missing:
        raise ValueError(f"modes: {missing[0]} has no grammar under `chords`")
    for key in ("bass_styles", "comp_styles"):
        allowed = BASS_STYLES if key == "bass_styles" else COMP_STYLES
        bad = sorted(set(getattr(g, key)) - allowed)
        if bad:
            raise ValueError(f"{key}: unknown style {bad[0]!r}; choose from {', '.join(sorted(allowed))}")
    bad = [p for p in g.bass_programs if p not in gm.MELODIC or gm.MELODIC[p].category != "bass"]
    if bad:
        raise ValueError(f"bass_programs: {bad[0]} is not a bass program of stemlab.synth.instruments.MELODIC")
    bad = [e.program for e in g.pool if e.program >= 0 and e.program not in gm.MELODIC]
    if bad:
        raise ValueError(f"pool: program {bad[0]} is not in stemlab.synth.instruments.MELODIC")
    if any(e.program < 0 for e in g.pool) and not g.percussion:
        raise ValueError("pool: program -1 (auxiliary percussion) needs `percussion` patterns")
    bad = [c for c in g.melody_rhythm if len(c) != 4 or set(c) - set("x.-")]
    if bad:
        raise ValueError(f"melody_rhythm: cell {bad[0]!r} is not four steps of x . -")
    if g.drums_prob > 0:
        lacking = [m for m, w in g.meters.items() if w > 0 and m not in g.grooves]
        if lacking:
            raise ValueError(f"grooves: meter {lacking[0]} has no drum patterns (or set drums: 0)")


def genres_from_doc(doc: object, source: str, schema_path: Path = SCHEMA_PATH) -> dict[str, Genre]:
    """The genres of one parsed genre file; `source` names it in errors."""
    if not isinstance(doc, dict):
        raise StemlabError(f"{source}: not a genre file (a mapping with `genres:`); see config/genres/")
    errors, filled = _schema_errors(doc, schema_path)
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise StemlabError(f"{source}: {errors[0]}{more}; fix it (workflow/schemas/genre.schema.yaml, config/README.md)")
    out = {}
    for name, raw in doc["genres"].items():
        if name in GENRES:
            raise StemlabError(f"{source}: genre {name!r} is a built-in preset; give yours another name (or `base: {name}`)")
        spec = raw if "base" in raw else filled["genres"][name]
        try:
            base = GENRES.get(spec.get("base", ""))
            fields = _fields(spec, name)
            mix = _mix(spec.get("mix", {}), base.mix if base else MixStyle())
            if base is not None:
                genre = dataclasses.replace(base, name=name, mix=mix, **fields)
            else:
                genre = Genre(name=name, mix=mix, **fields)
            check_playable(genre)
        except (ValueError, TypeError) as exc:
            raise StemlabError(f"{source}: genre {name}: {exc}; fix the genre file") from exc
        out[name] = genre
    return out


def load_genre_files(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Genre]:
    """Every genre of the files, by name; a name defined twice is an error."""
    out: dict[str, Genre] = {}
    for p in paths:
        path = Path(p)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise StemlabError(f"{path}: cannot read the genre file ({exc.strerror}); fix synth.genre_files") from exc
        except yaml.YAMLError as exc:
            raise StemlabError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); fix the genre file") from exc
        for name, genre in genres_from_doc(doc, str(path)).items():
            if name in out:
                raise StemlabError(f"{path}: genre {name!r} is defined twice in synth.genre_files; rename one")
            out[name] = genre
    return out
