"""CLAP on the model frame: contrastive training on (audio window, caption) pairs, or LAION's pretrained
music checkpoint; retrieval and zero-shot genre evaluation on held-out songs; `embed` for the cache.

Training items are the mix windows of the `clap` segment tables (plus active stem windows with stem
captions, `settings.with_stems`); each step draws a random clip of `clip_seconds` inside each window and
one of several caption templates, both from (seed, micro-batch index). Loss: laion-clap's ClipLoss with
the MLP heads. Evaluation on the test split's mix windows (template 0 captions), scored as the loss trained them (the
audio embedding against the text MLP head and the audio MLP head against the text embedding, laion-clap's
own metric; LAION's plain cosine for its pretrained checkpoint):
- a2t R@1 / R@10 per window (its own caption within the first k of the distinct test captions) and
  t2a R@1 / R@10 per distinct caption (any window it describes within the first k), each against its
  exact chance (windows of one song often share a caption, so captions are deduplicated: see retrieval_rows);
- t2a_median_rank: one value per seed (a set statistic), against the median rank of a random order;
- zeroshot_genre_acc: argmax over "This audio is a <genre> song." for the config's genres, against 1/G.
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

from stemlab.data.segment_tables import read_segment_tables
from stemlab.encoders.base import EncoderTask
from stemlab.encoders.clap import captions as cap
from stemlab.encoders.clap import laion
from stemlab.encoders.clap import model as clap_model
from stemlab.encoders.clap.windows import CLAP_RATE, WINDOW, ClapItem, clap_items, clip_offsets, item_audio, to_clap_audio
from stemlab.errors import StemlabError
from stemlab.logs import log, progress
from stemlab.seeding import rng
from stemlab.train import prefetched, step_indices
from stemlab.train.registry import register
from stemlab.train.sampling import evenly_spaced


@dataclass(frozen=True)
class ClapSettings:
    """models.clap.settings (defaults: the schema's)."""

    source: str  # trained | pretrained
    clip_seconds: float
    with_stems: bool
    caption_dropout: float
    joint_dim: int
    audio: dict
    htsat: dict
    spec_augment: dict
    text: dict
    pretrained: dict

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> ClapSettings:
        from stemlab.config import settings_section

        values = settings_section("models", "clap", "settings", section=section)
        if values["source"] not in ("trained", "pretrained"):
            raise StemlabError(f"models.clap.settings.source is {values['source']!r}; use trained or pretrained")
        settings = cls(**values)
        settings.check_fits()
        return settings

    def check_fits(self) -> None:
        """HTSAT reshapes the log-mel into a spec_size x spec_size image: the clip's frames must fit."""
        spec = {"tiny": 256, "base": 256, "large": 256}.get(self.htsat["name"], int(self.htsat["spec_size"]))
        mel = int(self.audio["mel_bins"])
        frames = self.clip_samples // int(self.audio["hop_size"]) + 1
        capacity = spec * (spec // mel) if mel <= spec else 0
        if frames > capacity:
            raise StemlabError(
                f"models.clap.settings: a {self.clip_seconds} s clip has {frames} frames but HTSAT (spec_size {spec}, "
                f"{mel} mel bins) fits {capacity}; shorten clip_seconds, raise audio.hop_size or htsat.spec_size, or lower mel_bins"
            )

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * CLAP_RATE))


