"""The one training loop of stemlab: deterministic, checkpointed, resumable, preemption-safe.

Determinism contract: the weights after step N depend only on (config, identity, seed) — not on
whether the run was interrupted, how often it checkpointed, or how it was split across jobs.
- Micro-batches come from `data(start)`, which must yield micro-batch i as a function of (seed, i) alone
  (see stemlab.train.sampling); step s consumes micro-batches s*A .. s*A+A-1 (A = grad_accum).
- The loss gets a torch.Generator re-seeded for every micro-batch from derive_seed(seed, "step", s[, m]);
  modules that draw from torch's default generator (dropout) run inside a forked RNG scope seeded the
  same way, so nothing leaks into or out of the process-wide state.
- Optimizer, scheduler, grad-scaler and EMA states are checkpointed and restored exactly.

What a checkpoint holds of the model: every state entry except frozen parameters and the state of
frozen submodules (an upstream model, a pretrained base under LoRA adapters). Those are rebuilt by the
code that builds the model (from its input files or a seeded initialisation), never copied N times.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from stemlab.device import device_info, move_to, resolve_device, scoped_torch_rng, torch_threads
from stemlab.errors import StemlabError
from stemlab.faults import training_step_delay
from stemlab.logs import log
from stemlab.seeding import derive_seed
from stemlab.train.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from stemlab.train.config import TrainConfig, identity_diff, identity_hash, run_identity
from stemlab.train.ema import EMA

LossFn = Callable[[nn.Module, Any, torch.Generator], "tuple[torch.Tensor, Mapping[str, float]]"]
DataFactory = Callable[[int], Iterator[Any]]  # micro-batches start, start + 1, ...
EvalFn = Callable[[nn.Module], Mapping[str, float]]
OptimizerFactory = Callable[[nn.Module, TrainConfig], "dict[str, torch.optim.Optimizer]"]

PREEMPT_SIGNALS = ("SIGTERM", "SIGUSR1")


class Preempted(StemlabError):
    """Raised after a checkpoint was written because SLURM (or a user) asked the job to stop."""


@dataclass
class TrainResult:
    step: int
    history: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    identity: dict[str, Any]
    identity_hash: str
    checkpoint: Path | None
    weights: dict[str, torch.Tensor]  # what final.pt holds: the saved state, EMA weights where EMA is on


def adamw(model: nn.Module, cfg: TrainConfig, groups: list[dict] | None = None) -> dict[str, torch.optim.Optimizer]:
    """The default: one AdamW over `groups` (default: every trainable parameter); none without parameters."""
    if groups is None:
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": params}] if params else []
    if not groups:
        return {}
    return {"main": torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)}


class StepContext:
    """What a task that takes over the step (its own backward and optimizers) gets from the loop."""

    def __init__(self, step: int, generator: torch.Generator, optimizers: dict, scaler: torch.amp.GradScaler,
                 micro_batches: int, clip: float, seed: int, device: torch.device) -> None:  # fmt: skip
        self.step, self.generator, self.optimizers = step, generator, optimizers
        self.micro_batches, self._scaler, self._clip = micro_batches, scaler, clip
        self._seed, self._device = seed, device
        self.grad_norms: dict[str, float] = {}

    def seed_micro(self, micro: int) -> None:
        """Re-seed the step generator for micro-batch `micro` (0 is how the step starts)."""
        self.generator.manual_seed(step_seed(self._seed, "step", self.step, micro))

    def backward(self, loss: torch.Tensor) -> None:
        self._scaler.scale(loss).backward()

    def zero_grad(self, name: str = "main") -> None:
        self.optimizers[name].zero_grad(set_to_none=True)

    def step_optimizer(self, name: str = "main") -> float:
        """Unscale, clip (grad_clip) and step one optimizer; returns its gradient norm before clipping."""
        optimizer = self.optimizers[name]
        self._scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        norm = float(torch.nn.utils.clip_grad_norm_(params, self._clip))
        self._scaler.step(optimizer)
        self.grad_norms[name] = norm
        return norm


StepFn = Callable[[nn.Module, "list[Any]", StepContext], "tuple[torch.Tensor, Mapping[str, float]]"]


def step_seed(seed: int, purpose: str, step: int, micro: int = 0) -> int:
    """Seed of one micro-batch of one step (micro-batch 0 keeps the seed of a loop without accumulation)."""
    return derive_seed(seed, purpose, step) if micro == 0 else derive_seed(seed, purpose, step, "micro", micro)


class _StopRequest:
    """Turns SIGTERM / SIGUSR1 into a flag the loop checks after every step."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for name in PREEMPT_SIGNALS:
                signum = getattr(signal, name, None)
                if signum is not None:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _closing_iterator(iterator: Iterator[Any]) -> Iterator[None]:
    """Close a generator-based data pipeline (its prefetch threads) when the loop ends, however it ends."""
    try:
        yield
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


