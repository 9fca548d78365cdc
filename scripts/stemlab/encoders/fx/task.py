"""The effect encoder on the model frame (models.fx_encoder): MEGAMI's effect ("style") embedding.

settings.source
- `trained`: stemlab.encoders.fx.net trained contrastively (NT-Xent, stemlab.encoders.fx.loss) on the
  annotated chains of the train split rendered on the fly on other dry content (stemlab.encoders.fx.data);
  validation: the same loss and its top-1 on fixed pairs of the valid split.
- `pretrained`: Fx-Encoder++ weights from the `pretrained:` snapshot settings.pretrained.name (listed in
  inputs.pretrained), file settings.pretrained.file (stemlab.encoders.fx.pretrained). Nothing is trained:
  the loop runs one no-op step whatever loop.steps says, and final.pt holds no weights (the network is a
  frozen module rebuilt from the snapshot, whose sha256s are part of the run identity).

Both embed (batch, 2, time) 44.1 kHz audio as join(learned part, MEGAMI's 64 features): unit vectors of
embedding_dim + 64 (trained) or 2,048 + 64 (pretrained) dimensions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from stemlab.data.segment_tables import read_segment_tables
from stemlab.encoders.base import EncoderTask
from stemlab.encoders.fx.data import ChainPairs, chains_of
from stemlab.encoders.fx.loss import nt_xent
from stemlab.encoders.fx.net import FxEmbedder, FxEncoderNet, FxNetConfig
from stemlab.errors import StemlabError
from stemlab.logs import log
from stemlab.megami.pairs import pair_items
from stemlab.train import prefetched
from stemlab.train.registry import register

WINDOW = "megami"
SOURCES = ("trained", "pretrained")


@dataclass(frozen=True)
class FxEncoderSettings:
    """models.fx_encoder.settings (schema defaults filled), parsed."""

    source: str
    pretrained_name: str
    pretrained_file: str
    segment_samples: int
    preroll_samples: int
    model: FxNetConfig
    temperature: float

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> FxEncoderSettings:
        from stemlab.config import settings_section

        values = settings_section("models", "fx_encoder", "settings", section=section)
        if values["source"] not in SOURCES:
            raise StemlabError(f"models.fx_encoder.settings.source: {values['source']!r} is not one of {', '.join(SOURCES)}")
        return cls(
            source=str(values["source"]),
            pretrained_name=str(values["pretrained"]["name"]),
            pretrained_file=str(values["pretrained"]["file"]),
            segment_samples=int(values["segment_samples"]),
            preroll_samples=int(values["preroll_samples"]),
            model=FxNetConfig.from_dict(values["model"]),
            temperature=float(values["loss"]["temperature"]),
        )


class _Directions(dict):
    """metric -> better: every metric of this table is higher-is-better (probe names follow the data)."""

    def get(self, key, default=None):  # noqa: ANN001 - dict signature
        return "higher" if str(key).startswith("probe_r2_") else super().get(key, default)


def items_digest(items) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(f"{it.song}\x1f{it.stem}\x1f{it.start}\x1f{it.length}\n".encode())
    return h.hexdigest()[:16]


@register
class FxEncoderTask(EncoderTask):
    name = "fx_encoder"
    metric_directions = _Directions({"same_chain_top1": "higher", "triplet_acc": "higher"})

    def __init__(self, job) -> None:  # noqa: ANN001
        super().__init__(job)
        if self.settings.source == "pretrained":
            # nothing to train: one no-op step makes final.pt, train_log.csv and meta.json as usual
            self.loop = dataclasses.replace(self.loop, steps=1, warmup_steps=0)
        self.net_cfg = self.settings.model
        self.segment = self.settings.segment_samples
        self.train_items: list = []
        self.valid_items: list = []
        self.n_chains = 0

    def parse_settings(self, section: Mapping[str, Any]) -> FxEncoderSettings:
        return FxEncoderSettings.from_config(section)

    @property
    def pretrained(self) -> bool:
        return self.settings.source == "pretrained"

    # ------------------------------------------------------------------ encoder interface
    def embedding_dim(self) -> int:
        from stemlab.encoders.fx.pretrained import EMBEDDING_DIM

        return (EMBEDDING_DIM if self.pretrained else self.net_cfg.embedding_dim) + 64

    def embed(self, model: nn.Module, audio: torch.Tensor) -> torch.Tensor:
        if audio.ndim != 3 or audio.shape[1] != 2:
            raise ValueError(f"audio must be (batch, 2, time), got {tuple(audio.shape)}")
        with torch.no_grad():
            return model(audio.float()).float()

    # ------------------------------------------------------------------ training
    def setup(self) -> None:
        if self.pretrained:
            self.weights_file()  # a missing snapshot is reported before anything runs
            return
        table = read_segment_tables(self.segment_tables(WINDOW))
        self.train_items = pair_items(table, self.stems_root, "train")
        self.valid_items = pair_items(table, self.stems_root, "valid")
        if not self.train_items:
            raise StemlabError(
                f"{', '.join(self.segment_tables(WINDOW))}: no active train-split windows with dry and wet stems; "
                "enable data.synthetic (the effect encoder needs annotated FX chains)"
            )
        longest = max(it.length for it in self.train_items)
        self.segment = min(self.settings.segment_samples, longest)
        if self.segment < self.net_cfg.min_samples:
            raise StemlabError(
                f"models.fx_encoder.settings.segment_samples: {self.segment} samples is shorter than the encoder's "
                f"{self.net_cfg.min_samples} (hop x 2^(blocks-1) + n_fft); raise it or use fewer model.channels"
            )
        self.pairs = ChainPairs(self.train_items, self.segment, self.settings.preroll_samples, self.loop.seed)
        self.n_chains = len(self.pairs.chains)
        self.valid = self._valid_batches()
        log.info("fx_encoder: %d train chains over %d windows, %d valid windows, crop %d + pre-roll %d samples",
                 self.n_chains, len(self.train_items), len(self.valid_items), self.segment, self.settings.preroll_samples)  # fmt: skip

    def _valid_batches(self) -> list[dict[str, torch.Tensor]]:
        if not self.valid_items or self.loop.valid_batches == 0:
            return []
        pairs = ChainPairs(self.valid_items, self.segment, self.settings.preroll_samples, self.loop.seed)
        if len(pairs.chains) < 2:
            return []
        size = min(self.loop.batch_size, len(pairs.chains))
        return [_tensors(pairs.batch(i, size, purpose="valid")) for i in range(self.loop.valid_batches)]

    def weights_file(self) -> Path:
        path = self.pretrained_dir(self.settings.pretrained_name) / self.settings.pretrained_file
        if not path.is_file():
            raise StemlabError(
                f"{path}: not in the snapshot; list {self.settings.pretrained_file} in "
                f"pretrained.{self.settings.pretrained_name}.files or fix models.fx_encoder.settings.pretrained.file"
            )
        return path

    def build_model(self) -> nn.Module:
        if self.pretrained:
            from stemlab.encoders.fx import pretrained

            net = pretrained.build()
            pretrained.load_weights(net, self.weights_file())
            return pretrained.PretrainedEmbedder(net.requires_grad_(False))
        return FxEmbedder(FxEncoderNet(self.net_cfg))

    def frozen_modules(self, model: nn.Module) -> dict[str, nn.Module]:
        return {"fxpp": model.fxpp} if self.pretrained else {}

    def data(self, start: int) -> Iterator[Any]:
        if self.pretrained:
            return itertools.repeat({})
        return self._batches(start)

    def _batches(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        size = self.loop.batch_size
        source = prefetched(lambda s: self.pairs.batch(s, size), start, workers=self.loop.workers)
        try:
            for batch in source:
                yield _tensors(batch)
        finally:
            source.close()  # its prefetch threads

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor], generator: torch.Generator):  # noqa: ARG002
        if self.pretrained:
            return torch.zeros((), requires_grad=True), {}
        z = model.net.project(model.net(batch["audio"]))
        return nt_xent(z, batch["chain"], self.settings.temperature)

    def validate(self, model: nn.Module) -> dict[str, float]:
        if self.pretrained or not self.valid:
            return {}
        totals: dict[str, float] = {}
        device = next(model.parameters()).device
        for batch in self.valid:
            z = model.net.project(model.net(batch["audio"].to(device)))
            loss, metrics = nt_xent(z, batch["chain"].to(device), self.settings.temperature)
            for k, v in {"loss": float(loss), **metrics}.items():
                totals[k] = totals.get(k, 0.0) + v / len(self.valid)
        return totals

    def identity(self) -> dict[str, Any]:
        if self.pretrained:
            from stemlab.encoders.fx.pretrained import CHANNELS

            return {"source": "pretrained", "file": self.settings.pretrained_file, "channels": list(CHANNELS)}
        return {
            "source": "trained",
            "model": self.net_cfg.to_dict(),
            "segment_samples": self.segment,
            "data": {"train_items": len(self.train_items), "chains": self.n_chains, "digest": items_digest(self.train_items)},
        }

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {
            "source": self.settings.source,
            "model_config": self.net_cfg.to_dict(),
            "segment_samples": self.segment,
            "pretrained": {"name": self.settings.pretrained_name, "file": self.settings.pretrained_file},
            "embedding_dim": self.embedding_dim(),
        }

    def restore(self, export: Mapping[str, Any]) -> None:
        try:
            if export.get("source", self.settings.source) != self.settings.source:
                raise StemlabError(f"model file of source {export['source']!r} read with settings.source {self.settings.source!r}")
            self.net_cfg = FxNetConfig.from_dict(export["model_config"])
        except (KeyError, TypeError) as exc:
            raise StemlabError(f"not an effect-encoder model file ({type(exc).__name__}: {exc}); re-run its train_model job") from exc
        self.segment = int(export.get("segment_samples", self.segment))

    def meta(self, model: nn.Module) -> dict[str, Any]:
        return {
            "source": self.settings.source,
            "embedding_dim": self.embedding_dim(),
            "segment_samples": self.segment,
            "train_chains": self.n_chains,
            "train_windows": len(self.train_items),
            "valid_windows": len(self.valid_items),
        }

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        from stemlab.encoders.fx.evaluate import EvalSettings, evaluate_encoder

        table = read_segment_tables(self.segment_tables(WINDOW))
        train = pair_items(table, self.stems_root, "train")
        test = pair_items(table, self.stems_root, "test")
        chains_of(test)  # one-line error when the test stems carry no chains
        device = next(itertools.chain(model.parameters(), model.buffers()), torch.zeros(())).device
        return evaluate_encoder(lambda x: self.embed(model, x), train, test, EvalSettings.from_config(self.job.eval),
                                self.settings.preroll_samples, device)  # fmt: skip


def _tensors(batch: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}
