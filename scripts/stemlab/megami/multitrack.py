"""Embedding data of the CLAP domain adaptor and the FxGenerator, from segment tables and the embedding cache.

- `clap_pairs`: active windows of one split whose stem has both a wet and a dry CLAP embedding in the cache
  (synthetic songs, MedleyDB RAW): the adaptor's (wet, dry) pairs.
- `Multitracks`: wet multitracks: every active stem of one song's window (all stems that play in that
  megami window), each with its effect embedding (the fx_encoder cache, source wet) and a context vector
  (CLAP(wet) through the adaptor in training; CLAP(dry) at evaluation). Wet-only corpora (MUSDB18-HQ,
  MoisesDB) give multitracks as well. `batch(step, ...)` draws windows as a function of (seed, step) and
  shuffles each window's track order per sample (the permutation the generator learns to ignore), padding
  to max_tracks with a mask.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stemlab.data.segment_tables import read_segment_tables
from stemlab.encoders.cache import EmbeddingCache
from stemlab.errors import StemlabError
from stemlab.seeding import rng
from stemlab.train.sampling import step_indices

WINDOW = "megami"
TRACK_KEY = ("corpus", "song", "start", "stem")


def segment_rows(paths: Iterable[str | os.PathLike[str]], window: str = WINDOW) -> pd.DataFrame:
    """Active rows of the segment tables with the window name and the stem category (the stem name where a
    table has no category column), sorted by corpus, song, start, stem."""
    paths = list(paths)
    table = read_segment_tables(paths)
    categories = []
    for path in paths:
        frame = pd.read_parquet(path)
        if "category" in frame.columns:
            categories.append(frame[["corpus", "song", "stem", "category"]].drop_duplicates(["corpus", "song", "stem"]))
    if categories:
        table = table.merge(pd.concat(categories).drop_duplicates(["corpus", "song", "stem"]), on=["corpus", "song", "stem"], how="left")
    if "category" not in table.columns:
        table["category"] = table["stem"]
    table["category"] = table["category"].fillna(table["stem"]).astype(str)
    table = table[table["active"].astype(bool)].assign(window=window)
    return table.sort_values(list(TRACK_KEY), kind="stable").reset_index(drop=True)


def _with_source(rows: pd.DataFrame, source: str) -> pd.DataFrame:
    return rows.assign(source=source)


def has_source(rows: pd.DataFrame, cache: EmbeddingCache, source: str) -> np.ndarray:
    """Which rows have an entry of `source` in the cache (dry stems exist only where a corpus has them)."""
    present = cache.keys.loc[cache.keys["source"] == source, ["song", "stem", "window", "start"]].assign(_found=True)
    merged = rows[["song", "stem", "window", "start"]].merge(present, on=["song", "stem", "window", "start"], how="left")
    return merged["_found"].notna().to_numpy()


@dataclass(frozen=True)
class ClapPairs:
    keys: pd.DataFrame  # corpus, song, stem, category, start, length, split
    wet: np.ndarray  # (n, d) CLAP(wet)
    dry: np.ndarray  # (n, d) CLAP(dry)

    def __len__(self) -> int:
        return len(self.keys)

    def batch(self, step: int, batch_size: int, seed: int) -> dict[str, np.ndarray]:
        idx = step_indices(len(self), batch_size, seed, step)
        return {"wet": self.wet[idx], "dry": self.dry[idx]}


def clap_pairs(rows: pd.DataFrame, cache: EmbeddingCache, split: str | None) -> ClapPairs:
    """(wet, dry) CLAP pairs of the active windows of `split` (None: all) that have a dry embedding."""
    chosen = rows if split is None else rows[rows["split"] == split]
    chosen = chosen[has_source(chosen, cache, "dry")].reset_index(drop=True)
    if chosen.empty:
        return ClapPairs(chosen, np.zeros((0, cache.dim), np.float32), np.zeros((0, cache.dim), np.float32))
    wet = cache.take(_with_source(chosen, "wet"))
    dry = cache.take(_with_source(chosen, "dry"))
    return ClapPairs(chosen[["corpus", "song", "stem", "category", "start", "length", "split"]], wet, dry)


@dataclass(frozen=True)
class Multitracks:
    """Windows of songs, each a group of tracks: tracks[offsets[i]:offsets[i+1]] belong to window i."""

    windows: pd.DataFrame  # corpus, song, start, split, tracks
    offsets: np.ndarray  # (windows + 1,)
    tracks: pd.DataFrame  # corpus, song, start, stem, category, length, split
    fx: np.ndarray  # (tracks, fx_dim) effect embeddings of the wet tracks
    context: np.ndarray  # (tracks, context_dim)

    def __len__(self) -> int:
        return len(self.windows)

    def window_tracks(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def assemble(self, windows: Sequence[int], orders: Sequence[np.ndarray], max_tracks: int) -> dict[str, np.ndarray]:
        """x (batch, max_tracks, fx_dim), context, mask: window windows[b]'s tracks in orders[b] (positions
        within the window), padded with zeros; mask True on real tracks."""
        b = len(windows)
        x = np.zeros((b, max_tracks, self.fx.shape[1]), np.float32)
        ctx = np.zeros((b, max_tracks, self.context.shape[1]), np.float32)
        mask = np.zeros((b, max_tracks), bool)
        for j, (w, order) in enumerate(zip(windows, orders)):
            rows = self.offsets[w] + np.asarray(order[:max_tracks], dtype=np.int64)
            x[j, : len(rows)] = self.fx[rows]
            ctx[j, : len(rows)] = self.context[rows]
            mask[j, : len(rows)] = True
        return {"x": x, "context": ctx, "mask": mask}

    def batch(self, step: int, batch_size: int, seed: int, max_tracks: int) -> dict[str, np.ndarray]:
        """Training batch `step`: windows by epoch permutations of (seed), each with its tracks in a fresh
        random order (a function of (seed, step, position)); windows of more than max_tracks keep a random
        subset."""
        windows = step_indices(len(self), batch_size, seed, step)
        orders = [rng(seed, "track-order", step, j).permutation(int(self.offsets[w + 1] - self.offsets[w])) for j, w in enumerate(windows)]
        return self.assemble(windows, orders, max_tracks)


def multitracks(rows: pd.DataFrame, fx_cache: EmbeddingCache, context: np.ndarray) -> Multitracks:
    """The multitrack windows of `rows` (one split, from `rows_of_split`): every active stem of each (song,
    start), with its wet effect embedding from `fx_cache` and row i of `context` (e.g. the adapted CLAP)."""
    fx = fx_cache.take(_with_source(rows, "wet"))
    if len(context) != len(rows):
        raise ValueError(f"context has {len(context)} rows for {len(rows)} tracks")
    windows = rows.groupby(["corpus", "song", "start"], sort=False).agg(split=("split", "first"), tracks=("stem", "size")).reset_index()
    offsets = np.concatenate([[0], np.cumsum(windows["tracks"].to_numpy())]).astype(np.int64)
    columns = ["corpus", "song", "start", "stem", "category", "length", "split"]
    return Multitracks(windows, offsets, rows[columns].reset_index(drop=True), fx, np.asarray(context, np.float32))


def rows_of_split(rows: pd.DataFrame, split: str | None) -> pd.DataFrame:
    """The rows of `split` (None: all) in track order (corpus, song, start, stem): a window's tracks adjacent."""
    chosen = rows if split is None else rows[rows["split"] == split]
    return chosen.sort_values(list(TRACK_KEY), kind="stable").reset_index(drop=True)


def require(data: Multitracks | ClapPairs, what: str, where: Sequence[str]) -> None:
    if len(data) == 0:
        raise StemlabError(f"{', '.join(where)}: no {what}; enable a corpus with them (data.synthetic) or check the segment tables")
