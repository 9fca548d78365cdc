"""Loop features of the model frame, each with a run killed mid-way and resumed to the same bits:
EMA, gradient accumulation, task-chosen optimizers and parameter groups (with a task-owned step),
frozen upstream submodules, adapter-only checkpoints, and a non-gradient fit through the task protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from stemlab.train import StepContext, TrainConfig, Trainer, step_indices
from stemlab.train.checkpoint import list_checkpoints, load_checkpoint
from stemlab.train.ema import EMA
from tests.frame_tasks import Crash

N_ITEMS = 19


def _items() -> np.ndarray:
    rng = np.random.default_rng(1)  # the test's fixed data set, not a stemlab RNG
    return rng.standard_normal((N_ITEMS, 4)).astype(np.float32)


def _data(seed: int, batch: int, crash_at: int | None = None):
    items = _items()

    def factory(start: int):
        index = start
        while True:
            if crash_at is not None and index == crash_at:
                raise Crash
            yield {"x": torch.from_numpy(items[step_indices(N_ITEMS, batch, seed, index)])}
            index += 1

    return factory


def _cfg(**kw) -> TrainConfig:
    base = dict(steps=10, batch_size=3, lr=0.05, warmup_steps=1, seed=5, device="cpu", checkpoint_every=2,
                checkpoint_seconds=0, keep_checkpoints=10)  # fmt: skip
    return TrainConfig.from_dict(base | kw)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Tanh(), nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _net(cls=Net, seed: int = 3) -> nn.Module:
    torch.manual_seed(seed)  # the test builds its models with fixed weights; stemlab code never does this
    return cls()


def _loss(model, batch, generator):
    noise = torch.randn(batch["x"].shape, generator=generator) * 0.05
    loss = (model(batch["x"] + noise) - batch["x"].flip(-1)).square().mean()
    return loss, {"mse": float(loss.detach())}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _run_and_resume(tmp_path: Path, make_model, cfg: TrainConfig, crash_micro: int, **kw):
    """(reference result, resumed result, models): one unbroken run, one killed at micro-batch
    `crash_micro` and then resumed in a fresh Trainer with a fresh model."""
    loss_fn = None if "step_fn" in kw else _loss
    ref_model = make_model()
    ref = Trainer(ref_model, loss_fn, _data(cfg.seed, cfg.batch_size), cfg, tmp_path / "ref", **kw).fit()
    with pytest.raises(Crash):
        Trainer(make_model(), loss_fn, _data(cfg.seed, cfg.batch_size, crash_micro), cfg, tmp_path / "run", **kw).fit()
    assert list_checkpoints(tmp_path / "run"), "the crash came before the first checkpoint"
    resumed_model = make_model()
    resumed = Trainer(resumed_model, loss_fn, _data(cfg.seed, cfg.batch_size), cfg, tmp_path / "run", **kw).fit()
    assert resumed.runs[-1]["start_step"] > 0, "the second run did not resume"
    return ref, resumed, ref_model, resumed_model


# ---------------------------------------------------------------------------- EMA


def test_ema_rampup_and_update_rule():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, 0.9, rampup=True)
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(1000) == 0.9
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # decay 0.1: shadow = 0.1 * 0 + 0.9 * 1
    assert ema.shadow["weight"].item() == pytest.approx(0.9)
    ema.update(model)  # decay 2/11
    assert ema.shadow["weight"].item() == pytest.approx(0.9 + (1 - 2 / 11) * 0.1)
    with ema.swapped_in(model):
        assert model.weight.item() == pytest.approx(ema.shadow["weight"].item())
    assert model.weight.item() == 1.0


def test_ema_weights_are_validated_and_exported_and_resume_bitwise(tmp_path):
    cfg = _cfg(ema_decay=0.8, eval_every=5)
    seen: list[float] = []

    def eval_fn(model):
        seen.append(float(model.body[0].weight[0, 0]))
        return {"w": seen[-1]}

    ref, resumed, ref_model, _ = _run_and_resume(tmp_path, _net, cfg, crash_micro=7, eval_fn=eval_fn)
    assert _same(ref.weights, resumed.weights), "EMA weights differ after a resume"
    raw = {k: v for k, v in ref_model.state_dict().items()}
    assert not torch.equal(ref.weights["body.0.weight"], raw["body.0.weight"]), "final weights must be the EMA ones"
    state = load_checkpoint(list_checkpoints(tmp_path / "ref")[-1][1])
    assert torch.equal(state["ema"]["shadow"]["body.0.weight"], ref.weights["body.0.weight"])
    assert state["ema"]["updates"] == 10
    # validation at step 10 saw the EMA weights, not the raw ones
    assert seen[1] == pytest.approx(float(ref.weights["body.0.weight"][0, 0]))
    assert seen[1] != pytest.approx(float(raw["body.0.weight"][0, 0]))


# ---------------------------------------------------------------------------- gradient accumulation


def test_accumulated_micro_batches_match_one_large_batch(tmp_path):
    def plain_loss(model, batch, generator):  # no noise, no dropout: the gradients add up exactly
        loss = (model(batch["x"]) - batch["x"].flip(-1)).square().mean()
        return loss, {}

    class Plain(Net):
        def __init__(self) -> None:
            super().__init__()
            self.body[1].p = 0.0

    items = _items()

    def big(start):  # the union of micro-batches 3s, 3s+1, 3s+2 as one batch of 6
        index = start
        while True:
            idx = np.concatenate([step_indices(N_ITEMS, 2, 5, 3 * index + m) for m in range(3)])
            yield {"x": torch.from_numpy(items[idx])}
            index += 1

    one = Trainer(_net(Plain), plain_loss, big, _cfg(batch_size=6, grad_clip=0), tmp_path / "one").fit()
    acc = Trainer(_net(Plain), plain_loss, _data(5, 2), _cfg(batch_size=2, grad_accum=3, grad_clip=0), tmp_path / "acc").fit()
    for k in one.weights:
        torch.testing.assert_close(one.weights[k], acc.weights[k], rtol=1e-5, atol=1e-6)


def test_grad_accumulation_resumes_bitwise_and_asks_for_the_right_micro_batch(tmp_path):
    cfg = _cfg(batch_size=2, grad_accum=3)
    requested: list[int] = []
    ref, resumed, _, _ = _run_and_resume(tmp_path, _net, cfg, crash_micro=17)
    assert _same(ref.weights, resumed.weights)
    assert [s for s, _ in list_checkpoints(tmp_path / "run")][-1] == 10
    # after a checkpoint at step 4 the data factory restarts at micro-batch 4 x 3
    factory = _data(5, 2)

    def spy(start):
        requested.append(start)
        return factory(start)

    again = tmp_path / "again"
    again.mkdir()
    ckpt4 = next(p for s, p in list_checkpoints(tmp_path / "ref") if s == 4)
    (again / ckpt4.name).write_bytes(ckpt4.read_bytes())
    Trainer(_net(), _loss, spy, cfg, again).fit()
    assert requested == [12]


# ---------------------------------------------------------------------------- optimizers, groups, task-owned step


class TwoPart(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.head = nn.Linear(4, 4)

    def forward(self, x):
        return self.head(torch.tanh(self.encoder(x)))


def _groups(model, cfg):
    return {
        "main": torch.optim.AdamW(
            [{"params": model.encoder.parameters(), "lr": cfg.lr * 0.1, "weight_decay": 0.0},
             {"params": model.head.parameters(), "weight_decay": 0.1}],
            lr=cfg.lr,
        )
    }  # fmt: skip


def test_task_parameter_groups_keep_their_lr_under_the_schedule(tmp_path):
    cfg = _cfg(schedule="constant", warmup_steps=0, steps=2)
    trainer = Trainer(_net(TwoPart), _loss, _data(5, 3), cfg, tmp_path / "g", optimizers=_groups)
    trainer.fit()
    state = load_checkpoint(list_checkpoints(tmp_path / "g")[-1][1])
    groups = state["optimizers"]["main"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([cfg.lr * 0.1, cfg.lr])
    assert [g["weight_decay"] for g in groups] == [0.0, 0.1]


def _two_optimizers(model, cfg):
    return {"enc": torch.optim.AdamW(model.encoder.parameters(), lr=cfg.lr),
            "head": torch.optim.SGD(model.head.parameters(), lr=cfg.lr, momentum=0.9)}  # fmt: skip


def _alternating_step(model, micro_batches, ctx: StepContext):
    """Odd steps train the encoder, even steps the head (each with its own optimizer)."""
    name = "enc" if ctx.step % 2 else "head"
    ctx.zero_grad(name)
    total = 0.0
    for micro, batch in enumerate(micro_batches):
        ctx.seed_micro(micro)
        loss, _ = _loss(model, batch, ctx.generator)
        ctx.backward(loss / ctx.micro_batches)
        total += float(loss) / ctx.micro_batches
    ctx.step_optimizer(name)
    return torch.tensor(total), {f"trained_{name}": 1.0}


def test_task_owned_step_with_two_optimizers_resumes_bitwise(tmp_path):
    cfg = _cfg(grad_accum=2)
    ref, resumed, ref_model, _ = _run_and_resume(
        tmp_path, lambda: _net(TwoPart), cfg, crash_micro=11, optimizers=_two_optimizers, step_fn=_alternating_step
    )
    assert _same(ref.weights, resumed.weights)
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[-1][1])
    assert set(state["optimizers"]) == {"enc", "head"} and set(state["schedulers"]) == {"enc", "head"}
    rows = [r for r in ref.history if r["split"] == "train"]
    assert "grad_norm" in rows[0] and rows[0].get("trained_head") == 1.0 and rows[1].get("trained_enc") == 1.0


# ---------------------------------------------------------------------------- frozen upstream, adapters


class WithUpstream(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.upstream = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))  # as if loaded from another final.pt
        self.head = nn.Linear(4, 4)

    def forward(self, x):
        return self.head(self.upstream(x))


def test_frozen_upstream_is_not_trained_nor_checkpointed_and_resume_is_bitwise(tmp_path):
    cfg = _cfg()
    before = _net(WithUpstream).upstream.state_dict()
    ref_model = _net(WithUpstream)
    ref = Trainer(ref_model, _loss, _data(5, 3), cfg, tmp_path / "ref", frozen={"upstream": ref_model.upstream}).fit()
    with pytest.raises(Crash):
        m = _net(WithUpstream)
        Trainer(m, _loss, _data(5, 3, crash_at=7), cfg, tmp_path / "run", frozen={"upstream": m.upstream}).fit()
    m = _net(WithUpstream)
    resumed = Trainer(m, _loss, _data(5, 3), cfg, tmp_path / "run", frozen={"upstream": m.upstream}).fit()
    assert resumed.runs[-1]["start_step"] == 6 and _same(ref.weights, resumed.weights)
    # the upstream's weights and BatchNorm statistics are untouched (eval mode, no optimizer)
    assert _same(before, ref_model.upstream.state_dict())
    state = load_checkpoint(list_checkpoints(tmp_path / "ref")[-1][1])
    assert set(state["model"]) == {"head.weight", "head.bias"} == set(ref.weights)
    assert all(not p.requires_grad for p in ref_model.upstream.parameters())


class LoRALinear(nn.Module):
    """A frozen base layer plus a trainable low-rank update (what peft's LoRA does to each projection)."""

    def __init__(self, n: int, rank: int) -> None:
        super().__init__()
        self.base = nn.Linear(n, n)
        self.base.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.randn(rank, n) * 0.01)
        self.lora_b = nn.Parameter(torch.zeros(n, rank))

    def forward(self, x):
        return self.base(x) + x @ self.lora_a.T @ self.lora_b.T


