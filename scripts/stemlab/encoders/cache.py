"""The embedding cache: an encoder's embedding of every window later models read, one file per shard.

`python -m stemlab.encoders.cache --config JOB --out results/cache/<encoder>/<corpus>/<shard>.parquet`
(the cache_embeddings rule, workflow/rules/cache.smk) loads the encoder's final.pt and embeds, for each
window of `JOB.segments` and each segment row of the shard, the stem's wet audio, its dry audio where the
song has one, and the song's mix over the same span (stem `mix`, source `mix`, once per span).

The file has one row per embedding, sorted by (window, song, stem, source, start):
corpus, shard, split, song, stem, source (wet | dry | mix), window, start, length (samples at 44.1 kHz)
and `embedding` (fixed_size_list<float32>[dim]); its schema metadata `stemlab.cache` holds the encoder,
its seed, the identity hash and sha256 of its final.pt and the embedding dimension. The bytes depend only
on the job (not on the decoding threads): batches are formed in a fixed order, torch runs with
`cpu_threads` threads and deterministic algorithms, and the file is written atomically.

Later models read the files with `read_cache(paths)` or `EmbeddingCache.read(paths)` and look entries up
by (song, stem, source, window, start); a missing or stale entry is a one-line error.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import log, progress, setup_logging

FORMAT = 1
META_KEY = b"stemlab.cache"
SOURCES = ("wet", "dry", "mix")
KEY_COLUMNS = ("corpus", "shard", "split", "song", "stem", "source", "window", "start", "length")
LOOKUP_KEY = ("song", "stem", "source", "window", "start")
ORDER = ("window", "song", "stem", "source", "start")  # the rows' order in a file
RERUN = "re-run `snakemake cache` (or the cache_embeddings job of this shard)"


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class CacheJob:
    """What the cache_embeddings rule hands one job (stemlab.cacheplan.cache_job_config)."""

    encoder: str
    seed: int
    corpus: str
    shard: str
    model: str  # the encoder's final.pt
    segments: dict[str, str]  # window -> the corpus's segment table of that window
    stems: str  # the canonical stem shard folder results/data/stems/<corpus>/<shard>
    inputs: dict[str, Any] = field(default_factory=dict)  # upstream models / pretrained folders the encoder loads
    sources: tuple[str, ...] = SOURCES
    batch_size: int = 32
    device: str = "auto"
    cpu_threads: int = 2

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CacheJob:
        required = ("encoder", "seed", "corpus", "shard", "model", "segments", "stems")
        missing = [k for k in required if k not in values]
        if missing:
            raise StemlabError(f"cache job config lacks {missing[0]!r}; pass the JSON the workflow writes (stemlab.cacheplan)")
        known = {*required, "inputs", "sources", "batch_size", "device", "cpu_threads"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise StemlabError(f"cache job config: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        sources = tuple(values.get("sources") or SOURCES)
        bad = [s for s in sources if s not in SOURCES]
        if bad:
            raise StemlabError(f"cache job config: unknown source {bad[0]!r}; cache.sources takes {', '.join(SOURCES)}")
        batch_size = int(values.get("batch_size", 32))
        if batch_size < 1:
            raise StemlabError("cache job config: batch_size must be >= 1; fix cache.batch_size")
        return cls(
            encoder=str(values["encoder"]), seed=int(values["seed"]), corpus=str(values["corpus"]),
            shard=str(values["shard"]), model=str(values["model"]),
            segments={str(k): str(v) for k, v in dict(values["segments"]).items()}, stems=str(values["stems"]),
            inputs=dict(values.get("inputs") or {}), sources=sources, batch_size=batch_size,
            device=str(values.get("device", "auto")), cpu_threads=int(values.get("cpu_threads", 2)),
        )  # fmt: skip


def read_job(text: str) -> CacheJob:
    from stemlab.errors import json_config_arg

    return CacheJob.from_dict(json_config_arg(text, "--config", "pass the JSON the cache_embeddings rule writes"))


# --------------------------------------------------------------------------- what to embed


@dataclass(frozen=True)
class Item:
    """One window of one audio file: a row of the cache."""

    window: str
    song: str
    stem: str
    source: str
    start: int
    length: int
    split: str
    path: Path

    @property
    def order(self) -> tuple:
        return (self.window, self.song, self.stem, self.source, self.start)


def plan_items(job: CacheJob) -> list[Item]:
    """Every window to embed for the job's shard, in the files' row order."""
    from stemlab.data.segment_tables import read_segment_tables, song_json, stem_entry, stem_files

    stems_dir = Path(job.stems)
    if not stems_dir.is_dir():
        raise StemlabError(f"{stems_dir}: canonical stem shard not found; run the data stage (snakemake data) first")
    items: dict[tuple, Item] = {}

    def add(item: Item) -> None:
        have = items.setdefault(item.order, item)
        # the mix of a span is listed once, however many stems have a row there
        if have is not item and (item.source != "mix" or have.length != item.length):
            raise StemlabError(
                f"{job.segments[item.window]}: two rows for {item.song}/{item.stem} at {item.start}; re-run the data stage"
            )

    for window in sorted(job.segments):
        table = read_segment_tables([job.segments[window]])
        rows = table[(table["corpus"] == job.corpus) & (table["shard"] == job.shard)]
        for row in rows.itertuples(index=False):
            song_dir = stems_dir / str(row.song)
            song = song_json(str(song_dir / "song.json"))
            stem = str(row.stem)
            if stem == "mix":
                raise StemlabError(f"{song_dir}/song.json: a stem is named 'mix', which the cache keeps for the song's mix; rename the stem")
            start, length, split = int(row.start), int(row.length), str(row.split)
            entry = stem_entry(song, stem, song_dir)
            dry, wet = stem_files(song_dir, entry)
            if "wet" in job.sources:
                add(Item(window, str(row.song), stem, "wet", start, length, split, wet))
            if "dry" in job.sources and ((entry.get("files") or {}).get("dry") or dry.is_file()):
                add(Item(window, str(row.song), stem, "dry", start, length, split, dry))
            if "mix" in job.sources:
                mix = song_dir / str(song.get("mix") or "mix.flac")
                add(Item(window, str(row.song), "mix", "mix", start, length, split, mix))
    return [items[k] for k in sorted(items)]


def batches(items: Sequence[Item], batch_size: int) -> list[list[int]]:
    """Indices of `items` in batches of equal window length (stacked into one tensor), in a fixed order:
    by length, then row order; a batch holds at most `batch_size` items."""
    order = sorted(range(len(items)), key=lambda i: (items[i].length, i))
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < batch_size and items[out[-1][-1]].length == items[i].length:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _read(item: Item) -> np.ndarray:
    from stemlab.data.segment_tables import read_window

    return read_window(item.path, item.start, item.length)


def decoded(items: Iterable[Item], workers: int, ahead: int) -> Iterator[np.ndarray]:
    """The audio of `items`, in order, decoded by `workers` threads at most `ahead` items in advance."""
    if workers <= 0:
        yield from map(_read, items)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
    pending: deque[Future[np.ndarray]] = deque()
    source = iter(items)
    try:
        for item in source:
            pending.append(pool.submit(_read, item))
            if len(pending) >= ahead:
                break
        while pending:
            audio = pending.popleft().result()
            nxt = next(source, None)
            if nxt is not None:
                pending.append(pool.submit(_read, nxt))
            yield audio
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- embedding


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    benchmark = torch.backends.cudnn.benchmark
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.backends.cudnn.benchmark = benchmark


def embed_items(task: Any, model: Any, items: Sequence[Item], batch_size: int, workers: int, device: Any, desc: str) -> np.ndarray:
    """(len(items), dim) float32: the encoder's embedding of every item, in batches of `batch_size`."""
    import torch

    dim = int(task.embedding_dim())
    out = np.zeros((len(items), dim), dtype=np.float32)
    plan = batches(items, batch_size)
    audio = decoded((items[i] for b in plan for i in b), workers, ahead=max(2 * batch_size, workers))
    with contextlib.closing(audio), torch.inference_mode():
        for batch in progress(plan, desc=desc, total=len(plan)):
            x = torch.from_numpy(np.stack([next(audio) for _ in batch])).to(device)
            y = task.embed(model, x)
            if not isinstance(y, torch.Tensor) or tuple(y.shape) != (len(batch), dim):
                shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise StemlabError(f"{task.job.task}: embed returned {shape} for {len(batch)} clips, expected ({len(batch)}, {dim}); fix the encoder")
            y = y.detach().to("cpu", torch.float32).numpy()
            if not np.isfinite(y).all():
                item = items[batch[int(np.nonzero(~np.isfinite(y).all(axis=1))[0][0])]]
                raise StemlabError(f"{item.path}: the encoder's embedding of {item.window} window at {item.start} is not finite; check the audio and the model")
            out[batch] = y
    return out


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def cache_table(job: CacheJob, items: Sequence[Item], embeddings: np.ndarray, meta: Mapping[str, Any]) -> pa.Table:
    n, dim = embeddings.shape
    flat = pa.array(np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1), type=pa.float32())
    columns = {
        "corpus": pa.array([job.corpus] * n, pa.string()),
        "shard": pa.array([job.shard] * n, pa.string()),
        "split": pa.array([it.split for it in items], pa.string()),
        "song": pa.array([it.song for it in items], pa.string()),
        "stem": pa.array([it.stem for it in items], pa.string()),
        "source": pa.array([it.source for it in items], pa.string()),
        "window": pa.array([it.window for it in items], pa.string()),
        "start": pa.array([it.start for it in items], pa.int64()),
        "length": pa.array([it.length for it in items], pa.int64()),
        "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
    }
    table = pa.table(columns)
    return table.replace_schema_metadata({META_KEY: json.dumps(dict(meta), sort_keys=True).encode("utf-8")})


