"""The one training loop of stemlab: deterministic, checkpointed, resumable, preemption-safe.

Determinism contract: the weights after step N depend only on (config, identity, seed) — not on
whether the run was interrupted, how often it checkpointed, or how it was split across jobs.
- Batches come from `data(start_step)`, which must yield the batch of step s as a function of
  (seed, s) alone (see stemlab.train.sampling).
- The loss gets a torch.Generator re-seeded every step from derive_seed(seed, "step", s); modules
  that draw from torch's default generator (dropout) run inside a forked RNG scope seeded the same
  way, so nothing leaks into or out of the process-wide state.
- Optimizer, scheduler and grad-scaler states are checkpointed and restored exactly.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stemlab.errors import StemlabError
from stemlab.faults import training_step_delay
from stemlab.logs import log
from stemlab.seeding import derive_seed
from stemlab.train.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from stemlab.train.config import TrainConfig, identity_diff, identity_hash, run_identity

LossFn = Callable[[nn.Module, Any, torch.Generator], "tuple[torch.Tensor, Mapping[str, float]]"]
DataFactory = Callable[[int], Iterator[Any]]  # batches of steps start, start + 1, ...
EvalFn = Callable[[nn.Module], Mapping[str, float]]

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


def resolve_device(spec: str) -> torch.device:
    """'auto' → cuda when available, else cpu; an explicit cuda device that is absent is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StemlabError(f"train.device is {spec!r} but no CUDA device is visible; set train.device: auto or cpu")
    return device


def device_info(device: torch.device) -> dict[str, Any]:
    """Where this run executed: recorded in meta.json (the SLURM test reads CUDA_VISIBLE_DEVICES here)."""
    info: dict[str, Any] = {
        "device": str(device),
        "host": socket.gethostname(),
        "torch": str(torch.__version__),
        "torch_threads": torch.get_num_threads(),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cuda_available": torch.cuda.is_available(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_job_gpus": os.environ.get("SLURM_JOB_GPUS") or os.environ.get("SLURM_STEP_GPUS"),
        "slurm_node": os.environ.get("SLURMD_NODENAME"),
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        info["cuda_device_name"] = torch.cuda.get_device_name(index)
        info["cuda_version"] = str(torch.version.cuda)
    return info


def move_to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, np.ndarray):
        return torch.from_numpy(batch).to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


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
def _scoped_torch_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed torch's default generators for one step only; the process-wide state is restored after."""
    cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.default_generator.manual_seed(seed)
        for index in cuda_devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


