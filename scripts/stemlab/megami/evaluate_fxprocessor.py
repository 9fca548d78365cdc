"""FxProcessor vs baselines on the test split: per-window metrics and a summary table.

Systems: `fxprocessor` (the trained model), `identity` (dry passthrough), `loudness_matched` (dry with
the oracle gain that matches the wet stem's integrated loudness), `mean_fx` (the per-category mean FX
chain of the training split applied to the dry stem, when an FX-chain renderer is available).
Metrics: MR-STFT distance (lower is better), SI-SDR in dB (higher), loudness error in LU (est - ref).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from stemlab.atomic import atomic_path
from stemlab.audio import SAMPLE_RATE
from stemlab.errors import StemlabError
from stemlab.logs import log, progress
from stemlab.megami.fxparams import mean_annotation
from stemlab.megami.fxprocessor_task import load_fxprocessor
from stemlab.megami.pairs import PairItem, pair_items, read_segment_tables, read_window
from stemlab.metrics import SILENCE_LUFS, integrated_loudness, si_sdr
from stemlab.train.loop import device_info, resolve_device, torch_threads
from stemlab.train.losses import MultiResolutionSTFTLoss
from stemlab.train.outputs import write_json

SYSTEMS = ("fxprocessor", "mean_fx", "loudness_matched", "identity")
FxApplier = Callable[[np.ndarray, int, Any], np.ndarray]  # (dry (channels, time), sr, fx annotation) -> wet


def default_fx_applier() -> FxApplier | None:
    """The synthesizer's renderer of a stem FX annotation (pedalboard chain + pan), when installed."""
    try:
        from stemlab.synth.mixing import apply_stem_fx
    except ImportError:
        return None

    def apply(dry: np.ndarray, sr: int, fx: Any) -> np.ndarray:
        if not isinstance(fx, dict) or "chain" not in fx:
            raise StemlabError("mean_fx baseline: FX annotation has no 'chain'; the corpus was not made by stemlab.synth")
        return apply_stem_fx(np.ascontiguousarray(dry.T), fx, sr).T

    return apply


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


def evaluate_fxprocessor(
    model_path: str | os.PathLike[str],
    segment_tables: Sequence[str | os.PathLike[str]],
    stems_root: str | os.PathLike[str],
    out_items: str | os.PathLike[str],
    out_summary: str | os.PathLike[str],
    *,
    max_items: int | None = None,
    max_samples: int | None = None,
    fft_sizes: Sequence[int] = (512, 1024, 2048),
    device: str = "auto",
    fx_applier: FxApplier | None | str = "default",
    out_meta: str | os.PathLike[str] | None = None,
    cpu_threads: int = 2,
) -> pd.DataFrame:
    # torch's intra-op threads, scoped to this call (the caller's setting is restored)
    with torch_threads(cpu_threads):
        dev = resolve_device(device)
        model, space, payload = load_fxprocessor(model_path, dev)
        table = read_segment_tables(segment_tables)
        test_items = select_items(pair_items(table, stems_root, "test"), max_items)
        if not test_items:
            raise StemlabError(f"{', '.join(map(str, segment_tables))}: no active test-split windows with dry and wet stems")
        applier = default_fx_applier() if fx_applier == "default" else fx_applier
        means = category_mean_fx(pair_items(table, stems_root, "train")) if applier is not None else {}
        if applier is None:
            log.info("mean_fx baseline skipped: no FX-chain renderer for these annotations")
        mrstft = MultiResolutionSTFTLoss(fft_sizes).to(dev)
        rows = []
        skipped = 0
        for it in progress(test_items, desc="evaluate fxprocessor"):
            scored = _score_window(it, model, space, dev, mrstft, applier, means, max_samples)
            if scored is None:
                skipped += 1  # a silent reference makes every metric degenerate
            rows.extend(scored or [])
        if not rows:
            raise StemlabError(
                f"{', '.join(map(str, segment_tables))}: every selected test window is silent (RMS < {SILENT_DBFS} dBFS); "
                "raise train.fxprocessor.eval.max_items or max_samples"
            )
        frame = pd.DataFrame(rows)
        summary = summarize(frame)
        with atomic_path(out_items) as tmp:
            frame.to_parquet(tmp, index=False)
        Path(out_summary).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_summary) as tmp:
            summary.to_csv(tmp, index=False, float_format="%.6g")
        if out_meta is not None:
            write_json(
                {
                    "model": str(model_path),
                    "model_identity_hash": payload.get("identity_hash"),
                    "items": len(test_items) - skipped,
                    "skipped_silent": skipped,
                    "systems": sorted(frame["system"].unique().tolist()),
                    "mean_fx": "evaluated" if applier is not None else "skipped: no FX-chain renderer",
                    "device": device_info(dev),
                },
                out_meta,
            )
        return frame


