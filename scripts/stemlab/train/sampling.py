"""Data order as a pure function of (seed, step): a resumed run sees exactly the batches of an unbroken one.

Items are visited in epochs; each epoch is a fresh permutation derived from (seed, epoch), and step s
takes items s*B .. s*B+B-1 of that endless sequence. Batches are built ahead of time by a small thread
pool (audio decoding releases the GIL); the order of results never depends on the number of workers.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

import numpy as np

from stemlab.seeding import rng

T = TypeVar("T")


@lru_cache(maxsize=4)
def epoch_permutation(n_items: int, seed: int, epoch: int) -> np.ndarray:
    perm = rng(seed, "epoch", epoch).permutation(n_items)
    perm.setflags(write=False)
    return perm


def evenly_spaced(items: Sequence[T], n: int | None) -> list[T]:
    """At most `n` of `items`, evenly spaced over the sequence (all of them when n is None or not smaller)."""
    if not n or len(items) <= n:
        return list(items)
    return [items[int(i)] for i in np.unique(np.linspace(0, len(items) - 1, n).round().astype(int))]


def step_indices(n_items: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Item indices of batch `step` (epochs of `n_items`, each a permutation derived from (seed, epoch))."""
    if n_items < 1:
        raise ValueError("no items to sample from")
    out = np.empty(batch_size, dtype=np.int64)
    pos = step * batch_size
    filled = 0
    while filled < batch_size:
        epoch, offset = divmod(pos, n_items)
        take = min(batch_size - filled, n_items - offset)
        out[filled : filled + take] = epoch_permutation(n_items, seed, epoch)[offset : offset + take]
        filled += take
        pos += take
    return out


def prefetched(make_batch: Callable[[int], T], start: int, *, workers: int = 2, depth: int = 4) -> Iterator[T]:
    """make_batch(start), make_batch(start + 1), ... computed `depth` steps ahead on `workers` threads."""
    if workers <= 0:
        step = start
        while True:
            yield make_batch(step)
            step += 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batches") as pool:
        pending: collections.deque[Future[T]] = collections.deque()
        step = start
        try:
            while True:
                while len(pending) < max(1, depth):
                    pending.append(pool.submit(make_batch, step))
                    step += 1
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
