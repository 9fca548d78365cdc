"""The perception codebook of one grid cell (K, segment length): a non-gradient fit on the frame.

Every track row (data.py) of every split is encoded once (perception.py) into uniform segments; a
MiniBatchKMeans (scikit-learn, seeded) with K centres is fitted on the training rows' segments
(standardised by their per-dimension mean and deviation), and every row's segments are mapped to their
nearest centre. The model's buffers hold the centres, the standardisation and the tokens of every row
(with the row keys in the export), so the decision model and the evaluation read tokens, not audio.

Evaluation (held-out rows): the quantisation error of each test row's segments (mean squared distance to
the nearest centre over the mean squared deviation, in the standardised space) for the fitted codebook and
for a codebook of K training segments drawn at random.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from stemlab.device import resolve_device
from stemlab.errors import StemlabError
from stemlab.relations import data as reldata
from stemlab.relations.perception import EncoderSettings, build_perception
from stemlab.seeding import derive_seed, rng
from stemlab.train.registry import register
from stemlab.train.task import Task

NAME = "relations_codebook"


@dataclass(frozen=True)
class CodebookSettings:
    window: str
    k: int
    segment_s: float
    encoder: EncoderSettings
    exclude: tuple[str, ...]
    standardize: bool
    center_tracks: bool
    fit: Mapping[str, Any]

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> CodebookSettings:
        from stemlab.config import settings_section

        values = settings_section("models", NAME, "settings", section=section)
        return cls(window=str(values["window"]), k=int(values["k"]), segment_s=float(values["segment_s"]),
                   encoder=EncoderSettings.from_config(values["encoder"]), exclude=tuple(values["exclude"]),
                   standardize=bool(values["standardize"]), center_tracks=bool(values["center_tracks"]),
                   fit=dict(values["fit"]))  # fmt: skip


class Codebook(nn.Module):
    """Centres in the standardised feature space, the standardisation, and the tokens of every track row."""

    def __init__(self, k: int, dim: int, n_rows: int, n_segments: int) -> None:
        super().__init__()
        self.register_buffer("centres", torch.zeros(k, dim))
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("tokens", torch.zeros(n_rows, n_segments, dtype=torch.int16))
        self.register_buffer("error", torch.zeros(n_rows))  # quantisation error of each row
        self.register_buffer("error_random", torch.zeros(n_rows))  # ... under K random training segments

    def standardise(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.mean) / self.scale

    def assign(self, feats: torch.Tensor) -> torch.Tensor:
        """Nearest centre of each raw feature vector (..., dim) -> (...) int64."""
        z = self.standardise(feats.float())
        return torch.cdist(z.reshape(-1, z.shape[-1]), self.centres).argmin(dim=1).reshape(z.shape[:-1])


def center(feats: np.ndarray) -> np.ndarray:
    """Each track's segments less their own mean (..., segments, dim): what changes within the track, not
    its overall timbre and level."""
    return (feats - feats.mean(axis=-2, keepdims=True)).astype(np.float32)


def relative_error(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Per row of z (rows, segments, dim): mean squared distance to the nearest centre / mean squared norm."""
    flat = torch.from_numpy(z.reshape(-1, z.shape[-1]))
    d = torch.cdist(flat, torch.from_numpy(centres)).min(dim=1).values.square().reshape(z.shape[:2])
    norm = torch.from_numpy(z).square().sum(dim=-1).mean()
    return (d.mean(dim=1) / norm.clamp(min=1e-12)).numpy()


