"""FxProcessor evaluation: metrics on known signals, the per-window table and summary, the figure."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from stemlab.errors import StemlabError
from stemlab.evaluate.run import evaluate_job
from stemlab.megami.evaluate_fxprocessor import select_items
from stemlab.train.run import train_job
from stemlab.metrics import SILENCE_LUFS, integrated_loudness, mrstft_distance, si_sdr
from tests.fx_fixture import apply_fixture_fx, fx_job, write_caches, write_corpus
from tests.workflow_utils import REPO

SR = 44_100


def _sine(freq: float = 997.0, seconds: float = 2.0, amp: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    s = amp * np.sin(2 * np.pi * freq * t)
    return np.stack([s, s]).astype(np.float32)


# ---------------------------------------------------------------------------- metrics


def test_si_sdr_known_values():
    x = _sine(440, 0.5) + 0.1 * _sine(1234, 0.5)
    assert si_sdr(x, x) > 100
    assert si_sdr(0.3 * x, x) > 100
    noise = np.random.default_rng(0).standard_normal(x.shape)
    noise -= (noise.ravel() @ x.ravel()) / (x.ravel() @ x.ravel()) * x  # orthogonal to x
    for snr in (0.0, 10.0, 20.0):
        scaled = noise * np.sqrt((x**2).sum() / (noise**2).sum() / 10 ** (snr / 10))
        assert si_sdr(x + scaled, x) == pytest.approx(snr, abs=1e-6)
        assert si_sdr(2.5 * (x + scaled), x) == pytest.approx(snr, abs=1e-6)  # scale invariant
    assert si_sdr(-x, x) > 100  # the optimal scale may be negative
    with pytest.raises(ValueError):
        si_sdr(x, x[:, :-1])


def test_integrated_loudness_known_values():
    # BS.1770: a full-scale 997 Hz sine reads -3.01 LKFS per channel; two channels add 3.01 dB
    assert integrated_loudness(_sine()[:1], SR) == pytest.approx(-3.01, abs=0.05)
    assert integrated_loudness(_sine(), SR) == pytest.approx(0.0, abs=0.05)
    assert integrated_loudness(_sine(amp=0.5), SR) == pytest.approx(-6.02, abs=0.05)
    assert integrated_loudness(np.zeros((2, SR), np.float32), SR) == SILENCE_LUFS
    assert integrated_loudness(_sine(seconds=0.1), SR) == pytest.approx(0.0, abs=0.1)  # shorter than a block


def test_mrstft_distance_zero_on_equal_and_grows():
    x = _sine(440, 0.5) + 0.05 * _sine(3000, 0.5)
    assert mrstft_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert 0 < mrstft_distance(0.9 * x, x) < mrstft_distance(0.5 * x, x)


def test_select_items_is_even_and_deterministic():
    items = list(range(100))
    assert select_items(items, None) == items and select_items(items, 200) == items
    picked = select_items(items, 5)
    assert picked == [0, 25, 50, 74, 99] and select_items(items, 5) == picked


# ---------------------------------------------------------------------------- evaluation end to end


LOOP = {"steps": 4, "batch_size": 2, "lr": 1e-3, "warmup_steps": 0, "workers": 0, "checkpoint_seconds": 0}
SETTINGS = {"segment_samples": 2048, "fxnorm_fit_windows": 2, "model": {"channels": 4, "blocks": 2, "kernel": 3, "cond_hidden": 8},
            "loss": {"fft_sizes": [512, 256]}}  # fmt: skip


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A trained model, its evaluation through the frame (evaluate_job: items.parquet, meta.json) and the
    task's window scoring with the fixture's FX renderer (so mean_fx is a system too)."""
    from stemlab.data.segment_tables import read_segment_tables
    from stemlab.megami.evaluate_fxprocessor import EvalSettings, evaluate_windows
    from stemlab.train.task import load_trained

    root = tmp_path_factory.mktemp("fxeval")
    table = write_corpus(root, songs=6, seconds=1.0, window=8192)
    embeddings = write_caches(root)
    train_job(fx_job(root, LOOP, SETTINGS, embeddings=embeddings), root / "model")
    job = fx_job(root, LOOP, SETTINGS, eval_settings={"fft_sizes": [256, 512]}, embeddings=embeddings)
    stored = evaluate_job(job, root / "model", root / "eval")
    task, model, _ = load_trained(root / "model" / "final.pt", inputs={"cache": embeddings["cache"]})
    rows = evaluate_windows(
        model, task.conditions, read_segment_tables([table]), root / "stems", EvalSettings(None, None, (256, 512)),
        fx_applier=lambda dry, sr, fx: apply_fixture_fx(dry.T, fx).T,
    )  # fmt: skip
    wide = rows.pivot_table(index=["item", "song", "stem", "start", "length", "system"], columns="metric", values="value")
    return root, stored, rows, wide.reset_index()


