"""The FxProcessor on the model frame: settings, data, loss, validation and evaluation of one (seed) run."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from stemlab.data.segment_tables import read_segment_tables, read_window
from stemlab.errors import StemlabError
from stemlab.logs import log
from stemlab.megami.fxparams import FxParamSpace
from stemlab.megami.fxprocessor import FxProcessor, FxProcessorConfig
from stemlab.megami.pairs import PairDataset, PairItem, pair_items
from stemlab.train import prefetched
from stemlab.train.losses import MultiResolutionSTFTLoss
from stemlab.train.registry import register
from stemlab.train.task import Task

WINDOW = "megami"  # the segment window the FxProcessor trains on


@dataclass(frozen=True)
class LossConfig:
    fft_sizes: tuple[int, ...]
    l1_weight: float

    def build(self) -> FxLoss:
        return FxLoss(MultiResolutionSTFTLoss(self.fft_sizes), self.l1_weight)


@dataclass(frozen=True)
class FxSettings:
    """models.fxprocessor.settings (schema-validated, defaults filled), parsed."""

    model: dict[str, Any]
    loss: LossConfig
    segment_samples: int | None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> FxSettings:
        from stemlab.config import settings_section

        values = settings_section("models", "fxprocessor", "settings", section=section)
        loss = values["loss"]
        return cls(
            model=dict(values["model"]),
            loss=LossConfig(tuple(int(n) for n in loss["fft_sizes"]), float(loss["l1_weight"])),
            segment_samples=values["segment_samples"],
        )


class FxLoss(nn.Module):
    """Multi-resolution STFT distance + weighted L1 in the time domain."""

    def __init__(self, mrstft: MultiResolutionSTFTLoss, l1_weight: float) -> None:
        super().__init__()
        self.mrstft = mrstft
        self.l1_weight = l1_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        spectral = self.mrstft(pred, target)
        l1 = (pred.float() - target.float()).abs().mean()
        return spectral + self.l1_weight * l1, {"mrstft": float(spectral.detach()), "l1": float(l1.detach())}


def items_digest(items: Sequence[PairItem]) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(f"{it.song}\x1f{it.stem}\x1f{it.start}\x1f{it.length}\n".encode())
    return h.hexdigest()[:16]


def window_length(items: Sequence[PairItem], requested: int | None) -> int:
    """Training crop: `requested` (capped by the longest window) or, when None, the most common window."""
    lengths = np.array([it.length for it in items])
    if requested is None:
        values, counts = np.unique(lengths, return_counts=True)
        return int(values[np.argmax(counts)])
    return int(min(requested, lengths.max()))


def _tensors(batch: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


@register
class FxProcessorTask(Task):
    name = "fxprocessor"
    metric_directions = {"mrstft": "lower", "si_sdr": "higher", "abs_loudness_error": "lower", "loudness_error": ""}

    def parse_settings(self, section: Mapping[str, Any]) -> FxSettings:
        return FxSettings.from_config(section)

    # ------------------------------------------------------------------ training
    def setup(self) -> None:
        tables = self.segment_tables(WINDOW)
        table = read_segment_tables(tables)
        self.train_items = pair_items(table, self.stems_root, "train")
        self.valid_items = pair_items(table, self.stems_root, "valid")
        if not self.train_items:
            raise StemlabError(
                f"{', '.join(tables)}: no active train-split windows with dry and wet stems; "
                "enable data.synthetic or a corpus with dry stems"
            )
        self.space = FxParamSpace.fit([it.fx for it in self.train_items])
        self.segment = window_length(self.train_items, self.settings.segment_samples)
        self.model_cfg = FxProcessorConfig.from_dict({**self.settings.model, "cond_dim": self.space.dim})
        self.criterion = self.settings.loss.build()
        cond = np.stack([self.space.vector(it.fx) for it in self.train_items])
        self.dataset = PairDataset(self.train_items, cond, self.segment, self.loop.seed)
        self.valid = self._valid_arrays()
        log.info(
            "fxprocessor: %d train / %d valid windows, segment %d samples, cond_dim %d, receptive field %d",
            len(self.train_items), len(self.valid_items), self.segment, self.space.dim, self.model_cfg.receptive_field(),
        )  # fmt: skip

    def _valid_arrays(self) -> dict[str, np.ndarray] | None:
        n = min(len(self.valid_items), self.loop.valid_batches * self.loop.batch_size)
        if n == 0:
            return None
        picks = np.unique(np.linspace(0, len(self.valid_items) - 1, n).round().astype(int))
        chosen = [self.valid_items[int(i)] for i in picks]
        return {
            "dry": np.stack([read_window(it.dry, it.start, self.segment) for it in chosen]),
            "wet": np.stack([read_window(it.wet, it.start, self.segment) for it in chosen]),
            "cond": np.stack([self.space.vector(it.fx) for it in chosen]),
        }

    def build_model(self) -> nn.Module:
        return FxProcessor(self.model_cfg)

    def data(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        batch_size = self.loop.batch_size
        for batch in prefetched(lambda s: self.dataset.batch(s, batch_size), start, workers=self.loop.workers):
            yield _tensors(batch)

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor], generator: torch.Generator):  # noqa: ARG002
        return self.criterion(model(batch["dry"], batch["cond"]), batch["wet"])

    def validate(self, model: nn.Module) -> dict[str, float]:
        if self.valid is None:
            return {}
        device = next(model.parameters()).device
        n = len(self.valid["dry"])
        totals: dict[str, float] = {}
        for lo in range(0, n, self.loop.batch_size):
            part = {k: torch.from_numpy(v[lo : lo + self.loop.batch_size]).to(device) for k, v in self.valid.items()}
            value, metrics = self.criterion(model(part["dry"], part["cond"]), part["wet"])
            weight = part["dry"].shape[0] / n
            for k, v in {"loss": float(value), **metrics}.items():
                totals[k] = totals.get(k, 0.0) + weight * v
        return totals

    def identity(self) -> dict[str, Any]:
        return {
            "model": asdict(self.model_cfg),
            "segment_samples": self.segment,
            "conditioning": self.space.to_dict(),
            "data": {"train_items": len(self.train_items), "digest": items_digest(self.train_items)},
        }

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {
            "model_config": asdict(self.model_cfg),
            "conditioning": {"kind": "fx_params", "space": self.space.to_dict()},
            "segment_samples": self.segment,
        }

    def restore(self, export: Mapping[str, Any]) -> None:
        try:
            self.model_cfg = FxProcessorConfig(**export["model_config"])
            self.space = FxParamSpace.from_dict(export["conditioning"]["space"])
        except (KeyError, TypeError) as exc:
            raise StemlabError(f"not an FxProcessor model file ({type(exc).__name__}: {exc}); re-run its train_model job") from exc
        self.segment = int(export.get("segment_samples", 0))

    def meta(self, model: nn.Module) -> dict[str, Any]:
        return {
            "receptive_field": self.model_cfg.receptive_field(),
            "cond_dim": self.space.dim,
            "segment_samples": self.segment,
            "train_items": len(self.train_items),
            "valid_items": len(self.valid_items),
        }

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        from stemlab.megami.evaluate_fxprocessor import EvalSettings, evaluate_windows

        table = read_segment_tables(self.segment_tables(WINDOW))
        return evaluate_windows(model, self.space, table, self.stems_root, EvalSettings.from_config(self.job.eval))
