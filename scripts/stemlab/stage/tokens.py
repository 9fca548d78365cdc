"""Stage's token shards: the file format (written by stemlab.stage.tokenize) and `read_tokens`.

A shard (results/stage/tokens/<corpus>/<shard>.parquet) has one row per (song, role, stem), sorted by song,
role (target, context, metronome) and stem:

corpus, shard, split, song   the song
role                         `target`: a target stem (stage_tokens.targets, e.g. drums, bass: the sum of the
                             song's tracks of that category); `context`: every other non-silent stem whose
                             category is not in stage_tokens.exclude (for a target T the LM's context pool is
                             these rows plus the `target` rows of the other targets); `metronome`: the click
                             track rendered from the beats (stem `click`, stemlab.stage.metronome)
stem                         the category name (`click` for the metronome)
n_frames                     F, codec frames of the (whole or max_seconds-capped) song
codes                        list<int16>: the (K, F) codes flattened row-major (codebook 0's frames first)
beats, downbeats             list<float64>: seconds (synthetic: the annotations; real corpora: essentia's beats
                             from the features table, a downbeat every fourth beat from the first)
tempo_bpm                    annotated (synthetic) or essentia (real) tempo; null when unknown
genre                        the annotated genre ("" when the corpus has none)
description                  the text prompt "Genres: <genre>. Moods: <moods>." (stemlab.stage.tokenize.describe)

Schema metadata `stemlab.tokens` (JSON): format, codec (the codec model's name), kind, seed, model_sha256 (of
its final.pt), sample_rate, n_codebooks, cardinality, frame_rate, hop, corpus, shard, window, max_seconds, rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stemlab.errors import StemlabError

FORMAT = 1
META_KEY = b"stemlab.tokens"
ROLES = ("target", "context", "metronome")
CLICK = "click"
RERUN = "re-run tokenize_stage (snakemake results/stage/tokens/<corpus>/<shard>.parquet)"
CODEC_KEYS = ("codec", "kind", "model_sha256", "sample_rate", "n_codebooks", "cardinality", "frame_rate")
SCHEMA = pa.schema(
    [
        ("corpus", pa.string()),
        ("shard", pa.string()),
        ("split", pa.string()),
        ("song", pa.string()),
        ("role", pa.string()),
        ("stem", pa.string()),
        ("n_frames", pa.int64()),
        ("codes", pa.list_(pa.int16())),
        ("beats", pa.list_(pa.float64())),
        ("downbeats", pa.list_(pa.float64())),
        ("tempo_bpm", pa.float64()),
        ("genre", pa.string()),
        ("description", pa.string()),
    ]
)


def tokens_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `stemlab.tokens` metadata of a token shard, with one-line errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"{path}: token shard not found; {RERUN}")
    try:
        raw = pq.read_schema(path).metadata or {}
        meta = json.loads(raw[META_KEY])
    except (KeyError, ValueError, OSError, pa.ArrowException):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise StemlabError(f"{path}: not a Stage token shard of format {FORMAT}; {RERUN}")
    return meta


def read_tokens(paths: Iterable[str | os.PathLike[str]], codec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The rows of token shards written with one codec: `codes` as (K, F) int64 arrays, `beats` and
    `downbeats` as float64 arrays; `frame.attrs["tokens"]` is the first file's metadata.

    `codec` (any of CODEC_KEYS, e.g. Codec.describe() plus model_sha256) refuses files of another codec."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise StemlabError("no token shards given; list results/stage/tokens/<corpus>/<shard>.parquet files")
    frames, first = [], None
    for path in paths:
        meta = tokens_meta(path)
        reference, where = (meta, path) if first is None else first
        expected = {k: v for k, v in (codec or {}).items() if k in CODEC_KEYS}
        for key in CODEC_KEYS:
            want = expected.get(key, reference.get(key))
            if meta.get(key) != want:
                source = "the codec asked for" if key in expected else f"{where}"
                raise StemlabError(f"{path}: tokens of {key} {meta.get(key)!r}, but {source} has {want!r}; the shard is stale: {RERUN}")
        if first is None:
            first = (meta, path)
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise StemlabError(f"{path}: cannot read the token shard ({type(exc).__name__}); {RERUN}") from exc
        missing = [c for c in SCHEMA.names if c not in table.column_names]
        if missing:
            raise StemlabError(f"{path}: token shard lacks column {missing[0]}; {RERUN}")
        frame = table.select(SCHEMA.names).to_pandas()
        k = int(meta["n_codebooks"])
        codes = []
        for flat, n in zip(frame["codes"], frame["n_frames"]):
            flat = np.asarray(flat, dtype=np.int64)
            if flat.size != k * int(n):
                raise StemlabError(f"{path}: a row holds {flat.size} codes, not {k} x {int(n)}; {RERUN}")
            codes.append(flat.reshape(k, int(n)))
        frame["codes"] = codes
        for column in ("beats", "downbeats"):
            frame[column] = [np.asarray(v, dtype=np.float64) for v in frame[column]]
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out.attrs["tokens"] = dict(first[0]) if first else {}
    return out


def codes_column(codes: Iterable[np.ndarray]) -> pa.Array:
    """list<int16> of (K, F) code arrays, each flattened row-major."""
    flats = [np.ascontiguousarray(c, dtype=np.int64).reshape(-1) for c in codes]
    for flat in flats:
        if flat.size and (flat.min() < 0 or flat.max() > np.iinfo(np.int16).max):
            raise ValueError("codes must lie in [0, 32767] to be stored as int16")
    offsets = np.concatenate([[0], np.cumsum([f.size for f in flats])]).astype(np.int32)
    values = np.concatenate(flats).astype(np.int16) if flats else np.zeros(0, np.int16)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.int16()))


def tokens_table(rows: list[Mapping[str, Any]], meta: Mapping[str, Any]) -> pa.Table:
    """The shard's table of `rows` (dicts with SCHEMA's fields, `codes` as (K, F) arrays) and its metadata."""
    columns = {}
    for field in SCHEMA:
        if field.name == "codes":
            columns["codes"] = codes_column([r["codes"] for r in rows])
        else:
            columns[field.name] = pa.array([r[field.name] for r in rows], field.type)
    table = pa.Table.from_pydict(columns, schema=SCHEMA)
    return table.replace_schema_metadata({META_KEY: json.dumps(dict(meta), sort_keys=True).encode("utf-8")})
