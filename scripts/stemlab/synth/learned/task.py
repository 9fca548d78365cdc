"""models.harmony_lm: the learned composer's LSTM on the frame, trained on a generated corpus's sequences.

Training items are the chord and melody sequences (stemlab.synth.learned.corpus) of the corpus's train
split, validation (`valid_nll` in train_log.csv) the valid split's. Evaluation, on the test split's
sequences, scores every next content token under three systems, each a distribution over the same allowed
tokens (the genre grammar's chords; the 15 walk steps): `harmony_lm` (the numpy sampler the engine draws
with), `markov` (the engine's own chains, the chord grammar (with the section's start rule) and the
scale-degree walk over the whole MIDI range, mixed with EPSILON of uniform so the tiled loops and
chord-tone snaps it cannot produce stay finite) and `unigram` (training-token counts + 1 per token of
each kind). Metrics per sequence: `chord_nll`, `melody_nll` (mean nats per token) and `chord_acc`,
`melody_acc` (share of tokens that are the system's most probable one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from stemlab.errors import StemlabError
from stemlab.synth import parts as gen
from stemlab.synth.genres import GENRES
from stemlab.synth.harmony import next_chord_weights
from stemlab.synth.learned.corpus import Sequence, corpus_sequences, digest
from stemlab.synth.learned.lm import HarmonyLM, LMSize, masked_nll
from stemlab.synth.learned.sampler import NumpyLM, masked_probs
from stemlab.synth.learned.vocab import MAX_STEP, vocabulary
from stemlab.train.registry import register
from stemlab.train.sampling import step_indices
from stemlab.train.task import Task

NAME = "harmony_lm"
EPSILON = 0.01
METRICS = ("chord_nll", "chord_acc", "melody_nll", "melody_acc")


@dataclass(frozen=True)
class HarmonyLMSettings:
    size: LMSize
    max_tokens: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> HarmonyLMSettings:
        from stemlab.config import settings_section

        v = settings_section("models", NAME, "settings", section=section)
        m = v["model"]
        size = LMSize(
            embed=int(m["embed"]), hidden=int(m["hidden"]), layers=int(m["layers"]), dropout=float(m["dropout"])
        )
        return cls(size=size, max_tokens=int(v["max_tokens"]))


def encode(seq: Sequence, max_tokens: int) -> tuple[list[int], int]:
    """(prefix + content ids truncated to max_tokens, prefix length)."""
    vocab = vocabulary()
    prefix = (
        vocab.chord_prefix(seq.genre, seq.mode, seq.section)
        if seq.kind == "chords"
        else vocab.melody_prefix(seq.genre, seq.mode)
    )
    return (prefix + vocab.encode(seq.tokens))[:max_tokens], len(prefix)


def allowed_ids(seq: Sequence) -> list[int]:
    vocab = vocabulary()
    return vocab.chord_ids(seq.genre, seq.mode) if seq.kind == "chords" else vocab.step_ids


def batch_tensors(seqs: list[Sequence], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ids and the mask of content positions (the tokens the loss predicts)."""
    encoded = [encode(s, max_tokens) for s in seqs]
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    targets = torch.zeros((len(seqs), width), dtype=torch.bool)
    for row, (seq_ids, n_prefix) in enumerate(encoded):
        ids[row, : len(seq_ids)] = torch.tensor(seq_ids)
        targets[row, n_prefix : len(seq_ids)] = True
    return ids, targets


# ------------------------------------------------------------------ reference systems
def markov_chord_probs(seq: Sequence, position: int, allowed: list[str]) -> np.ndarray:
    grammar = GENRES[seq.genre].grammars[seq.mode]
    if position == 0:
        if seq.section in ("chorus", "bridge"):
            weights = dict(grammar.starts)
            if seq.section == "bridge":
                weights.pop(grammar.tonic, None)
                weights = weights or dict(grammar.first[grammar.tonic])
        else:
            weights = {grammar.tonic: 1.0}
    else:
        prev2 = seq.tokens[position - 2] if position >= 2 else None
        weights = next_chord_weights(grammar, prev2, seq.tokens[position - 1])
    p = np.array([float(weights.get(t, 0.0)) for t in allowed])
    return (1 - EPSILON) * p / p.sum() + EPSILON / len(allowed)


def markov_step_probs(seq: Sequence, index: int) -> np.ndarray:
    genre = GENRES[seq.genre]
    walk = gen.ScaleWalk(seq.tonic, seq.mode, 0, 127, genre.melody_steps)
    moves = walk.transition(index)
    p = np.zeros(2 * MAX_STEP + 1)
    for j, w in moves.items():
        p[max(-MAX_STEP, min(MAX_STEP, j - index)) + MAX_STEP] += w
    return (1 - EPSILON) * p / p.sum() + EPSILON / len(p)


class Unigram:
    def __init__(self, train: list[Sequence]) -> None:
        self.counts = Counter(t for s in train for t in s.tokens)

    def probs(self, allowed: list[str]) -> np.ndarray:
        p = np.array([self.counts.get(t, 0) + 1.0 for t in allowed])
        return p / p.sum()


