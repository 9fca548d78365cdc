"""The token vocabulary of the harmony LM: fixed by the engine's genres, not by any data.

A chord sequence is `<chords> <genre> <mode> <section> c1 c2 ...` (roman-numeral tokens of the genre
grammars), a melody sequence `<melody> <genre> <mode> s1 s2 ...` (steps of the scale walk, in scale
degrees, clipped to +-MAX_STEP). Token 0 pads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from stemlab.synth.form import SECTION_TYPES
from stemlab.synth.genres import GENRE_NAMES, GENRES, ChordGrammar

PAD, BOS_CHORDS, BOS_MELODY = "<pad>", "<chords>", "<melody>"
MODES = ("major", "minor")
MAX_STEP = 7


def grammar_tokens(grammar: ChordGrammar) -> tuple[str, ...]:
    """Every chord a grammar can emit, in first-seen order."""
    seen: dict[str, None] = {grammar.tonic: None}
    for prev, nxt in grammar.first.items():
        seen[prev] = None
        seen.update(dict.fromkeys(nxt))
    for nxt in grammar.second.values():
        seen.update(dict.fromkeys(nxt))
    seen.update(dict.fromkeys(grammar.starts))
    return tuple(seen)


def step_token(step: int) -> str:
    return f"step{max(-MAX_STEP, min(MAX_STEP, int(step))):+d}"


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        try:
            return self._index[token]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(f"token {token!r} is not in the harmony LM vocabulary") from None

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.id(t) for t in tokens]

    def decode(self, ids: Sequence[int]) -> list[str]:
        return [self.tokens[int(i)] for i in ids]

    def chord_prefix(self, genre: str, mode: str, section: str) -> list[int]:
        return self.encode([BOS_CHORDS, f"genre:{genre}", f"mode:{mode}", f"section:{section}"])

    def melody_prefix(self, genre: str, mode: str) -> list[int]:
        return self.encode([BOS_MELODY, f"genre:{genre}", f"mode:{mode}"])

    @property
    def step_ids(self) -> list[int]:
        return [self.id(step_token(s)) for s in range(-MAX_STEP, MAX_STEP + 1)]

    def chord_ids(self, genre: str, mode: str) -> list[int]:
        """The chords the genre's grammar of `mode` can emit: the only ones the sampler may draw."""
        return self.encode(grammar_tokens(GENRES[genre].grammars[mode]))


@cache
def vocabulary() -> Vocabulary:
    """Specials, genres, modes, sections, the chords of every grammar (sorted), the steps."""
    chords = sorted({t for g in GENRES.values() for grammar in g.grammars.values() for t in grammar_tokens(grammar)})
    tokens = (
        [PAD, BOS_CHORDS, BOS_MELODY]
        + [f"genre:{g}" for g in GENRE_NAMES]
        + [f"mode:{m}" for m in MODES]
        + [f"section:{s}" for s in SECTION_TYPES]
        + chords
        + [step_token(s) for s in range(-MAX_STEP, MAX_STEP + 1)]
    )
    return Vocabulary(tuple(tokens))
