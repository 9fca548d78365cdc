"""Per-shard manifest.parquet: one row per canonical song (what the summary, splits and models list)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stemlab.atomic import atomic_path
from stemlab.errors import StemlabError

SCHEMA = pa.schema(
    [
        ("song", pa.string()),
        ("corpus", pa.string()),
        ("shard", pa.string()),
        ("split", pa.string()),
        ("sample_rate", pa.int32()),
        ("n_frames", pa.int64()),
        ("duration_s", pa.float64()),
        ("channels", pa.int8()),
        ("stems", pa.list_(pa.string())),  # stem names (file names under wet/)
        ("categories", pa.list_(pa.string())),  # their taxonomy categories, same order
        ("dry_stems", pa.list_(pa.string())),
        ("n_tracks", pa.int32()),  # source tracks summed into the wet stems
        ("path", pa.string()),  # song folder relative to the shard folder
    ]
)


def manifest_row(song: dict, shard: str) -> dict:
    stems = song.get("stems", [])
    return {
        "song": str(song["id"]),
        "corpus": str(song["corpus"]),
        "shard": shard,
        "split": str(song["split"]),
        "sample_rate": int(song["sample_rate"]),
        "n_frames": int(song["n_frames"]),
        "duration_s": float(song["n_frames"]) / float(song["sample_rate"]),
        "channels": int(song.get("channels", 2)),
        "stems": [str(s["name"]) for s in stems],
        "categories": [str(s["category"]) for s in stems],
        "dry_stems": [str(s["name"]) for s in stems if (s.get("files") or {}).get("dry")],
        "n_tracks": int(sum(int(s.get("n_tracks", 1)) for s in stems)),
        "path": str(song["id"]),
    }


def write_table(path: str | os.PathLike[str], rows: list[dict], schema: pa.Schema) -> None:
    """Parquet written atomically with a fixed schema (an empty shard still has its columns)."""
    write_arrow(path, pa.Table.from_pylist(rows, schema=schema))


def write_arrow(path: str | os.PathLike[str], table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_manifest(path: str | os.PathLike[str], rows: list[dict]) -> None:
    write_table(path, sorted(rows, key=lambda r: r["song"]), SCHEMA)


def read_manifests(shard_dirs: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    frames = []
    for folder in shard_dirs:
        path = Path(folder) / "manifest.parquet"
        if not path.is_file():
            raise StemlabError(f"{path}: missing; re-run the stems rule for this shard")
        frames.append(pq.read_table(path).to_pandas())
    if not frames:
        return SCHEMA.empty_table().to_pandas()
    return pd.concat(frames, ignore_index=True)
