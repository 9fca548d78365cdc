"""The shared training loop: config checks, data order, determinism, resume, preemption, refusal."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch
from torch import nn

from stemlab.errors import StemlabError
from stemlab.train import Preempted, TrainConfig, Trainer, step_indices
from stemlab.train.checkpoint import list_checkpoints, load_checkpoint
from stemlab.train.outputs import write_training_outputs

N_ITEMS = 23


class Tiny(nn.Module):
    """Conv + dropout: exercises the per-step torch default-generator scope."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(1, 4, 5, padding=2), nn.Dropout(0.3), nn.Tanh(), nn.Conv1d(4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _items() -> np.ndarray:
    rng = np.random.default_rng(0)  # fixed data set of the test, not a stemlab RNG
    return rng.standard_normal((N_ITEMS, 1, 64)).astype(np.float32)


def _data_factory(seed: int, batch: int, log: list[int] | None = None):
    items = _items()

    def factory(start: int):
        step = start
        while True:
            if log is not None:
                log.append(step)
            yield {"x": torch.from_numpy(items[step_indices(N_ITEMS, batch, seed, step)])}
            step += 1

    return factory


def _loss(model, batch, generator):
    # the generator is used as a diffusion model would: noise drawn per step
    noise = torch.randn(batch["x"].shape, generator=generator, device=batch["x"].device) * 0.1
    pred = model(batch["x"] + noise)
    loss = (pred - 0.5 * batch["x"]).square().mean()
    return loss, {"mse": float(loss.detach())}


def _model() -> Tiny:
    gen = torch.Generator().manual_seed(7)
    model = Tiny()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model


def _config(**kw) -> TrainConfig:
    base = dict(steps=12, batch_size=4, lr=1e-2, warmup_steps=2, grad_clip=1.0, seed=3, device="cpu",
                checkpoint_every=0, checkpoint_seconds=0, eval_every=0)
    return TrainConfig.from_dict(base | kw)


def _fit(tmp_path, name: str, config: TrainConfig, **kw):
    model = _model()
    result = Trainer(model, _loss, _data_factory(config.seed, config.batch_size), config, tmp_path / name, **kw).fit()
    return model, result


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------- config


def test_config_rejects_bad_values_in_one_line():
    with pytest.raises(StemlabError, match="steps must be >= 1"):
        TrainConfig.from_dict(dict(steps=0, batch_size=1, lr=1e-3))
    with pytest.raises(StemlabError, match="schedule"):
        TrainConfig.from_dict(dict(steps=1, batch_size=1, lr=1e-3, schedule="step"))
    with pytest.raises(StemlabError, match="unknown training option 'lr_max'"):
        TrainConfig.from_dict({"steps": 1, "batch_size": 1, "lr": 1e-3, "lr_max": 1})


def test_lr_schedule_warmup_then_cosine_to_floor():
    cfg = TrainConfig.from_dict(dict(steps=110, batch_size=1, lr=1.0, warmup_steps=10, min_lr_ratio=0.1))
    factors = [cfg.lr_factor(s) for s in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.55)  # half-way through the cosine
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] > 0.1 and TrainConfig.from_dict(dict(steps=4, batch_size=1, lr=1, schedule="linear")).lr_factor(3) == 0.25


def test_step_indices_are_epoch_permutations_and_pure():
    seen = np.concatenate([step_indices(N_ITEMS, 5, 11, s) for s in range(N_ITEMS)])  # 5 epochs exactly
    for epoch in range(5):
        assert sorted(seen[epoch * N_ITEMS : (epoch + 1) * N_ITEMS]) == list(range(N_ITEMS))
    assert np.array_equal(step_indices(N_ITEMS, 5, 11, 7), seen[35:40])
    assert not np.array_equal(step_indices(N_ITEMS, 5, 12, 7), seen[35:40])


# ---------------------------------------------------------------------------- determinism / resume


def test_two_runs_give_identical_weights_and_logs(tmp_path):
    a, ra = _fit(tmp_path, "a", _config())
    b, rb = _fit(tmp_path, "b", _config())
    assert _same_weights(a, b)
    assert [r["loss"] for r in ra.history] == [r["loss"] for r in rb.history]
    c, _ = _fit(tmp_path, "c", _config(seed=4))
    assert not _same_weights(a, c)
    # the loop leaves torch's process-wide generator alone (module construction above does not)
    model = _model()
    state = torch.get_rng_state()
    Trainer(model, _loss, _data_factory(3, 4), _config(), tmp_path / "d").fit()
    assert torch.equal(state, torch.get_rng_state())