def _score_window(it, model, space, dev, mrstft, applier, means, max_samples: int | None) -> list[dict] | None:
    """One metrics row per system for the loudest `max_samples` of one test window; None when the
    wet reference is silent."""
    n = it.length if max_samples is None else min(it.length, max_samples)
    dry, wet = read_window(it.dry, it.start, it.length), read_window(it.wet, it.start, it.length)
    offset = loudest_excerpt(wet, n)
    dry, wet = dry[:, offset : offset + n], wet[:, offset : offset + n]
    if rms_dbfs(wet) < SILENT_DBFS:
        return None
    with torch.no_grad():
        cond = torch.from_numpy(space.vector(it.fx))[None].to(dev)
        pred = model(torch.from_numpy(dry)[None].to(dev), cond)[0].float().cpu().numpy()
    ref_lufs = integrated_loudness(wet, SAMPLE_RATE)
    dry_lufs = integrated_loudness(dry, SAMPLE_RATE)
    gain_db = ref_lufs - dry_lufs if dry_lufs > SILENCE_LUFS else 0.0
    systems = {
        "fxprocessor": pred,
        "identity": dry,
        "loudness_matched": (dry * 10 ** (gain_db / 20)).astype(np.float32),
    }
    if applier is not None and means:
        chain = means.get(it.category, means[ALL_CATEGORIES])
        systems["mean_fx"] = _fit_length(applier(dry, SAMPLE_RATE, chain), n)
    names = [s for s in SYSTEMS if s in systems]
    with torch.no_grad():
        est = torch.from_numpy(np.stack([systems[s] for s in names])).to(dev)
        ref = torch.from_numpy(wet)[None].expand_as(est).to(dev)
        distances = mrstft.per_item(est, ref).cpu().numpy()
    rows = []
    for name, distance in zip(names, distances):
        lufs = dry_lufs if name == "identity" else integrated_loudness(systems[name], SAMPLE_RATE)
        rows.append(
            {
                "song": it.song, "stem": it.stem, "category": it.category, "start": it.start + offset, "length": n,
                "system": name, "mrstft": float(distance), "si_sdr": si_sdr(systems[name], wet),
                "loudness_lufs": lufs, "reference_lufs": ref_lufs, "loudness_error": lufs - ref_lufs,
            }
        )  # fmt: skip
    return rows


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Per system: n, mean / median / 95 % CI half-width of each metric (absolute loudness error)."""
    frame = frame.assign(abs_loudness_error=frame["loudness_error"].abs())
    out = []
    for system in [s for s in SYSTEMS if s in set(frame["system"])]:
        part = frame[frame["system"] == system]
        row: dict[str, Any] = {"system": system, "n": len(part)}
        for metric in ("mrstft", "si_sdr", "abs_loudness_error"):
            values = part[metric].to_numpy(dtype=np.float64)
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_median"] = float(np.median(values))
            row[f"{metric}_ci95"] = float(1.96 * values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
        out.append(row)
    return pd.DataFrame(out)