@contextlib.contextmanager
def _closing_iterator(iterator: Iterator[Any]) -> Iterator[None]:
    """Close a generator-based data pipeline (its prefetch threads) when the loop ends, however it ends."""
    try:
        yield
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def seeded_init(seed: int) -> contextlib.AbstractContextManager[None]:
    """Build models inside `with seeded_init(seed):` so their default initialisation is reproducible
    (torch's layers draw from the process-wide generator, which this scope seeds and then restores)."""
    return _scoped_torch_rng(torch.device("cpu"), seed)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with `n` torch intra-op threads (0: unchanged), restoring the previous count after."""
    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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


class Trainer:
    """Train `model` on `loss_fn(model, batch, generator)` over batches from `data(start_step)`.

    `identity` describes everything besides the TrainConfig that shapes the result (model config,
    data description): a checkpoint written under another identity is refused, not resumed.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: DataFactory,
        config: TrainConfig,
        checkpoint_dir: str | os.PathLike[str],
        *,
        identity: Mapping[str, Any] | None = None,
        eval_fn: EvalFn | None = None,
        desc: str = "train",
    ) -> None:
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

    # ------------------------------------------------------------------ state
    def _state(self, step: int, optimizer, scheduler, scaler, history, runs, generator) -> dict[str, Any]:
        return {
            "identity_hash": self.identity_hash,
            "identity": self.identity,
            "config": self.config.to_dict(),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            # every random draw is re-derived from (seed, step); the generator state is kept for audit
            "rng": {"scheme": "derive_seed(seed, 'step', s) per step", "step_generator": generator.get_state().cpu()},
            "history": history,
            "runs": runs,
        }

    def _restore(self, optimizer, scheduler, scaler) -> tuple[int, list, list, Path | None]:
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
        self.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        log.info("resuming %s from %s (step %d of %d)", self.desc, path, step, self.config.steps)
        return int(state["step"]), list(state["history"]), list(state["runs"]), path

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        cfg, device, model = self.config, self.device, self.model
        with _deterministic(cfg.deterministic), torch_threads(cfg.cpu_threads):
            model.to(device)
            params = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(
                params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay
            )
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cfg.lr_factor)
            scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
            start, history, runs, ckpt = self._restore(optimizer, scheduler, scaler)
            runs.append({"start_step": start, "end_step": start, **device_info(device)})
            generator = torch.Generator(device=device)
            if start >= cfg.steps:
                return TrainResult(start, history, runs, self.identity, self.identity_hash, ckpt)
            return self._run(start, history, runs, optimizer, scheduler, scaler, generator, params)

    def _run(self, start, history, runs, optimizer, scheduler, scaler, generator, params) -> TrainResult:
        cfg, device, model = self.config, self.device, self.model
        autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
        clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        t_run = time.monotonic()
        last_ckpt = t_run
        ckpt: Path | None = None
        batches = iter(self.data(start))
        bar = tqdm(
            total=cfg.steps, initial=start, desc=self.desc, file=sys.stderr, mininterval=5.0, ascii=True, dynamic_ncols=False
        )

        def checkpoint(done: int) -> Path:
            runs[-1]["end_step"] = done
            runs[-1]["wall_s"] = round(time.monotonic() - t_run, 3)
            path = save_checkpoint(
                self.checkpoint_dir,
                done,
                self._state(done, optimizer, scheduler, scaler, history, runs, generator),
                cfg.keep_checkpoints,
            )
            log.info("checkpoint %s", path)
            return path

        step_delay = training_step_delay()  # test-only (stemlab.faults); 0 outside the SLURM requeue test
        with _StopRequest() as stop, contextlib.closing(bar), _closing_iterator(batches):
            log.info("%s: training steps %d..%d on %s", self.desc, start + 1, cfg.steps, device)
            for step in range(start, cfg.steps):
                t0 = time.monotonic()
                try:
                    batch = move_to(next(batches), device)
                except StopIteration:
                    raise StemlabError(
                        f"training data ran out at step {step} of {cfg.steps}; the data factory must be endless"
                    ) from None
                generator.manual_seed(derive_seed(cfg.seed, "step", step))
                model.train()
                with _scoped_torch_rng(device, derive_seed(cfg.seed, "torch-default", step)):
                    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                        loss, metrics = self.loss_fn(model, batch, generator)
                    if not torch.isfinite(loss):
                        raise StemlabError(
                            f"{self.desc}: loss is {loss.item()} at step {step + 1}; lower the learning rate or set grad_clip"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
                    scaler.step(optimizer)
                    scaler.update()
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                done = step + 1
                if done % cfg.log_every == 0 or done == cfg.steps:
                    row = {"step": done, "split": "train", "loss": float(loss.detach()), "lr": lr}
                    row["grad_norm"] = float(grad_norm)
                    row.update({k: float(v) for k, v in metrics.items()})
                    row["step_s"] = round(time.monotonic() - t0, 4)
                    history.append(row)
                    bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
                bar.update(1)
                if step_delay:
                    time.sleep(step_delay)
                if self.eval_fn is not None and (
                    (cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps
                ):
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
        return TrainResult(cfg.steps, history, runs, self.identity, self.identity_hash, ckpt)

    def evaluate(self) -> dict[str, float]:
        """Run `eval_fn` in eval mode without gradients; it cannot perturb the training RNG streams."""
        assert self.eval_fn is not None
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), _scoped_torch_rng(self.device, derive_seed(self.config.seed, "eval")):
                return {k: float(v) for k, v in self.eval_fn(self.model).items()}
        finally:
            self.model.train(was_training)
