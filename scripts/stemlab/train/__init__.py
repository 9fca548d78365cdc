"""The model frame: one training loop (loop.py), one task protocol (task.py) and a registry of model families."""

from stemlab.device import device_info, resolve_device, seeded_init, torch_threads
from stemlab.train.config import TrainConfig
from stemlab.train.loop import Preempted, StepContext, Trainer, TrainResult
from stemlab.train.sampling import prefetched, step_indices

__all__ = [
    "Preempted",
    "StepContext",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "device_info",
    "prefetched",
    "resolve_device",
    "seeded_init",
    "torch_threads",
    "step_indices",
]