@contextlib.contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    import torch.utils.deterministic as det

    previous, previous_fill = torch.are_deterministic_algorithms_enabled(), det.fill_uninitialized_memory
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        # deterministic mode NaN-fills every torch.empty by default: a debugging aid that costs ~10 % of a
        # step here; no result of the loop depends on uninitialised memory
        det.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        det.fill_uninitialized_memory = previous_fill


def saved_state_keys(model: nn.Module, frozen: Mapping[str, nn.Module]) -> list[str]:
    """State entries a checkpoint keeps: all but frozen parameters and the entries of frozen submodules."""
    frozen_params = {name for name, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    prefixes = tuple(f"{name}." for name in frozen)
    return [k for k in model.state_dict() if k not in frozen_params and not k.startswith(prefixes)]


class Trainer:
    """Train `model` on `loss_fn(model, batch, generator)` over micro-batches from `data(start)`.

    `identity` describes everything besides the TrainConfig that shapes the result (model config,
    data description, input digests): a checkpoint written under another identity is refused, not
    resumed. Hooks a task may set: `optimizers(model, cfg)` (named optimizers, default one AdamW over the
    trainable parameters; none for a non-gradient fit), `step_fn(model, micro_batches, ctx)` (the task
    does its own backward and optimizer steps through `ctx`), `frozen` (named submodules that are never
    trained, kept in eval mode and left out of checkpoints).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn | None,
        data: Callable[[int], Iterator[Any]],
        config: TrainConfig,
        checkpoint_dir: str | os.PathLike[str],
        *,
        identity: Mapping[str, Any] | None = None,
        eval_fn: EvalFn | None = None,
        desc: str = "train",
        optimizers: OptimizerFactory | None = None,
        step_fn: StepFn | None = None,
        frozen: Mapping[str, nn.Module] | None = None,
    ) -> None:
        if loss_fn is None and step_fn is None:
            raise ValueError("a Trainer needs a loss_fn or a step_fn")
        self.model = model
        self.loss_fn = loss_fn
        self.data = data
        self.config = config
        self.checkpoint_dir = Path(checkpoint_dir)
        self.identity = run_identity(config, identity)
        self.identity_hash = identity_hash(self.identity)
        self.eval_fn = eval_fn
        self.desc = desc
        self.device = resolve_device(config.device)
        self.make_optimizers = optimizers or adamw
        self.step_fn = step_fn
        self.frozen = dict(frozen or {})
        self.ema: EMA | None = None

    # ------------------------------------------------------------------ state
    def _model_state(self) -> dict[str, torch.Tensor]:
        state = self.model.state_dict()
        return {k: state[k].detach().cpu() for k in self._saved_keys}

    def _state(self, step: int, optimizers, schedulers, scaler, history, runs, generator) -> dict[str, Any]:
        return {
            "identity_hash": self.identity_hash,
            "identity": self.identity,
            "config": self.config.to_dict(),
            "model": self._model_state(),
            "optimizers": {name: o.state_dict() for name, o in optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in schedulers.items()},
            "scaler": scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            # every random draw is re-derived from (seed, step); the generator state is kept for audit
            "rng": {"scheme": "derive_seed(seed, 'step', s[, 'micro', m]) per micro-batch", "step_generator": generator.get_state().cpu()},
            "history": history,
            "runs": runs,
        }

    def _load_model_state(self, state: dict[str, torch.Tensor], where: Path) -> None:
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        absent = sorted(set(missing) & set(self._saved_keys))
        if absent or unexpected:
            wrong = (absent or list(unexpected))[0]
            raise StemlabError(f"{where}: checkpoint does not fit the model (entry {wrong}); delete {self.checkpoint_dir} to start over")

    def _restore(self, optimizers, schedulers, scaler) -> tuple[int, list, list, Path | None]:
        found = latest_checkpoint(self.checkpoint_dir)
        if found is None:
            return 0, [], [], None
        step, path = found
        state = load_checkpoint(path)
        if state.get("identity_hash") != self.identity_hash:
            differing = identity_diff(state.get("identity", {}), self.identity) or ["<unknown>"]
            if int(state["step"]) >= int(state.get("config", {}).get("steps", -1)):
                # a finished run of another setup (its result was final.pt, which is being rebuilt): start over
                log.info("%s: finished run of another setup in %s (differs in %s); starting over",
                         self.desc, self.checkpoint_dir, ", ".join(differing[:6]))  # fmt: skip
                for _, old in list_checkpoints(self.checkpoint_dir):
                    old.unlink()
                return 0, [], [], None
            raise StemlabError(
                f"{path}: unfinished run with a different training setup (differs in "
                f"{', '.join(differing[:6])}); restore that config to resume it, or delete {self.checkpoint_dir} to start over"
            )
        self._load_model_state(state["model"], path)
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        log.info("resuming %s from %s (step %d of %d)", self.desc, path, step, self.config.steps)
        return int(state["step"]), list(state["history"]), list(state["runs"]), path

    def _train_mode(self) -> None:
        self.model.train()
        for module in self.frozen.values():
            module.eval()

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        cfg, device, model = self.config, self.device, self.model
        with _deterministic(cfg.deterministic), torch_threads(cfg.cpu_threads):
            for module in self.frozen.values():
                module.requires_grad_(False)
            self._saved_keys = saved_state_keys(model, self.frozen)
            model.to(device)
            optimizers = self.make_optimizers(model, cfg)
            schedulers = {name: torch.optim.lr_scheduler.LambdaLR(o, cfg.lr_factor) for name, o in optimizers.items()}
            scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
            self.ema = EMA(model, cfg.ema_decay, cfg.ema_rampup) if cfg.ema_decay > 0 else None
            start, history, runs, ckpt = self._restore(optimizers, schedulers, scaler)
            runs.append({"start_step": start, "end_step": start, **device_info(device)})
            generator = torch.Generator(device=device)
            if start < cfg.steps:
                ckpt = self._run(start, history, runs, optimizers, schedulers, scaler, generator)
            return TrainResult(max(start, cfg.steps), history, runs, self.identity, self.identity_hash, ckpt, self.export_state())

    def export_state(self) -> dict[str, torch.Tensor]:
        """The saved model state, with the EMA weights in place of the raw ones when EMA is on."""
        if self.ema is None:
            return self._model_state()
        with self.ema.swapped_in(self.model):
            return {k: v.clone() for k, v in self._model_state().items()}

    def _default_step(self, micro_batches: list[Any], step: int, generator, optimizers, scaler, clip):
        for optimizer in optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.config.precision)
        n = len(micro_batches)
        total = torch.zeros((), device=self.device)
        sums: dict[str, float] = {}
        for micro, batch in enumerate(micro_batches):
            generator.manual_seed(step_seed(self.config.seed, "step", step, micro))
            with scoped_torch_rng(self.device, step_seed(self.config.seed, "torch-default", step, micro)):
                with torch.autocast(self.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    loss, metrics = self.loss_fn(self.model, batch, generator)
                self._check_finite(loss, step)
                scaler.scale(loss / n).backward()
            total = total + loss.detach() / n
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v) / n
        norms = {}
        for name, optimizer in optimizers.items():
            scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            norms[name] = float(torch.nn.utils.clip_grad_norm_(params, clip))
            scaler.step(optimizer)
        return total, sums, norms

    def _check_finite(self, loss: torch.Tensor, step: int) -> None:
        if not torch.isfinite(loss):
            raise StemlabError(
                f"{self.desc}: loss is {loss.item()} at step {step + 1}; lower the learning rate or set grad_clip"
            )

    def _run(self, start, history, runs, optimizers, schedulers, scaler, generator) -> Path | None:
        cfg = self.config
        clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        t_run = time.monotonic()
        last_ckpt = t_run
        ckpt: Path | None = None
        batches = iter(self.data(start * cfg.grad_accum))
        bar = tqdm(
            total=cfg.steps, initial=start, desc=self.desc, file=sys.stderr, mininterval=5.0, ascii=True, dynamic_ncols=False
        )

        def checkpoint(done: int) -> Path:
            runs[-1]["end_step"] = done
            runs[-1]["wall_s"] = round(time.monotonic() - t_run, 3)
            path = save_checkpoint(
                self.checkpoint_dir,
                done,
                self._state(done, optimizers, schedulers, scaler, history, runs, generator),
                cfg.keep_checkpoints,
            )
            log.info("checkpoint %s", path)
            return path

        step_delay = training_step_delay()  # test-only (stemlab.faults); 0 outside the SLURM requeue test
        with _StopRequest() as stop, contextlib.closing(bar), _closing_iterator(batches):
            log.info("%s: training steps %d..%d on %s", self.desc, start + 1, cfg.steps, self.device)
            for step in range(start, cfg.steps):
                t0 = time.monotonic()
                micro_batches = [self._next(batches, step) for _ in range(cfg.grad_accum)]
                self._train_mode()
                if self.step_fn is None:
                    loss, metrics, norms = self._default_step(micro_batches, step, generator, optimizers, scaler, clip)
                else:
                    generator.manual_seed(step_seed(cfg.seed, "step", step))
                    ctx = StepContext(step, generator, optimizers, scaler, cfg.grad_accum, clip, cfg.seed, self.device)
                    with scoped_torch_rng(self.device, step_seed(cfg.seed, "torch-default", step)):
                        loss, metrics = self.step_fn(self.model, micro_batches, ctx)
                    self._check_finite(loss, step)
                    norms = ctx.grad_norms
                scaler.update()
                lr = next(iter(optimizers.values())).param_groups[0]["lr"] if optimizers else None
                for scheduler in schedulers.values():
                    scheduler.step()
                if self.ema is not None:
                    self.ema.update(self.model)
                done = step + 1
                if done % cfg.log_every == 0 or done == cfg.steps:
                    row: dict[str, Any] = {"step": done, "split": "train", "loss": float(loss.detach())}
                    if lr is not None:
                        row["lr"] = lr
                    if len(norms) == 1:
                        row["grad_norm"] = next(iter(norms.values()))
                    else:
                        row.update({f"grad_norm_{name}": value for name, value in norms.items()})
                    row.update({k: float(v) for k, v in metrics.items()})
                    row["step_s"] = round(time.monotonic() - t0, 4)
                    history.append(row)
                    bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
                bar.update(1)
                if step_delay:
                    time.sleep(step_delay)
                if self.eval_fn is not None and ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps):
                    history.append({"step": done, "split": "valid", **self.evaluate()})
                    log.info("%s step %d valid %s", self.desc, done, history[-1])
                if stop.signal_name:
                    ckpt = checkpoint(done)
                    raise Preempted(
                        f"{self.desc} stopped by {stop.signal_name} at step {done} of {cfg.steps}; "
                        f"checkpoint {ckpt} written, re-run the same command to resume"
                    )
                due_steps = cfg.checkpoint_every and done % cfg.checkpoint_every == 0
                due_time = cfg.checkpoint_seconds and time.monotonic() - last_ckpt >= cfg.checkpoint_seconds
                if due_steps or due_time or done == cfg.steps:
                    ckpt = checkpoint(done)
                    last_ckpt = time.monotonic()
        return ckpt

    def _next(self, batches: Iterator[Any], step: int) -> Any:
        try:
            return move_to(next(batches), self.device)
        except StopIteration:
            raise StemlabError(
                f"training data ran out at step {step} of {self.config.steps}; the data factory must be endless"
            ) from None

    def evaluate(self) -> dict[str, float]:
        """Run `eval_fn` (on the EMA weights when EMA is on) in eval mode without gradients; it cannot
        perturb the training RNG streams."""
        assert self.eval_fn is not None
        was_training = self.model.training
        self.model.eval()
        swap = self.ema.swapped_in(self.model) if self.ema is not None else contextlib.nullcontext()
        try:
            with torch.no_grad(), swap, scoped_torch_rng(self.device, derive_seed(self.config.seed, "eval")):
                return {k: float(v) for k, v in self.eval_fn(self.model).items()}
        finally:
            self.model.train(was_training)
