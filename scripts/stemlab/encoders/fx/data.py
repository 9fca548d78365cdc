"""Contrastive training data of the effect encoder: annotated chains rendered on the fly on other content.

Items are the chains of the split (one per stem: every window of a stem shares its chain) and the
content pool is every active window of the split that has a dry file. Micro-batch s (a function of
(seed, s) alone, like every batch of the frame):

- B chains: stemlab.train.sampling.step_indices over the chains (epochs of permutations);
- B dry crops from the pool, each audible (re-drawn from the same generator when silent);
- view 1 of chain b is chain b on crop b, view 2 is chain b on crop b + 1 (mod B). Positives share a chain
  on different content; every crop is used by two different chains, so each view has a negative of the
  *same* content and another chain (the hard negative content invariance needs).

The batch holds `audio` (2B, 2, samples) float32 (views 1 then views 2) and `chain` (2B,) int64, so the
loss can ignore a chain that recurs within a batch (at an epoch boundary) as a negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stemlab.encoders.fx.render import Content, is_audible, render
from stemlab.errors import StemlabError
from stemlab.megami.pairs import PairItem
from stemlab.seeding import rng
from stemlab.train.sampling import step_indices

MAX_DRAWS = 8  # crops drawn per slot before a silent one is kept


@dataclass(frozen=True)
class Chain:
    song: str
    stem: str
    category: str
    fx: Any


def chains_of(items: Sequence[PairItem]) -> tuple[list[Chain], list[int]]:
    """The distinct chains (one per song/stem, in item order) and the chain index of every item."""
    index: dict[tuple[str, str], int] = {}
    chains: list[Chain] = []
    of_item = []
    for it in items:
        key = (it.song, it.stem)
        if key not in index:
            if not isinstance(it.fx, dict) or "chain" not in it.fx:
                raise StemlabError(
                    f"song {it.song}, stem {it.stem}: no FX chain annotation (song.json stems[*].fx with a `chain`); "
                    "the effect encoder trains on synthetic corpora (models.fx_encoder.inputs.corpora)"
                )
            index[key] = len(chains)
            chains.append(Chain(it.song, it.stem, it.category, it.fx))
        of_item.append(index[key])
    return chains, of_item


def crop_of(item: PairItem, samples: int, offset: int, preroll: int) -> Content:
    return Content(Path(item.dry), item.start + offset, samples, preroll)


def draw_content(items: Sequence[PairItem], samples: int, preroll: int, generator: np.random.Generator) -> tuple[Content, np.ndarray]:
    """An audible dry crop of a random window (the last draw when MAX_DRAWS are silent) and its audio."""
    for _ in range(MAX_DRAWS):
        item = items[int(generator.integers(0, len(items)))]
        offset = int(generator.integers(0, max(0, item.length - samples) + 1))
        content = crop_of(item, samples, offset, preroll)
        dry = content.read()
        if is_audible(dry, preroll):
            break
    return content, dry


class ChainPairs:
    """Deterministic contrastive batches (see the module docstring)."""

    def __init__(self, items: Sequence[PairItem], samples: int, preroll: int, seed: int) -> None:
        if not items:
            raise StemlabError("no active windows with dry and wet stems to train the effect encoder on")
        self.items = list(items)
        self.chains, _ = chains_of(self.items)
        self.samples, self.preroll, self.seed = int(samples), int(preroll), int(seed)

    def batch(self, step: int, batch_size: int, purpose: str = "pairs") -> dict[str, np.ndarray]:
        chosen = step_indices(len(self.chains), batch_size, self.seed, step) if purpose == "pairs" else \
            rng(self.seed, purpose, step).permutation(len(self.chains))[:batch_size]  # fmt: skip
        generator = rng(self.seed, purpose, "content", step)
        dries = [draw_content(self.items, self.samples, self.preroll, generator)[1] for _ in chosen]
        n = len(chosen)
        first = [render(self.chains[c].fx, dries[b], self.preroll) for b, c in enumerate(chosen)]
        second = [render(self.chains[c].fx, dries[(b + 1) % n], self.preroll) for b, c in enumerate(chosen)]
        return {
            "audio": np.stack(first + second).astype(np.float32, copy=False),
            "chain": np.concatenate([chosen, chosen]).astype(np.int64),
        }
