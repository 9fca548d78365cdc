"""The shared stem taxonomy: MoisesDB's top-level categories, used by every corpus and the synthesizer."""

from __future__ import annotations

STEMS: tuple[str, ...] = (
    "vocals",
    "bass",
    "drums",
    "guitar",
    "piano",
    "other_keys",
    "bowed_strings",
    "wind",
    "other_plucked",
    "percussion",
    "other",
)


def check_stem(name: str) -> str:
    if name not in STEMS:
        raise ValueError(f"unknown stem {name!r}; the taxonomy is {', '.join(STEMS)}")
    return name
