"""The dataset-distribution figure: drawn from tables, reproducible bytes, one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stemlab.errors import StemlabError
from stemlab.synth import figure


def _tables(n: int = 40):
    gen = np.random.Generator(np.random.PCG64(0))
    genres = ["jazz", "rock", "pop", "latin"]
    songs = pd.DataFrame(
        {
            "song_id": [f"s{i:03d}" for i in range(n)],
            "genre": [genres[i % 4] for i in range(n)],
            "tempo_bpm": gen.uniform(70, 170, n),
            "key": gen.choice(["C", "Eb", "F#", "A"], n),
            "mode": gen.choice(["major", "minor"], n),
            "duration_s": gen.uniform(20, 200, n),
        }
    )
    stems = pd.DataFrame(
        [
            {"song_id": s, "category": c, "loudness_lufs": float(gen.normal(-20, 3))}
            for s in songs["song_id"]
            for c in ["drums", "bass", "piano"][: 2 + int(gen.integers(0, 2))]
        ]
    )
    return songs, stems


def test_figure_is_written_and_reproducible(tmp_path):
    songs, stems = _tables()
    songs.to_parquet(tmp_path / "songs.parquet")
    stems.to_parquet(tmp_path / "stems.parquet")
    outs = []
    for name in ("a.pdf", "b.pdf"):
        args = ["--songs", str(tmp_path / "songs.parquet"), "--stems", str(tmp_path / "stems.parquet")]
        assert figure.main([*args, "--out", str(tmp_path / name)]) == 0
        outs.append((tmp_path / name).read_bytes())
    assert outs[0].startswith(b"%PDF") and len(outs[0]) > 10_000
    assert outs[0] == outs[1]


def test_flat_keys_share_a_tonic_with_sharps():
    assert figure._tonic("Eb") == figure._tonic("D#") == "D#"


def test_missing_column_or_file_is_one_line_error(tmp_path):
    songs, _ = _tables()
    songs.drop(columns=["tempo_bpm"]).to_parquet(tmp_path / "songs.parquet")
    with pytest.raises(StemlabError, match="tempo_bpm"):
        figure.read_table(tmp_path / "songs.parquet", figure.SONG_COLUMNS)
    with pytest.raises(StemlabError, match="not found"):
        figure.read_table(tmp_path / "nope.parquet", figure.SONG_COLUMNS)
