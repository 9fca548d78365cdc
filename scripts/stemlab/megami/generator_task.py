"""The FxGenerator on the model frame (models.fx_generator): EDM training of the DiT (stemlab.megami.generator)
on wet multitracks (stemlab.megami.multitrack): the effect embeddings of all active stems of a song's
megami window (fx_encoder cache, wet) are the data, their CLAP(wet) embeddings through the trained domain
adaptor (upstream domain_adaptor) the context.

Per micro-batch, from the loop's generator: a noise level per window drawn along the rho-schedule, the
noise, the condition dropout (the whole context of a window zeroed with probability cond_dropout) and
MEGAMI's orthogonal context noise (a Gaussian of std context_noise orthogonal to each CLAP vector,
renormalised); the track order is shuffled per window by the data (padded slots masked out of the loss).

Evaluation on the test split: the context is CLAP(dry) where the stem has a dry embedding (else the adapted
CLAP(wet)); `samples` draws per window with the configured sampler. Rows per track (song/stem@start):
cos_to_target (cosine of a draw to the track's true wet effect embedding, mean over draws) and
level_error_db (|decoded log-RMS level of a draw - that of the true embedding|, dB) for `fx_generator`,
`unconditional` (the same sampler with the context dropped), `random_train` (the embedding of a random
train track of the same stem category, a draw from the category's marginal) and `category_mean` (the
normalised mean train embedding of the category; a point estimate, not a draw).
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

from stemlab.encoders.fx.features import AF_DIM, join
from stemlab.errors import StemlabError
from stemlab.logs import log, progress
from stemlab.megami.edm import SAMPLERS, EDMConfig, edm_loss
from stemlab.megami.generator import FxGenerator, GeneratorBundle, GeneratorConfig, sample_effect_embeddings, standardization
from stemlab.megami.multitrack import WINDOW, Multitracks, has_source, multitracks, require, rows_of_split, segment_rows
from stemlab.seeding import derive_seed, rng
from stemlab.train.registry import register
from stemlab.train.task import Task

CLAP, FX, ADAPTOR = "clap", "fx_encoder", "domain_adaptor"


@dataclass(frozen=True)
class GeneratorSettings:
    model: dict[str, int]
    max_tracks: int
    edm: EDMConfig
    cond_dropout: float
    context_noise: float
    standardize: str

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> GeneratorSettings:
        from stemlab.config import settings_section

        values = settings_section("models", "fx_generator", "settings", section=section)
        return cls(
            model={k: int(v) for k, v in values["model"].items()},
            max_tracks=int(values["max_tracks"]),
            edm=EDMConfig.from_dict(values["edm"], "models.fx_generator.settings.edm"),
            cond_dropout=float(values["cond_dropout"]),
            context_noise=float(values["context_noise"]),
            standardize=str(values["standardize"]),
        )


@dataclass(frozen=True)
class GeneratorEval:
    steps: int
    sampler: str
    samples: int
    max_windows: int | None
    cfg_scale: float

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> GeneratorEval:
        from stemlab.config import settings_section

        values = settings_section("models", "fx_generator", "eval", section=section)
        if values["sampler"] not in SAMPLERS:
            raise StemlabError(f"models.fx_generator.eval.sampler: {values['sampler']!r} is not one of {', '.join(SAMPLERS)}")
        return cls(int(values["steps"]), str(values["sampler"]), int(values["samples"]), values["max_windows"], float(values["cfg_scale"]))


def orthogonal_noise(context: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """MEGAMI's context augmentation: c + n with n ~ N(0, std^2) minus its component along c, renormalised."""
    if std <= 0:
        return context
    n = torch.randn(context.shape, generator=generator, device=generator.device).to(context.device) * std
    unit = F.normalize(context, dim=-1)
    n = n - (n * unit).sum(-1, keepdim=True) * unit
    noisy = F.normalize(context + n, dim=-1)
    return torch.where(context.norm(dim=-1, keepdim=True) > 0, noisy, context)


def tracks_digest(data: Multitracks) -> str:
    h = hashlib.sha256()
    for row in data.tracks[["song", "stem", "start"]].itertuples(index=False):
        h.update(f"{row.song}\x1f{row.stem}\x1f{row.start}\n".encode())
    return h.hexdigest()[:16]


def _tensors(batch: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in batch.items()}


