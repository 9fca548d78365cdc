"""The FxProcessor on the model frame: settings, data, loss, validation and evaluation of one (seed) run.

settings.conditioning
- `embeddings` (MEGAMI): the effect embedding of the target wet window (the `fx_encoder` embedding cache,
  source wet) joined with the CLAP embedding of the dry window (the `clap` cache, source dry), both of the
  whole `megami` window the training crop is cut from. The loss's embedding term runs the frozen
  effect encoder (inputs.upstream fx_encoder) on the prediction and the target crop.
- `fx_params` (ablation): the oracle, normalised FX parameters of the synthetic chain (stemlab.megami.fxparams).

The input is FxNorm-ed (stemlab.megami.fxnorm) with an average spectrum measured here on up to
settings.fxnorm_fit_windows training dry windows and stored in the weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from stemlab.data.segment_tables import read_segment_tables, read_window
from stemlab.errors import StemlabError
from stemlab.logs import log, progress
from stemlab.megami.fxparams import FxParamSpace
from stemlab.megami.fxprocessor import FxProcessor, FxProcessorConfig
from stemlab.megami.loss import FxProcessorLoss
from stemlab.megami.pairs import PairDataset, PairItem, pair_items
from stemlab.train import prefetched
from stemlab.train.registry import register
from stemlab.train.task import Task

WINDOW = "megami"  # the segment window the FxProcessor trains on
FX_ENCODER, CLAP = "fx_encoder", "clap"  # the shared encoders (models.<name>) whose caches condition it
CONDITIONINGS = ("embeddings", "fx_params")


@dataclass(frozen=True)
class LossConfig:
    fft_sizes: tuple[int, ...]
    magnitude_weight: float
    log_weight: float
    embedding_weight: float

    def build(self, embedder: nn.Module | None = None) -> FxProcessorLoss:
        """The loss; without `embedder` the embedding term is left out."""
        weight = self.embedding_weight if embedder is not None else 0.0
        return FxProcessorLoss(self.fft_sizes, self.magnitude_weight, self.log_weight, weight, embedder)


@dataclass(frozen=True)
class FxSettings:
    """models.fxprocessor.settings (schema-validated, defaults filled), parsed."""

    conditioning: str
    model: dict[str, Any]
    loss: LossConfig
    segment_samples: int | None
    fxnorm_fit_windows: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> FxSettings:
        from stemlab.config import settings_section

        values = settings_section("models", "fxprocessor", "settings", section=section)
        if values["conditioning"] not in CONDITIONINGS:
            raise StemlabError(f"models.fxprocessor.settings.conditioning: {values['conditioning']!r} is not one of {', '.join(CONDITIONINGS)}")
        loss = values["loss"]
        return cls(
            conditioning=str(values["conditioning"]),
            model=dict(values["model"]),
            loss=LossConfig(
                tuple(int(n) for n in loss["fft_sizes"]), float(loss["magnitude_weight"]), float(loss["log_weight"]),
                float(loss["embedding_weight"]),
            ),  # fmt: skip
            segment_samples=values["segment_samples"],
            fxnorm_fit_windows=int(values["fxnorm_fit_windows"]),
        )


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


def cache_frame(items: Sequence[PairItem], source: str) -> pd.DataFrame:
    """The embedding-cache keys of the items' windows for one source (wet | dry)."""
    return pd.DataFrame({
        "song": [it.song for it in items], "stem": [it.stem for it in items], "source": source,
        "window": WINDOW, "start": [it.start for it in items], "length": [it.length for it in items],
    })  # fmt: skip


def embedding_conditions(items: Sequence[PairItem], fx_cache: Any, clap_cache: Any) -> np.ndarray:
    """(items, d_fx + d_clap) float32: effect embedding of each wet window joined with CLAP of its dry window."""
    if not items:
        return np.zeros((0, fx_cache.dim + clap_cache.dim), np.float32)
    fx = fx_cache.take(cache_frame(items, "wet"))
    clap = clap_cache.take(cache_frame(items, "dry"))
    return np.concatenate([fx, clap], axis=1).astype(np.float32)