class Adapted(nn.Module):
    def __init__(self, n: int = 4, layers: int = 6, rank: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(LoRALinear(n, rank) for _ in range(layers))

    def forward(self, x):
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x


def test_adapter_only_checkpoints_and_bitwise_resume(tmp_path):
    cfg = _cfg()
    ref, resumed, ref_model, _ = _run_and_resume(tmp_path, lambda: _net(Adapted), cfg, crash_micro=5)
    assert _same(ref.weights, resumed.weights)
    state = load_checkpoint(list_checkpoints(tmp_path / "ref")[-1][1])
    assert all(".lora_" in k for k in state["model"]) and len(state["model"]) == 12
    base = sum(p.numel() for n, p in ref_model.named_parameters() if ".base." in n)
    saved = sum(v.numel() for v in state["model"].values())
    assert saved < base / 2, "a checkpoint must hold the adapters, not the base model"
    assert all(torch.equal(p, q) for p, q in zip(_net(Adapted).parameters(), ref_model.parameters()) if not p.requires_grad)


# ---------------------------------------------------------------------------- non-gradient fit


def test_minibatch_kmeans_fit_resumes_bitwise_through_the_task_protocol(tmp_path):
    """A non-gradient fit (Sculley's mini-batch k-means, state in buffers) goes through train_job like any
    model: final.pt, train_log.csv, meta.json with the identity, checkpoints, bitwise resume."""
    from stemlab.train.run import train_job
    from tests import frame_tasks

    points = frame_tasks.write_points(tmp_path / "points.npy")
    job = frame_tasks.kmeans_job(points, steps=12)
    reference = train_job(job, tmp_path / "ref")
    with pytest.raises(Crash), frame_tasks.crash_at(7):
        train_job(job, tmp_path / "run")
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [4]
    resumed = train_job(job, tmp_path / "run")
    a = torch.load(tmp_path / "ref" / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "run" / "final.pt", weights_only=True)
    assert _same(a["state_dict"], b["state_dict"]) and set(a["state_dict"]) == {"centers", "counts"}
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["resumed"] and meta["trainable_parameters"] == 0 and reference["parameters"] == 0
    assert meta["identity_hash"] == json.loads((tmp_path / "ref" / "meta.json").read_text())["identity_hash"]
    log = (tmp_path / "run" / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("step,split,loss,inertia") and len(log) == 1 + 12
    # the fitted centres sit on the three clusters of the data
    centers = a["state_dict"]["centers"].numpy()
    truth = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    assert np.abs(np.sort(centers, axis=0) - np.sort(truth, axis=0)).max() < 0.5
