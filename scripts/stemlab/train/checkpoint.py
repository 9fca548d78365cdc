"""Checkpoint files: written atomically as step-NNNNNNNN.pt, the newest loadable one is resumed."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from stemlab.atomic import atomic_path
from stemlab.errors import StemlabError

FORMAT = 1
_NAME = re.compile(r"^step-(\d{8})\.pt$")


def checkpoint_path(directory: str | os.PathLike[str], step: int) -> Path:
    return Path(directory) / f"step-{step:08d}.pt"


def list_checkpoints(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, path) of every finished checkpoint, oldest first (temp files of killed writes are ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(directory: str | os.PathLike[str], step: int, state: dict[str, Any], keep: int) -> Path:
    """Write `state` for `step` atomically, then drop all but the newest `keep` checkpoints."""
    target = checkpoint_path(directory, step)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            torch.save({"format": FORMAT, "step": step, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
    for _, old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    # leftovers of writes killed mid-way (atomic_path cleans up only when it gets the chance)
    for stale in Path(directory).glob(".step-*.pt.*.part"):
        if stale.stat().st_mtime < target.stat().st_mtime - 60:
            stale.unlink(missing_ok=True)
    return target


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            state = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decode failure is the same user problem
        raise StemlabError(
            f"{path}: cannot read checkpoint ({type(exc).__name__}); delete it to resume from the previous one"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise StemlabError(f"{path}: not a stemlab checkpoint of format {FORMAT}; delete it to start over")
    return state


def latest_checkpoint(directory: str | os.PathLike[str]) -> tuple[int, Path] | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None
