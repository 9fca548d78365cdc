"""Captions of audio windows, composed from what the annotations know (the text side of CLAP training).

Song-level facts: genre, tempo, key and mode, meter (synthetic songs: song.json of stemlab.synth; real
corpora: the corpus metadata in song.json `source`, MoisesDB/MedleyDB genre, plus the essentia tempo and
key of the data stage's features table when given). Window-level facts, so that windows of one song are
told apart: the section at the window's centre, the stems actually playing in the window (those the
segment table marks active there; the section's arrangement when no table is given) with their
instruments, and the chords the window spans (synthetic songs' chord annotations). Several templates word
the same facts; which one a training item gets is drawn from (seed, index), so the text side sees
paraphrases, not one string. Template 0, the one evaluation uses, states every fact.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

ZERO_SHOT_TEMPLATE = "This audio is a {genre} song."  # LAION's GTZAN protocol

_CATEGORY_WORDS = {
    "bass": "bass", "drums": "drums", "vocals": "vocals", "guitar": "guitar", "piano": "piano",
    "other_keys": "keyboards", "bowed_strings": "strings", "wind": "wind instruments",
    "percussion": "percussion", "other_plucked": "plucked strings", "other": "other sounds",
}  # fmt: skip


@dataclass(frozen=True)
class WindowFacts:
    """What is known about one audio window (None: unknown)."""

    genre: str | None
    tempo_bpm: float | None
    key: str | None
    mode: str | None
    meter: str | None
    section: str | None
    instruments: tuple[str, ...]  # what is heard, as words ("synth bass", "electronic kit drums", ...)
    stem: str | None = None  # the window is one stem (its words), not the mix
    chords: tuple[str, ...] = ()  # chord symbols the window spans, in order


def _tempo_word(bpm: float) -> str:
    return "slow" if bpm < 90 else "mid-tempo" if bpm < 120 else "fast" if bpm < 150 else "very fast"


def _instrument_word(stem: Mapping[str, Any]) -> str:
    instrument = stem.get("instrument") or {}
    name = str(instrument.get("name") or "").strip().lower() if isinstance(instrument, Mapping) else ""
    category = _CATEGORY_WORDS.get(str(stem.get("category")), str(stem.get("category", "")).replace("_", " "))
    if not name:
        return category
    return name if category in name or bool(instrument.get("is_drum")) and "kit" in name else f"{name} {category}"


def section_at(song: Mapping[str, Any], seconds: float) -> Mapping[str, Any] | None:
    for section in song.get("arrangement") or []:
        if section.get("start_s", 0.0) <= seconds < section.get("end_s", 0.0):
            return section
    return None


def chords_in(song: Mapping[str, Any], start_s: float, end_s: float) -> tuple[str, ...]:
    """Symbols of the annotated chords overlapping [start_s, end_s), in order, repeats merged."""
    symbols = [str(c["symbol"]) for c in song.get("chords") or []
               if c.get("symbol") and c.get("start_s", 0.0) < end_s and c.get("end_s", 0.0) > start_s]  # fmt: skip
    return tuple(s for i, s in enumerate(symbols) if i == 0 or s != symbols[i - 1])


def window_facts(song: Mapping[str, Any], start_s: float, length_s: float, stem: str | None = None,
                 features: Mapping[str, Any] | None = None, playing: Collection[str] | None = None) -> WindowFacts:  # fmt: skip
    """The facts of the window [start_s, start_s + length_s) of a canonical song (one stem, or the mix).

    `playing`: the stems active in this window (from the segment table); None = the section's
    arrangement says which stems are heard."""
    source = song.get("source") or {}
    features = features or {}
    section = section_at(song, start_s + length_s / 2)
    active = set(playing) if playing is not None else set(section.get("active_stems") or []) if section else None
    stems = [s for s in song.get("stems") or [] if stem is None or s.get("name") == stem]
    heard = [s for s in stems if active is None or s.get("name") in active]
    if not heard and playing is None:
        heard = stems  # an arrangement naming none of the stems says nothing about them
    meter = song.get("time_signature")
    tempo = song.get("tempo_bpm", features.get("bpm"))
    genre = song.get("genre") or source.get("genre")
    return WindowFacts(
        genre=str(genre).lower() if genre else None,
        tempo_bpm=float(tempo) if tempo else None,
        key=song.get("key") or features.get("key"),
        mode=song.get("mode") or features.get("scale"),
        meter=f"{meter[0]}/{meter[1]}" if isinstance(meter, Sequence) and len(meter) == 2 else None,
        section=str(section["section"]) if section and section.get("section") else None,
        instruments=tuple(_instrument_word(s) for s in heard),
        stem=_instrument_word(stems[0]) if stem is not None and stems else None,
        chords=chords_in(song, start_s, start_s + length_s),
    )


def _join(words: Sequence[str]) -> str:
    words = list(dict.fromkeys(words))
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def captions(facts: WindowFacts) -> list[str]:
    """Every template's wording of `facts` (template 0, the one evaluation uses, states every fact)."""
    genre = facts.genre or "music"
    song = f"{genre} song" if facts.genre else "piece of music"
    tempo = f" at {round(facts.tempo_bpm)} bpm" if facts.tempo_bpm else ""
    pace = f"{_tempo_word(facts.tempo_bpm)} " if facts.tempo_bpm else ""
    key = f" in {facts.key} {facts.mode}" if facts.key and facts.mode else ""
    section = f"the {facts.section} of " if facts.section else ""
    part = f"the {facts.section}" if facts.section else "a passage"
    meter = f" in {facts.meter} time" if facts.meter else ""
    heard = _join(facts.instruments)
    over = f" over {_join(facts.chords)}" if facts.chords else ""
    chords = f", chords {' then '.join(facts.chords)}" if facts.chords else ""
    if facts.stem is not None:
        return [
            f"{facts.stem} playing in {section}a {song}{key}{tempo}{over}.",
            f"A solo {facts.stem} track from a {pace}{song}.",
            f"Isolated {facts.stem}, {genre}{key}{chords}.",
            f"The {facts.stem} part of {section}a {song}{meter}.",
        ]
    with_heard = f" with {heard}" if heard else ""
    return [
        f"{section.capitalize() or 'A passage of '}a {pace}{song}{key}{tempo}{with_heard}{over}.",
        f"A {pace}{song}{with_heard}{key}{tempo}.",
        f"This is {section}a {song}{meter}{with_heard}.",
        f"{genre.capitalize()} music{with_heard}, {pace}{key.strip() or 'instrumental'}{chords}.",
        f"{part.capitalize()} of a {song}{tempo}: {heard or 'a band'} playing{over}.",
        f"{heard.capitalize() or 'Instruments'} in a {pace}{genre} track{meter}.",
    ]


_DROPPABLE = {"genre": None, "tempo_bpm": None, "key": None, "meter": None, "section": None, "instruments": (), "chords": ()}


def drop_facts(facts: WindowFacts, rate: float, generator: np.random.Generator) -> WindowFacts:
    """`facts` with each song or window fact (genre, tempo, key and mode, meter, section, instruments,
    chords) left out with probability `rate`; a stem window's own instrument always stays."""
    if rate <= 0:
        return facts
    dropped = generator.random(len(_DROPPABLE)) < rate
    changes = {name: empty for (name, empty), drop in zip(_DROPPABLE.items(), dropped) if drop}
    if "key" in changes:
        changes["mode"] = None
    return replace(facts, **changes)


def pick_caption(facts: WindowFacts, generator: np.random.Generator, fact_dropout: float = 0.0) -> str:
    """One template's wording of `facts`, after leaving each fact out with probability `fact_dropout`."""
    options = captions(drop_facts(facts, fact_dropout, generator))
    return options[int(generator.integers(0, len(options)))]


def zero_shot_prompts(genres: Sequence[str]) -> list[str]:
    return [ZERO_SHOT_TEMPLATE.format(genre=g) for g in genres]
