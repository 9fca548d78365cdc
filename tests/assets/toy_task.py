"""A throwaway model for the frame's workflow test: predicts a wet stem's level (dB) from its dry stem's.

The test copies this file into a temporary copy of the workflow as scripts/stemlab/toymodel.py and adds a
config overlay naming it (models.toy.task: stemlab.toymodel); nothing else of the workflow is edited.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from stemlab.data.segment_tables import read_segment_tables, read_window
from stemlab.megami.pairs import pair_items
from stemlab.train import step_indices
from stemlab.train.registry import register
from stemlab.train.task import Task

EXCERPT = 44_100  # the first second of each window


def _levels(items) -> np.ndarray:
    """(n, 2) dry and wet RMS in dB of the first second of each window."""
    out = []
    for it in items:
        pair = [read_window(path, it.start, EXCERPT) for path in (it.dry, it.wet)]
        out.append([10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-10) for x in pair])
    return np.asarray(out, dtype=np.float32)


@register
class ToyTask(Task):
    name = "toy"
    metric_directions = {"abs_err_db": "lower"}

    def setup(self) -> None:
        table = read_segment_tables(self.segment_tables("megami"))
        self.levels = _levels(pair_items(table, self.stems_root, "train"))

    def build_model(self) -> nn.Module:
        return nn.Linear(1, 1)

    def data(self, start: int) -> Iterator[torch.Tensor]:
        index = start
        while True:
            yield torch.from_numpy(self.levels[step_indices(len(self.levels), self.loop.batch_size, self.loop.seed, index)])
            index += 1

    def loss(self, model, batch, generator):
        loss = (model(batch[:, :1] / 20) * 20 - batch[:, 1:]).abs().mean()
        return loss, {"abs_err_db": float(loss.detach())}

    def export(self, model) -> dict:
        return {"mean_wet_db": float(self.levels[:, 1].mean())}

    def restore(self, export) -> None:
        self.mean_wet_db = float(export["mean_wet_db"])

    def evaluate(self, model, payload, out_dir) -> pd.DataFrame:
        table = read_segment_tables(self.segment_tables("megami"))
        items = pair_items(table, self.stems_root, "test")
        levels = _levels(items)
        with torch.no_grad():
            predicted = (model(torch.from_numpy(levels[:, :1]) / 20) * 20).numpy()[:, 0]
        rows = []
        for it, (dry, wet), pred in zip(items, levels, predicted):
            item = f"{it.song}/{it.stem}/{it.start}"
            rows.append({"system": "toy", "metric": "abs_err_db", "value": abs(pred - wet), "item": item})
            rows.append({"system": "mean_wet", "metric": "abs_err_db", "value": abs(self.mean_wet_db - wet), "item": item})
        return pd.DataFrame(rows)
