"""The one training loop every stemlab model family uses (see loop.py for the determinism contract)."""

from stemlab.train.config import TrainConfig
from stemlab.train.loop import Preempted, Trainer, TrainResult, device_info, resolve_device, seeded_init, torch_threads
from stemlab.train.sampling import prefetched, step_indices

__all__ = [
    "Preempted",
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
