"""Chord progressions from a genre's second-order Markov grammar."""

from __future__ import annotations

import numpy as np

from collections.abc import Callable

from stemlab.synth.genres import ChordGrammar
from stemlab.synth.sampling import weighted_choice


def next_chord_weights(grammar: ChordGrammar, prev2: str | None, prev1: str) -> dict[str, float]:
    """P(next | prev2, prev1) of the second-order chain (unnormalised)."""
    if prev2 is not None and (prev2, prev1) in grammar.second:
        return dict(grammar.second[(prev2, prev1)])
    weights = dict(grammar.first.get(prev1) or grammar.first[grammar.tonic])
    if prev2 is not None and prev2 in weights and prev2 != prev1:
        weights[prev2] *= grammar.return_penalty
    return weights


def markov_chords(
    grammar: ChordGrammar, n: int, rng: np.random.Generator, start: str | None = None, history: tuple[str, ...] = ()
) -> list[str]:
    """`n` chords; the chain is seeded with `history` (the chords before) or starts on `start`."""
    seq: list[str] = []
    context = list(history[-2:])
    for _ in range(n):
        if not context:
            chord = start or grammar.tonic
        else:
            prev2 = context[-2] if len(context) >= 2 else None
            chord = weighted_choice(rng, next_chord_weights(grammar, prev2, context[-1]))
        seq.append(chord)
        context.append(chord)
    return seq


def section_progression(
    grammar: ChordGrammar, section: str, n_chords: int, loop_len: int, rng: np.random.Generator, final: bool,
    chain: Callable[..., list[str]] = markov_chords,
) -> list[str]:
    """Chord tokens of one section type: a loop of `loop_len` chords tiled over the section, the last
    chords of a long section re-drawn from the chain (a turnaround), the song's last chord the tonic.
    `chain` draws the chords (markov_chords' signature; a composer backend may give its own)."""
    if section in ("chorus", "bridge"):
        starts = dict(grammar.starts)
        if section == "bridge":
            starts.pop(grammar.tonic, None)  # a bridge leaves home
            starts = starts or dict(grammar.first[grammar.tonic])
        start = weighted_choice(rng, starts)
    else:
        start = grammar.tonic
    loop_len = max(1, min(loop_len, n_chords))
    loop = chain(grammar, loop_len, rng, start=start)
    seq = [loop[i % loop_len] for i in range(n_chords)]
    if n_chords > loop_len and n_chords >= 4:
        tail = max(1, loop_len // 2)
        seq[-tail:] = chain(grammar, tail, rng, history=tuple(seq[:-tail]))
    if final:
        seq[-1] = grammar.tonic
    return seq
