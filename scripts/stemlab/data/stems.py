"""One canonical-stems job: all songs of one corpus shard, written into a temp dir that is renamed on success.

Real corpora: the job lists the whole corpus (cheap, no audio), computes every song's split from the
full song list (so each shard job agrees on it), keeps the songs with hash_shard(song id) == its shard
and converts them in song-id order. Synthetic: one synth shard is linked (same shard name).
Output: <out>/<song>/..., <out>/manifest.parquet, <out>/skipped.json (songs left out under
data.audio.bad_song: skip, each with its one-line error).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from stemlab.atomic import atomic_dir
from stemlab.data.build import build_song
from stemlab.data.conform import AudioPolicy
from stemlab.data.corpora import CORPORA
from stemlab.data.manifest import manifest_row, write_manifest
from stemlab.data.synthetic import link_song, song_dirs
from stemlab.download.extract import MANIFEST
from stemlab.errors import StemlabError
from stemlab.logs import progress
from stemlab.plan import hash_shard, shard_index

log = logging.getLogger("stemlab.data")


def shard_songs(corpus: str, root: Path, shard: str, n_shards: int, corpus_cfg: dict) -> tuple[dict, dict, list[str]]:
    """(song handles, splits of the whole corpus, the sorted song ids of this shard)."""
    if corpus not in CORPORA:
        raise StemlabError(f"unknown corpus {corpus!r}; expected one of {', '.join(CORPORA)}")
    if not root.is_dir():
        raise StemlabError(f"{root}: corpus folder missing; run the extract_corpus rule or set data.corpora.{corpus}.path")
    adapter = CORPORA[corpus]
    adapter.check_config(corpus_cfg)  # a key no adapter reads is a mistake, not silently ignored
    songs = adapter.discover(root, corpus_cfg)
    splits = adapter.splits(songs, corpus_cfg)
    index = shard_index(shard)
    if index >= n_shards:
        raise StemlabError(f"{shard} is past data.corpora.{corpus}.shards={n_shards}; ask for a shard below it")
    mine = sorted(sid for sid in songs if hash_shard(sid, n_shards) == index)
    return songs, splits, mine


_REFETCH = re.compile(
    r"re-(?:download|extract)(?: or re-(?:download|extract))?(?: (?:the corpus archive|the corpus|the file|it|musdb18hq\.zip))?"
)


class _ForUser(StemlabError):
    """A StemlabError already rewritten by for_user."""


def linked_folder(root: Path) -> Path | None:
    """The user's folder that `root` mirrors as links (.stemlab-source.json says source "folder"), else None."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(manifest, dict) and manifest.get("source") == "folder" and manifest.get("path"):
        return Path(manifest["path"])
    return None


def for_user(exc: StemlabError, root: Path, corpus: str) -> StemlabError:
    """For a corpus linked from the user's folder: name the user's file, not its link under resources/corpora,
    and advise fixing that file rather than re-extracting (which would link the same file again)."""
    origin = linked_folder(root)
    if origin is None or isinstance(exc, _ForUser):
        return exc
    linked = re.compile(r"(?<![\w./-])" + re.escape(str(root).rstrip("/")) + r"(?=/|[:;,)\s]|$)")
    message = linked.sub(lambda _: str(origin), str(exc))
    message = _REFETCH.sub(f"fix it in your corpus folder (data.corpora.{corpus}.path, linked, not copied)", message)
    return _ForUser(message)


def _finish(tmp: Path, rows: list[dict], skipped: list[dict]) -> None:
    write_manifest(tmp / "manifest.parquet", rows)
    (tmp / "skipped.json").write_text(json.dumps(skipped, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _handle(exc: StemlabError, sid: str, tmp: Path, bad_song: str, skipped: list[dict]) -> None:
    if bad_song != "skip":
        raise exc
    log.warning("skipping song %s: %s", sid, exc)
    shutil.rmtree(tmp / sid, ignore_errors=True)
    skipped.append({"song": sid, "error": str(exc)})


def build_corpus_shard(
    corpus: str,
    root: Path,
    shard: str,
    n_shards: int,
    corpus_cfg: dict,
    audio_cfg: dict,
    out: Path,
) -> int:
    try:
        return _build_corpus_shard(corpus, root, shard, n_shards, corpus_cfg, audio_cfg, out)
    except StemlabError as exc:
        raise for_user(exc, root, corpus) from exc


def _build_corpus_shard(corpus, root, shard, n_shards, corpus_cfg, audio_cfg, out) -> int:
    policy = AudioPolicy.from_config(audio_cfg)
    bad_song = policy.bad_song
    songs, splits, mine = shard_songs(corpus, root, shard, n_shards, corpus_cfg)
    log.info("%s %s: %d of %d songs", corpus, shard, len(mine), len(songs))
    make_spec = CORPORA[corpus].spec(root, corpus_cfg)
    rows: list[dict] = []
    skipped: list[dict] = []
    with atomic_dir(out) as tmp:
        for sid in progress(mine, desc=f"{corpus} {shard}"):
            try:
                spec = make_spec(sid, songs[sid], splits[sid])
                song = build_song(spec, tmp / sid, policy, root)
            except StemlabError as exc:
                _handle(for_user(exc, root, corpus), sid, tmp, bad_song, skipped)
                continue
            rows.append(manifest_row(song, shard))
        _finish(tmp, rows, skipped)
    return len(rows)


def link_synthetic_shard(src: Path, shard: str, out: Path, bad_song: str = "fail") -> int:
    rows: list[dict] = []
    skipped: list[dict] = []
    with atomic_dir(out) as tmp:
        for song_dir in progress(song_dirs(src), desc=f"synthetic {shard}"):
            try:
                song = link_song(song_dir, tmp / song_dir.name, shard)
            except StemlabError as exc:
                _handle(exc, song_dir.name, tmp, bad_song, skipped)
                continue
            rows.append(manifest_row(song, shard))
        _finish(tmp, rows, skipped)
    return len(rows)
