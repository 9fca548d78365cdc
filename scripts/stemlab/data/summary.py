"""Song tables per corpus (results/data/splits/<corpus>.parquet) and the corpus summary table
(results/tables/corpora.csv): songs, hours, split sizes and hours, songs per stem category."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stemlab.atomic import atomic_path
from stemlab.data.manifest import read_manifests, write_table
from stemlab.data.spec import SPLITS
from stemlab.errors import StemlabError
from stemlab.taxonomy import STEMS

SPLIT_SCHEMA = pa.schema(
    [
        ("song", pa.string()),
        ("corpus", pa.string()),
        ("shard", pa.string()),
        ("split", pa.string()),
        ("n_frames", pa.int64()),
        ("duration_s", pa.float64()),
        ("categories", pa.list_(pa.string())),
        ("n_tracks", pa.int32()),
    ]
)


def write_splits(stems_dirs: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str]) -> pd.DataFrame:
    manifest = read_manifests(stems_dirs)
    dupes = manifest["song"][manifest["song"].duplicated()]
    if len(dupes):
        raise StemlabError(f"{out}: song {dupes.iloc[0]} appears in two shards; delete the corpus's stems folders and re-run")
    bad = manifest[~manifest["split"].isin(SPLITS)]
    if len(bad):
        raise StemlabError(f"{out}: song {bad['song'].iloc[0]} has split {bad['split'].iloc[0]!r}; re-run its stems rule")
    rows = manifest.sort_values("song")[[f.name for f in SPLIT_SCHEMA]].to_dict("records")
    for row in rows:
        row["categories"] = list(row["categories"])
    write_table(out, rows, SPLIT_SCHEMA)
    return manifest


def corpus_row(corpus: str, songs: pd.DataFrame) -> dict:
    row: dict = {"corpus": corpus, "songs": len(songs), "hours": round(songs["duration_s"].sum() / 3600.0, 6)}
    for split in SPLITS:
        part = songs[songs["split"] == split]
        row[f"songs_{split}"] = len(part)
        row[f"hours_{split}"] = round(part["duration_s"].sum() / 3600.0, 6)
    row["tracks_per_song"] = round(float(songs["n_tracks"].mean()), 3) if len(songs) else 0.0
    for category in STEMS:
        row[f"stem_{category}"] = int(sum(category in list(c) for c in songs["categories"]))
    return row


def corpora_table(split_tables: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str]) -> pd.DataFrame:
    rows = []
    for path in split_tables:
        if not Path(path).is_file():
            raise StemlabError(f"{path}: missing; re-run the splits rule")
        songs = pq.read_table(path).to_pandas()
        rows.append(corpus_row(Path(path).stem, songs))
    table = pd.DataFrame(rows).sort_values("corpus", kind="stable")
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    return table