@register
class FxGeneratorTask(Task):
    name = "fx_generator"
    metric_directions = {"cos_to_target": "higher", "level_error_db": "lower"}

    def parse_settings(self, section: Mapping[str, Any]) -> GeneratorSettings:
        return GeneratorSettings.from_config(section)

    # ------------------------------------------------------------------ data
    def _rows(self) -> pd.DataFrame:
        return segment_rows(self.segment_tables(WINDOW))

    def _adaptor(self) -> nn.Module:
        from stemlab.train.task import load_trained

        _, adaptor, _ = load_trained(self.upstream_file(ADAPTOR), "cpu")
        return adaptor

    @torch.no_grad()
    def _adapted_wet(self, rows: pd.DataFrame, adaptor: nn.Module) -> np.ndarray:
        wet = self.embedding_cache(CLAP).take(rows.assign(source="wet"))
        return adaptor(torch.from_numpy(wet)).numpy().astype(np.float32)

    def _multitracks(self, rows: pd.DataFrame, split: str, adaptor: nn.Module) -> Multitracks:
        chosen = rows_of_split(rows, split)
        return multitracks(chosen, self.embedding_cache(FX), self._adapted_wet(chosen, adaptor))

    def setup(self) -> None:
        rows = self._rows()
        adaptor = self._adaptor()
        self.train = self._multitracks(rows, "train", adaptor)
        self.valid = self._multitracks(rows, "valid", adaptor)
        require(self.train, "train-split multitrack windows in the fx_encoder and clap caches", self.segment_tables(WINDOW))
        self.model_cfg = GeneratorConfig.from_dict(
            {**self.settings.model, "max_tracks": self.settings.max_tracks, "fx_dim": self.train.fx.shape[1], "context_dim": self.train.context.shape[1]}
        )
        per_dim = float(np.sqrt((self.train.fx**2).mean()))
        self.shift, self.scale = standardization(torch.from_numpy(self.train.fx), self.settings.standardize, self.settings.edm.sigma_data)
        log.info(
            "fx_generator: %d train windows (%d tracks, up to %d per window), %d valid windows; fx %d-d (rms per dim %.4f, "
            "sigma_data %.4f, standardize %s), context %d-d", len(self.train), len(self.train.tracks), int(self.train.windows["tracks"].max()),
            len(self.valid), self.model_cfg.fx_dim, per_dim, self.settings.edm.sigma_data, self.settings.standardize, self.model_cfg.context_dim,
        )  # fmt: skip
        self.valid_batches = self._valid_batches()

    def _valid_batches(self) -> list[dict[str, torch.Tensor]]:
        n = min(len(self.valid), self.loop.valid_batches * self.loop.batch_size)
        if n == 0:
            return []
        g = torch.Generator().manual_seed(derive_seed(self.loop.seed, "valid"))
        picks = np.unique(np.linspace(0, len(self.valid) - 1, n).round().astype(int))
        out = []
        for lo in range(0, len(picks), self.loop.batch_size):
            windows = picks[lo : lo + self.loop.batch_size]
            orders = [np.arange(int(self.valid.windows["tracks"].iat[w])) for w in windows]
            batch = _tensors(self.valid.assemble(windows, orders, self.settings.max_tracks))
            batch["sigma"] = self.settings.edm.training_sigmas(len(windows), g)
            batch["noise"] = torch.randn(batch["x"].shape, generator=g)
            out.append(batch)
        return out

    def build_model(self) -> nn.Module:
        # a loaded model gets its shift and scale from final.pt (identity until then)
        return GeneratorBundle(FxGenerator(self.model_cfg), self.settings.edm, getattr(self, "shift", None), getattr(self, "scale", None))

    def data(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        step = start
        while True:
            yield _tensors(self.train.batch(step, self.loop.batch_size, self.loop.seed, self.settings.max_tracks))
            step += 1

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor], generator: torch.Generator):
        x, context, mask = batch["x"], batch["context"], batch["mask"]
        b = x.shape[0]
        sigma = self.settings.edm.training_sigmas(b, generator, x.device)
        noise = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
        drop = torch.rand(b, generator=generator, device=generator.device).to(x.device) < self.settings.cond_dropout
        context = orthogonal_noise(context, self.settings.context_noise, generator)
        context = torch.where(drop[:, None, None], torch.zeros_like(context), context)
        z = model.standardize(x) * mask[..., None]
        loss = edm_loss(model.net, model.edm, z, sigma, noise, mask[..., None], context=context, mask=mask)
        return loss, {"dropped": float(drop.float().mean())}

    def validate(self, model: nn.Module) -> dict[str, float]:
        if not self.valid_batches:
            return {}
        device = next(model.parameters()).device
        total, count = 0.0, 0
        for batch in self.valid_batches:
            b = {k: v.to(device) for k, v in batch.items()}
            z = model.standardize(b["x"]) * b["mask"][..., None]
            loss = edm_loss(model.net, model.edm, z, b["sigma"], b["noise"], b["mask"][..., None], context=b["context"], mask=b["mask"])
            weight = int(b["mask"].sum())
            total, count = total + float(loss) * weight, count + weight
        return {"loss": total / count}

    def identity(self) -> dict[str, Any]:
        return {
            "model": self.model_cfg.to_dict(),
            "edm": self.settings.edm.to_dict(),
            "data": {"windows": len(self.train), "tracks": len(self.train.tracks), "digest": tracks_digest(self.train)},
        }

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {"model_config": self.model_cfg.to_dict(), "edm": self.settings.edm.to_dict()}

    def restore(self, export: Mapping[str, Any]) -> None:
        try:
            self.model_cfg = GeneratorConfig.from_dict(export["model_config"])
        except (KeyError, TypeError) as exc:
            raise StemlabError(f"not an fx_generator model file ({type(exc).__name__}: {exc}); re-run its train_model job") from exc

    def meta(self, model: nn.Module) -> dict[str, Any]:
        return {
            "fx_dim": self.model_cfg.fx_dim,
            "context_dim": self.model_cfg.context_dim,
            "tokens": 1 + self.model_cfg.max_tracks * self.model_cfg.tokens_per_track,
            "context_tokens": self.model_cfg.max_tracks * self.model_cfg.context_tokens_per_track,
            "train_windows": len(self.train),
            "train_tracks": len(self.train.tracks),
            "valid_windows": len(self.valid),
        }

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        from stemlab.megami.features import effect_level_db

        settings = GeneratorEval.from_config(self.job.eval)
        rows = self._rows()
        adaptor = self._adaptor()
        clap = self.embedding_cache(CLAP)
        test_rows = rows_of_split(rows, "test")
        context = self._adapted_wet(test_rows, adaptor)
        dry = has_source(test_rows, clap, "dry")
        if dry.any():
            context[dry] = clap.take(test_rows[dry].assign(source="dry"))
        test = multitracks(test_rows, self.embedding_cache(FX), context)
        require(test, "test-split multitrack windows in the fx_encoder and clap caches", self.segment_tables(WINDOW))
        train_rows = rows_of_split(rows, "train")
        train_fx = self.embedding_cache(FX).take(train_rows.assign(source="wet"))
        windows = np.arange(len(test))
        if settings.max_windows is not None and len(test) > settings.max_windows:
            windows = np.unique(np.linspace(0, len(test) - 1, settings.max_windows).round().astype(int))
        cat_train = train_rows["category"].to_numpy()
        by_category = {c: np.flatnonzero(cat_train == c) for c in np.unique(cat_train)}
        mean_of = {c: join(*_parts(torch.from_numpy(train_fx[i].mean(0)))).numpy() for c, i in by_category.items()}
        all_train = np.arange(len(train_rows))
        frames = []
        for w in progress(windows, desc="fx_generator eval", total=len(windows)):
            span = test.window_tracks(int(w))
            tracks = test.tracks.iloc[span].reset_index(drop=True)
            fx_true = torch.from_numpy(test.fx[span])
            ctx = torch.from_numpy(test.context[span])
            seed = derive_seed(self.loop.seed, "eval", int(w))
            draws = {
                system: sample_effect_embeddings(model, None, c, settings.samples, seed, settings.steps, settings.sampler,
                                                 cfg_scale=settings.cfg_scale).cpu()
                for system, c in (("fx_generator", ctx), ("unconditional", torch.zeros_like(ctx)))
            }  # fmt: skip
            r = rng(self.loop.seed, "eval-random", int(w))
            picks = [by_category.get(c, all_train) for c in tracks["category"]]
            draws["random_train"] = torch.from_numpy(
                np.stack([train_fx[[p[r.integers(len(p))] for p in picks]] for _ in range(settings.samples)])
            )
            fallback = join(*_parts(torch.from_numpy(train_fx.mean(0)))).numpy()
            draws["category_mean"] = torch.from_numpy(np.stack([mean_of.get(c, fallback) for c in tracks["category"]]))[None]
            level_true = torch.as_tensor(effect_level_db(fx_true.numpy()))
            items = (tracks["song"] + "/" + tracks["stem"] + "@" + tracks["start"].astype(str)).to_numpy()
            for system, z in draws.items():
                cos = F.cosine_similarity(z.float(), fx_true[None].float(), dim=-1).mean(0).numpy()
                level = torch.as_tensor(effect_level_db(z.numpy()))
                err = (level - level_true[None]).abs().mean(0).numpy()
                for metric, values in (("cos_to_target", cos), ("level_error_db", err)):
                    frames.append(pd.DataFrame({"system": system, "metric": metric, "value": values.astype(float), "item": items,
                                                "song": tracks["song"], "stem": tracks["stem"], "category": tracks["category"],
                                                "start": tracks["start"], "tracks": len(tracks)}))  # fmt: skip
        return pd.concat(frames, ignore_index=True)


def _parts(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return z[..., :-AF_DIM], z[..., -AF_DIM:]
