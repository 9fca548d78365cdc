"""The files a training rule leaves behind: final weights, the training log (CSV) and meta.json."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import torch

from stemlab.atomic import atomic_path, write_json
from stemlab.train.loop import TrainResult


def write_history_csv(history: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """One row per logged step (train rows and valid rows share the file, told apart by `split`)."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns or ["step"], restval="")
            writer.writeheader()
            writer.writerows(history)


def save_weights(payload: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """torch.save `payload` atomically (tensors moved to CPU by the caller)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)


def write_training_outputs(
    result: TrainResult,
    out_dir: str | os.PathLike[str],
    weights: dict[str, Any],
    meta: dict[str, Any],
) -> None:
    """final.pt, train_log.csv and meta.json (meta last: its presence means the others are complete)."""
    out_dir = Path(out_dir)
    save_weights(weights, out_dir / "final.pt")
    write_history_csv(result.history, out_dir / "train_log.csv")
    train_rows = [r for r in result.history if r.get("split") == "train"]
    valid_rows = [r for r in result.history if r.get("split") == "valid"]
    summary = {
        "steps": result.step,
        "identity_hash": result.identity_hash,
        "identity": result.identity,
        "runs": result.runs,
        "resumed": len(result.runs) > 1,
        "device": result.runs[-1] if result.runs else None,
        "final_train_loss": train_rows[-1]["loss"] if train_rows else None,
        "final_valid": valid_rows[-1] if valid_rows else None,
        "train_wall_s": round(sum(r.get("wall_s", 0.0) for r in result.runs), 3),
        **meta,
    }
    write_json(out_dir / "meta.json", summary)