@register
class ClapTask(EncoderTask):
    name = "clap"
    metric_directions = {
        "t2a_r1": "higher", "t2a_r10": "higher", "a2t_r1": "higher", "a2t_r10": "higher",
        "t2a_median_rank": "lower", "zeroshot_genre_acc": "higher",
    }  # fmt: skip

    def parse_settings(self, section: Mapping[str, Any]) -> ClapSettings:
        return ClapSettings.from_config(section)

    # ------------------------------------------------------------------ model
    @property
    def text_type(self) -> str:
        return "roberta" if self.settings.source == "pretrained" else "transformer"

    def build_model(self) -> nn.Module:
        if self.settings.source == "pretrained":
            from stemlab.encoders.clap.pretrained import build_pretrained

            return build_pretrained(self.settings, self.pretrained_dir(self.settings.pretrained["snapshot"]))
        return clap_model.build(self.settings)

    def tokenize(self, texts: list[str]) -> Any:
        if self.text_type == "roberta":
            from stemlab.encoders.clap.pretrained import roberta_tokens

            return roberta_tokens(self.pretrained_dir(self.settings.pretrained["snapshot"]), texts,
                                  int(self.settings.text["context_length"]))  # fmt: skip
        return laion.tokenize(texts, int(self.settings.text["context_length"]))

    def embedding_dim(self) -> int:
        return int(self.settings.joint_dim)

    # ------------------------------------------------------------------ training
    def setup(self) -> None:
        table = read_segment_tables(self.segment_tables(WINDOW))
        self.train_items = clap_items(table, self.stems_root, "train", self.settings.with_stems)
        self.valid_items = clap_items(table, self.stems_root, "valid", False)
        if not self.train_items:
            raise StemlabError("the clap segment tables have no train-split windows; enable a corpus with a train split")
        self.loss_fn = laion.clip_loss()
        log.info("clap: %d train items (%d mix windows), %d valid windows, clips of %.2f s",
                 len(self.train_items), sum(it.stem == "mix" for it in self.train_items), len(self.valid_items),
                 self.settings.clip_seconds)  # fmt: skip
        # evenly spaced over the valid windows, so the batch spans the valid songs (not the first one's windows)
        valid = evenly_spaced(self.valid_items, self.loop.valid_batches * self.loop.batch_size)
        self.valid_batch = self._batch(valid, None, 0) if len(valid) >= 2 else None

    def _batch(self, items: list[ClapItem], generator: np.random.Generator | None, caption_index: int | None) -> dict:
        clips, texts = [], []
        clip = self.settings.clip_samples
        for item in items:
            audio = item_audio(item)
            total = int(round(item.length * CLAP_RATE / 44_100))
            offset = int(generator.integers(0, max(1, total - clip) + 1)) if generator is not None else 0
            clips.append(to_clap_audio(audio, clip, offset))
            texts.append(cap.pick_caption(item.facts, generator, self.settings.caption_dropout) if generator is not None else cap.captions(item.facts)[caption_index or 0])
        return {"waveform": torch.from_numpy(np.stack(clips)), "tokens": self.tokenize(texts)}

    def data(self, start: int) -> Iterator[dict]:
        n, batch_size, seed = len(self.train_items), self.loop.batch_size, self.loop.seed

        def make(index: int) -> dict:
            picks = step_indices(n, batch_size, seed, index)
            return self._batch([self.train_items[int(i)] for i in picks], rng(seed, "clap-batch", index), None)

        yield from prefetched(make, start, workers=self.loop.workers)

    def loss(self, model: nn.Module, batch: Mapping[str, Any], generator: torch.Generator):  # noqa: ARG002
        device = batch["waveform"].device
        a, t, a_mlp, t_mlp, scale_a, scale_t = model({"waveform": batch["waveform"]}, batch["tokens"], device=device)
        loss = self.loss_fn(a, t, scale_a, scale_t, a_mlp, t_mlp)
        return loss, {"logit_scale": float(scale_a.detach())}

    def validate(self, model: nn.Module) -> dict[str, float]:
        if self.valid_batch is None:
            return {}
        device = next(model.parameters()).device
        batch = {"waveform": self.valid_batch["waveform"].to(device), "tokens": _to(self.valid_batch["tokens"], device)}
        loss, _ = self.loss(model, batch, torch.Generator())
        audio = clap_model.audio_embedding(model, batch["waveform"])
        text = clap_model.text_embedding(model, batch["tokens"])
        hits = self.scores(model, audio, text).argmax(dim=1) == torch.arange(len(audio), device=device)
        return {"loss": float(loss), "a2t_r1_batch": float(hits.float().mean())}

    def scores(self, model: nn.Module, audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Retrieval similarities: the pairs the loss trained (each embedding against the other's MLP head)
        for a model trained here; LAION's plain cosine for its pretrained checkpoint."""
        return clap_model.scores(model, audio, text, mlp_pairs=self.settings.source == "trained")

    def owns_step(self) -> bool:
        return self.settings.source == "pretrained"

    def train_step(self, model, micro_batches, ctx):
        """The pretrained source trains nothing: its steps leave the loaded weights as they are."""
        return torch.zeros(()), {}

    def optimizers(self, model, cfg):
        return {} if self.settings.source == "pretrained" else super().optimizers(model, cfg)

    def identity(self) -> dict[str, Any]:
        items = self.train_items if self.settings.source == "trained" else []
        return {"train_items": [it.key for it in items], "text_type": self.text_type}

    def meta(self, model: nn.Module) -> dict[str, Any]:
        return {"train_items": len(self.train_items), "valid_items": len(self.valid_items), "source": self.settings.source,
                "clip_seconds": self.settings.clip_seconds}  # fmt: skip

    # ------------------------------------------------------------------ embedding
    @torch.no_grad()
    def embed(self, model: nn.Module, audio: torch.Tensor) -> torch.Tensor:
        """Mean of the L2-normalised embeddings of the clips covering each window, renormalised."""
        device = audio.device
        stereo = audio.detach().cpu().numpy()
        clip = self.settings.clip_samples
        out = []
        for window in stereo:
            offsets = clip_offsets(window.shape[-1], clip)
            clips = torch.from_numpy(np.stack([to_clap_audio(window, clip, o) for o in offsets])).to(device)
            out.append(torch.nn.functional.normalize(clap_model.audio_embedding(model, clips).mean(dim=0), dim=-1))
        return torch.stack(out).float()

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        table = read_segment_tables(self.segment_tables(WINDOW))
        items = clap_items(table, self.stems_root, "test", False)
        items = evenly_spaced(items, self.job.eval.get("max_windows"))
        if len(items) < 2:
            raise StemlabError("the clap segment tables have fewer than 2 test-split windows; nothing to retrieve among")
        device = next(model.parameters()).device
        audio = torch.cat([self.embed(model, torch.from_numpy(item_audio(it))[None].to(device)) for it in progress(items, desc="clap audio")])
        texts = [cap.captions(it.facts)[0] for it in items]
        text = clap_model.text_embedding(model, _to(self.tokenize(texts), device))
        sim = self.scores(model, audio, text).cpu().numpy().astype(np.float64)  # audio x text
        rows = retrieval_rows(sim, [it.key for it in items], texts)
        genres = list(self.job.eval.get("genres") or [])
        if genres:
            prompts = clap_model.text_embedding(model, _to(self.tokenize(cap.zero_shot_prompts(genres)), device))
            guess = self.scores(model, audio, prompts).argmax(dim=1).cpu().numpy()
            for it, g in zip(items, guess):
                if it.facts.genre in genres:
                    rows.append({"system": "clap", "metric": "zeroshot_genre_acc", "value": float(genres[g] == it.facts.genre), "item": it.key})
                    rows.append({"system": "chance", "metric": "zeroshot_genre_acc", "value": 1.0 / len(genres), "item": it.key})
        return pd.DataFrame(rows)


def _to(tokens: Any, device: torch.device) -> Any:
    if isinstance(tokens, Mapping):
        return {k: v.to(device) for k, v in tokens.items()}
    return tokens.to(device)


def _hit_chance(n: int, positives: int, k: int) -> float:
    """P(at least one of `positives` items among the first k of a random order of n)."""
    if k >= n:
        return 1.0
    miss = 1.0
    for j in range(k):
        miss *= (n - positives - j) / (n - j)
    return 1.0 - max(miss, 0.0)


def retrieval_rows(sim: np.ndarray, keys: list[str], texts: list[str] | None = None) -> list[dict]:
    """Retrieval rows for an audio x text similarity matrix of N windows, text j being window j's caption.

    Windows often share a caption (the same facts), so captions are deduplicated: audio -> text ranks the
    distinct captions (the window's own is the one positive); text -> audio asks, for each distinct
    caption, for any of the windows it describes. R@k per query and its exact chance (k of C candidates
    for a2t; 1 - C(N - P, k) / C(N, k) with P positives for t2a); the median rank of the first positive
    over text queries is one row (a set statistic), against its value for a random order."""
    texts = list(texts) if texts is not None else list(keys)
    distinct = list(dict.fromkeys(texts))
    column = {t: texts.index(t) for t in distinct}  # one column per distinct caption
    owner = np.array([distinct.index(t) for t in texts])
    text_sim = sim[:, [column[t] for t in distinct]]  # audio x distinct captions
    rows = []
    n, c = sim.shape[0], len(distinct)
    a2t_rank = 1 + (text_sim > text_sim[np.arange(n), owner][:, None]).sum(axis=1)
    t2a_rank = []
    for j, t in enumerate(distinct):
        positives = np.flatnonzero(owner == j)
        scores = text_sim[:, j]
        best = scores[positives].max()
        t2a_rank.append(1 + int((scores[np.setdiff1d(np.arange(n), positives)] > best).sum()))
    for k in (1, 10):
        for key, r in zip(keys, a2t_rank):
            rows.append({"system": "clap", "metric": f"a2t_r{k}", "value": float(r <= k), "item": key})
            rows.append({"system": "chance", "metric": f"a2t_r{k}", "value": min(k, c) / c, "item": key})
        for j, t in enumerate(distinct):
            p = int((owner == j).sum())
            rows.append({"system": "clap", "metric": f"t2a_r{k}", "value": float(t2a_rank[j] <= k), "item": t})
            rows.append({"system": "chance", "metric": f"t2a_r{k}", "value": _hit_chance(n, p, k), "item": t})
    # expected rank of the first of P positives among N in random order: (N + 1) / (P + 1); its median over queries
    chance_rank = np.median([(n + 1) / ((owner == j).sum() + 1) for j in range(c)])
    rows.append({"system": "clap", "metric": "t2a_median_rank", "value": float(np.median(t2a_rank)), "item": "all"})
    rows.append({"system": "chance", "metric": "t2a_median_rank", "value": float(chance_rank), "item": "all"})
    return rows
