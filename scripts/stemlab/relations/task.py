"""The relations model of one grid cell: the decision transformer on the cell's codebook tokens, evaluated
by re-generation against its baselines.

Training pairs: every ordered (guide, target) pair of stems of one training song over one window, as the
codebook's tokens. Evaluation (test songs, every ordered pair): the target's symbols predicted from the
guide's, compared with its true symbols by TPP and LCP (metrics.py), for
- relations: the model, top-p decoding;
- relations_constrained: the model restricted to the symbols of the memory track (the target stem over
  the whole song, the material an audio realisation recombines);
- random: uniform random symbols (the paper's baseline); random_constrained: uniform over the memory
  track's symbols (what the constraint alone gives); unigram: symbols drawn from the training
  targets' symbol frequencies; copy_guide: the guide's own symbols (same codebook).
Item rows carry tpp_mean and tpp_median (the same per-pair TPP, summarised by its mean and by its median:
`metric_statistics`) and lcp_mean, with the cell's k and segment_s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from stemlab.device import torch_threads
from stemlab.errors import StemlabError
from stemlab.relations import data as reldata
from stemlab.relations import metrics
from stemlab.relations.decision import DecisionSize, DecisionTransformer, decode, training_loss
from stemlab.seeding import derive_seed, rng
from stemlab.train import step_indices
from stemlab.train.registry import register
from stemlab.train.task import Task, read_final

NAME = "relations"
SYSTEMS = metrics.SYSTEMS


@dataclass(frozen=True)
class RelationsSettings:
    codebook: str
    k: int
    segment_s: float
    model: DecisionSize
    label_smoothing: float
    scheduled_sampling: float
    top_p: float
    window_hop: float
    crossfade_s: float
    torch_threads: int | None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> RelationsSettings:
        from stemlab.config import settings_section

        v = settings_section("models", NAME, "settings", section=section)
        return cls(codebook=str(v["codebook"]), k=int(v["k"]), segment_s=float(v["segment_s"]),
                   model=DecisionSize.from_config(v["model"]), label_smoothing=float(v["label_smoothing"]),
                   scheduled_sampling=float(v["scheduled_sampling"]), top_p=float(v["top_p"]),
                   window_hop=float(v["window_hop"]), crossfade_s=float(v["crossfade_s"]),
                   torch_threads=v["torch_threads"])  # fmt: skip


class RelationsModel(nn.Module):
    """The decision transformer plus the codebook's standardisation (what generation from audio needs)."""

    def __init__(self, centres: torch.Tensor, size: DecisionSize, n_segments: int) -> None:
        super().__init__()
        dim = centres.shape[1]
        self.decision = DecisionTransformer(centres, size, n_segments)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def assign(self, feats: torch.Tensor) -> torch.Tensor:
        z = (feats.float() - self.mean) / self.scale
        return torch.cdist(z, self.decision.centres).argmin(dim=1)


def row_tokens(tokens: np.ndarray, rows: pd.DataFrame, segment_s: float, pad: int) -> np.ndarray:
    """Tokens with the segments past each row's audio (a window cut by the song's end) set to pad."""
    out = tokens.astype(np.int64).copy()
    valid = np.floor(rows["length"].to_numpy() / 44_100 / segment_s + 1e-9).astype(np.int64)
    out[np.arange(out.shape[1])[None, :] >= valid[:, None]] = pad
    return out