@register
class CodebookTask(Task):
    name = NAME
    summary_keys = ("k", "segment_s")
    metric_directions = {"quantization_error": "lower"}

    def parse_settings(self, section: Mapping[str, Any]) -> CodebookSettings:
        return CodebookSettings.from_config(section)

    def setup(self) -> None:
        s = self.settings
        self.rows = reldata.track_rows(self.segment_tables(s.window), self.stems_root, s.exclude)
        if not (self.rows["split"] == "train").any():
            raise StemlabError(f"model {self.job.model}: no active training windows of melodic stems in {s.window}; check the corpora")
        self.window_samples = int(self.rows["length"].max())
        self.n_segments = reldata.n_segments(self.window_samples, s.segment_s)
        perception = build_perception(s.encoder, self.job.inputs.upstream, self.job.inputs.pretrained,
                                      resolve_device(self.job.device))  # fmt: skip
        feats = []
        for row in tqdm(self.rows.itertuples(index=False), total=len(self.rows), desc=f"{self.job.model} features", mininterval=10):
            mono = reldata.track_audio(self.stems_root, row.corpus, row.shard, row.song, row.stem, row.start, self.window_samples)
            feats.append(perception.segments(mono, s.segment_s, self.n_segments))
        self.features = np.stack(feats).astype(np.float32)  # (rows, segments, dim)
        if s.center_tracks:
            self.features = center(self.features)
        self.dim = self.features.shape[-1]

    def build_model(self) -> nn.Module:
        return Codebook(self.settings.k, self.dim, self.n_rows, self.n_segments)

    @property
    def n_rows(self) -> int:
        return len(self.rows) if hasattr(self, "rows") else int(self._export["n_rows"])

    def data(self, start: int) -> Iterator[int]:
        index = start
        while True:  # the fit reads the features itself; a micro-batch is only its index
            yield index
            index += 1

    def optimizers(self, model, cfg):
        return {}

    @torch.no_grad()
    def train_step(self, model: nn.Module, micro_batches: list[Any], ctx) -> tuple[torch.Tensor, Mapping[str, float]]:
        from sklearn.cluster import MiniBatchKMeans

        s, fit = self.settings, self.settings.fit
        train = self.features[(self.rows["split"] == "train").to_numpy()].reshape(-1, self.dim)
        mean = train.mean(axis=0) if s.standardize else np.zeros(self.dim, np.float32)
        scale = train.std(axis=0) + 1e-6 if s.standardize else np.ones(self.dim, np.float32)
        z_train = (train - mean) / scale
        picks = rng(self.loop.seed, "codebook-fit")
        if fit["max_segments"] and len(z_train) > fit["max_segments"]:
            z_train = z_train[np.sort(picks.choice(len(z_train), int(fit["max_segments"]), replace=False))]
        if len(z_train) < s.k:
            raise StemlabError(f"model {self.job.model}: {len(z_train)} training segments for K = {s.k}; add data or lower k")
        kmeans = MiniBatchKMeans(n_clusters=s.k, batch_size=int(fit["batch_size"]), max_iter=int(fit["max_iter"]),
                                 n_init=int(fit["n_init"]), random_state=derive_seed(self.loop.seed, "kmeans") % 2**32)  # fmt: skip
        kmeans.fit(z_train.astype(np.float64))
        centres = kmeans.cluster_centers_.astype(np.float32)
        random_centres = z_train[picks.choice(len(z_train), s.k, replace=False)].astype(np.float32)
        z_all = ((self.features - mean) / scale).astype(np.float32)
        model.centres.copy_(torch.from_numpy(centres))
        model.mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        model.scale.copy_(torch.from_numpy(scale.astype(np.float32)))
        model.tokens.copy_(model.assign(torch.from_numpy(self.features)).to(torch.int16))
        model.error.copy_(torch.from_numpy(relative_error(z_all, centres)))
        model.error_random.copy_(torch.from_numpy(relative_error(z_all, random_centres)))
        inertia = float(kmeans.inertia_) / len(z_train)
        return torch.tensor(inertia), {"inertia_per_segment": inertia}

    def export(self, model: nn.Module) -> dict[str, Any]:
        rows = {k: [str(v) if k not in ("start", "length") else int(v) for v in self.rows[k]] for k in reldata.ROW_KEYS}
        return {"rows": rows, "n_rows": len(self.rows), "n_segments": self.n_segments, "dim": self.dim,
                "window_samples": self.window_samples, "k": self.settings.k, "segment_s": self.settings.segment_s,
                "center_tracks": self.settings.center_tracks}  # fmt: skip

    def restore(self, export: Mapping[str, Any]) -> None:
        self._export = dict(export)
        self.n_segments = int(export["n_segments"])
        self.dim = int(export["dim"])

    def meta(self, model: nn.Module) -> dict[str, Any]:
        counts = self.rows["split"].value_counts().to_dict()
        return {"rows": {str(k): int(v) for k, v in counts.items()}, "segments_per_row": self.n_segments, "feature_dim": self.dim}

    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        rows = pd.DataFrame(payload["export"]["rows"])
        test = np.flatnonzero((rows["split"] == "test").to_numpy())
        if not len(test):
            raise StemlabError(f"model {self.job.model}: no test rows; the test split has no active melodic windows")
        out = []
        for system, values in (("kmeans", model.error), ("random_pick", model.error_random)):
            for i in test:
                r = rows.iloc[i]
                out.append({"system": system, "metric": "quantization_error", "value": float(values[i]),
                            "item": f"{r.corpus}/{r.song}/{r.stem}/{r.start}", "k": self.settings.k,
                            "segment_s": self.settings.segment_s, "song": r.song, "stem": r.stem})  # fmt: skip
        return pd.DataFrame(out)
