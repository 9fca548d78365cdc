"""Train one (model, seed) job through its task: the generic `train_model` rule runs this."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from stemlab.device import seeded_init, torch_threads
from stemlab.download.fetch import sha256_file
from stemlab.download.pretrained import snapshot_digests
from stemlab.logs import log
from stemlab.seeding import derive_seed
from stemlab.train.config import code_digest
from stemlab.train.job import Job
from stemlab.train.loop import Trainer
from stemlab.train.outputs import write_training_outputs
from stemlab.train.registry import task_class
from stemlab.train.task import FINAL_FORMAT, Task, overrides


def input_digests(job: Job) -> dict[str, Any]:
    """sha256 of every input file that shapes the weights: segment tables, upstream models, pretrained files.

    (Stem audio is covered through the segment tables, whose rows carry each window's measured level; a
    pretrained snapshot through its manifest, whose sha256s were verified when it was downloaded; an
    embedding cache through the encoder's final.pt sha256 that each cache file records.)"""
    inputs = job.inputs
    digests = {
        "segments": {w: [sha256_file(p) for p in paths] for w, paths in sorted(inputs.segments.items())},
        "upstream": {name: sha256_file(path) for name, path in sorted(inputs.upstream.items())},
        "pretrained": {name: snapshot_digests(path) for name, path in sorted(inputs.pretrained.items())},
    }
    if inputs.cache:
        digests["cache"] = {name: cache_digests(paths) for name, paths in sorted(inputs.cache.items())}
    if inputs.tokens:
        digests["tokens"] = [sha256_file(p) for p in inputs.tokens]
    return digests


def cache_digests(paths: list[str]) -> list[list[str]]:
    """(file name, encoder final.pt sha256, rows) of each cache file: what its embeddings depend on besides
    the stems, which the segment tables cover."""
    from stemlab.encoders.cache import cache_meta

    out = []
    for path in paths:
        meta = cache_meta(path)
        out.append(["/".join(Path(path).parts[-2:]), str(meta.get("model_sha256")), str(meta.get("rows"))])
    return out


def count_parameters(model) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def train_job(job: Job, out_dir: str | os.PathLike[str], checkpoint_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Train `job` and write final.pt, train_log.csv and meta.json into `out_dir`; returns the meta."""
    out_dir = Path(out_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else out_dir / "checkpoints"
    task: Task = task_class(job.model, job.task)(job)
    cfg = task.loop
    with torch_threads(cfg.cpu_threads):
        task.setup()
        with seeded_init(derive_seed(cfg.seed, "init")):
            model = task.build_model()
    identity = {
        "model": job.model,
        "task": job.task,
        "settings": job.settings,
        "inputs": input_digests(job),
        "task_identity": task.identity(),
        "code": code_digest(job.task),
    }
    total, trainable = count_parameters(model)
    log.info("%s seed %d: %d parameters (%d trainable)", job.model, job.seed, total, trainable)
    trainer = Trainer(
        model,
        task.loss if overrides(task, "loss") else None,
        task.data,
        cfg,
        checkpoint_dir,
        identity=identity,
        eval_fn=task.validate if overrides(task, "validate") else None,
        desc=f"{job.model} seed {job.seed}",
        optimizers=task.optimizers,
        step_fn=task.train_step if task.owns_step() else None,
        frozen=task.frozen_modules(model),
    )
    result = trainer.fit()
    payload = {
        "format": FINAL_FORMAT,
        "model": job.model,
        "task": job.task,
        "seed": job.seed,
        "settings": job.settings,
        "loop": job.loop,
        "state_dict": result.weights,
        "ema": cfg.ema_decay > 0,
        "export": task.export(model),
        "identity_hash": result.identity_hash,
    }
    meta = {
        "model": job.model,
        "seed": job.seed,
        "parameters": total,
        "trainable_parameters": trainable,
        "saved_entries": len(result.weights),
        "checkpoint_dir": str(checkpoint_dir),
        **task.meta(model),
    }
    write_training_outputs(result, out_dir, payload, meta)
    return meta