def test_test_only_step_delay_slows_but_does_not_change_training(tmp_path, monkeypatch):
    a, _ = _fit(tmp_path, "a", _config())
    monkeypatch.setenv("STEMLAB_FAULT_STEP_DELAY_S", "0.02")
    t0 = time.monotonic()
    b, _ = _fit(tmp_path, "b", _config())
    assert time.monotonic() - t0 >= 0.02 * _config().steps
    assert _same_weights(a, b)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    reference, _ = _fit(tmp_path, "ref", _config())

    class Crash(Exception):
        pass

    def crashing_loss(model, batch, generator):
        if crashing_loss.calls == 9:
            raise Crash
        crashing_loss.calls += 1
        return _loss(model, batch, generator)

    crashing_loss.calls = 0
    cfg = _config(checkpoint_every=4)
    with pytest.raises(Crash):
        Trainer(_model(), crashing_loss, _data_factory(3, 4), cfg, tmp_path / "run").fit()
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [4, 8]
    requested: list[int] = []
    resumed = _model()
    result = Trainer(resumed, _loss, _data_factory(3, 4, requested), cfg, tmp_path / "run").fit()
    assert requested[0] == 8, "the data factory must be asked for the batches after the checkpoint"
    assert _same_weights(reference, resumed)
    assert [r["step"] for r in result.history if r["split"] == "train"] == list(range(1, 13))
    assert [r["start_step"] for r in result.runs] == [0, 8]


def test_rerun_after_completion_trains_nothing(tmp_path):
    model, first = _fit(tmp_path, "run", _config(checkpoint_every=5))
    requested: list[int] = []
    again = _model()
    result = Trainer(again, _loss, _data_factory(3, 4, requested), _config(), tmp_path / "run").fit()
    assert requested == [] and result.step == 12
    assert _same_weights(model, again)


def test_changed_config_is_refused_in_one_line(tmp_path):
    _fit(tmp_path, "run", _config(steps=20, checkpoint_every=4))
    (tmp_path / "run" / "step-00000020.pt").unlink()  # as if the job had been killed after step 16
    with pytest.raises(StemlabError) as err:
        _fit(tmp_path, "run", _config(steps=20, lr=2e-2))
    message = str(err.value)
    assert "\n" not in message and "unfinished run with a different training setup" in message
    assert "train.lr" in message and "step-00000016.pt" in message
    with pytest.raises(StemlabError, match="run.model"):
        Trainer(_model(), _loss, _data_factory(3, 4), _config(steps=20), tmp_path / "run", identity={"model": 2}).fit()
    # bookkeeping fields may change between resumes
    _, result = _fit(tmp_path, "run", _config(steps=20, checkpoint_every=3, eval_every=2, log_every=2))
    assert result.runs[-1]["start_step"] == 16


def test_finished_run_of_another_setup_is_replaced(tmp_path):
    _fit(tmp_path, "run", _config(checkpoint_every=4))
    fresh, result = _fit(tmp_path, "run", _config(lr=2e-2))
    reference, _ = _fit(tmp_path, "ref", _config(lr=2e-2))
    assert result.runs[-1]["start_step"] == 0 and _same_weights(fresh, reference)
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [12]


def test_sigterm_writes_a_checkpoint_and_resume_matches(tmp_path):
    reference, _ = _fit(tmp_path, "ref", _config())

    def signalling_loss(model, batch, generator):
        signalling_loss.calls += 1
        if signalling_loss.calls == 6:
            os.kill(os.getpid(), signal.SIGTERM)
        return _loss(model, batch, generator)

    signalling_loss.calls = 0
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted, match="stopped by SIGTERM at step 6 of 12") as err:
        Trainer(_model(), signalling_loss, _data_factory(3, 4), _config(), tmp_path / "run").fit()
    assert signal.getsignal(signal.SIGTERM) is previous, "handlers must be restored"
    assert "re-run" in str(err.value)
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [6]
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[0][1])
    assert {"model", "optimizers", "schedulers", "scaler", "ema", "rng", "identity_hash", "history"} <= set(state)
    resumed = _model()
    Trainer(resumed, _loss, _data_factory(3, 4), _config(), tmp_path / "run").fit()
    assert _same_weights(reference, resumed)


