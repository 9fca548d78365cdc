"""Task modules of the frame tests: a mini-batch k-means (a non-gradient fit) on points in a .npy file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stemlab.seeding import rng
from stemlab.train import StepContext, step_indices
from stemlab.train.job import Job, JobInputs
from stemlab.train.registry import register
from stemlab.train.task import Task

_CRASH = {"at": None}


class Crash(Exception):
    """Stands in for a kill: the process's model, optimizer and data pipeline are all lost."""


@contextlib.contextmanager
def crash_at(micro_batch: int) -> Iterator[None]:
    """Make the k-means data pipeline die at `micro_batch` (outside the run's identity, as a kill is)."""
    _CRASH["at"] = micro_batch
    try:
        yield
    finally:
        _CRASH["at"] = None


def write_points(path: Path, n_per_cluster: int = 40) -> Path:
    centers = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    r = rng(0, "points")
    points = np.concatenate([c + 0.3 * r.standard_normal((n_per_cluster, 2)) for c in centers]).astype(np.float32)
    np.save(path, points)
    return path


def kmeans_job(points: Path, steps: int) -> Job:
    loop = {"steps": steps, "batch_size": 16, "checkpoint_every": 4, "checkpoint_seconds": 0, "keep_checkpoints": 5}
    return Job(model="kmeans_test", task="tests.frame_tasks", seed=1, loop=loop, settings={"points": str(points), "k": 3},
               eval={}, inputs=JobInputs(), device="cpu")  # fmt: skip


class KMeansState(nn.Module):
    def __init__(self, initial: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("centers", initial.clone())
        self.register_buffer("counts", torch.zeros(initial.shape[0], dtype=torch.float64))


@register
class KMeansTask(Task):
    name = "kmeans_test"

    def setup(self) -> None:
        self.points = torch.from_numpy(np.load(self.settings["points"]))

    def build_model(self) -> nn.Module:
        # inside the frame's seeded scope: the same initial centres on every run of this seed
        picks = torch.randperm(len(self.points))[: int(self.settings["k"])]
        return KMeansState(self.points[picks])

    def data(self, start: int) -> Iterator[torch.Tensor]:
        index = start
        while True:
            if _CRASH["at"] is not None and index == _CRASH["at"]:
                raise Crash
            yield self.points[step_indices(len(self.points), self.loop.batch_size, self.loop.seed, index)]
            index += 1

    def optimizers(self, model, cfg):
        return {}

    @torch.no_grad()
    def train_step(self, model: nn.Module, micro_batches: list[torch.Tensor], ctx: StepContext):
        inertia = 0.0
        for x in micro_batches:
            distances = torch.cdist(x, model.centers)
            nearest = distances.argmin(dim=1)
            inertia += float(distances.min(dim=1).values.square().sum())
            for j in range(model.centers.shape[0]):
                mine = x[nearest == j]
                if len(mine):
                    model.counts[j] += len(mine)
                    # each centre is the running mean of the points assigned to it so far (Sculley, 2010)
                    step = len(mine) / float(model.counts[j])
                    model.centers[j] += step * (mine.mean(dim=0) - model.centers[j])
        return torch.tensor(inertia), {"inertia": inertia}
