"""Stage's codec half: the rvq codec's shapes and round trip, its training through the frame (lower MR-STFT
than at init, a resume that ends on the same weights), the EnCodec snapshot (a tiny EncodecModel written in the
hub layout, served on 127.0.0.1 and fetched like a download), token shards (round trip, deterministic bytes,
one-line errors), the metronome's click onsets and the codec summary table."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from stemlab.errors import StemlabError
from stemlab.seeding import rng
from stemlab.stage.codec import RVQCodec, RVQConfig
from stemlab.train.job import Job, JobInputs

SR = 44_100
SECONDS = 2.0
TINY = {"kind": "rvq", "sample_rate": 16000, "segment_samples": 1600, "min_rms_db": -60.0,
        "model": {"channels": 4, "max_channels": 16, "strides": [4, 4, 5, 4], "latent_dim": 8},
        "quantizer": {"codebooks": 2, "codebook_size": 32}, "loss": {"fft_sizes": [256, 64]}}  # fmt: skip
SONGS = [("syn-000000", "train"), ("syn-000001", "train"), ("syn-000002", "valid"), ("syn-000003", "test")]


def _song_audio(i: int, n: int) -> dict[str, np.ndarray]:
    t = np.arange(n) / SR
    r = rng(0, "stage-codec-fixture", i)
    beat = 0.5
    drums = (np.exp(-(t % beat) * 40) * r.standard_normal(n) * 0.3).astype(np.float32)
    bass = (0.3 * np.sin(2 * np.pi * (55 + 10 * i) * t)).astype(np.float32)
    piano = (0.2 * np.sin(2 * np.pi * 440 * t) * (t % 1 < 0.5)).astype(np.float32)
    vocals = (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    return {"drums": drums, "bass": bass, "piano": piano, "vocals": vocals}


def write_corpus(root: Path) -> dict[str, Path]:
    """Four synthetic-layout songs in one shard: stems, song.json, the shard's segment table (window `stage`, the
    piano of syn-000001 silent) and a features table."""
    n = int(SECONDS * SR)
    shard = root / "stems" / "synthetic" / "shard-00000"
    rows, feats = [], []
    for i, (song, split) in enumerate(SONGS):
        d = shard / song
        (d / "wet").mkdir(parents=True)
        stems = []
        for name, x in _song_audio(i, n).items():
            sf.write(d / "wet" / f"{name}.flac", np.stack([x, x], 1), SR, subtype="PCM_24")
            stems.append({"name": name, "category": name, "files": {"wet": f"wet/{name}.flac"}})
            active = not (song == "syn-000001" and name == "piano")
            rows.append({"corpus": "synthetic", "shard": "shard-00000", "split": split, "song": song, "stem": name, "category": name,
                         "window": "stage", "start": 0, "length": n, "active": active, "active_fraction": 1.0, "rms_db": -20.0})  # fmt: skip
        meta = {"id": song, "split": split, "genre": "rock", "mode": "minor" if i % 2 else "major", "tempo_bpm": 120.0,
                "mix_loudness_lufs": -10.0, "n_frames": n, "beats": [0.5 * k for k in range(4)], "downbeats": [0.0],
                "stems": stems}  # fmt: skip
        (d / "song.json").write_text(json.dumps(meta))
        feats.append({"song": song, "bpm": 119.0, "beats": [0.5, 1.0], "scale": "major", "mix_lufs": -12.0})
    segments = root / "segments" / "shard-00000.parquet"
    segments.parent.mkdir(parents=True)
    table = pd.DataFrame(rows)
    table.to_parquet(segments)
    table.drop(columns=["window"]).to_parquet(root / "stage.parquet")
    features = root / "features.parquet"
    pd.DataFrame(feats).to_parquet(features)
    return {"root": root, "stems": shard, "segments": segments, "table": root / "stage.parquet", "features": features}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("stage_codec"))


def codec_job(corpus, settings=None, loop=None, pretrained=None, eval_settings=None) -> Job:
    inputs = JobInputs(segments={"stage": [str(corpus["table"])]}, stems_root=str(corpus["root"] / "stems"), pretrained=pretrained or {})
    base = {"steps": 30, "batch_size": 4, "lr": 0.003, "checkpoint_every": 10, "checkpoint_seconds": 0, "eval_every": 0,
            "valid_batches": 1, "workers": 0}  # fmt: skip
    return Job(model="codec", task="stemlab.stage.codec_task", seed=1, loop={**base, **(loop or {})}, settings=settings or TINY,
               eval=eval_settings or {"seconds": 1.0, "batch_size": 2}, inputs=inputs, device="cpu", cpu_threads=1)  # fmt: skip


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> Path:
    from stemlab.train.run import train_job

    out = tmp_path_factory.mktemp("codec_model")
    train_job(codec_job(corpus), out)
    return out / "final.pt"


# ---------------------------------------------------------------------------- the rvq codec


def test_rvq_shapes_exact_lengths_and_round_trip():
    from stemlab.stage.codec_task import CodecSettings

    cfg = CodecSettings.from_config({**TINY, "quantizer": {"codebooks": 3, "codebook_size": 16}}).rvq
    torch.manual_seed(0)  # the test's own weights
    codec = RVQCodec(cfg).eval()
    assert (codec.hop, codec.frame_rate, codec.n_codebooks, codec.cardinality) == (320, 50.0, 3, 16)
    wave = torch.randn(2, 1, 1000)
    codes = codec.encode(wave)
    assert codes.shape == (2, 3, 4) and codes.dtype == torch.int64  # ceil(1000 / 320) frames
    assert int(codes.min()) >= 0 and int(codes.max()) < 16
    audio = codec.decode(codes)
    assert audio.shape == (2, 1, 4 * 320)
    with torch.no_grad():
        recon, same_codes, _ = codec(wave)
    assert torch.equal(same_codes, codes) and torch.allclose(recon, audio, atol=1e-6)  # decode(encode(x)) = the model's path
    assert torch.equal(codec.encode(audio), codec.encode(audio))
    with pytest.raises(ValueError, match="codes must lie"):
        codec.decode(torch.full((1, 3, 2), 16))


def test_the_default_codec_loss_fits_a_waveform_in_a_few_steps():
    """200 Adam steps of the default CodecLoss on eight fixed drum-like clips (decaying noise bursts over a low sine)
    reach a usable SI-SDR through the quantiser. The MR-STFT is blind to phase: at the old waveform weight 1 the same
    fit ends at -11 dB (-39 dB at lr 0.0005), and the demo codec at -24 dB held-out."""
    from stemlab.metrics import si_sdr
    from stemlab.stage.codec_task import CodecLoss, CodecSettings

    settings = CodecSettings.from_config({"kind": "rvq", "sample_rate": 16000, "segment_samples": 3200})
    r = rng(0, "codec-fit-signals")
    t = np.arange(1600) / 16000
    waves = []
    for _ in range(8):
        envelope = np.exp(-(t % r.uniform(0.02, 0.05)) * 60)
        waves.append(0.2 * envelope * r.standard_normal(1600) + 0.1 * np.sin(2 * np.pi * r.uniform(60, 200) * t))
    x = torch.tensor(np.stack(waves), dtype=torch.float32)[:, None]
    torch.manual_seed(0)  # the test's own weights
    model = RVQCodec(RVQConfig(sample_rate=16000, channels=8, max_channels=32, strides=(4, 4, 5), latent_dim=16, res_units=1, codebooks=2,
                                codebook_size=32, decay=0.99, commitment_weight=1.0, dead_code_threshold=2.0))
    criterion = CodecLoss((256, 64), settings.waveform_weight)
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    for _ in range(200):
        loss, _ = criterion(model, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    recon = model.decode(model.encode(x))[..., :1600]
    assert np.mean([si_sdr(e.numpy(), y.numpy()) for e, y in zip(recon, x)]) > -6.0  # -2.6 dB at waveform weight 10


def test_training_lowers_mrstft_and_resumes_to_the_same_weights(corpus, trained, tmp_path, monkeypatch):
    from stemlab.device import seeded_init
    from stemlab.seeding import derive_seed
    from stemlab.stage.codec_task import CodecTask
    from stemlab.train.checkpoint import list_checkpoints
    from stemlab.train.run import train_job
    from stemlab.train.task import read_final

    job = codec_job(corpus)
    task = CodecTask(job)
    task.setup()
    with seeded_init(derive_seed(task.loop.seed, "init")):
        init = task.build_model().eval()
    model, _ = task.load(trained)
    with torch.no_grad():
        before, after = task.validate(init), task.validate(model)
    assert after["mrstft"] < 0.8 * before["mrstft"], (before, after)

    batch = CodecTask.batch

    def crashing(self, step):
        if step == 25:
            raise KeyboardInterrupt
        return batch(self, step)

    with monkeypatch.context() as m:
        m.setattr(CodecTask, "batch", crashing)
        with pytest.raises(KeyboardInterrupt):
            train_job(job, tmp_path)
    assert [s for s, _ in list_checkpoints(tmp_path / "checkpoints")] == [10, 20]
    train_job(job, tmp_path)
    a, b = read_final(trained)["state_dict"], read_final(tmp_path / "final.pt")["state_dict"]
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_evaluation_rows_and_the_codec_table(corpus, trained, tmp_path):
    from stemlab.evaluate.run import evaluate_job
    from stemlab.evaluate.summary import summarize
    from stemlab.stage.codec_task import CodecTask

    rows = evaluate_job(codec_job(corpus), trained.parent, tmp_path / "eval")
    assert set(rows["system"]) == {"rvq"} and set(rows["metric"]) == {"si_sdr", "mrstft"}
    assert set(rows["song"]) == {"syn-000003"} and rows["item"].nunique() == 4  # the test song's four stems
    assert np.isfinite(rows["value"]).all()
    table = summarize(pd.read_parquet(tmp_path / "eval" / "items.parquet"), directions=CodecTask.metric_directions)
    assert set(zip(table["system"], table["metric"], table["better"])) == {("rvq", "si_sdr", "higher"), ("rvq", "mrstft", "lower")}
    assert (table["ci95_low"] <= table["mean"]).all() and (table["mean"] <= table["ci95_high"]).all()


# ---------------------------------------------------------------------------- EnCodec


def _encodec_snapshot(folder: Path) -> None:
    from transformers import EncodecConfig, EncodecModel

    cfg = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4, upsampling_ratios=[8, 5, 4, 4], codebook_size=2048,
                        codebook_dim=8, hidden_size=8, num_lstm_layers=1, target_bandwidths=[2.2], num_residual_layers=1,
                        normalize=False, chunk_length_s=None, overlap=None)  # fmt: skip
    torch.manual_seed(0)  # the test's stand-in for the published weights
    EncodecModel(cfg).save_pretrained(folder)


def test_encodec_snapshot_downloads_loads_frozen_and_evaluates(corpus, tmp_path):
    from stemlab.download.pretrained import fetch_snapshot
    from stemlab.evaluate.run import evaluate_job
    from stemlab.stage.codec import EncodecCodec, load_codec
    from stemlab.train.run import train_job
    from tests.download_server import FileServer

    _encodec_snapshot(tmp_path / "hub")
    blobs = {p.name: p.read_bytes() for p in sorted((tmp_path / "hub").iterdir())}
    assert set(blobs) == {"config.json", "model.safetensors"}
    with FileServer() as server:
        for name, data in blobs.items():
            server.state.files[f"/encodec/{name}"] = data
        files = [{"path": n, "url": server.url(f"/encodec/{n}"), "sha256": hashlib.sha256(d).hexdigest(), "key": f"pretrained.encodec_32khz.files[{i}]"}
                 for i, (n, d) in enumerate(blobs.items())]  # fmt: skip
        fetch_snapshot("encodec_32khz", files, tmp_path / "snapshot", tmp_path / "cache", show_progress=False)
    codec = EncodecCodec(tmp_path / "snapshot")
    assert (codec.sample_rate, codec.n_codebooks, codec.cardinality, codec.frame_rate) == (32000, 4, 2048, 50.0)
    wave = torch.from_numpy(rng(0, "encodec-wave").standard_normal(2000).astype(np.float32) * 0.1)[None, None]
    codes = codec.encode(wave)
    assert codes.shape == (1, 4, 4) and codes.dtype == torch.int64 and codec.decode(codes).shape == (1, 1, 4 * 640)

    pretrained = {"encodec_32khz": str(tmp_path / "snapshot")}
    settings = {"kind": "encodec", "encodec": {"snapshot": "encodec_32khz"}}
    job = codec_job(corpus, settings, loop={"steps": 50}, pretrained=pretrained)
    meta = train_job(job, tmp_path / "model")
    assert meta["trainable_parameters"] == 0 or all(not p.requires_grad for p in codec.parameters())
    log = pd.read_csv(tmp_path / "model" / "train_log.csv")
    assert list(log[log["split"] == "train"]["step"]) == [1]  # frozen: one no-op step whatever loop.steps says
    loaded = load_codec(tmp_path / "model" / "final.pt")
    assert torch.equal(loaded.encode(wave), codes)
    rows = evaluate_job(job, tmp_path / "model", tmp_path / "eval")
    assert set(rows["system"]) == {"encodec"} and set(rows["metric"]) == {"si_sdr", "mrstft"}
    with pytest.raises(StemlabError, match="config.json: not found"):
        EncodecCodec(tmp_path / "nothing")


# ---------------------------------------------------------------------------- metronome and token shards


def test_metronome_clicks_start_on_the_beats_and_accent_downbeats():
    from stemlab.stage.metronome import click_track, onsets

    sr = 16000
    beats = [0.25, 0.75, 1.25, 1.75, 2.3]
    track = click_track(beats, [0.25, 1.25, 2.0], int(2.5 * sr), sr)
    starts = onsets(track)
    assert list(starts) == sorted(round(t * sr) for t in [*beats, 2.0])  # a lone downbeat clicks too
    peaks = {int(s): float(np.abs(track[s : s + 10]).max()) for s in starts}
    assert peaks[round(0.25 * sr)] > peaks[round(0.75 * sr)]  # the downbeat is accented
    assert np.array_equal(track, click_track(beats, [0.25, 1.25, 2.0], int(2.5 * sr), sr))


def _token_job(corpus, final: Path, **extra):
    from stemlab.stage.tokenize import TokenJob

    return TokenJob.from_dict({"codec": "codec", "seed": 1, "corpus": "synthetic", "shard": "shard-00000", "model": str(final),
                               "segments": str(corpus["segments"]), "stems": str(corpus["stems"]), "features": str(corpus["features"]),
                               "device": "cpu", "cpu_threads": 1, **extra})  # fmt: skip


def test_token_shards_round_trip_with_deterministic_bytes(corpus, trained, tmp_path):
    from stemlab.audio import resample
    from stemlab.stage.codec import load_codec
    from stemlab.stage.tokenize import tokenize_job
    from stemlab.stage.tokens import read_tokens

    job = _token_job(corpus, trained)
    tokenize_job(job, tmp_path / "a.parquet")
    tokenize_job(job, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    rows = read_tokens([tmp_path / "a.parquet"])
    meta = rows.attrs["tokens"]
    assert meta["model_sha256"] == hashlib.sha256(trained.read_bytes()).hexdigest()
    assert (meta["sample_rate"], meta["n_codebooks"], meta["cardinality"], meta["frame_rate"]) == (16000, 2, 32, 50.0)
    song = rows[rows["song"] == "syn-000000"]
    assert list(zip(song["role"], song["stem"])) == [("target", "bass"), ("target", "drums"), ("context", "piano"), ("metronome", "click")]
    assert rows[rows["song"] == "syn-000001"]["stem"].tolist() == ["bass", "drums", "click"]  # silent piano, excluded vocals
    frames = int(np.ceil(SECONDS * 16000 / 320))
    assert all(c.shape == (2, frames) and c.dtype == np.int64 for c in rows["codes"]) and (rows["n_frames"] == frames).all()
    codec = load_codec(trained)
    drums, _ = sf.read(corpus["stems"] / "syn-000000" / "wet" / "drums.flac", dtype="float32", always_2d=True)
    wave = resample(drums.mean(axis=1, keepdims=True), SR, 16000)[:, 0]
    expected = codec.encode(torch.from_numpy(wave)[None, None])[0].numpy()
    assert np.array_equal(song[song["stem"] == "drums"]["codes"].iloc[0], expected)
    assert song["beats"].iloc[0].tolist() == [0.0, 0.5, 1.0, 1.5] and song["downbeats"].iloc[0].tolist() == [0.0]
    assert song["description"].iloc[0] == "Genres: rock. Moods: bright, steady, energetic."

    capped = _token_job(corpus, trained, max_seconds=1.0)
    tokenize_job(capped, tmp_path / "c.parquet")
    short = read_tokens([tmp_path / "c.parquet"])
    assert (short["n_frames"] == 50).all() and short["beats"].iloc[0].tolist() == [0.0, 0.5]
    with pytest.raises(StemlabError, match="re-run tokenize_stage") as err:
        read_tokens([tmp_path / "a.parquet"], codec={"cardinality": 2048})
    assert "a.parquet" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(StemlabError, match=r"missing\.parquet: token shard not found; re-run tokenize_stage"):
        read_tokens([tmp_path / "missing.parquet"])


def test_token_plan_follows_the_codec_model_and_refuses_bad_keys():
    from stemlab import modelplan
    from stemlab.config import load_config
    from stemlab.stage import tokenplan

    config = load_config()
    plans = modelplan.model_plans(config, ["synthetic"])
    plan = tokenplan.token_plan(config, plans, ["synthetic"])
    assert plan is not None and (plan.codec, plan.seed, plan.corpora) == ("codec", 1, ("synthetic",))
    inputs = tokenplan.token_inputs(plan, plans, "synthetic", "shard-00003")
    assert inputs["model"] == "results/models/codec/seed-1/final.pt" and inputs["pretrained"] == {"encodec_32khz": "resources/pretrained/encodec_32khz"}
    job = json.loads(tokenplan.token_job_config(config, plan, "synthetic", "shard-00003", inputs))
    assert job["targets"] == ["drums", "bass"] and job["exclude"] == ["vocals", "percussion", "wind", "other_plucked"]
    assert tokenplan.token_plan(config, {k: v for k, v in plans.items() if k != "codec"}, ["synthetic"]) is None
    with pytest.raises(StemlabError, match="stage_tokens.seed"):
        tokenplan.token_plan({**config, "stage_tokens": {**config["stage_tokens"], "seed": 9}}, plans, ["synthetic"])
