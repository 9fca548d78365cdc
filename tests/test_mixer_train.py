"""The mixer through the frame: a short training run (full decoder, and LoRA with adapter-only final.pt),
a resume that gives the same weights, and the evaluation rows of every system (slow tier)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

import tests.cache_tasks  # noqa: F401  (registers tiny_encoder)
from stemlab.evaluate.run import evaluate_job
from stemlab.mixer.evaluate import SYSTEMS
from stemlab.train.job import Job, JobInputs
from stemlab.train.run import train_job
from stemlab.train.task import load_trained, read_final
from tests.mixer_fixture import SMALL, write_mixer_corpus

pytestmark = pytest.mark.slow

LOOP = {"steps": 6, "batch_size": 4, "lr": 0.003, "checkpoint_every": 3, "checkpoint_seconds": 0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixer")
    return root, write_mixer_corpus(root)


def mixer_job(inputs: dict, settings: dict | None = None, loop: dict | None = None, eval_: dict | None = None) -> Job:
    return Job(model="mixer", task="stemlab.mixer.task", seed=3, loop={**LOOP, **(loop or {})}, settings={**SMALL, **(settings or {})},
               eval={"max_items": 3, "batch_size": 2, **(eval_ or {})}, inputs=JobInputs.from_dict({**inputs, "upstream": {**inputs["upstream"]}}),
               device="cpu")  # fmt: skip


def test_training_resume_and_evaluation(corpus, tmp_path):
    _, inputs = corpus
    job = mixer_job(inputs)
    train_job(job, tmp_path / "a")
    log = pd.read_csv(tmp_path / "a" / "train_log.csv")
    assert {"decoder_loss", "regressor_presence", "regressor_values"} <= set(log.columns)
    # the same run stopped after 3 steps and resumed gives the same weights
    train_job(dataclasses.replace(job, loop={**job.loop, "steps": 3}), tmp_path / "b")
    train_job(job, tmp_path / "b")
    a, b = read_final(tmp_path / "a" / "final.pt"), read_final(tmp_path / "b" / "final.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    rows = evaluate_job(job, tmp_path / "a", tmp_path / "eval")
    assert set(rows["system"]) == set(SYSTEMS)
    mean = rows.groupby(["system", "metric"])["value"].mean()
    assert mean[("mixer", "parse_rate")] == 1.0 and mean[("mixer", "parse_rate_intent")] == 1.0
    assert mean[("oracle", "tool_f1")] == 1.0 and mean[("noop", "improvement_mrstft")] == 0.0
    assert mean[("oracle", "improvement_mrstft")] > 20.0 and mean[("oracle", "intent_success")] > mean[("oracle", "intent_success_repair_only")]
    assert {"improvement_fx", "intent_success", "intent_success_repair_only", "tool_f1"} <= set(rows["metric"])
    assert rows["item"].nunique() == 3


def test_lora_final_holds_only_adapters_and_reloads_the_same_logits(corpus, tmp_path):
    _, inputs = corpus
    job = mixer_job(inputs, settings={"lora": {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}}, loop={"steps": 2, "checkpoint_every": 0})
    train_job(job, tmp_path / "lora")
    state = read_final(tmp_path / "lora" / "final.pt")["state_dict"]
    decoder = [k for k in state if k.startswith("decoder.") and "rotary" not in k]
    assert decoder and all("lora_" in k for k in decoder)
    task, model, _ = load_trained(tmp_path / "lora" / "final.pt", "cpu", inputs)
    again, model2, _ = load_trained(tmp_path / "lora" / "final.pt", "cpu", inputs)
    g = torch.Generator().manual_seed(0)
    slots = [torch.randn(2, d, generator=g) for d in task.dims.slots]
    answer = torch.tensor([[5, 6, 7], [5, 6, 7]])
    lens = torch.tensor([3, 2])
    category = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        assert torch.equal(model.logits(slots, category, answer, lens), model2.logits(slots, category, answer, lens))
        trained = {k: v for k, v in model.state_dict().items() if "lora_B" in k}
        assert any(v.abs().sum() > 0 for v in trained.values())  # the adapters moved off their zero init


def test_cli_fixes_a_stem_and_prints_a_chain(corpus, tmp_path):
    import subprocess
    import sys

    import soundfile as sf

    from stemlab.mixer.grammar import parse_chain

    root, inputs = corpus
    train_job(mixer_job(inputs, loop={"steps": 2, "checkpoint_every": 0}), tmp_path / "m")
    song = root / "stems" / "synthetic" / "shard-00000" / "song-0000"
    out = tmp_path / "fixed.wav"
    run = subprocess.run([sys.executable, "-m", "stemlab.mixer", "fix", str(song / "wet" / "bass.flac"), "--context", str(song / "wet"),
                          "--prompt", "Fix this bass stem for a pop mix.", "--out", str(out), "--category", "bass",
                          "--model", str(tmp_path / "m" / "final.pt")], capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    parse_chain(run.stdout.strip().splitlines()[-1])
    audio, sr = sf.read(out)
    assert sr == 44_100 and audio.shape == sf.read(song / "wet" / "bass.flac")[0].shape
    bad = subprocess.run([sys.executable, "-m", "stemlab.mixer", "fix", str(song / "wet" / "bass.flac"), "--prompt", "x",
                          "--out", str(tmp_path / "x.mp3"), "--model", str(tmp_path / "m" / "final.pt")], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "name it .flac or .wav" in bad.stderr
