"""TrainConfig: everything the shared loop needs, validated, hashable into the checkpoint identity."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stemlab.config import annotated_keys, schema_defaults
from stemlab.errors import StemlabError

SCHEDULES = ("constant", "cosine", "linear")
PRECISIONS = ("fp32", "bf16", "fp16")
LOOP_SCHEMA = ("$defs", "train_loop")  # where the loop's keys, defaults and identity marks live


@dataclass(frozen=True)
class TrainConfig:
    """The loop's settings: the `loop` block of a model section (defaults: the schema's $defs.train_loop)
    plus what the job adds (seed, device, CPU threads). Build it with `from_dict`."""

    steps: int
    batch_size: int
    grad_accum: int
    lr: float
    schedule: str
    warmup_steps: int
    min_lr_ratio: float
    weight_decay: float
    beta1: float
    beta2: float
    grad_clip: float  # max global grad norm per optimizer; 0 disables clipping
    precision: str
    ema_decay: float  # 0: no EMA
    ema_rampup: bool
    checkpoint_every: int  # steps; 0 disables step-based checkpoints
    checkpoint_seconds: float  # wall seconds; 0 disables time-based checkpoints
    keep_checkpoints: int
    eval_every: int  # steps; 0: validate only at the end
    valid_batches: int
    log_every: int
    workers: int
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # torch intra-op threads during training: CPU results depend on it (reduction order), so it is a
    # fixed setting rather than whatever the machine or Snakemake offers; 0 leaves torch's default
    cpu_threads: int = 2
    deterministic: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.steps < 1:
            problems.append("steps must be >= 1")
        if self.batch_size < 1 or self.grad_accum < 1:
            problems.append("batch_size and grad_accum must be >= 1")
        if not self.lr > 0:
            problems.append("lr must be > 0")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}")
        if not 0 <= self.warmup_steps <= self.steps:
            problems.append("warmup_steps must be in [0, steps]")
        if not 0 <= self.min_lr_ratio <= 1:
            problems.append("min_lr_ratio must be in [0, 1]")
        if not 0 <= self.ema_decay < 1:
            problems.append("ema_decay must be in [0, 1)")
        if self.grad_clip < 0 or self.checkpoint_every < 0 or self.checkpoint_seconds < 0 or self.eval_every < 0:
            problems.append("grad_clip, checkpoint_every, checkpoint_seconds and eval_every must be >= 0")
        if self.cpu_threads < 0 or self.workers < 0 or self.valid_batches < 0:
            problems.append("cpu_threads, workers and valid_batches must be >= 0")
        if self.keep_checkpoints < 1 or self.log_every < 1:
            problems.append("keep_checkpoints and log_every must be >= 1")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            problems.append("device must be auto, cpu, cuda or cuda:N")
        if problems:
            raise StemlabError(f"invalid training config: {problems[0]}; fix the models.<model>.loop section of the config")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """`values` over the schema's loop defaults; unknown keys are refused in one line."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise StemlabError(f"unknown training option {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        return cls(**(schema_defaults(*LOOP_SCHEMA) | dict(values)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def result_dict(self) -> dict[str, Any]:
        """The fields that determine the trained weights (what a checkpoint must agree on)."""
        return {k: v for k, v in self.to_dict().items() if k not in non_result_fields()}

    def lr_factor(self, step: int) -> float:
        """Multiplier of `lr` for optimizer step `step` (0-based): linear warmup, then the schedule."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        span = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        if self.schedule == "linear":
            shape = 1.0 - progress
        else:
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * shape


def non_result_fields() -> frozenset[str]:
    """Fields that cannot change the trained weights (schema mark x-identity: false), plus the device."""
    return annotated_keys(*LOOP_SCHEMA, annotation="x-identity", value=False) | {"device"}


def run_identity(config: TrainConfig, identity: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: result fields of the config + the caller's identity."""
    return {"train": config.result_dict(), "run": json.loads(json.dumps(dict(identity or {}), sort_keys=True))}


def code_digest(entry_module: str) -> str:
    """Digest of every stemlab source file `entry_module` can run (its static import closure; a task module
    outside the stemlab tree counts with its own file): part of a run's identity, so re-running after a code
    change retrains (a finished checkpoint of other code is replaced) instead of reusing stale weights."""
    import sys

    from stemlab import codegraph

    root = codegraph.SCRIPTS_DIR
    files = codegraph.walk(entry_module, root, entry=False).stemlab_files
    own = getattr(sys.modules.get(entry_module), "__file__", None)
    if own:
        files.add(Path(own).resolve())
    h = hashlib.sha256()
    for file in sorted(files):
        name = file.relative_to(root).as_posix() if file.is_relative_to(root) else file.name
        h.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def identity_hash(identity: Mapping[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def identity_diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two identities (for the refusal message)."""
    keys = sorted(set(a) | set(b))
    out: list[str] = []
    for k in keys:
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += identity_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out