@pytest.mark.slow
def test_rows_have_every_system_and_metric_per_window(evaluated):
    root, stored, rows, _ = evaluated
    counts = rows.groupby(["system", "metric"]).size()
    assert set(rows["system"]) == {"fxprocessor", "identity", "loudness_matched", "mean_fx"}
    assert set(rows["metric"]) == {"mrstft", "si_sdr", "abs_loudness_error", "loudness_error"}
    assert counts.nunique() == 1 and counts.iloc[0] == 2 * 9  # 1 test song x 2 stems x 9 windows of 8192 (hop 4096) in 1 s
    # through the frame: the same windows, with model and seed; the fixture's annotations are not synth
    # chains, so the default renderer leaves mean_fx out
    on_disk = pd.read_parquet(root / "eval" / "items.parquet")
    assert list(on_disk.columns[:6]) == ["model", "seed", "system", "metric", "value", "item"]
    assert set(on_disk["system"]) == {"fxprocessor", "identity", "loudness_matched"} and set(on_disk["seed"]) == {9}
    mine = rows[rows["system"] != "mean_fx"].reset_index(drop=True)
    pd.testing.assert_frame_equal(on_disk.drop(columns=["model", "seed"]), mine[on_disk.columns[2:]], check_dtype=False)
    meta = json.loads((root / "eval" / "meta.json").read_text())
    assert meta["device"]["device"] == "cpu" and meta["rows"] == len(on_disk) and meta["items"] == 18


@pytest.mark.slow
def test_baseline_values_match_independent_computation(evaluated):
    root, _, _, frame = evaluated
    identity = frame[frame["system"] == "identity"]
    assert len(identity) == 18
    for _, row in identity.iterrows():  # every window, re-read from the files it names
        song_dir = root / "stems" / "synthetic" / "shard-00000" / row["song"]
        window = slice(row["start"], row["start"] + row["length"])
        dry = sf.read(song_dir / "dry" / f"{row['stem']}.flac", dtype="float32")[0][window].T
        wet = sf.read(song_dir / "wet" / f"{row['stem']}.flac", dtype="float32")[0][window].T
        # SI-SDR in closed form (not stemlab.metrics.si_sdr): project the estimate onto the reference
        e, r = dry.astype(np.float64).ravel(), wet.astype(np.float64).ravel()
        target = (e @ r) / (r @ r) * r
        assert row["si_sdr"] == pytest.approx(10 * np.log10((target @ target) / ((e - target) @ (e - target))), abs=1e-6)
        assert row["loudness_error"] == pytest.approx(integrated_loudness(dry, SR) - integrated_loudness(wet, SR), abs=1e-6)
        assert row["abs_loudness_error"] == pytest.approx(abs(row["loudness_error"]))
    row = identity.iloc[0]
    song_dir = root / "stems" / "synthetic" / "shard-00000" / row["song"]
    dry = sf.read(song_dir / "dry" / f"{row['stem']}.flac", dtype="float32")[0][row["start"] : row["start"] + row["length"]].T
    wet = sf.read(song_dir / "wet" / f"{row['stem']}.flac", dtype="float32")[0][row["start"] : row["start"] + row["length"]].T
    assert row["si_sdr"] == pytest.approx(si_sdr(dry, wet), abs=1e-9)
    assert row["mrstft"] == pytest.approx(mrstft_distance(dry, wet, (256, 512)), rel=1e-5)
    matched = frame[frame["system"] == "loudness_matched"]
    assert matched["loudness_error"].abs().max() < 0.01
    # the mean chain of the category is the right kind of processing: much closer than the dry stem
    by = frame.groupby("system")["mrstft"].mean()
    assert by["mean_fx"] < by["identity"]


@pytest.mark.slow
def test_summary_of_the_stored_rows(evaluated, tmp_path):
    from stemlab.evaluate.summary import main as summary_main

    root, _, _, frame = evaluated
    job = json.dumps({"model": "fxprocessor", "task": "stemlab.megami.fxprocessor_task", "seed": 9, "bootstrap": 500})
    assert summary_main(["--config", job, "--out", str(tmp_path / "fx.csv"), str(root / "eval" / "items.parquet")]) == 0
    summary = pd.read_csv(tmp_path / "fx.csv")
    assert list(summary.columns[:7]) == ["model", "system", "metric", "n", "mean", "ci95_low", "ci95_high"]
    assert list(dict.fromkeys(summary["system"])) == ["fxprocessor", "loudness_matched", "identity"]
    got = summary.set_index(["system", "metric"]).loc[("identity", "si_sdr")]
    ident = frame[frame["system"] == "identity"]["si_sdr"]
    assert got["n"] == 18 and got["mean"] == pytest.approx(ident.mean(), rel=1e-5)
    assert got["ci95_low"] < got["mean"] < got["ci95_high"] and got["better"] == "higher"


@pytest.mark.slow
def test_figure_reads_the_rows(evaluated, tmp_path):
    root, *_ = evaluated
    pdf = tmp_path / "fig.pdf"
    cmd = [sys.executable, "-m", "stemlab.megami.figure", "--items", str(root / "eval" / "items.parquet"), "--out", str(pdf)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000
    missing = subprocess.run(cmd[:4] + [str(tmp_path / "none.parquet"), "--out", str(pdf)], capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error: ") and "evaluate_model" in missing.stderr


@pytest.mark.slow
def test_missing_model_is_one_line(evaluated, tmp_path):
    root, *_ = evaluated
    with pytest.raises(StemlabError, match="model not found; run `snakemake train`"):
        evaluate_job(fx_job(root, LOOP, SETTINGS), tmp_path / "none", tmp_path / "out")


def test_loudest_excerpt_and_silence_level():
    from stemlab.megami.evaluate_fxprocessor import loudest_excerpt, rms_dbfs

    wet = np.zeros((2, 40_000), np.float32)
    wet[:, 20_480:24_576] = 0.5
    start = loudest_excerpt(wet, 8192)
    assert start % 4096 == 0 and start <= 20_480 and start + 8192 >= 24_576
    assert loudest_excerpt(wet, 50_000) == 0
    assert rms_dbfs(wet[:, :4096]) == -np.inf and rms_dbfs(_sine(amp=1.0)) == pytest.approx(-3.01, abs=0.01)