def cache_job(job: CacheJob, out: str | os.PathLike[str], workers: int = 0) -> dict[str, Any]:
    """Embed the job's shard and write `out` atomically; returns the file's metadata."""
    t0 = time.perf_counter()
    items = plan_items(job)  # before torch is imported: a missing input fails at once

    from stemlab.atomic import atomic_path
    from stemlab.device import resolve_device, torch_threads
    from stemlab.encoders.base import EncoderTask
    from stemlab.train.task import load_trained

    with torch_threads(job.cpu_threads), _deterministic():
        device = resolve_device(job.device)
        task, model, payload = load_trained(job.model, device, job.inputs)
        if payload.get("model") != job.encoder:
            raise StemlabError(f"{job.model}: holds model {payload.get('model')!r}, not encoder {job.encoder!r}; point at the {job.encoder} model")
        if not isinstance(task, EncoderTask):
            raise StemlabError(
                f"model {job.encoder} ({payload.get('task')}) is not an encoder (stemlab.encoders.base.EncoderTask); "
                "remove it from cache.encoders"
            )
        log.info("%s %s/%s: %d windows on %s, batch %d, %d decoding threads", job.encoder, job.corpus, job.shard,
                 len(items), device, job.batch_size, workers)  # fmt: skip
        embeddings = embed_items(task, model, items, job.batch_size, workers, device, f"{job.encoder} {job.corpus}/{job.shard}")
    meta = {
        "format": FORMAT,
        "encoder": job.encoder,
        "task": payload.get("task"),
        "seed": int(payload.get("seed", job.seed)),
        "identity_hash": payload.get("identity_hash"),
        "model_sha256": sha256_file(job.model),
        "embedding_dim": int(embeddings.shape[1]),
        "corpus": job.corpus,
        "shard": job.shard,
        "windows": sorted(job.segments),
        "sources": list(job.sources),
        "batch_size": job.batch_size,
        "rows": len(items),
    }
    table = cache_table(job, items, embeddings, meta)
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    log.info("%s: %d embeddings of %d dims in %.1f s", out, len(items), embeddings.shape[1], time.perf_counter() - t0)
    return meta


