"""The mix-level evaluation (stemlab.megami.evaluate_mix) on small in-memory songs with a stand-in pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stemlab.errors import StemlabError
from stemlab.evaluate.summary import summarize
from stemlab.megami import evaluate_mix as ev
from stemlab.megami.kad import kad
from tests.test_megami_mix import ToyPipeline, toy_settings

SR = 44_100


def song(index: int, seconds: float = 0.3) -> ev.Song:
    g = np.random.default_rng(index)
    t = np.arange(int(seconds * SR)) / SR
    dry, wet = [], []
    for k, (freq, gain_db) in enumerate([(110.0, 0.0), (440.0, -14.0), (1760.0, -8.0)]):
        x = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.05 * index) * t) * (1 + 0.5 * np.sin(2 * np.pi * (1 + k) * t))
        d = np.stack([x, x]).astype(np.float32) + 0.001 * g.standard_normal((2, len(t))).astype(np.float32)
        dry.append(d)
        wet.append((d * 10 ** (gain_db / 20)).astype(np.float32))
    return ev.Song(f"song-{index}", ["bass", "keys", "lead"], ["bass", "harmony", "melody"], dry, wet, np.sum(wet, axis=0))


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    settings = toy_settings()
    cfg = ev.EvalSettings.from_config({"kad_window_samples": 4096, "spectrogram_songs": 1, "spectrogram_seconds": 0.3, "spectrogram_bands": 16})
    return ev.evaluate_songs(ToyPipeline(settings), [song(i) for i in range(3)], settings, cfg, seed=1)


def test_rows_cover_every_system_and_metric(rows):
    assert list(dict.fromkeys(rows["system"])) == [*ev.SYSTEMS, ev.REFERENCE]
    metrics = set(rows[rows["system"] == "megami"]["metric"])
    assert {"kad_clap", "kad_fx", "dist_loudness", "dist_centroid", "dist_width", "dist_crest", "mix_centroid_hz", "spectrogram"} <= metrics
    assert set(rows[rows["system"] == "reference"]["metric"]) == {"mix_centroid_hz", "mix_stereo_width", "mix_crest_db", "spectrogram"}
    spec = rows[rows["metric"] == "spectrogram"]
    assert len(spec) == len(ev.SYSTEMS) + 1 and spec["value"].isna().all()
    assert len(spec["spectrogram"].iloc[0]) % 16 == 0 and (spec["spectrogram_bands"] == 16).all()


def test_kad_items_average_to_the_set_kad(rows):
    kad_rows = rows[(rows["metric"] == "kad_clap") & (rows["system"] == "equal_loudness")]
    assert sorted(kad_rows["item"]) == [f"song-{i}" for i in range(3)]
    assert np.isfinite(kad_rows["value"]).all()
    table = summarize(rows.assign(model="megami", seed=1))
    assert "spectrogram" not in set(table["metric"])  # NaN rows are not metrics
    assert set(table["system"]) == {*ev.SYSTEMS, ev.REFERENCE}


def test_kad_value_matches_a_direct_computation():
    settings = toy_settings()
    pipeline = ToyPipeline(settings)
    cfg = ev.EvalSettings.from_config({"kad_window_samples": 4096, "spectrogram_songs": 0})
    songs = [song(i) for i in range(3)]
    rows = ev.evaluate_songs(pipeline, songs, settings, cfg, seed=2)
    ref = np.concatenate([pipeline.content(ev.kad_windows(ev.loudness_normalised(s.mix, -14.0), 4096)) for s in songs])
    est = np.concatenate([pipeline.content(ev.kad_windows(ev.loudness_normalised(ev.equal_loudness_mix(s.dry, s.names, settings).mix, -14.0), 4096)) for s in songs])
    got = rows[(rows["metric"] == "kad_clap") & (rows["system"] == "equal_loudness")]["value"].mean()
    assert got == pytest.approx(kad(ref, est), rel=1e-6)


def test_oracle_gains_follow_the_wet_tracks(rows):
    loud = rows[rows["metric"] == "dist_loudness"].groupby("system")["value"].mean()
    assert loud["oracle"] < 0.5 < loud["equal_loudness"]  # wet levels differ by 14 dB; the oracle reads them


def test_too_few_songs_is_one_line():
    settings = toy_settings()
    with pytest.raises(StemlabError, match="at least 3 held-out songs"):
        ev.evaluate_songs(ToyPipeline(settings), [song(0), song(1)], settings, ev.EvalSettings.from_config({}), seed=1)


def test_kad_windows_cover_the_mix():
    x = np.ones((2, 11_000), dtype=np.float32)
    assert ev.kad_windows(x, 4096).shape == (3, 2, 4096)  # 0, 4096, and the tail from 6904 (> half new)
    assert ev.kad_windows(x[:, :10_000], 4096).shape == (2, 2, 4096)  # a tail of 1,808 new samples is left out
    assert ev.kad_windows(x[:, :1000], 4096).shape == (1, 2, 4096)


@pytest.mark.slow  # matplotlib and seaborn: about 5 s
def test_figure_plots_the_table_and_rows(rows, tmp_path):
    from stemlab.evaluate.summary import write_summary
    from stemlab.megami import mix_figure

    items = rows.assign(model="megami", seed=1)
    items.to_parquet(tmp_path / "items.parquet", index=False)
    write_summary(summarize(items, draws=200), tmp_path / "megami.csv")
    out = tmp_path / "fig" / "megami_mix.pdf"
    out.parent.mkdir()
    assert mix_figure.main(["--table", str(tmp_path / "megami.csv"), "--items", str(tmp_path / "items.parquet"), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"%PDF" and out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    # same inputs -> same bytes, whatever numpy's global generator holds (seaborn's stripplot jitter did not)
    first = out.read_bytes(), out.with_suffix(".png").read_bytes()
    np.random.uniform(size=7)  # noqa: NPY002 - moves the global state on purpose
    assert mix_figure.main(["--table", str(tmp_path / "megami.csv"), "--items", str(tmp_path / "items.parquet"), "--out", str(out)]) == 0
    assert (out.read_bytes(), out.with_suffix(".png").read_bytes()) == first
    with pytest.raises(StemlabError, match="no kad_clap"):
        pd.DataFrame({"metric": ["x"], "system": ["megami"]}).to_csv(tmp_path / "bad.csv", index=False)
        mix_figure.read_inputs(tmp_path / "bad.csv", [tmp_path / "items.parquet"])