@register
class RelationsTask(Task):
    name = NAME
    summary_keys = ("k", "segment_s")
    metric_directions = {"tpp_median": "higher", "tpp_mean": "higher", "lcp_mean": "higher"}
    metric_statistics = {"tpp_median": "median"}

    def __init__(self, job) -> None:
        super().__init__(job)
        if self.settings.torch_threads:  # the loop (and evaluate) run with the model's own thread count
            self.loop = dataclasses.replace(self.loop, cpu_threads=int(self.settings.torch_threads))

    def parse_settings(self, section: Mapping[str, Any]) -> RelationsSettings:
        return RelationsSettings.from_config(section)

    # ------------------------------------------------------------------ the codebook's tokens
    def _read_codebook(self) -> None:
        from stemlab.config import settings_section

        path = self.upstream_file(self.settings.codebook)
        payload = read_final(path, self.settings.codebook)
        export = payload["export"]
        if int(export["k"]) != self.settings.k or abs(float(export["segment_s"]) - self.settings.segment_s) > 1e-9:
            raise StemlabError(f"{path}: codebook of K {export['k']}, {export['segment_s']} s, not the cell's K {self.settings.k}, "
                               f"{self.settings.segment_s} s; give both models the same grid")  # fmt: skip
        state = payload["state_dict"]
        self.centres, self.mean, self.scale = state["centres"], state["mean"], state["scale"]
        self.rows = pd.DataFrame(export["rows"])
        self.n_segments = int(export["n_segments"])
        self.codebook_export = {"k": int(export["k"]), "segment_s": float(export["segment_s"]), "n_segments": self.n_segments,
                                "window_samples": int(export["window_samples"]), "dim": int(export["dim"]),
                                "center_tracks": bool(export.get("center_tracks", False)),
                                "encoder": settings_section("models", "relations_codebook", "settings",
                                                            section=payload.get("settings") or {})["encoder"]}  # fmt: skip
        pad = self.settings.k + 2
        self.tokens = row_tokens(state["tokens"].numpy(), self.rows, self.settings.segment_s, pad)
        self.train_pairs = reldata.pairs(self.rows, "train")
        self.valid_pairs = reldata.pairs(self.rows, "valid")

    def setup(self) -> None:
        self._read_codebook()
        if not len(self.train_pairs):
            raise StemlabError(f"model {self.job.model}: no training pairs (songs with two active melodic stems in one window)")

    def build_model(self) -> nn.Module:
        model = RelationsModel(self.centres, self.settings.model, self.n_segments)
        model.mean.copy_(self.mean)
        model.scale.copy_(self.scale)
        return model

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {"codebook": self.codebook_export}

    def restore(self, export: Mapping[str, Any]) -> None:
        cb = export["codebook"]
        self.codebook_export = dict(cb)
        self.n_segments = int(cb["n_segments"])
        self.centres = torch.zeros(int(cb["k"]), int(cb["dim"]))
        self.mean, self.scale = torch.zeros(int(cb["dim"])), torch.ones(int(cb["dim"]))

    def meta(self, model: nn.Module) -> dict[str, Any]:
        return {"train_pairs": len(self.train_pairs), "valid_pairs": len(self.valid_pairs), "segments": self.n_segments}

    # ------------------------------------------------------------------ training
    def _batch(self, pairs: np.ndarray) -> dict[str, torch.Tensor]:
        return {"guide": torch.from_numpy(self.tokens[pairs[:, 0]]), "target": torch.from_numpy(self.tokens[pairs[:, 1]])}

    def data(self, start: int) -> Iterator[dict[str, Any]]:
        index = start
        per_step = self.loop.grad_accum
        while True:
            picks = step_indices(len(self.train_pairs), self.loop.batch_size, self.loop.seed, index)
            own = self.settings.scheduled_sampling * min(1.0, (index // per_step) / max(1, self.loop.steps - 1))
            yield {**self._batch(self.train_pairs[picks]), "own_prob": own}
            index += 1

    def loss(self, model: nn.Module, batch: Mapping[str, Any], generator: torch.Generator):
        device = next(model.parameters()).device
        return training_loss(model.decision, batch["guide"].to(device), batch["target"].to(device), float(batch["own_prob"]),
                             self.settings.label_smoothing, generator)  # fmt: skip

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        pairs = self.valid_pairs if len(self.valid_pairs) else self.train_pairs
        n = min(len(pairs), self.loop.batch_size * max(1, self.loop.valid_batches))
        batch = self._batch(pairs[:n])
        device = next(model.parameters()).device
        loss, terms = training_loss(model.decision, batch["guide"].to(device), batch["target"].to(device), 0.0,
                                    self.settings.label_smoothing, torch.Generator().manual_seed(0))  # fmt: skip
        return {"loss": float(loss), "accuracy": terms["accuracy"]}

    # ------------------------------------------------------------------ evaluation
    def _generator(self, *keys: object) -> torch.Generator:
        return torch.Generator().manual_seed(derive_seed(self.job.seed, "relations-decode", *keys))

    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        with torch_threads(self.loop.cpu_threads), torch.no_grad():
            return self._evaluate(model)

    def _evaluate(self, model: nn.Module) -> pd.DataFrame:
        self._read_codebook()
        settings, eval_cfg = self.settings, self.job.eval
        test = reldata.pairs(self.rows, "test")
        if not len(test):
            raise StemlabError(f"model {self.job.model}: no test pairs (test songs with two active melodic stems in one window)")
        max_pairs = eval_cfg.get("max_pairs")
        if max_pairs and len(test) > int(max_pairs):
            test = test[np.sort(rng(0, "relations-test-pairs").choice(len(test), int(max_pairs), replace=False))]
        k, pad = settings.k, settings.k + 2
        guide, target = self.tokens[test[:, 0]], self.tokens[test[:, 1]]
        allowed = self._memory_symbols(test[:, 1])
        predictions = {
            "relations": self._decode(model, guide, None, int(eval_cfg.get("batch_size") or 64), "free"),
            "relations_constrained": self._decode(model, guide, allowed, int(eval_cfg.get("batch_size") or 64), "constrained"),
            **baselines(self.tokens, self.train_pairs, guide, allowed, k, rng(self.job.seed, "relations-baselines")),
        }
        out = []
        for system in SYSTEMS:
            pred = predictions[system]
            for i, (g, t) in enumerate(test):
                gr, tr = self.rows.iloc[g], self.rows.iloc[t]
                value = metrics.tpp(pred[i], target[i], pad)
                common = {"system": system, "item": f"{tr.corpus}/{tr.song}/{tr.start}/{gr.stem}->{tr.stem}", "k": k,
                          "segment_s": settings.segment_s, "song": tr.song, "guide": gr.stem, "target": tr.stem,
                          "start": int(tr.start)}  # fmt: skip
                out.append({**common, "metric": "tpp_mean", "value": value})
                out.append({**common, "metric": "tpp_median", "value": value})
                out.append({**common, "metric": "lcp_mean", "value": metrics.lcp_mean(pred[i], target[i], pad)})
        return pd.DataFrame(out)

    def _memory_symbols(self, targets: np.ndarray) -> np.ndarray:
        """(n, K) bool: the symbols of each target stem over its whole song (all its windows)."""
        k = self.settings.k
        keys = self.rows["corpus"] + "/" + self.rows["song"] + "/" + self.rows["stem"]
        present: dict[str, np.ndarray] = {}
        for key, index in keys.groupby(keys).groups.items():
            symbols = self.tokens[np.asarray(index)]
            mask = np.zeros(k, dtype=bool)
            mask[symbols[symbols < k]] = True
            present[key] = mask
        return np.stack([present[keys.iloc[t]] for t in targets])

    def _decode(self, model: nn.Module, guide: np.ndarray, allowed: np.ndarray | None, batch_size: int, tag: str) -> np.ndarray:
        device = next(model.parameters()).device
        out = []
        for lo in tqdm(range(0, len(guide), batch_size), desc=f"{self.job.model} decode {tag}", mininterval=10):
            g = torch.from_numpy(guide[lo : lo + batch_size]).to(device)
            a = None if allowed is None else torch.from_numpy(allowed[lo : lo + batch_size]).to(device)
            out.append(decode(model.decision, g, g.shape[1], self.settings.top_p, self._generator(tag, lo), a).cpu().numpy())
        return np.concatenate(out)


def baselines(
    tokens: np.ndarray, train_pairs: np.ndarray, guide: np.ndarray, allowed: np.ndarray, k: int,
    generator: np.random.Generator,
) -> dict[str, np.ndarray]:
    """random (uniform over K), random_constrained (uniform over each pair's memory symbols, `allowed`
    (n, K)), unigram (the training targets' symbol frequencies), copy_guide."""
    train_targets = tokens[np.unique(train_pairs[:, 1])]
    counts = np.bincount(train_targets[train_targets < k], minlength=k).astype(np.float64)
    prior = counts / counts.sum()
    shape = guide.shape
    picks = generator.random(shape)
    memory = np.where(allowed.any(axis=1, keepdims=True), allowed, True)
    cumulative = np.cumsum(memory, axis=1) / memory.sum(axis=1, keepdims=True)
    random_constrained = np.stack([np.searchsorted(cumulative[i], picks[i], side="right") for i in range(shape[0])])
    return {
        "random": generator.integers(0, k, size=shape),
        "random_constrained": np.minimum(random_constrained, k - 1),
        "unigram": generator.choice(k, size=shape, p=prior),
        "copy_guide": np.where(guide < k, guide, generator.integers(0, k, size=shape)),
    }
