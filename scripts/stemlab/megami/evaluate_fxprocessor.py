"""FxProcessor vs baselines on the test split: long per-window rows for the frame's summariser.

Systems: `fxprocessor` (the trained model, conditioned as it was trained: on the target wet window's
effect embedding and the dry window's CLAP embedding, or on the oracle FX parameters in the ablation),
`identity` (dry passthrough), `loudness_matched` (dry with the oracle gain that matches the wet excerpt's
integrated loudness), `mean_fx` (the per-category mean FX chain of the training split applied to the dry
stem, when an FX-chain renderer is available).
The model and the mean chain process the whole test window (the span its embeddings describe, so reverb
and delay tails enter the excerpt as they do in the reference); every system is scored on the loudest
`max_samples` of it. Metrics: MR-STFT distance (lower is better), SI-SDR in dB (higher), loudness error
in LU (est - ref) and its absolute value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from stemlab.audio import SAMPLE_RATE
from stemlab.data.segment_tables import read_window
from stemlab.errors import StemlabError
from stemlab.logs import log, progress
from stemlab.megami.fxparams import mean_annotation
from stemlab.megami.pairs import PairItem, pair_items
from stemlab.metrics import SILENCE_LUFS, integrated_loudness, si_sdr
from stemlab.train.losses import MultiResolutionSTFTLoss

SYSTEMS = ("fxprocessor", "mean_fx", "loudness_matched", "identity")
FxApplier = Callable[[np.ndarray, int, Any], np.ndarray]  # (dry (channels, time), sr, fx annotation) -> wet
Conditioner = Callable[[Sequence[PairItem]], np.ndarray]  # items -> (items, cond_dim) conditioning vectors


def default_fx_applier() -> FxApplier | None:
    """The synthesizer's renderer of a stem FX annotation (pedalboard chain + pan), when installed."""
    try:
        from stemlab.synth.mixing import apply_stem_fx
    except ImportError:
        return None

    def apply(dry: np.ndarray, sr: int, fx: Any) -> np.ndarray:
        if not is_synth_chain(fx):
            raise StemlabError("mean_fx baseline: FX annotation has no 'chain'; the corpus was not made by stemlab.synth")
        return apply_stem_fx(np.ascontiguousarray(dry.T), fx, sr).T

    return apply


def is_synth_chain(fx: Any) -> bool:
    """Whether an FX annotation is one stemlab.synth can render (a dict with a `chain`)."""
    return isinstance(fx, dict) and "chain" in fx


def select_items(items: Sequence[PairItem], max_items: int | None) -> list[PairItem]:
    """All items, or `max_items` of them evenly spaced over the sorted list (deterministic)."""
    if max_items is None or len(items) <= max_items:
        return list(items)
    picks = np.unique(np.linspace(0, len(items) - 1, max_items).round().astype(int))
    return [items[int(i)] for i in picks]


ALL_CATEGORIES = "*"
SILENT_DBFS = -60.0  # windows whose reference excerpt is quieter than this (RMS) are not scored


def category_mean_fx(items: Sequence[PairItem]) -> dict[str, Any]:
    """Mean FX annotation per stem category of the training split, plus ALL_CATEGORIES over every stem
    (used for a test stem whose category never occurs in training)."""
    by_category: dict[str, list[Any]] = {}
    for it in items:
        if it.fx is not None:
            by_category.setdefault(it.category, []).append(it.fx)
            by_category.setdefault(ALL_CATEGORIES, []).append(it.fx)
    return {cat: mean_annotation(fxs) for cat, fxs in sorted(by_category.items())}


def loudest_excerpt(wet: np.ndarray, n: int, block: int = 4096) -> int:
    """Start (a multiple of `block`) of the n-sample excerpt of `wet` (channels, time) with the most energy."""
    if wet.shape[1] <= n:
        return 0
    energy = np.square(wet, dtype=np.float64).sum(axis=0)
    cumulative = np.concatenate([[0.0], np.cumsum(energy)])
    starts = np.arange(0, wet.shape[1] - n + 1, block)
    return int(starts[np.argmax(cumulative[starts + n] - cumulative[starts])])


def rms_dbfs(audio: np.ndarray) -> float:
    mean_square = float(np.mean(np.square(audio, dtype=np.float64)))
    return 10.0 * np.log10(mean_square) if mean_square > 0 else -np.inf


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    if x.shape[1] >= n:
        return x[:, :n]
    return np.pad(x, ((0, 0), (0, n - x.shape[1])))


@dataclass(frozen=True)
class EvalSettings:
    """models.fxprocessor.eval (defaults: the schema's)."""

    max_items: int | None
    max_samples: int | None
    fft_sizes: tuple[int, ...]

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> EvalSettings:
        from stemlab.config import settings_section

        values = settings_section("models", "fxprocessor", "eval", section=section)
        return cls(values["max_items"], values["max_samples"], tuple(int(n) for n in values["fft_sizes"]))


