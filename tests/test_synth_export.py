"""Export of synthetic songs to a Hugging Face audiofolder, loaded back offline with `datasets`."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from stemlab.errors import StemlabError
from stemlab.synth.export import export_audiofolder
from tests.test_synth_validity import make_song


def _set_split(song, split):
    meta = json.loads((song / "song.json").read_text())
    meta["split"] = split
    (song / "song.json").write_text(json.dumps(meta))


@pytest.fixture
def songs(tmp_path):
    a = make_song(tmp_path / "gen", song_id="song-a")
    b = make_song(tmp_path / "gen", song_id="song-b", genre="jazz")
    c = make_song(tmp_path / "gen", song_id="song-c", genre="rock")
    _set_split(b, "train")
    _set_split(c, "valid")
    return [a, b, c]


@pytest.mark.slow  # imports and runs the datasets library
def test_audiofolder_loads_offline(songs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "export"
    table = export_audiofolder(songs, out, stems=["wet", "dry"])
    assert list(table["song_id"]) == ["song-a", "song-b", "song-c"]
    # the parquet table points at files inside the export
    for rel in table["file_name"]:
        assert (out / rel).is_file()
    assert pd.read_parquet(out / "songs.parquet")["split"].tolist() == ["test", "train", "valid"]
    # hard links: no second copy of the audio
    assert os.stat(out / "test" / "song-a" / "mix.flac").st_ino == os.stat(songs[0] / "mix.flac").st_ino

    import datasets

    # the env var is read when `datasets` is first imported; set the flag too in case it already was
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    ds = datasets.load_dataset("audiofolder", data_dir=str(out), cache_dir=str(tmp_path / "hf-cache"))
    assert sorted(ds) == ["test", "train", "validation"]
    row = ds["test"][0]
    assert row["song_id"] == "song-a" and row["genre"] == "pop"
    mix, sr = sf.read(songs[0] / "mix.flac", dtype="float32")
    assert row["audio"]["sampling_rate"] == sr
    np.testing.assert_allclose(row["audio"]["array"], mix.mean(axis=1), atol=1e-4)
    assert row["stem_names"] == ["wind", "bass", "drums"]
    assert len(row["stems"]) == 3 and len(row["dry_stems"]) == 3
    bass, _ = sf.read(songs[0] / "wet" / "bass.flac", dtype="float32")
    np.testing.assert_allclose(row["stems"][1]["array"], bass.mean(axis=1), atol=1e-4)
    assert row["beats"][:2] == pytest.approx([0.5, 1.0])
    assert json.loads(row["annotation"])["tempo_bpm"] == 120.0
    assert all(p.endswith(".mid") for p in row["midi_files"])


def test_mix_only_export_and_split_filter(songs, tmp_path):
    out = tmp_path / "export"
    table = export_audiofolder(songs, out, splits=["test", "valid"], copy=True)
    assert list(table["split"]) == ["test", "valid"]
    assert "stems_file_names" not in table.columns
    assert not (out / "test" / "song-a" / "wet").exists()
    assert os.stat(out / "test" / "song-a" / "mix.flac").st_ino != os.stat(songs[0] / "mix.flac").st_ino
    lines = (out / "valid" / "metadata.jsonl").read_text().splitlines()
    assert [json.loads(line)["file_name"] for line in lines] == ["song-c/mix.flac"]


def test_missing_stem_file_fails_and_leaves_nothing(songs, tmp_path):
    (songs[1] / "dry" / "bass.flac").unlink()
    out = tmp_path / "export"
    with pytest.raises(StemlabError, match="bass.flac"):
        export_audiofolder(songs, out, stems=["dry"])
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export")]


def test_bad_arguments_are_one_line_errors(songs, tmp_path):
    with pytest.raises(StemlabError, match="--stems"):
        export_audiofolder(songs, tmp_path / "x", stems=["midi"])
    with pytest.raises(StemlabError, match="no songs"):
        export_audiofolder(songs, tmp_path / "x", splits=["nonexistent"])
