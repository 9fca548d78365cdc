"""Evaluation of an effect encoder on held-out (test-split) stems of the megami windows.

Systems: `fx_encoder` (the whole embedding), `af_features` (MEGAMI's 64 interpretable Fourier features
alone: what the learned part adds is the difference), `oracle` (the fader's probe only, below) and
`chance`. Items are test windows (one stem, one window: `item` = song/stem/start); every window gets one
row per system and metric.

Every clip is one crop per window: the `max_samples` (capped by the shortest window) with the most dry
energy (among crops at half-crop hops), the window's chain rendered on it by stemlab.encoders.fx.render (dry trimmed to the reference
loudness on the crop, as the engine's trim stage does for a whole stem). The stored wet window differs
from this rendering only in the level the chain is driven at: its trim was measured on the whole stem, so
it also carries how much louder or quieter this part of the song is than the stem as a whole, which is
not an FX parameter.

- `probe_r2_<parameter>` (stemlab.encoders.fx.probe.PARAMETERS, those the chains annotate): a ridge probe
  fitted on embeddings of train-split windows (penalty by 5-fold CV over songs) predicts the parameter of
  each test window's stem from its embedding. R^2 is a set statistic, so an item's value is its term
  1 - e_i^2 / var(y) (var over the evaluated test windows): the mean over items is exactly the R^2 of the
  set, and the frame's bootstrap over items resamples these terms (holding the variance fixed). `chance`
  predicts the train mean (R^2 <= 0, about 0).
- `oracle` (probe_r2_fader_db only): the same probe on what a perfect encoder of everything *but* the
  fader would hold: the render's measured loudness (BS.1770) and the true value of every other probed
  parameter. The engine's compressor has no make-up gain and stemlab.synth.mixing.stage_faders shifts a
  song's faders so its bus reaches the mix target, so a stem's level is its fader plus a content- and
  chain-dependent level change of the chain (the compressor's gain reduction above all); the fader is
  only as recoverable as that level change is. The oracle says how far level plus the rest of the
  chain, read linearly, get.
- `same_chain_top1`: the window's rendering (the query) against N candidates: its chain on the crop of a
  window of another song, and N - 1 other test chains each on the crop of a random window of another song;
  1 when its own chain is the nearest (cosine). Chance 1/N (N = eval.candidates, capped by the test chains).
- `triplet_acc`: the query is closer to its chain on other content (the positive above) than to another
  chain (the first distractor's) rendered on the query's own crop. Chance 0.5.

Contents and distractors depend on the test split and the eval settings only (the same for every seed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from stemlab.data.segment_tables import read_window
from stemlab.encoders.fx.data import chains_of, crop_of
from stemlab.encoders.fx.features import af_embedding
from stemlab.encoders.fx.probe import RidgeProbe, present_parameters, r2_terms, targets
from stemlab.encoders.fx.render import SAMPLE_RATE, SILENT_LUFS, content_loudness, render
from stemlab.errors import StemlabError
from stemlab.logs import log, progress
from stemlab.megami.pairs import PairItem
from stemlab.seeding import rng
from stemlab.train.sampling import evenly_spaced

SYSTEM, AF_SYSTEM, ORACLE, CHANCE = "fx_encoder", "af_features", "oracle", "chance"
ORACLE_TARGET = "fader_db"
EVAL_SEED = 0


@dataclass(frozen=True)
class EvalSettings:
    max_items: int | None
    probe_items: int | None
    max_samples: int | None
    candidates: int
    batch_size: int
    folds: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> EvalSettings:
        from stemlab.config import settings_section

        values = settings_section("models", "fx_encoder", "eval", section=section)
        return cls(**{f.name: values[f.name] for f in fields(cls)})


def item_id(it: PairItem) -> str:
    return f"{it.song}/{it.stem}/{it.start}"


Embed = Callable[[torch.Tensor], torch.Tensor]


def embed_all(embed: Embed, clips: Sequence[np.ndarray] | np.ndarray, batch_size: int, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(model embeddings, MEGAMI feature embeddings) of (2, samples) clips of one length."""
    out, af = [], []
    with torch.no_grad():
        for lo in range(0, len(clips), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(np.stack(clips[lo : lo + batch_size]))).to(device)
            out.append(embed(x).float().cpu().numpy())
            af.append(af_embedding(x, SAMPLE_RATE).float().cpu().numpy())
    return np.concatenate(out), np.concatenate(af)