def fit_items(items: Sequence[PairItem], limit: int) -> list[PairItem]:
    """At most `limit` training windows for the FxNorm spectrum: one per (song, stem) first, evenly spaced."""
    firsts = list({(it.song, it.stem): it for it in reversed(items)}.values())[::-1]
    if len(firsts) <= limit:
        return firsts
    picks = np.unique(np.linspace(0, len(firsts) - 1, limit).round().astype(int))
    return [firsts[int(i)] for i in picks]


def _tensors(batch: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


@register
class FxProcessorTask(Task):
    name = "fxprocessor"
    metric_directions = {"mrstft": "lower", "si_sdr": "higher", "abs_loudness_error": "lower", "loudness_error": ""}

    def parse_settings(self, section: Mapping[str, Any]) -> FxSettings:
        return FxSettings.from_config(section)

    @property
    def uses_embeddings(self) -> bool:
        return self.settings.conditioning == "embeddings"

    # ------------------------------------------------------------------ conditioning
    def conditions(self, items: Sequence[PairItem]) -> np.ndarray:
        """(items, cond_dim) conditioning vectors of the items' windows."""
        if self.uses_embeddings:
            return embedding_conditions(items, self.embedding_cache(FX_ENCODER), self.embedding_cache(CLAP))
        return np.stack([self.space.vector(it.fx) for it in items]) if items else np.zeros((0, self.space.dim), np.float32)

    def _model_config(self) -> FxProcessorConfig:
        if self.uses_embeddings:
            parts = (self.embedding_cache(FX_ENCODER).dim, self.embedding_cache(CLAP).dim)
            return FxProcessorConfig.from_dict({**self.settings.model, "cond_dim": sum(parts), "cond_parts": parts})
        return FxProcessorConfig.from_dict({**self.settings.model, "cond_dim": self.space.dim})

    def _embedder(self) -> nn.Module | None:
        """The frozen effect encoder of the loss's embedding term (None when its weight is 0)."""
        if not (self.uses_embeddings and self.settings.loss.embedding_weight > 0):
            return None
        from stemlab.train.task import load_trained

        inputs = {"pretrained": dict(self.job.inputs.pretrained), "upstream": dict(self.job.inputs.upstream)}
        _, encoder, _ = load_trained(self.upstream_file(FX_ENCODER), "cpu", inputs)
        return encoder.requires_grad_(False).eval()

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
        self.space = FxParamSpace.fit([it.fx for it in self.train_items]) if not self.uses_embeddings else FxParamSpace()
        self.segment = window_length(self.train_items, self.settings.segment_samples)
        self.model_cfg = self._model_config()
        if self.segment <= self.model_cfg.receptive_field():
            log.warning("fxprocessor: training crops of %d samples are not longer than the receptive field (%d)",
                        self.segment, self.model_cfg.receptive_field())  # fmt: skip
        self.spectrum, self.level_offset = self._fit_input()
        self.criterion = self.settings.loss.build(self._embedder())
        self.dataset = PairDataset(self.train_items, self.conditions(self.train_items), self.segment, self.loop.seed)
        self.valid = self._valid_arrays()
        log.info(
            "fxprocessor: %d train / %d valid windows, segment %d samples, conditioning %s (%d dims), receptive field %d",
            len(self.train_items), len(self.valid_items), self.segment, self.settings.conditioning,
            self.model_cfg.cond_dim, self.model_cfg.receptive_field(),
        )  # fmt: skip

    def _fit_input(self) -> tuple[np.ndarray | None, float | None]:
        """On up to fxnorm_fit_windows training windows: the FxNorm average spectrum of the dry stems (None
        without FxNorm) and the mean gated-RMS difference in dB between the wet stem and the TCN's input,
        which starts the direct path's gain (one bias would otherwise need hundreds of steps to move there)."""
        from stemlab.megami.fxnorm import fit_spectrum, gated_rms_db

        cfg = self.model_cfg
        chosen = fit_items(self.train_items, self.settings.fxnorm_fit_windows)
        dry_mono, offsets = [], []
        for it in progress(chosen, desc="fxprocessor input statistics"):
            dry = read_window(it.dry, it.start, it.length).mean(axis=0)
            wet_db = gated_rms_db(torch.from_numpy(read_window(it.wet, it.start, it.length))).numpy()
            in_db = cfg.fxnorm_rms_db if cfg.fxnorm else float(gated_rms_db(torch.from_numpy(dry)[None])[0])
            if np.isfinite(wet_db).all() and np.isfinite(in_db):
                offsets.append(float(wet_db.mean()) - in_db)
            dry_mono.append(dry)
        spectrum = fit_spectrum(dry_mono) if cfg.fxnorm else None
        return spectrum, (float(np.mean(offsets)) if offsets else None)

    def _valid_arrays(self) -> dict[str, np.ndarray] | None:
        n = min(len(self.valid_items), self.loop.valid_batches * self.loop.batch_size)
        if n == 0:
            return None
        picks = np.unique(np.linspace(0, len(self.valid_items) - 1, n).round().astype(int))
        chosen = [self.valid_items[int(i)] for i in picks]
        return {
            "dry": np.stack([read_window(it.dry, it.start, self.segment) for it in chosen]),
            "wet": np.stack([read_window(it.wet, it.start, self.segment) for it in chosen]),
            "cond": self.conditions(chosen),
        }

    def build_model(self) -> nn.Module:
        model = FxProcessor(self.model_cfg)
        if model.fxnorm is not None and getattr(self, "spectrum", None) is not None:
            model.fxnorm.set_spectrum(self.spectrum)
        if model.gain is not None and getattr(self, "level_offset", None) is not None:
            model.set_level_offset(self.level_offset)
        return model

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
            "model": self.model_cfg.to_dict(),
            "segment_samples": self.segment,
            "conditioning": {"kind": self.settings.conditioning, "space": self.space.to_dict()},
            "data": {"train_items": len(self.train_items), "digest": items_digest(self.train_items)},
        }

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {
            "model_config": self.model_cfg.to_dict(),
            "conditioning": {"kind": self.settings.conditioning, "space": self.space.to_dict()},
            "segment_samples": self.segment,
        }

    def restore(self, export: Mapping[str, Any]) -> None:
        try:
            self.model_cfg = FxProcessorConfig.from_dict(dict(export["model_config"]))
            conditioning = export["conditioning"]
            self.space = FxParamSpace.from_dict(conditioning["space"])
            kind = conditioning["kind"]
        except (KeyError, TypeError, ValueError) as exc:
            raise StemlabError(f"not an FxProcessor model file of this version ({type(exc).__name__}: {exc}); re-run its train_model job") from exc
        if kind != self.settings.conditioning:
            raise StemlabError(f"the FxProcessor model file is conditioned on {kind}, the settings say {self.settings.conditioning}; re-run its train_model job")
        self.segment = int(export.get("segment_samples", 0))

    def meta(self, model: nn.Module) -> dict[str, Any]:
        return {
            "receptive_field": self.model_cfg.receptive_field(),
            "conditioning": self.settings.conditioning,
            "cond_dim": self.model_cfg.cond_dim,
            "segment_samples": self.segment,
            "train_items": len(self.train_items),
            "valid_items": len(self.valid_items),
        }

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        from stemlab.megami.evaluate_fxprocessor import EvalSettings, evaluate_windows

        table = read_segment_tables(self.segment_tables(WINDOW))
        return evaluate_windows(model, self.conditions, table, self.stems_root, EvalSettings.from_config(self.job.eval))
