"""Logging and progress bars that go to a rule's log: file as well as the terminal."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("stemlab")


def setup_logging(path: str | os.PathLike[str] | None = None, level: int = logging.INFO) -> logging.Logger:
    """Log to stderr and, when given, to `path` (a rule's log: file)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="a", encoding="utf-8"))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)
    return log


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """tqdm on stderr (Snakemake's `2> {log}` captures it) at a rate that keeps logs readable."""
    return iter(tqdm(items, desc=desc, total=total, mininterval=5.0, file=sys.stderr, dynamic_ncols=False, ascii=True))


def byte_progress(total: int | None, desc: str, show: bool = True, initial: int = 0) -> tqdm:
    """A bytes progress bar (downloads, hashing, extraction) on stderr; `show=False` disables it."""
    return tqdm(
        total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
        file=sys.stderr, mininterval=2.0, ascii=True, disable=not show,
    )  # fmt: skip
