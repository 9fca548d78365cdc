"""Full-song mixing (stemlab.megami.mix) with a stand-in pipeline: the CLI on a folder of mixed-format dry
files, one-line errors, silent tracks, generated gains, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from stemlab.encoders.fx.features import AF_DIM, SCALE, SHIFT, projection
from stemlab.errors import run_cli
from stemlab.megami import mix
from stemlab.megami.features import measured_level_db

SR = 44_100


def toy_settings(**overrides) -> mix.MixSettings:
    values = {"window_samples": 8192, "block_samples": 16384, "crossfade_samples": 1024} | overrides
    return mix.MixSettings.from_config(values)


def effect_embedding(learned: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """join(learned, fourier_features(raw)) of stemlab.encoders.fx.features, in numpy (the toy calls it often)."""
    z = ((raw - np.asarray(SHIFT)) / np.asarray(SCALE)) @ PROJECTION
    af = np.concatenate([np.cos(z), np.sin(z)], axis=-1)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    d = learned.shape[-1]
    return (np.concatenate([unit(learned) * math.sqrt(d), unit(af) * math.sqrt(AF_DIM)], axis=-1) / math.sqrt(d + AF_DIM)).astype(np.float32)


PROJECTION = projection().double().numpy()


class ToyPipeline:
    """Content = (level, width) of the window; effects = constant learned part joined with the 64 interpretable
    features; generation asks track i for level -20 - 3 i dB; processing = an effect-dependent pan."""

    def __init__(self, settings: mix.MixSettings) -> None:
        self.settings = settings
        self.calls: list[int] = []

    def content(self, windows: np.ndarray) -> np.ndarray:
        return np.stack([[measured_level_db(w), float(np.std(w[0] - w[1]))] for w in windows]).astype(np.float32)

    def effects(self, windows: np.ndarray) -> np.ndarray:
        raw = np.array([[lvl, lvl, 12.0, 12.0, -20.0, -20.0, 0.2, 0.0] for lvl in map(measured_level_db, windows)])
        return effect_embedding(np.ones((len(windows), 8)), raw)

    def generate(self, content: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
        g = np.random.default_rng(seed)
        n = len(content)
        raw = np.zeros((n_samples, n, 8))
        raw[..., 0] = raw[..., 1] = -20.0 - 3.0 * np.arange(n) + g.standard_normal((n_samples, 1))
        raw[..., 2:4] = 12.0
        return effect_embedding(g.standard_normal((n_samples, n, 8)), raw)

    def process(self, dry: np.ndarray, effect: np.ndarray, content: np.ndarray) -> np.ndarray:
        self.calls.append(dry.shape[1])
        pan = math.tanh(float(effect[0]))
        return (dry * np.array([[1 - 0.3 * pan], [1 + 0.3 * pan]], dtype=np.float32)).astype(np.float32)


def tone(freq: float, seconds: float, sr: int, channels: int, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 1.3 * t))
    return np.stack([x * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)


@pytest.fixture
def dry_dir(tmp_path):
    folder = tmp_path / "dry"
    folder.mkdir()
    sf.write(folder / "bass.wav", tone(110, 1.5, 22_050, 1), 22_050)  # mono, 22.05 kHz, 66,150 frames at 44.1
    sf.write(folder / "keys.flac", tone(440, 2.0, 44_100, 2), 44_100)  # stereo 44.1 kHz: the longest
    sf.write(folder / "lead.wav", tone(880, 1.0, 48_000, 2), 48_000, subtype="PCM_16")  # stereo 48 kHz
    sf.write(folder / "pad.wav", tone(220, 0.5, 44_100, 3), 44_100, subtype="FLOAT")  # three channels
    (folder / "notes.txt").write_text("not audio")
    return folder


@pytest.fixture
def toy(monkeypatch):
    pipeline = ToyPipeline(toy_settings())
    monkeypatch.setattr(mix, "load_pipeline", lambda model, device="auto": pipeline)
    return pipeline


def test_cli_mixes_a_folder_of_mixed_formats_into_one_file(dry_dir, tmp_path, toy):
    out = tmp_path / "out" / "song.flac"
    assert run_cli(mix.main, [str(dry_dir), str(out), "--seed", "3"]) == 0
    data, sr = sf.read(out, always_2d=True)
    assert sr == SR and data.shape == (88_200, 2)
    assert 20 * math.log10(np.abs(data).max()) == pytest.approx(-1.0, abs=0.01)
    assert sorted(toy.calls) == [88_200] * 4  # every track, padded to the longest, processed whole
    assert [p.name for p in out.parent.iterdir()] == ["song.flac"]  # atomic: no temporary left


def test_cli_is_deterministic_and_draws_several_samples(dry_dir, tmp_path, toy):
    a, b = tmp_path / "a.flac", tmp_path / "b.flac"
    assert run_cli(mix.main, [str(dry_dir), str(a), "--seed", "5"]) == 0
    assert run_cli(mix.main, [str(dry_dir), str(b), "--seed", "5"]) == 0
    assert sf.read(a)[0].tobytes() == sf.read(b)[0].tobytes()
    assert run_cli(mix.main, [str(dry_dir), str(tmp_path / "n.flac"), "--samples", "2"]) == 0
    first, second = sf.read(tmp_path / "n-1.flac")[0], sf.read(tmp_path / "n-2.flac")[0]
    assert not (tmp_path / "n.flac").exists() and not np.array_equal(first, second)


def test_cli_stops_on_a_corrupt_file_with_one_line(dry_dir, tmp_path, toy, capsys):
    (dry_dir / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    out = tmp_path / "x.flac"
    assert run_cli(mix.main, [str(dry_dir), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "broken.wav" in err[0] and "cannot decode" in err[0]
    assert not out.exists()


def test_cli_silent_file_is_one_line_or_dropped(dry_dir, tmp_path, toy, capsys):
    sf.write(dry_dir / "empty.wav", np.zeros((SR, 2), dtype=np.float32), SR)
    out = tmp_path / "x.flac"
    assert run_cli(mix.main, [str(dry_dir), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty.wav" in err[0] and "silent" in err[0]
    assert run_cli(mix.main, [str(dry_dir), str(out), "--drop-silent"]) == 0
    assert out.is_file() and len(toy.calls) == 4


def test_silent_tracks_are_dropped_and_generated_gains_set_the_levels():
    settings = toy_settings()
    pipeline = ToyPipeline(settings)
    t = np.arange(3 * 8192) / SR
    loud = np.stack([0.5 * np.sin(2 * np.pi * 200 * t)] * 2).astype(np.float32)
    quiet = (1e-5 * loud).astype(np.float32)  # -100 dB: below silence_dbfs
    other = np.stack([0.1 * np.sin(2 * np.pi * 630 * t)] * 2).astype(np.float32)
    prepared = mix.prepare(["a", "silent", "b"], [loud, quiet, other], settings)
    assert prepared.names == ["a", "b"] and prepared.dropped == ["silent"]
    mixes, effects, _ = mix.megami_mixes(pipeline, prepared, settings, 1, seed=0)
    result = mixes[0]
    levels = [measured_level_db(w) for w in prepared.window(result.stems)]
    targets = mix.effect_level_db(effects[0])
    # the stems keep the generated level differences (a common peak-normalisation shifts them all)
    assert levels[0] - levels[1] == pytest.approx(targets[0] - targets[1], abs=0.05)
    assert np.allclose(result.mix, np.sum(result.stems, axis=0), atol=1e-6)
    with pytest.raises(mix.StemlabError, match="every track is silent"):
        mix.prepare(["silent"], [quiet], settings)


def test_crossfade_must_fit_in_a_block():
    with pytest.raises(mix.StemlabError, match="crossfade_samples"):
        toy_settings(block_samples=4096, crossfade_samples=2049)
