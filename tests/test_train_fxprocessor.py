"""FxProcessor on the frame: the MR-STFT metric, the FX-parameter conditioning of the ablation, pair data, and
the training CLI on embedding conditioning (kill -9 + resume gives the weights of an unbroken run, SIGTERM
checkpoints, config changes refused). The model's parts: tests/test_fxprocessor_parts.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stemlab.megami.fxparams import FxParamSpace, flatten_fx, mean_annotation
from stemlab.megami.fxprocessor import FxProcessorConfig
from stemlab.data.segment_tables import read_segment_tables
from stemlab.megami.pairs import PairDataset, pair_items
from stemlab.train.checkpoint import list_checkpoints
from stemlab.train.losses import MultiResolutionSTFTLoss
from tests.fx_fixture import FX_DIM, CLAP_DIM, fx_job, job_json, write_caches, write_corpus
from tests.workflow_utils import REPO


# ---------------------------------------------------------------------------- loss


def test_mrstft_loss_sanity():
    loss = MultiResolutionSTFTLoss((64, 128, 256))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 4096, generator=gen)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    noise = torch.randn(x.shape, generator=gen)
    small, large = loss(x + 0.01 * noise, x).item(), loss(x + 0.3 * noise, x).item()
    assert 0 < small < large
    assert loss(0.5 * x, x).item() > 0.1, "level differences must count"
    per_item = loss.per_item(torch.cat([x[:1], x[1:] + noise[1:]]), x)
    assert per_item[0] < 1e-6 < per_item[1]
    # batch-level training loss: a near-silent target cannot dominate through its denominator
    quiet = torch.cat([x[:1], 1e-6 * x[1:2]])
    assert loss(quiet + 0.01 * noise[:2], quiet).item() < 10 < loss.per_item(quiet + 0.01 * noise[:2], quiet).max().item()
    silent = torch.zeros(1, 2, 2048, requires_grad=True)
    loss(silent, torch.zeros(1, 2, 2048)).backward()
    assert torch.isfinite(silent.grad).all()
    with pytest.raises(ValueError):
        loss(x, x[..., :100])


# ---------------------------------------------------------------------------- conditioning


FX_A = [{"type": "eq", "low_gain_db": 2.0}, {"type": "reverb", "wet": 0.3, "room": "hall"}, {"type": "gain", "db": -3}]
FX_B = [{"type": "reverb", "wet": 0.1, "room": "plate"}, {"type": "eq", "low_gain_db": -2.0}, {"type": "gain", "db": -1}]
FX_C = [{"type": "eq", "low_gain_db": 0.0}, {"type": "gain", "db": 0, "bypass": True}]


def test_flatten_keys_effects_by_name_not_position():
    assert flatten_fx(FX_A)["reverb.wet"] == 0.3 and flatten_fx(FX_B)["reverb.wet"] == 0.1
    chain = {"chain": [{"stage": "trim", "type": "Gain", "gain_db": 1.0}, {"stage": "fader", "type": "Gain", "gain_db": -2.0}]}
    assert flatten_fx(chain) == {"chain.trim:Gain.gain_db": 1.0, "chain.fader:Gain.gain_db": -2.0}
    assert flatten_fx(FX_C)["gain.bypass"] == 1.0
    assert flatten_fx({"x": [1, 2], "y": None}) == {"x.0": 1.0, "x.1": 2.0}


def test_fx_space_vector_and_round_trip():
    space = FxParamSpace.fit([FX_A, FX_B, FX_C])
    # numeric: eq.low_gain_db, gain.bypass, gain.db, reverb.wet; categorical: reverb.room
    assert "reverb.wet" in space.numeric and space.categorical["reverb.room"] == ["hall", "plate"]
    assert "reverb.wet" in space.optional and "eq.low_gain_db" not in space.optional
    va, vc = space.vector(FX_A), space.vector(FX_C)
    assert va.shape == (space.dim,) and va.dtype == np.float32
    assert va[space.numeric.index("eq.low_gain_db")] == pytest.approx(2.0 / np.std([2.0, -2.0, 0.0]))
    assert vc[space.numeric.index("reverb.wet")] == 0.0  # absent: at the mean, presence bit off
    assert vc[len(space.numeric) + space.optional.index("reverb.wet")] == 0.0
    assert va[len(space.numeric) + space.optional.index("reverb.wet")] == 1.0
    assert np.array_equal(FxParamSpace.from_dict(json.loads(json.dumps(space.to_dict()))).vector(FX_B), space.vector(FX_B))
    assert space.vector({"unknown": 5}).any() == False  # noqa: E712 - unseen keys are ignored


def test_mean_fx_chain_renders_with_the_synthesizer():
    from stemlab.synth import genres, mixing
    from stemlab.megami.evaluate_fxprocessor import default_fx_applier
    from stemlab.seeding import rng

    style = genres.GENRES["pop"].mix
    annotations = [mixing.sample_stem_fx(style, "bass", 0.5, -30.0, rng(0, "fx", i), 0.0) for i in range(5)]
    mean = mean_annotation(annotations)
    flats = [flatten_fx(a) for a in annotations]
    flat = flatten_fx(mean)
    trim = next(k for k in flat if k.startswith("chain.trim:Gain"))
    assert flat[trim] == pytest.approx(np.mean([f[trim] for f in flats if trim in f]))
    assert set(flat) <= set().union(*flats)
    dry = np.random.default_rng(0).standard_normal((2, 8192)).astype(np.float32) * 0.1
    applier = default_fx_applier()
    assert applier is not None
    wet = applier(dry, 44_100, mean)
    assert wet.shape == dry.shape and np.isfinite(wet).all()
    np.testing.assert_array_equal(wet, mixing.apply_stem_fx(dry.T.copy(), mean, 44_100).T)


def test_mean_annotation_averages_numbers_on_the_medoid_structure():
    mean = mean_annotation([FX_A, FX_B])
    flat = flatten_fx(mean)
    assert flat["reverb.wet"] == pytest.approx(0.2) and flat["eq.low_gain_db"] == pytest.approx(0.0)
    assert flat["gain.db"] == -2 and isinstance(flat["gain.db"], float)
    assert flat["reverb.room"] in {"hall", "plate"}


# ---------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fxcorpus")
    write_corpus(root, songs=6, seconds=1.0, window=8192)
    return root


@pytest.fixture(scope="module")
def embeddings(corpus) -> dict:
    """Stand-in effect and CLAP encoders and their caches of the corpus (the job's upstream and cache inputs)."""
    return write_caches(corpus)


def test_segment_table_errors_are_one_line(tmp_path):
    from stemlab.errors import StemlabError
    import pandas as pd

    with pytest.raises(StemlabError, match="not found; run the data stage"):
        read_segment_tables([tmp_path / "missing.parquet"])
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"song": ["a"]}).to_parquet(bad)
    with pytest.raises(StemlabError, match="lacks columns stem, start"):
        read_segment_tables([bad])


