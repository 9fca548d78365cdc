"""Effect encoder (models.fx_encoder): MEGAMI's interpretable features on closed-form signals, chains
rendered on other content, deterministic pair batches, shapes and unit norm, a short training through
train_job with a resume, the evaluation rows, the pretrained (Fx-Encoder++) source from a served snapshot,
and the embedding CLI on user files."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from stemlab.encoders.fx import features
from stemlab.seeding import rng

SR = 44_100
WINDOW = 16_384
TASK = "stemlab.encoders.fx.task"
TINY_MODEL = {"n_fft": 512, "hop": 128, "mel_bins": 16, "channels": [4, 8], "embedding_dim": 8, "projection_dim": 8}
TINY_SETTINGS = {"segment_samples": 8192, "preroll_samples": 1024, "model": TINY_MODEL}
TINY_EVAL = {"max_items": 6, "probe_items": 24, "max_samples": 8192, "candidates": 3, "batch_size": 4, "folds": 2}
SPLITS = ["train", "train", "train", "train", "valid", "test", "test"]


# ---------------------------------------------------------------------------- a corpus with engine chains


def _dry(kind: str, n: int, r: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    env = np.exp(-((t * 4) % 1) * 5)
    if kind == "bass":
        mono = 0.5 * np.sin(2 * np.pi * (55 * 2 ** (r.integers(0, 12) / 12)) * t + r.uniform(0, 6)) * env
        return np.stack([mono, mono], axis=1).astype(np.float32)
    mono = r.standard_normal(n) * 0.2 * env
    return np.stack([mono, 0.7 * mono + 0.3 * r.standard_normal(n) * 0.1 * env], axis=1).astype(np.float32)


def write_corpus(root: Path, seconds: float = 0.75) -> Path:
    """Songs of two stems (a tone 'bass', a noise 'harmony' part) whose wet stems are real synth chains
    (stemlab.synth.mixing.sample_stem_fx, apply_stem_fx), in the canonical layout with a segment table."""
    from stemlab.synth import genres, mixing

    n = int(seconds * SR)
    rows = []
    for s, split in enumerate(SPLITS):
        song = f"song-{s:04d}"
        d = root / "stems" / "synthetic" / "shard-00000" / song
        (d / "dry").mkdir(parents=True, exist_ok=True)
        (d / "wet").mkdir(parents=True, exist_ok=True)
        entries = []
        for stem, role in (("bass", "bass"), ("keys", "harmony")):
            r = rng(7, song, stem)
            dry = _dry(stem, n, r)
            style = genres.GENRES[["pop", "rock", "jazz"][s % 3]].mix
            fx = mixing.sample_stem_fx(style, role, 0.5, -24.0, r, 1.0 if s % 2 else -1.0)
            fx["fader_db"] = round(float(r.uniform(-8, 4)), 3)
            sf.write(d / "dry" / f"{stem}.flac", dry, SR, subtype="PCM_24")
            sf.write(d / "wet" / f"{stem}.flac", mixing.apply_stem_fx(dry, fx, SR), SR, subtype="PCM_24")
            entries.append({"name": stem, "category": role, "fx": fx, "files": {"dry": f"dry/{stem}.flac", "wet": f"wet/{stem}.flac"}})
            for start in range(0, n - WINDOW + 1, WINDOW // 2):
                rows.append({"song": song, "stem": stem, "start": start, "length": WINDOW, "active": True,
                             "corpus": "synthetic", "shard": "shard-00000", "split": split})  # fmt: skip
        (d / "song.json").write_text(json.dumps({"id": song, "split": split, "sample_rate": SR, "stems": entries}))
    table = root / "segments.parquet"
    pd.DataFrame(rows).to_parquet(table)
    return table


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fxcorpus")
    write_corpus(root)
    return root


def make_job(root: Path, loop: dict, settings: dict, *, seed: int = 3, eval_settings: dict | None = None, pretrained=None):
    from stemlab.train.job import Job, JobInputs

    inputs = JobInputs(segments={"megami": [str(root / "segments.parquet")]}, stems_root=str(root / "stems"),
                       pretrained=pretrained or {})  # fmt: skip
    return Job(model="fx_encoder", task=TASK, seed=seed, loop=loop, settings=settings, eval=eval_settings or {},
               inputs=inputs, device="cpu", cpu_threads=1)  # fmt: skip


def _items(root: Path, split: str):
    from stemlab.data.segment_tables import read_segment_tables
    from stemlab.megami.pairs import pair_items

    return pair_items(read_segment_tables([root / "segments.parquet"]), root / "stems", split)


# ---------------------------------------------------------------------------- features


def test_interpretable_features_on_closed_form_signals():
    t = torch.arange(SR) / SR
    sine = 0.5 * torch.sin(2 * math.pi * 441.3 * t + 0.1)
    both = torch.stack([sine, sine])[None]
    f = features.interpretable_features(both)[0]
    assert f[0] == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.01)  # loudest 400 ms frame
    assert f[1] == pytest.approx(f[0].item())
    assert f[2] == pytest.approx(20 * math.log10(math.sqrt(2)), abs=0.01)  # crest of a sine: 3.01 dB
    # log spread of a sine: E[20 log10|sin|] - 20 log10(1/sqrt 2) = 20 log10(1/2) + 20 log10(sqrt 2) = -3.01 dB
    assert f[4] == pytest.approx(-20 * math.log10(math.sqrt(2)), abs=0.05)
    assert f[6] == pytest.approx(0.0, abs=1e-6) and f[7] == pytest.approx(0.0, abs=1e-6)
    left = features.interpretable_features(torch.stack([sine, torch.zeros_like(sine)])[None])[0]
    assert left[7] == pytest.approx(-1.0) and left[6] == pytest.approx(1.0)  # hard left: all imbalance, width 1
    # the log-RMS is the loudest frame, not the mean: a quiet half does not lower it
    quiet_loud = torch.cat([0.01 * sine[: SR // 2], sine[SR // 2 :]])
    g = features.interpretable_features(torch.stack([quiet_loud, quiet_loud])[None])[0]
    assert g[0] == pytest.approx(f[0].item(), abs=0.05)
    short = features.interpretable_features(both[..., :1000])  # shorter than one 400 ms frame
    assert short[0, 0] == pytest.approx(f[0].item(), abs=0.05)


def test_fourier_features_and_join_follow_megami():
    p = features.projection()
    assert p.shape == (8, 32) and p[0, 0] == pytest.approx(0.2 * math.cos(math.pi * 0.5 * 1 / 32))
    raw = torch.tensor([[-26.5, -26.5, 16.7, 16.7, -20.0, -20.0, 0.28, 0.0]])
    af = features.fourier_features(raw)  # at the shift constants: standardised features are 0
    assert torch.allclose(af, torch.cat([torch.ones(1, 32), torch.zeros(1, 32)], 1) / math.sqrt(32))
    assert af.norm() == pytest.approx(1.0)
    learned = torch.randn(3, 2048)
    z = features.join(learned, features.fourier_features(torch.randn(3, 8)))
    assert z.shape == (3, 2112) and torch.allclose(z.norm(dim=1), torch.ones(3))
    assert z[:, :2048].norm(dim=1) ** 2 == pytest.approx(2048 / 2112, abs=1e-5)  # each part weighs its dims


# ---------------------------------------------------------------------------- rendering and pairs


def test_render_is_the_engine_s_rendering_with_the_trim_measured_on_the_content(corpus):
    from stemlab.encoders.fx.render import render, trim_gain_db
    from stemlab.synth.mixing import apply_stem_fx

    it = _items(corpus, "train")[1]
    dry = sf.read(it.dry, dtype="float32", always_2d=True)[0]
    fx = json.loads(json.dumps(it.fx))
    for stage in fx["chain"]:
        if stage["stage"] == "trim":
            stage["gain_db"] = trim_gain_db(dry)  # what the engine would have set for this content
    engine = apply_stem_fx(dry, fx, SR)
    ours = render(it.fx, dry, 0).T
    assert ours.shape == engine.shape and np.abs(ours - engine).max() < 1e-4 * max(1.0, np.abs(engine).max())
    # a pre-roll is rendered and cut off: the crop after it is what comes out
    assert render(it.fx, dry, 4096).shape == (2, dry.shape[0] - 4096)


def test_pair_batches_are_a_function_of_seed_and_index(corpus):
    from stemlab.encoders.fx.data import ChainPairs

    items = _items(corpus, "train")
    pairs = ChainPairs(items, 4096, 512, seed=11)
    a, b = pairs.batch(5, 4), ChainPairs(items, 4096, 512, seed=11).batch(5, 4)
    assert a["audio"].tobytes() == b["audio"].tobytes() and np.array_equal(a["chain"], b["chain"])
    assert a["audio"].shape == (8, 2, 4096) and a["audio"].dtype == np.float32
    assert np.array_equal(a["chain"][:4], a["chain"][4:]), "views 1 and 2 are the same chains"
    assert pairs.batch(6, 4)["audio"].tobytes() != a["audio"].tobytes()
    assert ChainPairs(items, 4096, 512, seed=12).batch(5, 4)["audio"].tobytes() != a["audio"].tobytes()
    assert np.isfinite(a["audio"]).all() and np.abs(a["audio"]).max() > 1e-3


def test_nt_xent_prefers_the_partner_and_ignores_repeated_chains():
    from stemlab.encoders.fx.loss import nt_xent

    z = torch.nn.functional.normalize(torch.eye(4), dim=1)
    perfect, m = nt_xent(torch.cat([z, z]), torch.arange(4).repeat(2), 0.1)
    assert m["top1"] == 1.0 and perfect < 0.01
    wrong, m = nt_xent(torch.cat([z, z.roll(1, 0)]), torch.arange(4).repeat(2), 0.1)
    assert m["top1"] == 0.0 and wrong > 5
    # chain 0 twice: its second copy is not a negative, so identical views of one chain cost nothing extra
    repeated, _ = nt_xent(torch.cat([z[[0, 0, 1, 2]], z[[0, 0, 1, 2]]]), torch.tensor([0, 0, 1, 2] * 2), 0.1)
    assert repeated < 0.01


def test_embedding_shapes_and_unit_norm():
    from stemlab.encoders.fx.net import FxEmbedder, FxEncoderNet, FxNetConfig

    cfg = FxNetConfig.from_dict(TINY_MODEL)
    model = FxEmbedder(FxEncoderNet(cfg)).eval()
    for length in (100, cfg.min_samples, 20_000):
        z = model(torch.randn(3, 2, length) * 0.1)
        assert z.shape == (3, 8 + 64) and z.dtype == torch.float32
        assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
    assert model.net.project(model.net(torch.randn(2, 2, 4000))).shape == (2, 8)


def test_ridge_probe_recovers_a_linear_target():
    from stemlab.encoders.fx.probe import RidgeProbe, r2_terms

    g = np.random.default_rng(0)
    x = g.standard_normal((200, 30))
    y = np.c_[x @ g.standard_normal(30), g.standard_normal(200)]
    groups = [f"s{i // 10}" for i in range(200)]
    probe = RidgeProbe(folds=4).fit(x[:150], y[:150], groups[:150])
    terms = r2_terms(y[150:, 0], probe.predict(x[150:])[:, 0])
    assert terms.mean() > 0.98  # the mean of the per-item terms is R^2
    assert r2_terms(y[150:, 1], probe.predict(x[150:])[:, 1]).mean() < 0.2


def test_fader_oracle_reads_level_and_the_rest_of_the_chain():
    """The level of a render is fader + a chain-dependent change (here: half the compressor threshold): the
    oracle, given level and the true threshold, recovers the fader; an embedding without level cannot."""
    from stemlab.encoders.fx.evaluate import probe_rows
    from stemlab.megami.pairs import PairItem

    g = np.random.default_rng(1)

    def items(n, offset):
        out, lufs = [], []
        for i in range(n):
            fader, threshold = float(g.uniform(-8, 2)), float(g.uniform(-30, -5))
            fx = {"chain": [{"stage": "compressor", "type": "Compressor", "threshold_db": threshold, "ratio": 3.0}],
                  "fader_db": fader, "pan": float(g.uniform(-0.5, 0.5))}  # fmt: skip
            out.append(PairItem(f"s{(i + offset) // 4}", "bass", "bass", 0, 10, Path("d"), Path("w"), fx))
            lufs.append(-20.0 + fader + 0.5 * threshold)
        return out, np.array(lufs)

    (train, train_lufs), (test, test_lufs) = items(80, 0), items(40, 100)
    noise = {"fx_encoder": g.standard_normal((80, 6))}, {"fx_encoder": g.standard_normal((40, 6))}
    rows = pd.DataFrame(probe_rows(*noise, train, test, folds=4, loudness=(train_lufs, test_lufs)))
    r2 = rows.groupby(["system", "metric"])["value"].mean()
    assert r2[("oracle", "probe_r2_fader_db")] > 0.99 and r2[("fx_encoder", "probe_r2_fader_db")] < 0.3
    assert set(rows[rows["system"] == "oracle"]["metric"]) == {"probe_r2_fader_db"}
    assert len(rows[rows["system"] == "oracle"]) == 40


# ---------------------------------------------------------------------------- training, resume, evaluation


class Crash(Exception):
    pass


@pytest.mark.slow  # a model trained end to end (seconds to tens of seconds on 2 cores)
def test_training_resumes_to_identical_weights_and_evaluates(corpus, tmp_path, monkeypatch):
    from stemlab.encoders.fx import data
    from stemlab.evaluate.run import evaluate_job
    from stemlab.evaluate.summary import summarize
    from stemlab.train.checkpoint import list_checkpoints
    from stemlab.train.run import train_job
    from stemlab.train.task import load_trained

    loop = {"steps": 4, "batch_size": 3, "lr": 0.01, "checkpoint_every": 2, "checkpoint_seconds": 0, "eval_every": 2,
            "valid_batches": 1, "workers": 0}  # fmt: skip
    job = make_job(corpus, loop, TINY_SETTINGS, eval_settings=TINY_EVAL)
    meta = train_job(job, tmp_path / "ref")
    assert meta["train_chains"] == 8 and meta["embedding_dim"] == 72
    batch = data.ChainPairs.batch

    def crashing(self, step, batch_size, purpose="pairs"):
        if purpose == "pairs" and step == 3:
            raise Crash
        return batch(self, step, batch_size, purpose)

    with monkeypatch.context() as m:
        m.setattr(data.ChainPairs, "batch", crashing)
        with pytest.raises(Crash):
            train_job(job, tmp_path / "run")
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [2]
    train_job(job, tmp_path / "run")
    a = torch.load(tmp_path / "ref" / "final.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "run" / "final.pt", weights_only=True)["state_dict"]
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    log = pd.read_csv(tmp_path / "run" / "train_log.csv")
    assert {"loss", "top1"} <= set(log.columns) and (log["split"] == "valid").sum() == 2

    rows = evaluate_job(job, tmp_path / "ref", tmp_path / "eval")
    assert set(rows["system"]) == {"fx_encoder", "af_features", "oracle", "chance"}
    assert set(rows[rows["system"] == "oracle"]["metric"]) == {"probe_r2_fader_db"}
    metrics = set(rows["metric"])
    assert {"probe_r2_fader_db", "probe_r2_reverb_wet", "probe_r2_pan", "same_chain_top1", "triplet_acc"} <= metrics
    test_windows = len(_items(corpus, "test"))
    assert rows["item"].nunique() == min(TINY_EVAL["max_items"], test_windows)
    chance = rows[rows["system"] == "chance"].groupby("metric")["value"].mean()
    assert chance["same_chain_top1"] == pytest.approx(1 / 3) and chance["triplet_acc"] == 0.5
    assert set(rows[rows.metric == "same_chain_top1"]["value"]) <= {0.0, 1.0, 1 / 3}
    table = summarize(rows.assign(model="fx_encoder", seed=3), draws=200, directions={})
    assert len(table) == len(rows.groupby(["system", "metric"]))
    # the model behind final.pt embeds like the cache will call it
    task, model, _ = load_trained(tmp_path / "ref" / "final.pt")
    z = task.embed(model, torch.randn(2, 2, 5000) * 0.1)
    assert z.shape == (2, task.embedding_dim()) and torch.allclose(z.norm(dim=1), torch.ones(2), atol=1e-5)


# ---------------------------------------------------------------------------- pretrained source


SHRUNK = (4, 8, 8, 8, 8, 16)  # Fx-Encoder++'s real key layout with narrower conv blocks (84 M -> 4.7 M)


@pytest.mark.slow  # a model trained end to end (seconds to tens of seconds on 2 cores)
def test_pretrained_fxencoder_plusplus_from_a_served_snapshot(corpus, tmp_path, monkeypatch):
    """download (local HTTP) -> sha256 -> stock key layout adapted (module. prefix, CLAP entries dropped) ->
    load -> embed, through train_job (a no-op fit) and evaluate_job, then load_trained."""
    from stemlab.download.fetch import sha256_file
    from stemlab.download.pretrained import fetch_snapshot
    from stemlab.encoders.fx import pretrained
    from stemlab.errors import StemlabError

    try:
        pretrained.package()
    except StemlabError as exc:
        pytest.skip(str(exc))
    from stemlab.evaluate.run import evaluate_job
    from stemlab.train.run import train_job
    from stemlab.train.task import load_trained
    from tests.download_server import FileServer

    monkeypatch.setattr(pretrained, "CHANNELS", SHRUNK)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = pretrained.build()
        for p in net.parameters():
            if p.requires_grad:  # not torchlibrosa's STFT and mel matrices (frozen, computed)
                p.data.normal_(0, 0.05)
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    state["module.audio_clap_model.encoder.model.logit_scale_a"] = torch.ones(())  # off here: dropped
    ckpt = tmp_path / "fxenc_plusplus_default.pt"
    torch.save({"epoch": 3, "state_dict": state}, ckpt)
    snapshot = tmp_path / "resources" / "pretrained" / "fxencoder_plusplus"
    with FileServer() as server:
        server.state.files["/fxenc_plusplus_default.pt"] = ckpt.read_bytes()
        files = [{"path": "fxenc_plusplus_default.pt", "url": server.url("/fxenc_plusplus_default.pt"),
                  "sha256": sha256_file(ckpt), "key": "pretrained.fxencoder_plusplus.files[0]"}]  # fmt: skip
        fetch_snapshot("fxencoder_plusplus", files, snapshot, tmp_path / "cache", show_progress=False)
        bad = [{**files[0], "sha256": "0" * 64}]
        with pytest.raises(StemlabError, match="sha256"):
            fetch_snapshot("fxencoder_plusplus", bad, tmp_path / "bad", tmp_path / "cache2", show_progress=False)

    settings = {"source": "pretrained"}
    job = make_job(corpus, {"steps": 50, "checkpoint_seconds": 0}, settings, eval_settings=TINY_EVAL,
                   pretrained={"fxencoder_plusplus": str(snapshot)})  # fmt: skip
    meta = train_job(job, tmp_path / "model")
    assert meta["trainable_parameters"] == 0 and meta["saved_entries"] == 0 and meta["embedding_dim"] == 2112
    log = pd.read_csv(tmp_path / "model" / "train_log.csv")
    assert list(log.loc[log["split"] == "train", "step"]) == [1]  # one no-op step
    rows = evaluate_job(job, tmp_path / "model", tmp_path / "eval")
    assert {"probe_r2_fader_db", "same_chain_top1"} <= set(rows["metric"])

    task, model, _ = load_trained(tmp_path / "model" / "final.pt", inputs={"pretrained": {"fxencoder_plusplus": str(snapshot)}})
    x = torch.randn(2, 2, 30_000) * 0.1
    z = task.embed(model, x)
    net.eval()
    with torch.no_grad():
        direct = features.join(net.fx_encoder(x)["embedding"], features.af_embedding(x))
    assert z.shape == (2, 2112) and torch.allclose(z, direct, atol=1e-5)

    broken = {k: v for k, v in net.state_dict().items() if not k.startswith("fx_encoder.fc_1")}
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(StemlabError, match="lacks fx_encoder.fc_1"):
        pretrained.load_weights(pretrained.build(), tmp_path / "broken.pt")


# ---------------------------------------------------------------------------- the CLI


def test_cli_embeds_user_files_and_reports_unreadable_ones(corpus, tmp_path):
    from stemlab.train.run import train_job

    job = make_job(corpus, {"steps": 1, "batch_size": 2, "checkpoint_seconds": 0, "valid_batches": 0, "workers": 0}, TINY_SETTINGS)
    train_job(job, tmp_path / "m")
    g = np.random.default_rng(1)
    sf.write(tmp_path / "mono22k.wav", (g.standard_normal(11_025) * 0.1).astype(np.float32), 22_050)
    sf.write(tmp_path / "stereo48k.flac", (g.standard_normal((96_000, 2)) * 0.1).astype(np.float32), 48_000)
    sf.write(tmp_path / "quad.wav", (g.standard_normal((500, 4)) * 0.1).astype(np.float32), 44_100)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    out = tmp_path / "emb.parquet"
    cmd = [sys.executable, "-m", "stemlab.encoders.fx", "embed", "--model", str(tmp_path / "m" / "final.pt"),
           "--out", str(out), "--segment", "1.0"]  # fmt: skip
    files = [str(tmp_path / n) for n in ("mono22k.wav", "stereo48k.flac", "broken.wav", "quad.wav")]
    done = subprocess.run(cmd + files, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.wav" in errors[0]
    table = pd.read_parquet(out)
    assert list(table["file"].map(lambda p: Path(p).name)) == ["mono22k.wav", "stereo48k.flac", "stereo48k.flac", "quad.wav"]
    assert list(table["sample_rate"]) == [22_050, 48_000, 48_000, 44_100] and list(table["channels"]) == [1, 2, 2, 4]
    emb = np.stack(table["embedding"].to_numpy())
    assert emb.shape == (4, 72) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert table["duration_s"].iloc[1] == pytest.approx(1.0) and table["start_s"].iloc[2] == pytest.approx(1.0)
    missing = subprocess.run(cmd[:-2] + [str(tmp_path / "nope.wav")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1].startswith("error:")


def test_interpretable_features_keep_a_finite_gradient_on_silence():
    from stemlab.encoders.fx.features import af_embedding

    audio = torch.zeros(2, 2, 44100)
    audio[0, 0] = torch.randn(44100, generator=torch.Generator().manual_seed(0)) * 0.1  # one channel playing, three silent
    audio.requires_grad_(True)
    af_embedding(audio, 44100).sum().backward()
    assert torch.isfinite(audio.grad).all()