def test_eval_does_not_change_training(tmp_path):
    plain, _ = _fit(tmp_path, "plain", _config())
    evaluated, result = _fit(
        tmp_path, "eval", _config(eval_every=3), eval_fn=lambda m: {"out": m(torch.ones(1, 1, 8)).mean()}
    )
    assert _same_weights(plain, evaluated)
    assert [r["step"] for r in result.history if r["split"] == "valid"] == [3, 6, 9, 12]


def test_keeps_newest_checkpoints_only(tmp_path):
    _fit(tmp_path, "run", _config(checkpoint_every=2, keep_checkpoints=2))
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [10, 12]


def test_outputs_record_device_and_log(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    model, result = _fit(tmp_path, "run", _config(device="auto", eval_every=6), eval_fn=lambda m: {"v": 1.0})
    write_training_outputs(result, tmp_path / "out", {"state_dict": model.state_dict()}, {"model": "tiny"})
    import json

    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["device"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert meta["device"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert meta["steps"] == 12 and meta["model"] == "tiny" and not meta["resumed"]
    lines = (tmp_path / "out" / "train_log.csv").read_text().splitlines()
    assert lines[0].startswith("step,split,loss,lr,grad_norm,mse")
    assert len(lines) == 1 + 12 + 2


def test_diverging_loss_stops_with_one_line(tmp_path):
    def nan_loss(model, batch, generator):
        return model(batch["x"]).mean() * float("nan"), {}

    with pytest.raises(StemlabError, match="loss is nan at step 1"):
        Trainer(_model(), nan_loss, _data_factory(3, 4), _config(), tmp_path / "run").fit()


def test_explicit_cuda_without_gpu_is_an_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(StemlabError, match="no CUDA device"):
        _fit(tmp_path, "run", _config(device="cuda"))


def test_seeded_init_is_reproducible_and_leaves_global_state():
    from stemlab.train import seeded_init

    state = torch.get_rng_state()
    with seeded_init(5):
        a = Tiny()
    with seeded_init(5):
        b = Tiny()
    with seeded_init(6):
        c = Tiny()
    assert _same_weights(a, b) and not _same_weights(a, c)
    assert torch.equal(state, torch.get_rng_state())


def test_time_based_checkpoints(tmp_path):
    _fit(tmp_path, "run", _config(checkpoint_seconds=1e-9, keep_checkpoints=100))
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == list(range(1, 13))


def test_bf16_autocast_trains_deterministically(tmp_path):
    a, ra = _fit(tmp_path, "a", _config(precision="bf16"))
    b, _ = _fit(tmp_path, "b", _config(precision="bf16"))
    fp32, _ = _fit(tmp_path, "c", _config())
    assert _same_weights(a, b) and not _same_weights(a, fp32)
    assert all(np.isfinite(r["loss"]) for r in ra.history)


def test_code_digest_follows_every_stemlab_file_the_task_imports(tmp_path, monkeypatch):
    """The digest covers the task module and the stemlab modules it imports (here: a helper module), so an
    edit of either retrains; an unrelated module does not count."""
    from stemlab import codegraph
    from stemlab.train.config import code_digest

    pkg = tmp_path / "stemlab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mytask.py").write_text("from stemlab.myhelper import X\n")
    (pkg / "myhelper.py").write_text("X = 1\n")
    (pkg / "unrelated.py").write_text("Y = 1\n")
    monkeypatch.setattr(codegraph, "SCRIPTS_DIR", tmp_path)
    first = code_digest("stemlab.mytask")
    assert first == code_digest("stemlab.mytask")
    (pkg / "unrelated.py").write_text("Y = 2\n")
    assert code_digest("stemlab.mytask") == first
    (pkg / "myhelper.py").write_text("X = 2\n")
    assert code_digest("stemlab.mytask") != first


def test_weights_do_not_depend_on_the_callers_thread_count(tmp_path):
    outer = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            model, result = _fit(tmp_path, f"t{threads}", _config(cpu_threads=2))
            assert torch.get_num_threads() == threads, "the caller's thread count must be restored"
            assert result.runs[-1]["torch_threads"] == 2
            results.append(model)
    finally:
        torch.set_num_threads(outer)
    assert _same_weights(*results)
