"""Evaluate one trained (model, seed) through its task: the generic `evaluate_model` rule runs this."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from stemlab.atomic import atomic_path, write_json
from stemlab.device import device_info, resolve_device, torch_threads
from stemlab.errors import StemlabError
from stemlab.train.job import Job
from stemlab.train.registry import task_class
from stemlab.train.task import ITEM_COLUMNS, Task


def check_items(rows: pd.DataFrame, task: Task) -> pd.DataFrame:
    missing = [c for c in (*ITEM_COLUMNS, *task.summary_keys) if c not in rows.columns]
    if missing:
        raise StemlabError(f"{task.job.task}: evaluate() returned rows without {', '.join(missing)}; fix the task")
    if rows.empty:
        raise StemlabError(f"model {task.job.model}: evaluation produced no rows; check its test split and eval settings")
    return rows


def evaluate_job(job: Job, model_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Evaluate final.pt of `model_dir`; writes items.parquet (one row per item, system and metric, with
    `model` and `seed`) and meta.json into `out_dir`."""
    out_dir = Path(out_dir)
    task: Task = task_class(job.model, job.task)(job)
    with torch_threads(job.cpu_threads):
        device = resolve_device(job.device)
        model, payload = task.load(Path(model_dir) / "final.pt", device)
        rows = check_items(task.evaluate(model, payload, out_dir), task)
    rows = rows.assign(model=job.model, seed=job.seed)
    front = ["model", "seed", *task.summary_keys, "system", "metric", "value", "item"]
    rows = rows[front + [c for c in rows.columns if c not in front]]
    with atomic_path(out_dir / "items.parquet") as tmp:
        rows.to_parquet(tmp, index=False)
    meta: dict[str, Any] = {
        "model": job.model,
        "seed": job.seed,
        "model_identity_hash": payload.get("identity_hash"),
        "rows": len(rows),
        "items": int(rows["item"].nunique()),
        "systems": list(dict.fromkeys(rows["system"])),
        "metrics": list(dict.fromkeys(rows["metric"])),
        "eval": job.eval,
        "device": device_info(device),
    }
    write_json(out_dir / "meta.json", meta)
    return rows