def test_pair_batches_are_deterministic_and_aligned(corpus):
    table = read_segment_tables([corpus / "segments.parquet"])
    items = pair_items(table, corpus / "stems", "train")
    assert items and {it.category for it in items} == {"bass", "drums"}
    space = FxParamSpace.fit([it.fx for it in items])
    cond = np.stack([space.vector(it.fx) for it in items])
    ds = PairDataset(items, cond, 2048, seed=5)
    a, b = ds.batch(3, 4), PairDataset(items, cond, 2048, seed=5).batch(3, 4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["dry"].shape == (4, 2, 2048) and a["cond"].shape == (4, space.dim)
    assert not np.array_equal(a["dry"], ds.batch(4, 4)["dry"])
    # the wet window is the fixture's processing of the same dry window (same offsets)
    from tests.fx_fixture import apply_fixture_fx

    index = int(__import__("stemlab.train", fromlist=["step_indices"]).step_indices(len(items), 4, 5, 3)[0])
    item = items[index]
    import soundfile as sf

    dry_full, _ = sf.read(item.dry, dtype="float32")
    wet_full = apply_fixture_fx(dry_full, item.fx)
    match = [o for o in range(item.start, item.start + item.length - 2048 + 1) if np.allclose(a["dry"][0].T, dry_full[o : o + 2048])]
    assert match, "dry crop must come from the item's window"
    np.testing.assert_allclose(a["wet"][0].T, wet_full[match[0] : match[0] + 2048], atol=2e-4)


# ---------------------------------------------------------------------------- training CLI

LOOP = {"steps": 40, "batch_size": 4, "lr": 0.003, "warmup_steps": 2, "grad_clip": 1.0, "precision": "fp32",
        "checkpoint_every": 5, "checkpoint_seconds": 0, "eval_every": 20, "valid_batches": 1, "workers": 2}
SETTINGS = {"segment_samples": 4096, "fxnorm_fit_windows": 4, "model": {"channels": 8, "blocks": 6, "kernel": 5, "cond_hidden": 16},
            "loss": {"fft_sizes": [1024, 512, 256]}}  # fmt: skip
MODEL = FxProcessorConfig.from_dict({**SETTINGS["model"], "cond_dim": FX_DIM + CLAP_DIM, "cond_parts": [FX_DIM, CLAP_DIM]})


def _train_cmd(corpus: Path, out: Path, loop: dict | None = None) -> list[str]:
    job = fx_job(corpus, loop or LOOP, SETTINGS, embeddings=write_caches(corpus))
    return [sys.executable, "-m", "stemlab.train", "fxprocessor", "--config", job_json(job), "--out", str(out)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO / 'scripts'}:{REPO}", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "7"}


def _weights(out: Path) -> dict[str, torch.Tensor]:
    with open(out / "final.pt", "rb") as fh:
        return torch.load(fh, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def reference_run(corpus, embeddings, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "fxprocessor"
    done = subprocess.run(_train_cmd(corpus, out), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.mark.slow
def test_cli_writes_weights_log_and_meta(reference_run):
    meta = json.loads((reference_run / "meta.json").read_text())
    assert meta["steps"] == 40 and meta["model"] == "fxprocessor" and meta["cond_dim"] == FX_DIM + CLAP_DIM
    assert meta["conditioning"] == "embeddings" and meta["receptive_field"] == MODEL.receptive_field() == 253
    assert meta["device"]["device"] == "cpu" and meta["device"]["CUDA_VISIBLE_DEVICES"] == "7"
    assert meta["seed"] == 9 and meta["parameters"] == meta["trainable_parameters"] > 0
    log = (reference_run / "train_log.csv").read_text().splitlines()
    assert len(log) == 1 + 40 + 2 and log[0].startswith("step,split,loss,lr,grad_norm,mrstft_ms,mrstft_lr,embedding_distance")
    assert (reference_run / "checkpoints").is_dir()
    state = _weights(reference_run)
    assert "fxnorm.target_db" in state and state["fxnorm.target_db"].abs().sum() > 0, "the FxNorm spectrum is stored"
    assert not any(k.startswith(("fx_encoder", "embedder")) for k in state), "the frozen effect encoder is not saved"


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known finding: the embedding-conditioned FxProcessor with FxNorm does not learn the fixture's FX in 40 steps "
    "(MR-STFT 2.70 vs dry 2.52; demo 1.93 vs loudness-matched 1.07); strict, so a fix shows up as XPASS",
)
def test_trained_model_beats_the_dry_stem_on_valid_windows(corpus, embeddings, reference_run):
    from stemlab.data.segment_tables import read_window
    from stemlab.train.task import load_trained

    task, model, _ = load_trained(reference_run / "final.pt", inputs={"cache": embeddings["cache"]})
    items = pair_items(read_segment_tables([corpus / "segments.parquet"]), corpus / "stems", "valid")
    dry = torch.from_numpy(np.stack([read_window(it.dry, it.start, 8192) for it in items]))
    wet = torch.from_numpy(np.stack([read_window(it.wet, it.start, 8192) for it in items]))
    cond = torch.from_numpy(task.conditions(items))
    assert cond.shape == (len(items), FX_DIM + CLAP_DIM)
    metric = MultiResolutionSTFTLoss((256, 512, 1024))
    with torch.no_grad():
        trained = metric.per_item(model(dry, cond), wet).mean().item()
    identity = metric.per_item(dry, wet).mean().item()
    assert trained < 0.9 * identity, f"40 steps must learn part of the fixture's FX ({trained:.3f} vs dry {identity:.3f})"


@pytest.mark.slow
def test_kill_9_then_rerun_gives_the_weights_of_an_unbroken_run(corpus, reference_run, tmp_path):
    out = tmp_path / "fxprocessor"
    proc = subprocess.Popen(_train_cmd(corpus, out), env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list_checkpoints(out / "checkpoints") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    killed_at = [s for s, _ in list_checkpoints(out / "checkpoints")]
    assert killed_at and max(killed_at) < 40, f"the run was not killed mid-way (checkpoints {killed_at})"
    assert not (out / "final.pt").exists()
    done = subprocess.run(_train_cmd(corpus, out), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"step {max(killed_at)} of 40" in done.stderr  # it resumed, not restarted
    ref, got = _weights(reference_run), _weights(out)
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref), "weights differ bitwise"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["resumed"] and meta["runs"][-1]["start_step"] == max(killed_at)
    ref_rows = [r.split(",")[:3] for r in (reference_run / "train_log.csv").read_text().splitlines()]
    got_rows = [r.split(",")[:3] for r in (out / "train_log.csv").read_text().splitlines()]
    assert ref_rows == got_rows, "the resumed log must equal the unbroken one"


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_nonzero(corpus, embeddings, tmp_path):
    out = tmp_path / "fxprocessor"
    loop = {**LOOP, "steps": 5000, "checkpoint_every": 0}
    err_file = tmp_path / "stderr.txt"
    with open(err_file, "w") as err:
        proc = subprocess.Popen(_train_cmd(corpus, out, loop), env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 120
        while "fxprocessor seed 9: training steps 1..5000" not in err_file.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, err_file.read_text()[-2000:]
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = err_file.read_text()
    assert proc.returncode == 1, text[-2000:]
    last = text.strip().splitlines()[-1]
    assert last.startswith("error: fxprocessor seed 9 stopped by SIGTERM at step ") and "re-run the same command to resume" in last
    steps = [s for s, _ in list_checkpoints(out / "checkpoints")]
    assert len(steps) == 1 and 0 < steps[0] < 5000
    assert not (out / "final.pt").exists()


@pytest.mark.slow
def test_changed_settings_are_refused_with_one_line(corpus, reference_run, tmp_path):
    out = tmp_path / "fxprocessor"
    out.mkdir()
    import shutil

    shutil.copytree(reference_run / "checkpoints", out / "checkpoints")
    (out / "checkpoints" / "step-00000040.pt").unlink()  # an unfinished run (killed after step 35)
    done = subprocess.run(_train_cmd(corpus, out, {**LOOP, "lr": 0.001}), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "unfinished run with a different training setup" in last and "train.lr" in last
    assert not (out / "final.pt").exists()
