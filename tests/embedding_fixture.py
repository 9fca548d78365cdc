"""Segment tables and embedding-cache files written by the tests (no audio, no encoder): a clap cache with wet
and dry entries and an fx_encoder cache with wet entries, for the domain adaptor and the FxGenerator.

Songs have 2-5 stems of a few categories and three megami windows each. CLAP(dry) of a stem is a unit
vector of its category direction plus song/stem content; CLAP(wet) is a fixed linear distortion of it plus
an offset, renormalised (what an adaptor can learn to undo). The wet effect embedding of a stem is
join(category style + small song noise, MEGAMI's Fourier features of a category level), so a generator
conditioned on CLAP can place each track's embedding near its category's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from stemlab.encoders.cache import FORMAT, CacheJob, Item, cache_table
from stemlab.encoders.fx.features import fourier_features, join
from stemlab.seeding import rng

SHARD = "shard-00000"
CATEGORIES = ("bass", "drums", "vocals", "keys", "guitar")
LEVELS = {"bass": -18.0, "drums": -12.0, "vocals": -20.0, "keys": -28.0, "guitar": -24.0}
WINDOW = 1024
STARTS = (0, 512, 1024)


def song_stems(s: int) -> list[str]:
    r = rng(7, "stems", s)
    n = int(r.integers(2, 6))
    return sorted(str(c) for c in r.choice(CATEGORIES, size=n, replace=False))


def write_embedding_corpus(root: Path, songs: int = 16, clap_dim: int = 16, fx_learned: int = 16, dry: bool = True) -> dict:
    """Segment table root/megami.parquet and cache files root/cache/{clap,fx_encoder}.parquet."""
    root.mkdir(parents=True, exist_ok=True)
    g = rng(3, "directions")
    cat_dir = {c: g.standard_normal(clap_dim) for c in CATEGORIES}
    style = {c: g.standard_normal(fx_learned) for c in CATEGORIES}
    distort = np.eye(clap_dim) + 0.6 * g.standard_normal((clap_dim, clap_dim)) / np.sqrt(clap_dim)
    offset = 0.8 * g.standard_normal(clap_dim)
    splits = ["train"] * (songs - 4) + ["valid", "valid", "test", "test"]
    rows, clap_items, clap_emb, fx_items, fx_emb = [], [], [], [], []
    for s in range(songs):
        song, split = f"song-{s:04d}", splits[s]
        for stem in song_stems(s):
            r = rng(5, song, stem)
            content = r.standard_normal(clap_dim) * 0.6
            level = LEVELS[stem] + r.normal(0, 2.0)
            for start in STARTS:
                rows.append({"song": song, "stem": stem, "start": start, "length": WINDOW, "active": True, "corpus": "synthetic",
                             "shard": SHARD, "split": split, "category": stem})  # fmt: skip
                d = cat_dir[stem] + content + 0.1 * r.standard_normal(clap_dim)
                d /= np.linalg.norm(d)
                w = distort @ d + offset
                w /= np.linalg.norm(w)
                for source, e in (("wet", w), ("dry", d)) if dry else (("wet", w),):
                    clap_items.append(Item("megami", song, stem, source, start, WINDOW, split, Path("x")))
                    clap_emb.append(e)
                learned = torch.tensor(style[stem] + 0.3 * r.standard_normal(fx_learned))
                feats = torch.tensor([[level, level - 1, 14.0, 14.0, -18.0, -18.0, 0.2, 0.0]])
                fx_items.append(Item("megami", song, stem, "wet", start, WINDOW, split, Path("x")))
                fx_emb.append(join(learned[None], fourier_features(feats))[0].numpy())
    table = pd.DataFrame(rows)
    # an inactive window is never read
    table = pd.concat([table, table.head(1).assign(start=4096, active=False)], ignore_index=True)
    table.to_parquet(root / "megami.parquet")
    cache = root / "cache"
    cache.mkdir(exist_ok=True)
    paths = {}
    for encoder, items, emb in (("clap", clap_items, clap_emb), ("fx_encoder", fx_items, fx_emb)):
        order = sorted(range(len(items)), key=lambda i: items[i].order)
        items = [items[i] for i in order]
        emb = np.asarray(emb, dtype=np.float32)[order]
        job = CacheJob(encoder=encoder, seed=1, corpus="synthetic", shard=SHARD, model="x", segments={}, stems="x")
        meta = {"format": FORMAT, "encoder": encoder, "identity_hash": f"{encoder}-fixture", "embedding_dim": int(emb.shape[1])}
        paths[encoder] = cache / f"{encoder}.parquet"
        pq.write_table(cache_table(job, items, emb, meta), paths[encoder])
    return {"segments": root / "megami.parquet", "clap": paths["clap"], "fx_encoder": paths["fx_encoder"], "clap_dim": clap_dim,
            "fx_dim": fx_learned + 64}  # fmt: skip
