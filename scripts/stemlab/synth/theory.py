"""Pitch classes, scales, chords and roman numerals (no randomness here)."""

from __future__ import annotations

import re
from dataclasses import dataclass

SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor; raised leading tones come from chord tokens (V, V7)
}

# intervals above the root
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "5": (0, 7),
    "6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "m7b5": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    "9": (0, 4, 7, 10, 14),
    "min9": (0, 3, 7, 10, 14),
    "maj9": (0, 4, 7, 11, 14),
    "add9": (0, 4, 7, 14),
}
SYMBOL_SUFFIX = {
    "maj": "",
    "min": "m",
    "dim": "dim",
    "aug": "aug",
    "sus2": "sus2",
    "sus4": "sus4",
    "5": "5",
    "6": "6",
    "min6": "m6",
    "7": "7",
    "maj7": "maj7",
    "min7": "m7",
    "m7b5": "m7b5",
    "dim7": "dim7",
    "9": "9",
    "min9": "m9",
    "maj9": "maj9",
    "add9": "add9",
}
# mido key-signature names: major keys by tonic pitch class, minor keys by tonic pitch class
MAJOR_KEYS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")

_NUMERALS = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}
_TOKEN = re.compile(r"^(?P<acc>[b#]?)(?P<num>[ivIV]+)(?P<suffix>.*)$")


@dataclass(frozen=True)
class Chord:
    """A chord relative to a key: root in semitones above the tonic, quality from QUALITIES."""

    roman: str
    root: int
    quality: str

    def pitch_classes(self, tonic: int) -> tuple[int, ...]:
        return tuple(sorted({(tonic + self.root + iv) % 12 for iv in QUALITIES[self.quality]}))

    def intervals(self) -> tuple[int, ...]:
        return QUALITIES[self.quality]

    def root_pc(self, tonic: int) -> int:
        return (tonic + self.root) % 12

    def symbol(self, tonic: int, mode: str) -> str:
        """'Bb7', 'F#m': roots outside the key follow the numeral's accidental, others the key signature."""
        pc = self.root_pc(tonic)
        if self.roman.startswith("b"):
            name = FLAT_NAMES[pc]
        elif self.roman.startswith("#"):
            name = SHARP_NAMES[pc]
        else:
            name = pc_name(pc, tonic, mode)
        return name + SYMBOL_SUFFIX[self.quality]


def parse_roman(token: str, mode: str) -> Chord:
    """'V7' -> dominant seventh on degree 5 of the mode's scale; 'bVII' -> major chord a whole tone below
    the tonic; lower case = minor, 'o'/'dim' diminished, 'ø7' half-diminished."""
    m = _TOKEN.match(token)
    if not m or m.group("num").lower() not in _NUMERALS:
        raise ValueError(f"bad roman numeral {token!r}")
    num = m.group("num")
    degree = _NUMERALS[num.lower()]
    upper = num.isupper()
    acc = {"": 0, "b": -1, "#": 1}[m.group("acc")]
    root = (SCALES[mode][degree] + acc) % 12
    suffix = m.group("suffix")
    table = {
        "": "maj" if upper else "min",
        "7": "7" if upper else "min7",
        "9": "9" if upper else "min9",
        "6": "6" if upper else "min6",
        "maj7": "maj7",
        "maj9": "maj9",
        "o": "dim",
        "o7": "dim7",
        "ø7": "m7b5",
        "+": "aug",
        "sus2": "sus2",
        "sus4": "sus4",
        "5": "5",
        "add9": "add9",
    }
    if suffix not in table:
        raise ValueError(f"bad chord suffix in {token!r}")
    return Chord(token, root, table[suffix])


def uses_flats(tonic: int, mode: str) -> bool:
    name = key_name(tonic, mode)
    return "b" in name or (name, mode) in {("F", "major"), ("D", "minor"), ("G", "minor"), ("C", "minor"), ("F", "minor")}


def pc_name(pc: int, tonic: int, mode: str) -> str:
    return (FLAT_NAMES if uses_flats(tonic, mode) else SHARP_NAMES)[pc % 12]


def key_name(tonic: int, mode: str) -> str:
    """Spelling of the tonic as used in song.json and MIDI key signatures ('Eb', 'F#')."""
    return (MAJOR_KEYS if mode == "major" else MINOR_KEYS)[tonic % 12]


def midi_key_signature(tonic: int, mode: str) -> str:
    return key_name(tonic, mode) + ("m" if mode == "minor" else "")


def scale_pitches(tonic: int, mode: str, lo: int, hi: int) -> list[int]:
    """All MIDI pitches of the scale in [lo, hi]."""
    pcs = {(tonic + s) % 12 for s in SCALES[mode]}
    return [p for p in range(lo, hi + 1) if p % 12 in pcs]


def degree_of(pitch: int, tonic: int, mode: str) -> int | None:
    """Scale degree (0..6) of a pitch, None if it is outside the scale."""
    try:
        return SCALES[mode].index((pitch - tonic) % 12)
    except ValueError:
        return None
