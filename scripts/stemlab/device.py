"""Where torch code runs: device choice, thread count, scoped seeding, and what a run records about it."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from stemlab.errors import StemlabError


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
    """Tensors and numpy arrays of a (nested) batch moved to `device`; other values unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, np.ndarray):
        return torch.from_numpy(batch).to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


@contextlib.contextmanager
def scoped_torch_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed torch's default generators for one block only; the process-wide state is restored after."""
    cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.default_generator.manual_seed(seed)
        for index in cuda_devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def seeded_init(seed: int) -> contextlib.AbstractContextManager[None]:
    """Build models inside `with seeded_init(seed):` so their default initialisation is reproducible
    (torch's layers draw from the process-wide generator, which this scope seeds and then restores)."""
    return scoped_torch_rng(torch.device("cpu"), seed)


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
