"""The CLAP domain adaptor on the model frame (models.domain_adaptor): trained on (CLAP(wet), CLAP(dry)) pairs
of the clap embedding cache (stemlab.megami.multitrack.clap_pairs), loss 1 - cos.

Evaluation on the test split, one row per (song, stem, window):
- cosine_to_dry: cos(system(CLAP(wet)), CLAP(dry)) for `adaptor`, `identity` (the unadapted wet embedding)
  and `mean_dry` (the normalised mean dry embedding of the train split: what a collapsed adaptor scores)
- dry_top1: whether the window's own dry embedding is the nearest of all test dry embeddings (adaptor,
  identity; `chance` = 1 / candidates): a high cosine that lost the content would fail here
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from stemlab.errors import StemlabError
from stemlab.logs import log
from stemlab.megami.adaptor import DomainAdaptor, cosine_loss
from stemlab.megami.multitrack import WINDOW, ClapPairs, clap_pairs, require, segment_rows
from stemlab.train.registry import register
from stemlab.train.task import Task

CLAP = "clap"  # the encoder whose cache the adaptor reads


@dataclass(frozen=True)
class AdaptorSettings:
    hidden: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> AdaptorSettings:
        from stemlab.config import settings_section

        values = settings_section("models", "domain_adaptor", "settings", section=section)
        return cls(hidden=int(values["model"]["hidden"]))


def pairs_digest(pairs: ClapPairs) -> str:
    h = hashlib.sha256()
    for row in pairs.keys[["song", "stem", "start"]].itertuples(index=False):
        h.update(f"{row.song}\x1f{row.stem}\x1f{row.start}\n".encode())
    return h.hexdigest()[:16]


@register
class DomainAdaptorTask(Task):
    name = "domain_adaptor"
    metric_directions = {"cosine_to_dry": "higher", "dry_top1": "higher"}

    def parse_settings(self, section: Mapping[str, Any]) -> AdaptorSettings:
        return AdaptorSettings.from_config(section)

    def _rows(self) -> pd.DataFrame:
        return segment_rows(self.segment_tables(WINDOW))

    # ------------------------------------------------------------------ training
    def setup(self) -> None:
        cache = self.embedding_cache(CLAP)
        rows = self._rows()
        self.dim = cache.dim
        self.train = clap_pairs(rows, cache, "train")
        self.valid = clap_pairs(rows, cache, "valid")
        require(self.train, "train-split windows with wet and dry CLAP embeddings", self.segment_tables(WINDOW))
        log.info("domain_adaptor: %d train / %d valid (wet, dry) pairs of %d-d CLAP embeddings", len(self.train), len(self.valid), self.dim)

    def build_model(self) -> nn.Module:
        return DomainAdaptor(self.dim, self.settings.hidden)

    def data(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        step = start
        while True:
            batch = self.train.batch(step, self.loop.batch_size, self.loop.seed)
            yield {k: torch.from_numpy(v) for k, v in batch.items()}
            step += 1

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor], generator: torch.Generator):  # noqa: ARG002
        loss = cosine_loss(model(batch["wet"]), batch["dry"])
        return loss, {}

    def validate(self, model: nn.Module) -> dict[str, float]:
        if len(self.valid) == 0:
            return {}
        device = next(model.parameters()).device
        wet, dry = torch.from_numpy(self.valid.wet).to(device), torch.from_numpy(self.valid.dry).to(device)
        return {"loss": float(cosine_loss(model(wet), dry)), "identity_loss": float(cosine_loss(wet, dry))}

    def identity(self) -> dict[str, Any]:
        return {"dim": self.dim, "hidden": self.settings.hidden, "data": {"pairs": len(self.train), "digest": pairs_digest(self.train)}}

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {"dim": self.dim, "hidden": self.settings.hidden}

    def restore(self, export: Mapping[str, Any]) -> None:
        try:
            self.dim = int(export["dim"])
        except (KeyError, TypeError) as exc:
            raise StemlabError(f"not a domain adaptor model file ({type(exc).__name__}: {exc}); re-run its train_model job") from exc

    def meta(self, model: nn.Module) -> dict[str, Any]:
        return {"dim": self.dim, "train_pairs": len(self.train), "valid_pairs": len(self.valid)}

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        cache = self.embedding_cache(CLAP)
        rows = self._rows()
        test = clap_pairs(rows, cache, "test")
        require(test, "test-split windows with wet and dry CLAP embeddings", self.segment_tables(WINDOW))
        train = clap_pairs(rows, cache, "train")
        device = next(model.parameters()).device
        wet = F.normalize(torch.from_numpy(test.wet), dim=-1)
        dry = F.normalize(torch.from_numpy(test.dry), dim=-1)
        adapted = model(wet.to(device)).cpu()
        mean_dry = F.normalize(torch.from_numpy(train.dry).mean(0) if len(train) else dry.mean(0), dim=-1)
        keys = test.keys.reset_index(drop=True)
        items = (keys["song"] + "/" + keys["stem"] + "@" + keys["start"].astype(str)).to_numpy()
        n = len(keys)
        frames = []

        def rows_of(system: str, metric: str, values: np.ndarray) -> None:
            frames.append(pd.DataFrame({"system": system, "metric": metric, "value": values.astype(float), "item": items,
                                        "song": keys["song"], "stem": keys["stem"], "category": keys["category"], "start": keys["start"]}))  # fmt: skip

        for system, emb in (("adaptor", adapted), ("identity", wet)):
            rows_of(system, "cosine_to_dry", (emb * dry).sum(-1).numpy())
            own = (emb * dry).sum(-1, keepdim=True)
            rows_of(system, "dry_top1", ((emb @ dry.T) <= own + 1e-7).all(-1).numpy())
        rows_of("mean_dry", "cosine_to_dry", (dry @ mean_dry).numpy())
        rows_of("chance", "dry_top1", np.full(n, 1.0 / n))
        return pd.concat(frames, ignore_index=True)
