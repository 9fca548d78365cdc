"""Preprocessing on canonical shards: synthetic linking, segment tables, features, song tables, summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from stemlab.data.features import FeatureSettings, shard_features
from stemlab.data.segments import Activity, Window, merge_segments, shard_segments, starts, stem_segments
from stemlab.data.stems import build_corpus_shard, link_synthetic_shard
from stemlab.data.summary import corpora_table, write_splits
from stemlab.errors import StemlabError
from tests.data_fixtures import make_moisesdb, make_synth_shard, tone
from tests.workflow_utils import REPO

SR = 44100


# --------------------------------------------------------------------------- segments


def test_window_starts():
    assert starts(100, 40, 20) == [(0, 40), (20, 40), (40, 40), (60, 40)]
    assert starts(30, 40, 20) == [(0, 30)]  # shorter than a window: one segment of the whole song
    assert starts(40, 40, 20) == [(0, 40)]
    assert starts(525_312 * 2, 525_312, 262_656) == [(0, 525_312), (262_656, 525_312), (525_312, 525_312)]


def test_activity_finds_the_silent_stretch():
    audio = tone(4.0, 440.0, gap=(1.0, 3.0))
    rows = stem_segments(audio, [Window("w", SR, SR)], Activity(frame=1024, threshold_db=-50, min_active_fraction=0.5))
    assert [r["start"] for r in rows] == [0, SR, 2 * SR, 3 * SR]
    assert [r["active"] for r in rows] == [True, False, False, True]
    assert rows[1]["rms_db"] is None and rows[1]["active_fraction"] == 0.0
    # rms_db is the exact RMS of the segment
    power = np.mean(np.square(audio[:SR].astype(np.float64)), axis=1).mean()
    assert rows[0]["rms_db"] == pytest.approx(10 * np.log10(power), abs=1e-6)


def test_activity_threshold_and_fraction():
    quiet = tone(2.0, 440.0, amp=0.001)  # about -66 dBFS RMS
    window = [Window("w", 2 * SR, 2 * SR)]
    assert not stem_segments(quiet, window, Activity(threshold_db=-50))[0]["active"]
    assert stem_segments(quiet, window, Activity(threshold_db=-80))[0]["active"]
    half = tone(2.0, 440.0, gap=(1.0, 2.0))
    row = stem_segments(half, window, Activity(frame=2048, min_active_fraction=0.6))[0]
    assert 0.45 < row["active_fraction"] < 0.55 and not row["active"]


@pytest.fixture(scope="module")
def moises_shard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("moises")
    root = make_moisesdb(tmp / "corpus", n_songs=2, seconds=3.0)
    out = tmp / "stems" / "moisesdb" / "shard-00000"
    build_corpus_shard("moisesdb", root, "shard-00000", 1, {}, {}, out)
    return out


def test_segment_tables_per_window(moises_shard, tmp_path):
    windows = [Window("megami", SR, SR // 2), Window("stage", 2 * SR, SR)]
    shard_table = tmp_path / "shard.parquet"
    n = shard_segments(moises_shard, shard_table, windows, Activity())
    table = pd.read_parquet(shard_table)
    assert len(table) == n == 2 * 4 * (5 + 2)  # songs x stems x (windows of megami + stage)
    assert list(table.columns) == ["corpus", "shard", "split", "song", "stem", "category", "window", "start",
                                   "length", "active", "active_fraction", "rms_db"]
    merged = tmp_path / "megami.parquet"
    assert merge_segments([shard_table], "megami", merged) == 2 * 4 * 5
    megami = pd.read_parquet(merged)
    assert set(megami["window"]) == {"megami"} and set(megami["length"]) == {SR}
    vocals = megami[megami["stem"] == "vocals"].sort_values(["song", "start"])
    # the fixture silences vocals from 1 s to 2 s: the window starting at 1 s is inactive
    assert vocals.groupby("song")["active"].apply(list).tolist() == [[True, True, False, True, True]] * 2
    assert set(megami["split"]) <= {"train", "valid", "test"}


def test_segments_catch_a_stem_of_the_wrong_length(moises_shard, tmp_path):
    import shutil

    shard = tmp_path / "shard-00000"
    shutil.copytree(moises_shard, shard)
    song = next(p for p in shard.iterdir() if p.is_dir())
    sf.write(song / "wet" / "bass.flac", tone(1.0, 55.0), SR, subtype="PCM_24")
    with pytest.raises(StemlabError, match="bass.flac: 44100 frames, song.json says 132300"):
        shard_segments(shard, tmp_path / "x.parquet", [Window("w", SR, SR)], Activity())


# --------------------------------------------------------------------------- features


def test_features_tempo_key_loudness(tmp_path):
    shard = make_synth_shard(tmp_path / "synth" / "shard-00000", n_songs=1, seconds=8.0)
    song = shard / "synth-000000"
    # a 120 BPM click track over an A (440 Hz) drone as the mix
    n = 8 * SR
    t = np.arange(n) / SR
    mix = 0.05 * np.sin(2 * np.pi * 440 * t)
    for beat in np.arange(0, 8, 0.5):
        i = int(beat * SR)
        mix[i : i + 400] += 0.8 * np.exp(-np.arange(400) / 60.0) * np.sign(np.sin(np.arange(400)))
    sf.write(song / "mix.flac", np.stack([mix, mix], 1), SR, subtype="PCM_24")
    meta = json.loads((song / "song.json").read_text())
    meta["n_frames"] = n
    for stem in meta["stems"]:
        for kind in ("wet", "dry"):
            sf.write(song / stem["files"][kind], tone(8.0, 110.0), SR, subtype="PCM_24")
    (song / "song.json").write_text(json.dumps(meta))
    linked = tmp_path / "stems" / "shard-00000"
    link_synthetic_shard(shard, "shard-00000", linked)
    out = tmp_path / "features.parquet"
    assert shard_features(linked, out, FeatureSettings("degara", "bgate")) == 1
    row = pd.read_parquet(out).iloc[0]
    assert abs(row["bpm"] - 120) < 2
    assert np.median(np.diff(row["beats"])) == pytest.approx(0.5, abs=0.02)
    assert row["key"] == "A"
    assert list(row["stems"]) == ["drums", "bass", "piano"]
    assert row["mix_lufs"] == pytest.approx(row["mix_ebu_lufs"], abs=0.5)  # pyloudnorm vs essentia
    assert all(-40 < v < -10 for v in row["stem_lufs"])


def test_features_of_silence_are_null(tmp_path):
    shard = make_synth_shard(tmp_path / "synth" / "shard-00000", n_songs=1, seconds=2.0)
    song = shard / "synth-000000"
    zeros = np.zeros((2 * SR, 2))
    for f in [song / "mix.flac", *song.glob("wet/*.flac")]:
        sf.write(f, zeros, SR, subtype="PCM_24")
    linked = tmp_path / "stems" / "shard-00000"
    link_synthetic_shard(shard, "shard-00000", linked)
    shard_features(linked, tmp_path / "f.parquet", FeatureSettings("degara", "bgate"))
    row = pd.read_parquet(tmp_path / "f.parquet").iloc[0]
    assert row["bpm"] is None or np.isnan(row["bpm"])
    assert row["mix_lufs"] is None or np.isnan(row["mix_lufs"])
    assert all(v is None or np.isnan(v) for v in row["stem_lufs"])


# --------------------------------------------------------------------------- synthetic linking


def test_synthetic_shard_is_hard_linked_and_completed(tmp_path):
    src = make_synth_shard(tmp_path / "synth" / "shard-00003", n_songs=2, seconds=0.5, split="valid")
    out = tmp_path / "stems" / "shard-00003"
    assert link_synthetic_shard(src, "shard-00003", out) == 2
    for rel in ("synth-000000/mix.flac", "synth-000001/wet/bass.flac", "synth-000001/dry/piano.flac"):
        assert os.stat(out / rel).st_ino == os.stat(src / rel).st_ino
    song = json.loads((out / "synth-000000" / "song.json").read_text())
    assert song["corpus"] == "synthetic" and song["split"] == "valid" and song["channels"] == 2
    assert song["tempo_bpm"] == 120.0 and song["beats"] == [0.0, 0.5, 1.0]  # synth annotations kept
    assert song["stems"][0]["average_scale"] == 1.0
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert manifest["shard"].tolist() == ["shard-00003"] * 2
    assert manifest["dry_stems"].map(list).tolist() == [["drums", "bass", "piano"]] * 2
    # the synth shard's own song.json is untouched
    assert "corpus" not in json.loads((src / "synth-000000" / "song.json").read_text())


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("split", "split 'dev' is not one of"),
        ("frames", "frames but song.json says n_frames"),
        ("category", "not in the taxonomy"),
        ("missing", "audio file not found"),
        ("json", "invalid JSON"),
        ("nowet", "has no wet file"),
    ],
)
def test_synthetic_validation_errors(tmp_path, breakage, message):
    src = make_synth_shard(tmp_path / "synth" / "shard-00000", n_songs=1, seconds=0.5)
    song = src / "synth-000000"
    meta = json.loads((song / "song.json").read_text())
    if breakage == "split":
        meta["split"] = "dev"
    elif breakage == "frames":
        meta["n_frames"] += 1
    elif breakage == "category":
        meta["stems"][0]["category"] = "theremin"
    elif breakage == "nowet":
        meta["stems"][1]["files"] = {"wet": None, "dry": "dry/bass.flac", "midi": None}
    elif breakage == "missing":
        (song / "wet" / "bass.flac").unlink()
    (song / "song.json").write_text("{" if breakage == "json" else json.dumps(meta))
    out = tmp_path / "stems" / "shard-00000"
    with pytest.raises(StemlabError) as err:
        link_synthetic_shard(src, "shard-00000", out)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()


# --------------------------------------------------------------------------- song tables, summary, figure


def test_splits_and_corpus_table(moises_shard, tmp_path):
    synth = tmp_path / "synth" / "shard-00000"
    link_synthetic_shard(make_synth_shard(tmp_path / "src" / "shard-00000", n_songs=2, seconds=0.5), "shard-00000", synth)
    write_splits([moises_shard], tmp_path / "splits" / "moisesdb.parquet")
    write_splits([synth], tmp_path / "splits" / "synthetic.parquet")
    songs = pd.read_parquet(tmp_path / "splits" / "moisesdb.parquet")
    assert list(songs.columns) == ["song", "corpus", "shard", "split", "n_frames", "duration_s", "categories", "n_tracks"]
    table = corpora_table(sorted((tmp_path / "splits").glob("*.parquet")), tmp_path / "corpora.csv")
    assert table["corpus"].tolist() == ["moisesdb", "synthetic"]
    moises = table.iloc[0]
    assert moises["songs"] == 2 and moises["hours"] == pytest.approx(6 / 3600, abs=1e-6)
    assert moises["stem_drums"] == 2 and moises["stem_piano"] == 0 and moises["tracks_per_song"] == 6
    assert moises["songs_train"] + moises["songs_valid"] + moises["songs_test"] == 2
    assert table.iloc[1]["songs_train"] == 2 and table.iloc[1]["stem_piano"] == 2
    assert pd.read_csv(tmp_path / "corpora.csv").shape == table.shape

    from stemlab.data.figure import plot

    plot(pd.read_csv(tmp_path / "corpora.csv"), tmp_path / "corpora.pdf")
    assert (tmp_path / "corpora.pdf").read_bytes()[:5] == b"%PDF-"


def test_duplicate_song_across_shards_is_rejected(moises_shard, tmp_path):
    with pytest.raises(StemlabError, match="appears in two shards"):
        write_splits([moises_shard, moises_shard], tmp_path / "s.parquet")


def test_cli_error_is_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    out = subprocess.run(
        [sys.executable, "-m", "stemlab.data", "stems", "--corpus", "moisesdb", "--root", str(tmp_path / "nope"),
         "--shard", "shard-00000", "--config", '{"shards": 1}', "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("error: ") and "corpus folder missing" in out.stderr
