"""The corpus registry: one place that knows how each real corpus is discovered, split and read, and which
keys of its config section (data.corpora.<corpus>, less the download keys) it reads.

Defaults of those keys (SPLIT_DEFAULTS, musdb.VALID_SONGS, medleydb.COEFFICIENTS) are kept in Python
(the data CLIs run by hand; the data env has no jsonschema); tests/test_config_schema.py checks that
they equal the schema's and that every key of each corpus section is listed in `keys`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stemlab.data import medleydb, moisesdb, musdb
from stemlab.data.spec import SongSpec
from stemlab.data.splits import random_split
from stemlab.download.sources import SPLIT_DEFAULTS
from stemlab.errors import check_section_keys

# keys of data.corpora.<corpus> that only say where the corpus comes from (the download rules'), not
# how it is read: the canonical_stems job is not handed them
SOURCE_KEYS = ("enabled", "path", "url", "sha256")


def _split_cfg(cfg: dict) -> dict:
    split = check_section_keys(cfg.get("split"), SPLIT_DEFAULTS, "data.corpora.<corpus>.split")
    return {**SPLIT_DEFAULTS, **split}


@dataclass(frozen=True)
class Corpus:
    name: str
    discover: Callable[[Path, dict], dict]
    splits: Callable[[dict, dict], dict[str, str]]
    spec: Callable[[Path, dict], Callable[[str, object, str], SongSpec]]
    keys: tuple[str, ...]  # the keys of data.corpora.<name> the adapter reads (besides SOURCE_KEYS)

    def check_config(self, cfg: dict | None) -> dict:
        """data.corpora.<name> without its source keys, once every key is one the adapter reads."""
        cfg = {k: v for k, v in (cfg or {}).items() if k not in SOURCE_KEYS}
        return check_section_keys(cfg, self.keys, f"data.corpora.{self.name}")


def _random_splits(songs: dict, cfg: dict) -> dict[str, str]:
    s = _split_cfg(cfg)
    return random_split(songs, s["seed"], s["train"], s["valid"])


def _moises_spec(root: Path, cfg: dict):
    return lambda sid, handle, split: moisesdb.song_spec(handle, split)


def _musdb_spec(root: Path, cfg: dict):
    return lambda sid, handle, split: musdb.song_spec(handle, split)


def _medley_spec(root: Path, cfg: dict):
    coefficients, path = medleydb.load_coefficients(root, cfg)
    kind = cfg.get("coefficients", medleydb.COEFFICIENTS)
    return lambda sid, handle, split: medleydb.song_spec(handle, split, coefficients, path, kind)


CORPORA: dict[str, Corpus] = {
    "moisesdb": Corpus("moisesdb", moisesdb.discover, _random_splits, _moises_spec, ("shards", "split")),
    "musdb18hq": Corpus("musdb18hq", musdb.discover, musdb.splits, _musdb_spec, ("shards", "valid_songs")),
    "medleydb": Corpus("medleydb", medleydb.discover, _random_splits, _medley_spec,
                       ("shards", "split", "coefficients", "coefficients_file")),  # fmt: skip
}
