"""Training the FxProcessor with the shared loop: settings, data, loss, and the files the rule writes."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stemlab.errors import StemlabError
from stemlab.logs import log
from stemlab.megami.fxparams import FxParamSpace
from stemlab.megami.fxprocessor import FxProcessor, FxProcessorConfig, count_parameters
from stemlab.megami.pairs import PairDataset, PairItem, pair_items, read_segment_tables, read_window
from stemlab.seeding import derive_seed
from stemlab.train import TrainConfig, Trainer, prefetched, seeded_init
from stemlab.train.config import code_digest
from stemlab.train.losses import MultiResolutionSTFTLoss
from stemlab.train.outputs import write_training_outputs

def _code_modules() -> list:
    import stemlab.megami.fxparams as fxparams
    import stemlab.megami.fxprocessor as fxprocessor
    import stemlab.megami.pairs as pairs
    import stemlab.train.losses as losses
    import stemlab.train.loop as loop
    import stemlab.train.sampling as sampling

    return [fxparams, fxprocessor, pairs, losses, loop, sampling, sys.modules[__name__]]


# train.fxprocessor keys that are TrainConfig fields (the rest of the section is model/data/loss)
_TRAIN_KEYS = frozenset(f.name for f in fields(TrainConfig))


@dataclass(frozen=True)
class LossConfig:
    fft_sizes: tuple[int, ...] = (512, 1024, 2048)
    l1_weight: float = 1.0

    def build(self) -> FxLoss:
        return FxLoss(MultiResolutionSTFTLoss(self.fft_sizes), self.l1_weight)


@dataclass(frozen=True)
class FxSettings:
    """config['train']['fxprocessor'] (+ train.device and the derived seed), parsed."""

    train: TrainConfig
    model: dict[str, Any] = field(default_factory=dict)
    loss: LossConfig = LossConfig()
    segment_samples: int | None = None
    valid_batches: int = 4  # the schema defaults of train.fxprocessor
    workers: int = 4

    @classmethod
    def from_config(cls, section: Mapping[str, Any], *, seed: int, device: str = "auto", cpu_threads: int = 2) -> FxSettings:
        section = dict(section)
        fixed = {"seed": derive_seed(seed, "train", "fxprocessor"), "device": device, "cpu_threads": cpu_threads}
        train = TrainConfig.from_dict({k: v for k, v in section.items() if k in _TRAIN_KEYS} | fixed)
        loss = section.get("loss", {}) or {}
        return cls(
            train=train,
            model=dict(section.get("model", {}) or {}),
            loss=LossConfig(tuple(loss.get("fft_sizes", LossConfig.fft_sizes)), float(loss.get("l1_weight", 1.0))),
            segment_samples=section.get("segment_samples"),
            valid_batches=int(section.get("valid_batches", cls.valid_batches)),
            workers=int(section.get("workers", cls.workers)),
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
    """Training crop: `requested` (capped by the shortest window) or, when None, the most common window."""
    lengths = np.array([it.length for it in items])
    if requested is None:
        values, counts = np.unique(lengths, return_counts=True)
        return int(values[np.argmax(counts)])
    return int(min(requested, lengths.max()))


def _batch_tensors(batch: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def train_fxprocessor(
    segment_tables: Sequence[str | os.PathLike[str]],
    stems_root: str | os.PathLike[str],
    settings: FxSettings,
    out_dir: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    out_dir = Path(out_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else out_dir / "checkpoints"
    table = read_segment_tables(segment_tables)
    train_items = pair_items(table, stems_root, "train")
    valid_items = pair_items(table, stems_root, "valid")
    if not train_items:
        raise StemlabError(
            f"{', '.join(map(str, segment_tables))}: no active train-split windows with dry and wet stems; "
            "enable data.synthetic or a corpus with dry stems"
        )
    space = FxParamSpace.fit([it.fx for it in train_items])
    segment = window_length(train_items, settings.segment_samples)
    model_cfg = FxProcessorConfig.from_dict({**settings.model, "cond_dim": space.dim})
    cfg = settings.train
    with seeded_init(derive_seed(cfg.seed, "init")):
        model = FxProcessor(model_cfg)
    loss = settings.loss.build()
    log.info(
        "fxprocessor: %d train / %d valid windows, segment %d samples, cond_dim %d, %d parameters, receptive field %d",
        len(train_items), len(valid_items), segment, space.dim, count_parameters(model), model_cfg.receptive_field(),
    )  # fmt: skip

    dataset = PairDataset(train_items, np.stack([space.vector(it.fx) for it in train_items]), segment, cfg.seed)

    def data(start: int) -> Iterator[dict[str, torch.Tensor]]:
        for batch in prefetched(lambda s: dataset.batch(s, cfg.batch_size), start, workers=settings.workers):
            yield _batch_tensors(batch)

    def loss_fn(m: nn.Module, batch: Mapping[str, torch.Tensor], generator: torch.Generator):  # noqa: ARG001
        return loss(m(batch["dry"], batch["cond"]), batch["wet"])

    eval_fn = None
    if valid_items and settings.valid_batches > 0:
        picks = np.linspace(0, len(valid_items) - 1, min(len(valid_items), settings.valid_batches * cfg.batch_size))
        chosen = [valid_items[int(i)] for i in np.unique(picks.round().astype(int))]
        valid = {
            "dry": np.stack([read_window(it.dry, it.start, segment) for it in chosen]),
            "wet": np.stack([read_window(it.wet, it.start, segment) for it in chosen]),
            "cond": np.stack([space.vector(it.fx) for it in chosen]),
        }

        def eval_fn(m: nn.Module) -> dict[str, float]:
            device = next(m.parameters()).device
            totals: dict[str, float] = {}
            n = len(chosen)
            for lo in range(0, n, cfg.batch_size):
                part = {k: torch.from_numpy(v[lo : lo + cfg.batch_size]).to(device) for k, v in valid.items()}
                value, metrics = loss(m(part["dry"], part["cond"]), part["wet"])
                weight = part["dry"].shape[0] / n
                for k, v in {"loss": float(value), **metrics}.items():
                    totals[k] = totals.get(k, 0.0) + weight * v
            return totals

    identity = {
        "model": asdict(model_cfg),
        "loss": asdict(settings.loss),
        "segment_samples": segment,
        "conditioning": space.to_dict(),
        "data": {"train_items": len(train_items), "digest": items_digest(train_items)},
        "code": code_digest(_code_modules()),
    }
    trainer = Trainer(model, loss_fn, data, cfg, checkpoint_dir, identity=identity, eval_fn=eval_fn, desc="fxprocessor")
    result = trainer.fit()
    weights = {
        "model": "fxprocessor",
        "model_config": asdict(model_cfg),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "conditioning": {"kind": "fx_params", "space": space.to_dict()},
        "loss": asdict(settings.loss),
        "segment_samples": segment,
        "identity_hash": result.identity_hash,
    }
    meta = {
        "model": "fxprocessor",
        "parameters": count_parameters(model),
        "receptive_field": model_cfg.receptive_field(),
        "cond_dim": space.dim,
        "segment_samples": segment,
        "train_items": len(train_items),
        "valid_items": len(valid_items),
        "checkpoint_dir": str(checkpoint_dir),
    }
    write_training_outputs(result, out_dir, weights, meta)
    return meta


def load_fxprocessor(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[FxProcessor, FxParamSpace, dict[str, Any]]:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            payload = torch.load(fh, map_location="cpu", weights_only=True)
        model = FxProcessor(FxProcessorConfig(**payload["model_config"]))
        model.load_state_dict(payload["state_dict"])
    except FileNotFoundError:
        raise StemlabError(f"{path}: model not found; run `snakemake train` first") from None
    except (KeyError, RuntimeError, TypeError, EOFError) as exc:
        raise StemlabError(f"{path}: not an FxProcessor checkpoint ({type(exc).__name__}); re-run train_fxprocessor") from exc
    return model.to(device).eval(), FxParamSpace.from_dict(payload["conditioning"]["space"]), payload
