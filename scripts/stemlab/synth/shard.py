"""Shard jobs: generate songs [start, start + count) into a directory that appears only when complete."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from stemlab.atomic import atomic_dir, atomic_path
from stemlab.download.fetch import sha256_file
from stemlab.errors import StemlabError
from stemlab.logs import progress
from stemlab.synth.render import Renderer, check_soundfonts
from stemlab.synth.song import SongMaker, SynthSettings, manifest_row, song_id, write_song

log = logging.getLogger("stemlab.synth")
MANIFEST = "manifest.parquet"

# one SongMaker (and its loaded soundfonts) per worker process
_MAKER: SongMaker | None = None
_OUT: Path | None = None


def _init_worker(settings: SynthSettings, digests: dict[str, str], out: str) -> None:
    global _MAKER, _OUT
    _MAKER = SongMaker(settings, Renderer(settings.pools.all(), settings.sample_rate), digests)
    _OUT = Path(out)


def _make_one(index: int) -> dict:
    assert _MAKER is not None and _OUT is not None
    song = _MAKER.make(index)
    write_song(song, _OUT / song_id(index), _MAKER.settings.outputs)
    return manifest_row(song)


def remove_stale_temps(out: Path) -> None:
    """Temp directories a killed job left beside `out` (atomic_dir names them .<name>.*.part)."""
    for p in out.parent.glob(f".{out.name}.*.part"):
        if p.is_dir():
            log.info("removing %s left by an interrupted run", p)
            shutil.rmtree(p, ignore_errors=True)


def generate(settings: SynthSettings, out: str | os.PathLike[str], start: int, count: int, workers: int = 1) -> pd.DataFrame:
    """Songs start..start+count-1 into `out` (replaced as a whole on success) with its manifest."""
    out = Path(out)
    if count < 1 or start < 0:
        raise StemlabError(f"{out}: need --count >= 1 and --start >= 0 (got start {start}, count {count})")
    soundfonts = check_soundfonts(settings.pools.all())
    digests = {sf: sha256_file(sf) for sf in soundfonts}
    remove_stale_temps(out)
    indices = list(range(start, start + count))
    workers = max(1, min(int(workers), count))
    log.info("generating %d songs (%s..%s) into %s with %d worker(s)", count, song_id(indices[0]), song_id(indices[-1]), out, workers)
    with atomic_dir(out) as tmp:
        if workers == 1:
            _init_worker(settings, digests, str(tmp))
            try:
                rows = [_make_one(i) for i in progress(indices, desc=out.name)]
            finally:
                _release()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(settings, digests, str(tmp))) as ex:
                rows = list(progress(ex.map(_make_one, indices), desc=out.name, total=count))
        table = pd.DataFrame(rows)
        table.insert(1, "shard", out.name)
        table.to_parquet(tmp / MANIFEST, index=False)
    log.info("wrote %s", out)
    return table


def _release() -> None:
    global _MAKER, _OUT
    if _MAKER is not None:
        _MAKER.renderer.close()
    _MAKER = _OUT = None


def merge_manifests(shard_dirs: list[str | os.PathLike[str]], out: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per song from every shard's manifest, ordered by song index."""
    tables = []
    for d in shard_dirs:
        path = Path(d) / MANIFEST
        if not path.is_file():
            raise StemlabError(f"{path}: shard manifest missing; re-run the synth_shard job for {Path(d).name}")
        tables.append(pd.read_parquet(path))
    if not tables:
        raise StemlabError(f"{out}: no shard directories given")
    table = pd.concat(tables, ignore_index=True).sort_values("index", kind="stable").reset_index(drop=True)
    dup = table["song_id"][table["song_id"].duplicated()]
    if len(dup):
        raise StemlabError(f"{out}: song {dup.iloc[0]} appears in two shards; delete results/synth/shards and regenerate")
    with atomic_path(out) as tmp:
        table.to_parquet(tmp, index=False)
    return table
