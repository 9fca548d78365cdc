"""Static job planning (cheap, parse-time safe): shards of songs instead of per-song jobs."""

from __future__ import annotations

import hashlib


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def shard_index(name: str) -> int:
    prefix = "shard-"
    if not name.startswith(prefix) or not name[len(prefix) :].isdigit():
        raise ValueError(f"not a shard name: {name!r} (expected shard-NNNNN)")
    return int(name[len(prefix) :])


def n_shards(n_items: int, shard_size: int) -> int:
    if shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    return -(-int(n_items) // int(shard_size))


def shard_names(n_items: int, shard_size: int) -> list[str]:
    return [shard_name(i) for i in range(n_shards(n_items, shard_size))]


def shard_items(name: str, n_items: int, shard_size: int) -> range:
    """The item indices (e.g. synthetic song indices) that shard `name` holds."""
    i = shard_index(name)
    start = i * shard_size
    if start >= n_items:
        raise ValueError(f"{name} is past the last shard for {n_items} items of {shard_size} per shard")
    return range(start, min(start + shard_size, n_items))


def hash_shard(key: str, count: int) -> int:
    """Stable shard for an item known only by name (real-corpus songs): sha256(key) mod count."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little") % count