def evaluate_windows(
    model: torch.nn.Module,
    conditions: Conditioner,
    table: pd.DataFrame,
    stems_root: str | os.PathLike[str],
    settings: EvalSettings,
    *,
    fx_applier: FxApplier | None | str = "default",
) -> pd.DataFrame:
    """Long rows (system, metric, value, item + song, stem, category, start, length) of every selected,
    non-silent test window, systems in the order of SYSTEMS."""
    dev = next(model.parameters()).device
    test_items = select_items(pair_items(table, stems_root, "test"), settings.max_items)
    if not test_items:
        raise StemlabError("the megami segment tables have no active test-split windows with dry and wet stems")
    train_items = pair_items(table, stems_root, "train")
    if fx_applier == "default":
        applier = default_fx_applier()
        train_items = [it for it in train_items if is_synth_chain(it.fx)]
    else:
        applier = fx_applier
    means = category_mean_fx(train_items) if applier is not None else {}
    if not means:
        log.info("mean_fx baseline skipped: no FX-chain renderer or no renderable FX annotations in the training split")
    cond = conditions(test_items)
    mrstft = MultiResolutionSTFTLoss(settings.fft_sizes).to(dev)
    rows: list[dict] = []
    skipped = 0
    model.eval()
    for it, c in progress(list(zip(test_items, cond)), desc="evaluate fxprocessor"):
        scored = _score_window(it, c, model, dev, mrstft, applier, means, settings.max_samples)
        if scored is None:
            skipped += 1  # a silent reference makes every metric degenerate
        rows.extend(scored or [])
    if not rows:
        raise StemlabError(
            f"every selected test window is silent (RMS < {SILENT_DBFS} dBFS); raise models.fxprocessor.eval.max_items or max_samples"
        )
    log.info("fxprocessor: %d test windows scored, %d silent ones skipped", len(test_items) - skipped, skipped)
    return pd.DataFrame(rows)


def _score_window(it, cond, model, dev, mrstft, applier, means, max_samples: int | None) -> list[dict] | None:
    """One metrics row per system for the loudest `max_samples` of one test window; None when the
    wet reference is silent."""
    n = it.length if max_samples is None else min(it.length, max_samples)
    dry_window, wet_window = read_window(it.dry, it.start, it.length), read_window(it.wet, it.start, it.length)
    offset = loudest_excerpt(wet_window, n)
    excerpt = slice(offset, offset + n)
    dry, wet = dry_window[:, excerpt], wet_window[:, excerpt]
    if rms_dbfs(wet) < SILENT_DBFS:
        return None
    with torch.no_grad():
        c = torch.from_numpy(np.asarray(cond, dtype=np.float32))[None].to(dev)
        pred = model(torch.from_numpy(dry_window)[None].to(dev), c)[0].float().cpu().numpy()[:, excerpt]
    ref_lufs = integrated_loudness(wet, SAMPLE_RATE)
    dry_lufs = integrated_loudness(dry, SAMPLE_RATE)
    gain_db = ref_lufs - dry_lufs if dry_lufs > SILENCE_LUFS else 0.0
    systems = {
        "fxprocessor": np.ascontiguousarray(pred),
        "identity": dry,
        "loudness_matched": (dry * 10 ** (gain_db / 20)).astype(np.float32),
    }
    if applier is not None and means:
        chain = means.get(it.category, means[ALL_CATEGORIES])
        systems["mean_fx"] = np.ascontiguousarray(_fit_length(applier(dry_window, SAMPLE_RATE, chain), it.length)[:, excerpt])
    names = [s for s in SYSTEMS if s in systems]
    with torch.no_grad():
        est = torch.from_numpy(np.stack([systems[s] for s in names])).to(dev)
        ref = torch.from_numpy(np.ascontiguousarray(wet))[None].expand_as(est).to(dev)
        distances = mrstft.per_item(est, ref).cpu().numpy()
    rows = []
    where = {"song": it.song, "stem": it.stem, "category": it.category, "start": it.start + offset, "length": n}
    item = f"{it.song}/{it.stem}/{it.start + offset}"
    for name, distance in zip(names, distances):
        lufs = dry_lufs if name == "identity" else integrated_loudness(systems[name], SAMPLE_RATE)
        metrics = {
            "mrstft": float(distance), "si_sdr": si_sdr(systems[name], wet),
            "abs_loudness_error": abs(lufs - ref_lufs), "loudness_error": lufs - ref_lufs,
        }  # fmt: skip
        rows += [{"system": name, "metric": m, "value": v, "item": item, **where} for m, v in metrics.items()]
    return rows
