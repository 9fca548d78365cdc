"""The analysis subcommands of the synth CLI (validity, stats, export) on a manifest in the results layout."""

from __future__ import annotations

import argparse
import json

import pandas as pd
import pytest

from stemlab.errors import StemlabError
from stemlab.synth import analysis_cli, figure
from tests.test_synth_validity import make_song


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    analysis_cli.register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def manifest(tmp_path):
    root = tmp_path / "synth"
    rows = []
    for k, (genre, split) in enumerate([("pop", "test"), ("jazz", "test"), ("rock", "train")]):
        shard = f"shard-{k // 2:05d}"
        song_id = f"song-{k:06d}"
        song = make_song(root / "shards" / shard, genre=genre, song_id=song_id)
        meta = json.loads((song / "song.json").read_text())
        meta.update(split=split, key="Eb", mode="minor", sample_rate=44100, n_frames=16 * 44100)
        for stem in meta["stems"]:
            stem["loudness_lufs"] = -20.0
        (song / "song.json").write_text(json.dumps(meta))
        rows.append({"song_id": song_id, "shard": shard, "split": split, "genre": genre})
    path = root / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.mark.slow
def test_validity_cli_writes_tables(manifest, tmp_path, capsys):
    out, songs_out = tmp_path / "tables" / "v.csv", tmp_path / "tables" / "v_songs.csv"
    assert _run(["validity", "--manifest", str(manifest), "--out", str(out), "--songs-out", str(songs_out), "--workers", "2"]) == 0
    summary = pd.read_csv(out).set_index("group")
    assert summary.loc["overall", "n_songs"] == 2  # the train song is not held out
    assert set(summary.index) == {"genre=jazz", "genre=pop", "time_signature=4/4", "source=generated", "composer=markov", "overall", "bass:category=bass", "melody:category=wind"}
    assert summary.loc["overall", "beat_f"] >= 0.95
    assert summary.loc["overall", "melody_note_accuracy"] == 1.0
    per_song = pd.read_csv(songs_out)
    assert list(per_song["song_id"]) == ["song-000000", "song-000001"]
    printed = capsys.readouterr().out
    assert "acceptance: beat F-measure on 2 4/4 songs" in printed and "BELOW TARGET" not in printed


def test_validity_cli_with_no_held_out_songs_names_the_config_key(manifest, tmp_path):
    with pytest.raises(StemlabError, match="synth.validity.splits"):
        _run(["validity", "--manifest", str(manifest), "--out", str(tmp_path / "v.csv"), "--songs-out", str(tmp_path / "s.csv"), "--splits", "valid"])
    assert not (tmp_path / "v.csv").exists()


def test_stats_then_figure(manifest, tmp_path):
    songs, stems = tmp_path / "songs.parquet", tmp_path / "stems.parquet"
    assert _run(["stats", "--manifest", str(manifest), "--songs-out", str(songs), "--stems-out", str(stems)]) == 0
    table = pd.read_parquet(songs)
    assert list(table["duration_s"]) == [16.0] * 3 and set(table["split"]) == {"test", "train"}
    assert len(pd.read_parquet(stems)) == 9
    assert set(table["source"]) == {"generated"}  # song.json files without composition_source
    assert "soundfont" in pd.read_parquet(stems)
    assert figure.main(["--songs", str(songs), "--stems", str(stems), "--out", str(tmp_path / "f.pdf")]) == 0
    assert (tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")


def test_export_cli(manifest, tmp_path, capsys):
    assert _run(["export", "--manifest", str(manifest), "--out", str(tmp_path / "hf"), "--stems", "wet"]) == 0
    assert "exported 3 songs" in capsys.readouterr().out
    assert (tmp_path / "hf" / "train" / "song-000002" / "wet" / "bass.flac").is_file()


def test_manifest_errors(tmp_path, manifest):
    with pytest.raises(StemlabError, match="not found"):
        analysis_cli.manifest_songs(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"song_id": ["x"]}).to_parquet(bad)
    with pytest.raises(StemlabError, match="split, genre"):
        analysis_cli.manifest_songs(bad)
    table = pd.read_parquet(manifest)
    table.loc[0, "song_id"] = "song-999999"
    table.to_parquet(manifest)
    with pytest.raises(StemlabError, match="song-999999"):
        analysis_cli.manifest_songs(manifest)