def loudest_offset(item: PairItem, samples: int) -> int:
    """Offset of the crop of `samples` with the most dry energy among crops at half-crop hops."""
    if item.length <= samples:
        return 0
    dry = read_window(Path(item.dry), item.start, item.length)
    energy = np.cumsum(np.concatenate([[0.0], np.square(dry, dtype=np.float64).sum(0)]))
    starts = np.unique(np.r_[np.arange(0, item.length - samples + 1, max(1, samples // 2)), item.length - samples])
    return int(starts[np.argmax(energy[starts + samples] - energy[starts])])


class Contents:
    """The evaluated crop of every item (see the module docstring), read once."""

    def __init__(self, items: Sequence[PairItem], length: int, preroll: int) -> None:
        self.items, self.preroll, self.length = list(items), int(preroll), int(length)
        self._dry: dict[int, np.ndarray] = {}

    def dry(self, i: int) -> np.ndarray:
        if i not in self._dry:
            it = self.items[i]
            self._dry[i] = crop_of(it, self.length, loudest_offset(it, self.length), self.preroll).read()
        return self._dry[i]

    def render(self, fx: Any, i: int) -> np.ndarray:
        """`fx` rendered on item i's crop."""
        return render(fx, self.dry(i), self.preroll)

    def own(self, i: int) -> np.ndarray:
        return self.render(self.items[i].fx, i)


def embed_own(embed: Embed, contents: Contents, batch_size: int, device: torch.device, desc: str,
              keep: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:  # fmt: skip
    """({system: embeddings}, loudness in LUFS) of every item's chain rendered on its own crop."""
    emb, af, lufs = [], [], []
    for lo in progress(range(0, len(contents.items), batch_size), desc=desc):
        part = range(lo, min(lo + batch_size, len(contents.items)))
        clips = [contents.own(i) for i in part]
        e, a = embed_all(embed, clips, batch_size, device)
        emb.append(e)
        af.append(a)
        lufs += [max(content_loudness(np.ascontiguousarray(c.T)), SILENT_LUFS) for c in clips]
        if not keep:
            for i in part:
                contents._dry.pop(i, None)
    return {SYSTEM: np.concatenate(emb), AF_SYSTEM: np.concatenate(af)}, np.array(lufs)


def oracle_features(loudness: np.ndarray, y: np.ndarray, names: Sequence[str], target: str) -> np.ndarray:
    """What a perfect encoder of everything but `target` holds: the render's loudness and the true value of
    every other probed parameter."""
    return np.column_stack([loudness, y[:, [j for j, n in enumerate(names) if n != target]]])


def probe_rows(train_emb: Mapping[str, np.ndarray], test_emb: Mapping[str, np.ndarray], train: Sequence[PairItem],
               test: Sequence[PairItem], folds: int, loudness: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Probe rows of every system; with `loudness` (train, test), also the `oracle` row of the fader."""
    names = present_parameters([it.fx for it in train])
    y_train, y_test = targets([it.fx for it in train], names), targets([it.fx for it in test], names)
    groups = [it.song for it in train]
    rows: list[dict[str, Any]] = []
    usable = [j for j, n in enumerate(names) if np.isfinite(y_train[:, j]).all() and np.isfinite(y_test[:, j]).all()
              and np.var(y_test[:, j]) > 1e-12]  # fmt: skip
    dropped = sorted(set(names) - {names[j] for j in usable})
    if dropped:
        log.info("fx_encoder probe: no R^2 for %s (missing values or constant on the test windows)", ", ".join(dropped))
    if not usable:
        return rows
    yt, ye = y_train[:, usable], y_test[:, usable]
    preds = {}
    for system in train_emb:
        probe = RidgeProbe(folds).fit(train_emb[system], yt, groups)
        preds[system] = probe.predict(test_emb[system])
        log.info("fx_encoder probe %s: cross-validated R^2 on the train windows %s", system,
                 ", ".join(f"{names[j]} {r:.2f}" for j, r in zip(usable, probe.cv_r2)))  # fmt: skip
    preds[CHANCE] = np.broadcast_to(yt.mean(0), ye.shape)
    kept = [names[j] for j in usable]
    for system, pred in preds.items():
        for k, name in enumerate(kept):
            rows += _r2_rows(system, name, ye[:, k], pred[:, k], test)
    if loudness is not None and ORACLE_TARGET in kept:
        k = kept.index(ORACLE_TARGET)
        x_train, x_test = (oracle_features(lufs, y, kept, ORACLE_TARGET) for lufs, y in zip(loudness, (yt, ye)))
        pred = RidgeProbe(folds).fit(x_train, yt[:, k : k + 1], groups).predict(x_test)[:, 0]
        rows += _r2_rows(ORACLE, ORACLE_TARGET, ye[:, k], pred, test)
    return rows


def _r2_rows(system: str, name: str, y: np.ndarray, pred: np.ndarray, test: Sequence[PairItem]) -> list[dict[str, Any]]:
    return [{"system": system, "metric": f"probe_r2_{name}", "value": float(v), "item": item_id(it), "category": it.category}
            for v, it in zip(r2_terms(y, pred), test)]  # fmt: skip


def _other_song(items: Sequence[PairItem], song: str, generator: np.random.Generator) -> int | None:
    pool = [i for i, it in enumerate(items) if it.song != song]
    return int(pool[int(generator.integers(0, len(pool)))]) if pool else None


def retrieval_rows(embed: Embed, contents: Contents, queries: Mapping[str, np.ndarray], candidates: int, batch_size: int,
                   device: torch.device) -> list[dict[str, Any]]:  # fmt: skip
    test = contents.items
    chains, chain_of = chains_of(test)
    n_cand = min(candidates, len(chains))
    if n_cand < 2 or len({it.song for it in test}) < 2:
        log.info("fx_encoder: retrieval needs >= 2 test chains and >= 2 test songs; no same_chain_top1/triplet_acc rows")
        return []
    rows: list[dict[str, Any]] = []
    for i, it in enumerate(progress(test, desc="fx_encoder retrieval")):
        generator = rng(EVAL_SEED, "fx_encoder", "retrieval", item_id(it))
        others = [c for c in range(len(chains)) if c != chain_of[i]]
        distractors = [others[int(k)] for k in generator.permutation(len(others))[: n_cand - 1]]
        positive_at = _other_song(test, it.song, generator)
        content_at = [_other_song(test, it.song, generator) for _ in distractors]
        clips = [contents.render(it.fx, positive_at)]
        clips += [contents.render(chains[c].fx, j) for c, j in zip(distractors, content_at)]
        clips.append(contents.render(chains[distractors[0]].fx, i))  # triplet negative: same content
        emb, af = embed_all(embed, clips, max(batch_size, len(clips)), device)
        base = {"item": item_id(it), "category": it.category}
        for system, z in ((SYSTEM, emb), (AF_SYSTEM, af)):
            q = queries[system][i]
            sims = (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)) @ (q / max(np.linalg.norm(q), 1e-12))
            rows.append({"system": system, "metric": "same_chain_top1", "value": float(sims[0] > sims[1:n_cand].max()), **base})
            rows.append({"system": system, "metric": "triplet_acc", "value": float(sims[0] > sims[-1]), **base})
        rows.append({"system": CHANCE, "metric": "same_chain_top1", "value": 1.0 / n_cand, **base})
        rows.append({"system": CHANCE, "metric": "triplet_acc", "value": 0.5, **base})
    return rows


def evaluate_encoder(embed: Embed, train: Sequence[PairItem], test: Sequence[PairItem], cfg: EvalSettings, preroll: int,
                     device: torch.device) -> pd.DataFrame:  # fmt: skip
    """The long rows of one encoder (see the module docstring)."""
    if not test:
        raise StemlabError("no active test-split windows with dry and wet stems; the effect encoder needs a test split")
    if not train:
        raise StemlabError("no active train-split windows to fit the probes on")
    test, train = evenly_spaced(test, cfg.max_items), evenly_spaced(train, cfg.probe_items)
    log.info("fx_encoder eval: %d test windows (%d chains), probe fitted on %d train windows",
             len(test), len(chains_of(test)[0]), len(train))  # fmt: skip
    # one crop length for every clip: max_samples, capped by the shortest window
    length = min(min(it.length for it in (*train, *test)), cfg.max_samples or np.iinfo(np.int64).max)
    train_emb, train_lufs = embed_own(embed, Contents(train, length, preroll), cfg.batch_size, device, "fx_encoder probe (train)")
    contents = Contents(test, length, preroll)
    test_emb, test_lufs = embed_own(embed, contents, cfg.batch_size, device, "fx_encoder probe (test)", keep=True)
    rows = probe_rows(train_emb, test_emb, train, test, cfg.folds, (train_lufs, test_lufs))
    rows += retrieval_rows(embed, contents, test_emb, cfg.candidates, cfg.batch_size, device)
    frame = pd.DataFrame(rows)
    order = {SYSTEM: 0, AF_SYSTEM: 1, ORACLE: 2, CHANCE: 3}
    return frame.sort_values(["system", "metric"], key=lambda s: s.map(order) if s.name == "system" else s, kind="stable").reset_index(drop=True)