# --------------------------------------------------------------------------- reading


def cache_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `stemlab.cache` metadata of a cache file, with one-line errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"{path}: embedding cache not found; run `snakemake cache` (or its cache_embeddings job) first")
    try:
        raw = pq.read_schema(path).metadata or {}
    except Exception as exc:  # noqa: BLE001 - any decode failure is the same user problem
        raise StemlabError(f"{path}: cannot read the embedding cache ({type(exc).__name__}); {RERUN}") from exc
    try:
        meta = json.loads(raw[META_KEY])
    except (KeyError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise StemlabError(f"{path}: not a stemlab embedding cache of format {FORMAT}; {RERUN}")
    return meta


class EmbeddingCache:
    """The rows of one or more cache files of one encoder: `keys` (a DataFrame of KEY_COLUMNS) and
    `embeddings` ((rows, dim) float32, aligned with `keys`)."""

    def __init__(self, keys: pd.DataFrame, embeddings: np.ndarray, meta: Mapping[str, Any], paths: Sequence[Path]) -> None:
        self.keys = keys
        self.embeddings = embeddings
        self.meta = dict(meta)
        self.paths = list(paths)
        self._index: dict[tuple, int] | None = None

    @property
    def encoder(self) -> str:
        return str(self.meta["encoder"])

    @property
    def dim(self) -> int:
        return int(self.meta["embedding_dim"])

    @classmethod
    def read(cls, paths: Iterable[str | os.PathLike[str]], identity_hash: str | None = None) -> EmbeddingCache:
        """Cache files of one encoder; `identity_hash` (the `identity_hash` of the encoder's final.pt, as
        the reader loads it) refuses a cache written by another version of the encoder."""
        paths = [Path(p) for p in paths]
        if not paths:
            raise StemlabError("no embedding cache files given; list results/cache/<encoder>/<corpus>/<shard>.parquet files")
        keys, blocks, first = [], [], None
        for path in paths:
            meta = cache_meta(path)
            if first is None:
                first = (path, meta)
            else:
                ref_path, ref = first
                for key in ("encoder", "identity_hash", "embedding_dim"):
                    if meta.get(key) != ref.get(key):
                        raise StemlabError(
                            f"{path}: {key} {meta.get(key)!r} differs from {ref.get(key)!r} of {ref_path}; the older "
                            f"file is stale: {RERUN}"
                        )
            if identity_hash is not None and meta.get("identity_hash") != identity_hash:
                raise StemlabError(
                    f"{path}: embeddings of {meta.get('encoder')} {str(meta.get('identity_hash'))[:12]}, but the encoder "
                    f"is now {identity_hash[:12]}; the cache is stale: {RERUN}"
                )
            try:
                table = pq.read_table(path)
            except Exception as exc:  # noqa: BLE001
                raise StemlabError(f"{path}: cannot read the embedding cache ({type(exc).__name__}); {RERUN}") from exc
            missing = [c for c in (*KEY_COLUMNS, "embedding") if c not in table.column_names]
            if missing:
                raise StemlabError(f"{path}: embedding cache lacks column {missing[0]}; {RERUN}")
            dim = int(meta["embedding_dim"])
            column = table.column("embedding").combine_chunks()
            values = column.flatten() if len(column) else pa.array([], pa.float32())
            blocks.append(np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim))
            keys.append(table.select(list(KEY_COLUMNS)).to_pandas())
        assert first is not None
        frame = pd.concat(keys, ignore_index=True)
        return cls(frame, np.concatenate(blocks, axis=0), first[1], paths)

    def _where(self) -> str:
        return str(self.paths[0]) if len(self.paths) == 1 else f"{len(self.paths)} files of results/cache/{self.encoder}"

    def index(self) -> dict[tuple, int]:
        """(song, stem, source, window, start) -> row."""
        if self._index is None:
            columns = [self.keys[c].tolist() for c in LOOKUP_KEY]
            index: dict[tuple, int] = {}
            for row, key in enumerate(zip(*columns)):
                if key in index:
                    raise StemlabError(
                        f"{self._where()}: two cache rows for {'/'.join(map(str, key))}; read one corpus at a time"
                    )
                index[key] = row
            self._index = index
        return self._index

    def _missing(self, song: str, stem: str, source: str, window: str, start: int) -> StemlabError:
        return StemlabError(
            f"{self._where()}: no {self.encoder} embedding of song {song!r} stem {stem!r} ({source}) in the {window} "
            f"window at {start}; the cache is stale or lacks this corpus, window or source: {RERUN}"
        )

    def row(self, song: str, stem: str, source: str, window: str, start: int, length: int | None = None) -> int:
        key = (str(song), str(stem), str(source), str(window), int(start))
        found = self.index().get(key)
        if found is None:
            raise self._missing(*key)
        if length is not None and int(self.keys["length"].iat[found]) != int(length):
            raise StemlabError(
                f"{self._where()}: the {self.encoder} embedding of {song}/{stem} ({source}) in the {window} window at "
                f"{start} covers {int(self.keys['length'].iat[found])} samples, not {int(length)}; the cache is stale: {RERUN}"
            )
        return found

    def lookup(self, song: str, stem: str, source: str, window: str, start: int, length: int | None = None) -> np.ndarray:
        """The (dim,) embedding of one window; `length` also checks the span the entry covers."""
        return self.embeddings[self.row(song, stem, source, window, start, length)]

    def take(self, frame: pd.DataFrame) -> np.ndarray:
        """(len(frame), dim) embeddings of the rows of `frame` (columns song, stem, source, window, start,
        and optionally length), in its order; the first missing or stale row is a one-line error."""
        wanted = frame[list(LOOKUP_KEY)].reset_index(drop=True)
        keys = self.keys[[*LOOKUP_KEY, "length"]].assign(_row=np.arange(len(self.keys)))
        merged = wanted.merge(keys, on=list(LOOKUP_KEY), how="left", validate="many_to_one", sort=False)
        absent = merged["_row"].isna().to_numpy()
        if absent.any():
            first = merged.loc[int(np.argmax(absent))]
            raise self._missing(first["song"], first["stem"], first["source"], first["window"], int(first["start"]))
        rows = merged["_row"].to_numpy(dtype=np.int64)
        if "length" in frame.columns:
            have = self.keys["length"].to_numpy()[rows]
            want = frame["length"].to_numpy()
            if (have != want).any():
                bad = int(np.argmax(have != want))
                key = merged.loc[bad]
                self.row(key["song"], key["stem"], key["source"], key["window"], int(key["start"]), int(want[bad]))
        return self.embeddings[rows]


def read_cache(paths: Iterable[str | os.PathLike[str]], identity_hash: str | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """(keys, embeddings) of cache files of one encoder: KEY_COLUMNS rows and a (rows, dim) float32 array."""
    cache = EmbeddingCache.read(paths, identity_hash)
    return cache.keys, cache.embeddings


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.encoders.cache", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="cache job config: inline JSON or a JSON file (stemlab.cacheplan)")
    parser.add_argument("--out", required=True, help="the cache file (results/cache/<encoder>/<corpus>/<shard>.parquet)")
    parser.add_argument("--workers", type=int, default=2, help="audio decoding threads (the bytes do not depend on it)")
    parser.add_argument("--log", default=None, help="also log to this file")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    meta = cache_job(read_job(args.config), args.out, workers=args.workers)
    print(json.dumps(meta, sort_keys=True), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