def sequence_rows(seq: Sequence, lm: NumpyLM, unigram: Unigram) -> list[dict]:
    """One row per (system, metric) of one held-out sequence."""
    vocab = vocabulary()
    ids, n_prefix = encode(seq, 10**9)
    allowed = allowed_ids(seq)
    names = [vocab.tokens[i] for i in allowed]
    state = lm.run(ids[:n_prefix])
    index = seq.start_index
    scores: dict[str, list[tuple[float, bool]]] = {"harmony_lm": [], "markov": [], "unigram": []}
    for pos, token in enumerate(seq.tokens):
        k = names.index(token)
        if seq.kind == "chords":
            markov = markov_chord_probs(seq, pos, names)
        else:
            markov = markov_step_probs(seq, index)
            index += int(token.removeprefix("step"))
        for system, p in (
            ("harmony_lm", masked_probs(state.logits, allowed)),
            ("markov", markov),
            ("unigram", unigram.probs(names)),
        ):
            scores[system].append((-float(np.log(p[k])), int(np.argmax(p)) == k))
        state = lm.step(state, vocab.id(token))
    kind = "chord" if seq.kind == "chords" else "melody"
    rows = []
    for system, vals in scores.items():
        item = f"{seq.song}/{kind}/{seq.section}"
        common = {"system": system, "item": item, "genre": seq.genre, "n_tokens": len(vals)}
        rows.append({**common, "metric": f"{kind}_nll", "value": float(np.mean([v for v, _ in vals]))})
        rows.append({**common, "metric": f"{kind}_acc", "value": float(np.mean([a for _, a in vals]))})
    return rows


@register
class HarmonyLMTask(Task):
    name = NAME
    metric_directions = {"chord_nll": "lower", "melody_nll": "lower", "chord_acc": "higher", "melody_acc": "higher"}

    def parse_settings(self, section: Mapping[str, Any]) -> HarmonyLMSettings:
        return HarmonyLMSettings.from_config(section)

    def _sequences(self) -> list[Sequence]:
        if "_seqs" not in self.__dict__:
            # sequences of at least one content token (a one-chord section still predicts its chord)
            self._seqs = [s for s in corpus_sequences(self.job.inputs.stems) if s.tokens]
        return self._seqs

    def split(self, name: str) -> list[Sequence]:
        return [s for s in self._sequences() if s.split == name]

    def setup(self) -> None:
        self.train_items = self.split("train")
        if not self.train_items:
            where = ", ".join(self.job.inputs.stems) or "no stem shards"
            raise StemlabError(
                f"model {NAME}: no chord or melody sequences in the train split of {where}; models.{NAME}.inputs "
                "needs corpora [synthetic] and a window (e.g. windows: [megami]) that brings their stem folders"
            )
        self.valid_items = self.split("valid")

    def identity(self) -> dict[str, Any]:
        return {"sequences": digest(self.train_items)}

    def build_model(self) -> nn.Module:
        return HarmonyLM(len(vocabulary()), self.settings.size)

    def data(self, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        index = start
        while True:
            picks = step_indices(len(self.train_items), self.loop.batch_size, self.loop.seed, index)
            yield batch_tensors([self.train_items[int(i)] for i in picks], self.settings.max_tokens)
            index += 1

    def loss(
        self, model: nn.Module, batch: Any, generator: torch.Generator
    ) -> tuple[torch.Tensor, Mapping[str, float]]:
        ids, targets = (t.to(next(model.parameters()).device) for t in batch)
        nll, acc = masked_nll(model(ids), ids, targets)
        return nll, {"nll": float(nll.detach()), "acc": float(acc)}

    @torch.no_grad()
    def validate(self, model: nn.Module) -> Mapping[str, float]:
        if not self.valid_items:
            return {}
        ids, targets = batch_tensors(self.valid_items, self.settings.max_tokens)
        device = next(model.parameters()).device
        nll, acc = masked_nll(model(ids.to(device)), ids.to(device), targets.to(device))
        return {"valid_nll": float(nll), "valid_acc": float(acc)}

    def meta(self, model: nn.Module) -> dict[str, Any]:
        return {"train_sequences": len(self.train_items), "valid_sequences": len(self.valid_items)}

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {"vocabulary": list(vocabulary().tokens)}

    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        test = self.split("test")
        if not test:
            raise StemlabError(
                f"model {NAME}: no chord or melody sequences in the test split; generate more synthetic songs (synth.songs)"
            )
        lm = NumpyLM({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
        unigram = Unigram(self.split("train"))
        max_items = self.job.eval.get("max_items")
        if max_items:
            test = test[: int(max_items)]
        from tqdm import tqdm

        rows = [r for s in tqdm(test, desc="harmony_lm eval", mininterval=5) for r in sequence_rows(s, lm, unigram)]
        return pd.DataFrame(rows)
