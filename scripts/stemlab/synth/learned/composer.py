"""Composer backends of `compose`: which generator draws the chords and the melody's scale walk.

`markov` (the default) is the engine's second-order chord grammar and scale-degree chain; `learned` is a
harmony LM (models.harmony_lm) sampled with the numpy sampler from the song's own derived generators,
restricted to the genre grammar's chords and to steps that stay in the melody's range, so every later
stage (parts, annotations, gates) sees the same vocabulary. The form of a progression stays the
engine's (harmony.section_progression: a loop tiled over the section, a turnaround, the tonic last, and a
section's first chord by the grammar's start rule); the LM draws every other chord, and every step of the
melody's walk. `record` is what song.json keeps (`composer`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stemlab.errors import StemlabError
from stemlab.synth import parts as gen
from stemlab.synth.genres import ChordGrammar
from stemlab.synth.harmony import markov_chords
from stemlab.synth.learned.sampler import NumpyLM, draw, masked_probs
from stemlab.synth.learned.vocab import MAX_STEP, step_token, vocabulary

BACKENDS = ("markov", "learned")
MODEL_NAME = "harmony_lm"
Chain = Callable[..., list[str]]


@dataclass(frozen=True)
class ComposerConfig:
    """synth.composer: the backend and, for `learned`, the harmony_lm final.pt it samples."""

    backend: str = "markov"
    model: str | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> ComposerConfig:
        from stemlab.errors import check_section_keys

        s = check_section_keys(section, ("backend", "model"), "synth.composer")
        d = cls()
        model = s.get("model", d.model)
        return cls(backend=str(s.get("backend", d.backend)), model=None if model is None else str(model))

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise StemlabError(
                f"synth.composer.backend: unknown backend {self.backend!r}; use one of {', '.join(BACKENDS)}"
            )


class MarkovComposer:
    record = {"backend": "markov", "model": None, "sha256": None}

    def chain(self, genre: str, mode: str, section: str) -> Chain:
        return markov_chords

    def part_generator(self, role: str, genre: str, mode: str) -> Callable[..., list]:
        return gen.GENERATORS[role]


class LearnedWalk(gen.ScaleWalk):
    """The melody's scale walk with steps drawn from the LM (conditioned on genre and mode)."""

    def __init__(
        self, lm: NumpyLM, prefix: list[int], tonic: int, mode: str, lo: int, hi: int, steps: dict[int, float]
    ):
        super().__init__(tonic, mode, lo, hi, steps)
        self.lm, self.prefix = lm, prefix
        vocab = vocabulary()
        self.step_ids = {s: vocab.id(step_token(s)) for s in range(-MAX_STEP, MAX_STEP + 1)}

    def walk(self, start: int, n: int, rng: np.random.Generator) -> list[int]:
        seq = [start]
        state = self.lm.run(self.prefix)
        for _ in range(n - 1):
            moves = [s for s in self.step_ids if 0 <= seq[-1] + s < len(self.pitches)]
            ids = [self.step_ids[s] for s in moves]
            k = draw(masked_probs(state.logits, ids), rng)
            seq.append(seq[-1] + moves[k])
            state = self.lm.step(state, ids[k])
        return seq


class LearnedComposer:
    def __init__(self, path: str, lm: NumpyLM, sha256: str) -> None:
        self.lm = lm
        self.vocab = vocabulary()
        self.record = {"backend": "learned", "model": Path(path).name, "sha256": sha256}

    def chain(self, genre: str, mode: str, section: str) -> Chain:
        prefix = self.vocab.chord_prefix(genre, mode, section)
        allowed = self.vocab.chord_ids(genre, mode)

        def chords(grammar: ChordGrammar, n: int, rng: np.random.Generator, start: str | None = None,
                   history: tuple[str, ...] = ()) -> list[str]:  # fmt: skip
            state = self.lm.run(prefix + self.vocab.encode(history))
            out: list[str] = []
            for k in range(n):
                if k == 0 and not history:
                    token = self.vocab.id(start or grammar.tonic)
                else:
                    token = allowed[draw(masked_probs(state.logits, allowed), rng)]
                out.append(self.vocab.tokens[token])
                state = self.lm.step(state, token)
            return out

        return chords

    def part_generator(self, role: str, genre: str, mode: str) -> Callable[..., list]:
        if role != "melody":
            return gen.GENERATORS[role]
        walk = functools.partial(LearnedWalk, self.lm, self.vocab.melody_prefix(genre, mode))
        return functools.partial(gen.melody, walk_class=walk)


MARKOV = MarkovComposer()


def load_composer(config: ComposerConfig) -> MarkovComposer | LearnedComposer:
    """The backend of `config`; a learned one reads its model once (numpy only, no torch)."""
    if config.backend == "markov":
        return MARKOV
    if not config.model:
        raise StemlabError(
            "synth.composer.model: the learned backend needs a harmony_lm final.pt (results/models/harmony_lm/seed-<s>/final.pt)"
        )
    from stemlab.download.fetch import sha256_file
    from stemlab.synth.learned.weights import read_final_numpy

    payload = read_final_numpy(config.model)
    if payload.get("model") != MODEL_NAME:
        raise StemlabError(
            f"{config.model}: holds model {payload.get('model')!r}, not {MODEL_NAME}; point synth.composer.model at a harmony_lm final.pt"
        )
    tokens = tuple((payload.get("export") or {}).get("vocabulary") or ())
    if tokens != vocabulary().tokens:
        raise StemlabError(
            f"{config.model}: trained on another token vocabulary than this engine's; retrain models.harmony_lm"
        )
    return LearnedComposer(config.model, NumpyLM(payload["state_dict"]), sha256_file(config.model))
