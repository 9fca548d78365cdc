"""Corpus adapters -> canonical song directories: layout, taxonomy mapping, sums, splits, determinism."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from stemlab.data import medleydb, moisesdb, musdb
from stemlab.data.splits import random_split
from stemlab.data.stems import build_corpus_shard, shard_songs
from stemlab.errors import StemlabError
from stemlab.plan import hash_shard
from tests.data_fixtures import MOISES_STEMS, make_medleydb, make_moisesdb, make_musdb


def _read(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float64", always_2d=True)[0]


def _build(corpus: str, root: Path, out: Path, shards: int = 1, cfg: dict | None = None, audio: dict | None = None):
    dirs = []
    for i in range(shards):
        shard = f"shard-{i:05d}"
        build_corpus_shard(corpus, root, shard, shards, cfg or {}, audio or {}, out / shard)
        dirs.append(out / shard)
    return dirs


def _songs(shard_dirs: list[Path]) -> dict[str, Path]:
    return {p.name: p for d in shard_dirs for p in d.iterdir() if p.is_dir()}


# --------------------------------------------------------------------------- MoisesDB


def test_moisesdb_canonical_layout_and_sums(tmp_path):
    root = make_moisesdb(tmp_path / "corpus", n_songs=2, seconds=2.0)
    (shard,) = _build("moisesdb", root, tmp_path / "out")
    manifest = pd.read_parquet(shard / "manifest.parquet")
    assert len(manifest) == 2 and set(manifest["corpus"]) == {"moisesdb"}
    song_dir = shard / manifest["song"].iloc[0]
    song = json.loads((song_dir / "song.json").read_text())
    # every MoisesDB stem folder maps to its own taxonomy category, in taxonomy order
    assert [s["category"] for s in song["stems"]] == ["vocals", "bass", "drums", "guitar"]
    assert {s["name"]: s["n_tracks"] for s in song["stems"]} == {k: len(v) for k, v in MOISES_STEMS.items()}
    drums = next(s for s in song["stems"] if s["name"] == "drums")
    assert drums["reduction"] == "sum" and drums["average_scale"] == pytest.approx(0.5)
    assert "dry" not in drums["files"]  # MoisesDB has no dry recordings
    # the wet drums file is the sum of the two drum tracks (24-bit FLAC: ~1e-7 error)
    tracks = [_read(tmp_path / "corpus" / t["path"]) for t in drums["wet_sources"]]
    assert np.allclose(_read(song_dir / "wet" / "drums.flac"), sum(tracks), atol=1e-5)
    # no mixture in MoisesDB: the mix is the sum of the wet stems
    assert song["data"]["mix_source"] == "sum_of_wet"
    wet_sum = sum(_read(song_dir / s["files"]["wet"]) for s in song["stems"])
    assert np.allclose(_read(song_dir / "mix.flac"), wet_sum, atol=1e-5)
    assert song["n_frames"] == 2 * 44100 and song["sample_rate"] == 44100
    assert song["source"]["genre"] == "pop"
    assert json.loads((shard / "skipped.json").read_text()) == []


def test_moisesdb_missing_data_json_is_one_line(tmp_path):
    root = make_moisesdb(tmp_path / "corpus", n_songs=2, seconds=0.5)
    victim = sorted((root / "moisesdb_v0.1").iterdir())[1]
    (victim / "data.json").unlink()
    with pytest.raises(StemlabError) as err:
        moisesdb.discover(root, {})
    msg = str(err.value)
    assert str(victim / "data.json") in msg and "re-extract" in msg and "\n" not in msg


def test_moisesdb_track_listed_but_missing(tmp_path):
    root = make_moisesdb(tmp_path / "corpus", n_songs=1, seconds=0.5)
    song = next((root / "moisesdb_v0.1").iterdir())
    victim = next((song / "bass").glob("*.wav"))
    victim.unlink()
    with pytest.raises(StemlabError, match="listed in .*data.json but missing"):
        moisesdb.song_spec(song, "train")


def test_moisesdb_unknown_stem_name_is_named(tmp_path):
    root = make_moisesdb(tmp_path / "corpus", n_songs=1, seconds=0.5)
    song = next((root / "moisesdb_v0.1").iterdir())
    meta = json.loads((song / "data.json").read_text())
    meta["stems"][0]["stemName"] = "kazoo"
    (song / "data.json").write_text(json.dumps(meta))
    with pytest.raises(StemlabError, match="'kazoo' is not in the taxonomy"):
        moisesdb.song_spec(song, "train")


def test_moisesdb_split_is_80_10_10_seed_42_and_order_free():
    ids = [f"{i:08x}-song" for i in range(240)]
    split = random_split(ids, 42, 0.8, 0.1)
    counts = pd.Series(split).value_counts().to_dict()
    assert counts == {"train": 192, "valid": 24, "test": 24}
    assert random_split(list(reversed(ids)), 42, 0.8, 0.1) == split
    assert random_split(ids, 43, 0.8, 0.1) != split


def test_split_fractions_over_one_rejected():
    with pytest.raises(StemlabError, match="sum to at most 1"):
        random_split(["a", "b"], 0, 0.9, 0.2)


# --------------------------------------------------------------------------- MUSDB18-HQ


def test_musdb_splits_layout_and_mixture(tmp_path):
    root = make_musdb(tmp_path / "corpus", ["Actions - One Minute Smile", "Band - Train Song"], ["Other - Test Song"],
                      seconds=1.0)
    cfg = {"valid_songs": ["Actions - One Minute Smile"]}
    songs = musdb.discover(root, cfg)
    assert musdb.splits(songs, cfg) == {
        "Actions_-_One_Minute_Smile": "valid", "Band_-_Train_Song": "train", "Other_-_Test_Song": "test",
    }
    dirs = _build("musdb18hq", root, tmp_path / "out", shards=2, cfg=cfg)
    songs_out = _songs(dirs)
    assert set(songs_out) == set(songs)
    for sid, song_dir in songs_out.items():
        assert song_dir.parent.name == f"shard-{hash_shard(sid, 2):05d}"
    song = json.loads((songs_out["Other_-_Test_Song"] / "song.json").read_text())
    assert [s["name"] for s in song["stems"]] == ["vocals", "bass", "drums", "other"]
    assert song["split"] == "test" and song["data"]["mix_source"] == "file"
    # the fixture's mixture is the exact sum of its 16-bit stems: residual far below the signal
    assert song["data"]["mix_residual_db"] < -60
    assert song["source"]["name"] == "Other - Test Song"


def test_musdb_without_train_test_folders(tmp_path):
    (tmp_path / "corpus" / "junk").mkdir(parents=True)
    with pytest.raises(StemlabError, match="no MUSDB18-HQ train/ and test/ folders"):
        musdb.discover(tmp_path / "corpus", {})


# --------------------------------------------------------------------------- MedleyDB


def test_medleydb_coefficients_dry_raw_and_mapping(tmp_path):
    root = make_medleydb(tmp_path / "corpus", n_songs=1, seconds=1.0)
    (shard,) = _build("medleydb", root, tmp_path / "out", cfg={"coefficients": "audio"})
    song_dir = next(p for p in shard.iterdir() if p.is_dir())
    song = json.loads((song_dir / "song.json").read_text())
    cats = {s["name"]: s for s in song["stems"]}
    # clean + distorted electric guitar stems share the guitar category: summed, averaged over 2
    assert set(cats) == {"drums", "bass", "vocals", "guitar"}
    assert cats["guitar"]["n_tracks"] == 2 and cats["guitar"]["average_scale"] == 0.5
    assert [t["gain"] for t in cats["guitar"]["wet_sources"]] == [pytest.approx(0.9), pytest.approx(1.0)]
    assert song["source"]["mixing_coefficients"]["S01"]["source"] == "mixing_coefficients_version2.yaml:audio"
    # with the coefficients the wet stems sum to the MIX
    assert song["data"]["mix_residual_db"] < -60
    # dry = RAW tracks summed (drums: kick + snare), wet = coefficient x STEM
    assert cats["drums"]["files"]["dry"] == "dry/drums.flac" and len(cats["drums"]["dry_sources"]) == 2
    raw = sum(_read(root / t["path"]) for t in cats["drums"]["dry_sources"])
    assert np.allclose(_read(song_dir / "dry" / "drums.flac"), raw, atol=1e-5)


def test_medleydb_without_coefficients_leaves_a_residual(tmp_path):
    root = make_medleydb(tmp_path / "corpus", n_songs=1, seconds=1.0)
    (shard,) = _build("medleydb", root, tmp_path / "out", cfg={"coefficients": "none"})
    song = json.loads(next(shard.glob("*/song.json")).read_text())
    assert song["data"]["mix_residual_db"] > -40
    assert song["source"]["mixing_coefficients"]["S02"] == {"coefficient": 1.0, "source": "none", "instrument": "electric bass"}


def test_medleydb_missing_raw_drops_dry_with_reason(tmp_path):
    root = make_medleydb(tmp_path / "corpus", n_songs=1, seconds=0.5)
    next(root.rglob("*_RAW_02_01.wav")).unlink()
    songs = medleydb.discover(root, {})
    (handle,) = songs.values()
    spec = medleydb.song_spec(handle, "train", {}, None, "audio")
    bass = next(s for s in spec.stems if s.category == "bass")
    assert bass.dry is None and "RAW_02_01.wav" in bass.dry_missing


def test_medleydb_missing_metadata(tmp_path):
    root = make_medleydb(tmp_path / "corpus", n_songs=1, seconds=0.5)
    next(root.rglob("*_METADATA.yaml")).unlink()
    with pytest.raises(StemlabError, match="_METADATA.yaml: missing"):
        medleydb.discover(root, {})


@pytest.mark.parametrize(
    ("label", "category"),
    [("male singer", "vocals"), ("double bass", "bass"), ("tenor saxophone", "wind"), ("tabla", "percussion"),
     ("string section", "bowed_strings"), ("banjo", "other_plucked"), ("fx/processed sound", "other"),
     ("Distorted Electric Guitar", "guitar"), ("baritone ukulele", "other"), ("alto flute", "wind")],
)
def test_medleydb_instrument_mapping(label, category):
    assert medleydb.category_of(label) == category


# --------------------------------------------------------------------------- determinism


def _tree_bytes(dirs: list[Path]) -> dict[str, bytes]:
    out = {}
    for d in dirs:
        for f in sorted(d.rglob("*")):
            if f.is_file() and f.name not in ("manifest.parquet", "skipped.json"):
                out[f.relative_to(d).as_posix()] = f.read_bytes()
    return out


def test_song_bytes_do_not_depend_on_shard_count(tmp_path):
    root = make_moisesdb(tmp_path / "corpus", n_songs=3, seconds=0.5)
    one = _tree_bytes(_build("moisesdb", root, tmp_path / "one", shards=1))
    three = _tree_bytes(_build("moisesdb", root, tmp_path / "three", shards=3))
    again = _tree_bytes(_build("moisesdb", root, tmp_path / "again", shards=3))
    assert one == three == again and len(one) > 10


def test_shard_past_the_count_is_rejected(tmp_path):
    root = make_moisesdb(tmp_path / "corpus", n_songs=1, seconds=0.5)
    with pytest.raises(StemlabError, match="past data.corpora.moisesdb.shards=2"):
        shard_songs("moisesdb", root, "shard-00002", 2, {})


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_get_the_modes_of_the_umask_not_0700(tmp_path, umask):
    from stemlab.download.extract import link_tree

    src = make_musdb(tmp_path / "src", ["A - a"], [], seconds=0.2, wrap="")
    old = os.umask(umask)
    try:
        corpus = tmp_path / "resources" / "corpora" / "musdb18hq"
        link_tree(src, corpus, key="data.corpora.musdb18hq")
        (shard,) = _build("musdb18hq", corpus, tmp_path / "stems")
    finally:
        os.umask(old)
    dirs = [corpus, corpus / "train", shard, shard / "A_-_a", shard / "A_-_a" / "wet"]
    files = [shard / "manifest.parquet", shard / "A_-_a" / "mix.flac", shard / "A_-_a" / "wet" / "bass.flac"]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in dirs} == {oct(0o777 & ~umask)}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(0o666 & ~umask)}
