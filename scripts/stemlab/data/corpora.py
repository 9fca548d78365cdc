"""The corpus registry: one place that knows how each real corpus is discovered, split and read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stemlab.data import medleydb, moisesdb, musdb
from stemlab.data.spec import SongSpec
from stemlab.data.splits import random_split

def _split_cfg(cfg: dict) -> dict:
    split = cfg.get("split") or {}
    return {"seed": split.get("seed", 42), "train": split.get("train", 0.8), "valid": split.get("valid", 0.1)}


@dataclass(frozen=True)
class Corpus:
    name: str
    discover: Callable[[Path, dict], dict]
    splits: Callable[[dict, dict], dict[str, str]]
    spec: Callable[[Path, dict], Callable[[str, object, str], SongSpec]]


def _random_splits(songs: dict, cfg: dict) -> dict[str, str]:
    s = _split_cfg(cfg)
    return random_split(songs, s["seed"], s["train"], s["valid"])


def _moises_spec(root: Path, cfg: dict):
    return lambda sid, handle, split: moisesdb.song_spec(handle, split)


def _musdb_spec(root: Path, cfg: dict):
    return lambda sid, handle, split: musdb.song_spec(handle, split)


def _medley_spec(root: Path, cfg: dict):
    coefficients, path = medleydb.load_coefficients(root, cfg)
    kind = cfg.get("coefficients", "audio")
    return lambda sid, handle, split: medleydb.song_spec(handle, split, coefficients, path, kind)


CORPORA: dict[str, Corpus] = {
    "moisesdb": Corpus("moisesdb", moisesdb.discover, _random_splits, _moises_spec),
    "musdb18hq": Corpus("musdb18hq", musdb.discover, musdb.splits, _musdb_spec),
    "medleydb": Corpus("medleydb", medleydb.discover, _random_splits, _medley_spec),
}
