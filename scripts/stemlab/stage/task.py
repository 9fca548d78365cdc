"""The `stage` model on the frame: the accompaniment LM (stemlab.stage.lm) trained on codec token shards.

Training examples (train split of the token shards, `settings.target` stem): a crop of `clip_seconds` of the
target's codes at a random offset; its context is a random `context_seconds` prefix of the same span, of a
random non-empty subset of the song's other stems (`role: context`), or, with probability
`metronome_prob`, of the song's click track (`role: metronome`); with probability `context_dropout` the
context is all PAD (the CFG unconditional branch). The prompt ("Genres: … Moods: …") goes through word
dropout (`word_dropout`) and whole-text dropout (`text_dropout`) and the frozen text encoder.

The paper's speed (0.8–1.2) and pitch (±4 semitones) augmentation acts on audio before EnCodec; codes of a
frozen codec cannot be stretched or transposed, so it is not applied here (the token shards would have to
hold augmented copies).

Evaluation: stemlab.stage.evaluate.
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

from stemlab.errors import StemlabError
from stemlab.seeding import rng
from stemlab.stage import lm
from stemlab.train.registry import register
from stemlab.train.task import Task

NAME = "stage"


@dataclass(frozen=True)
class StageSettings:
    target: str
    codec: str
    clip_seconds: float
    context_seconds: tuple[float, float]
    metronome_prob: float
    context_dropout: float
    word_dropout: float
    text_dropout: float
    text_encoder: dict[str, Any]
    model: lm.LMSize

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> StageSettings:
        from stemlab.config import settings_section

        v = settings_section("models", NAME, "settings", section=section)
        lo, hi = (float(x) for x in v["context_seconds"])
        if not 0 < lo <= hi <= float(v["clip_seconds"]):
            raise StemlabError(f"models.stage.settings.context_seconds {[lo, hi]}: need 0 < min <= max <= clip_seconds ({v['clip_seconds']})")
        return cls(target=str(v["target"]), codec=str(v["codec"]), clip_seconds=float(v["clip_seconds"]), context_seconds=(lo, hi),
                   metronome_prob=float(v["metronome_prob"]), context_dropout=float(v["context_dropout"]),
                   word_dropout=float(v["word_dropout"]), text_dropout=float(v["text_dropout"]),
                   text_encoder=dict(v["text_encoder"]), model=lm.LMSize.from_config(v["model"]))  # fmt: skip


class StageModel(nn.Module):
    """The LM plus its frozen text encoder (left out of checkpoints: `frozen_modules`)."""

    def __init__(self, lm_net: lm.StageLM, text: nn.Module) -> None:
        super().__init__()
        self.lm = lm_net
        self.text = text


@dataclass(frozen=True)
class Song:
    key: str
    song: str
    split: str
    target: np.ndarray  # (K, F)
    contexts: tuple[tuple[str, np.ndarray], ...]  # (stem, codes)
    metronome: np.ndarray | None
    beats: np.ndarray
    downbeats: np.ndarray
    tempo_bpm: float
    genre: str
    description: str

    @property
    def frames(self) -> int:
        return int(self.target.shape[1])


def read_token_rows(paths: list[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The token rows of the shards (stemlab.stage.tokens.read_tokens) and the codec facts they record."""
    from stemlab.stage.tokens import read_tokens

    frame = read_tokens(paths)
    meta = dict(frame.attrs.get("tokens") or {})
    missing = [k for k in ("sample_rate", "n_codebooks", "cardinality", "frame_rate") if meta.get(k) is None]
    if missing:
        raise StemlabError(f"{paths[0]}: no {missing[0]} in the token shard metadata; re-run tokenize_stage")
    return frame, {"sample_rate": int(meta["sample_rate"]), "n_codebooks": int(meta["n_codebooks"]),
                   "cardinality": int(meta["cardinality"]), "frame_rate": float(meta["frame_rate"])}  # fmt: skip


def songs_of(frame: pd.DataFrame, target: str) -> list[Song]:
    """One Song per (corpus, song) that has a `target` row of stem `target`, sorted by key; its context pool
    is the song's `context` rows plus the `target` rows of the other targets (stemlab.stage.tokens)."""
    out = []
    for (corpus, song), rows in frame.groupby(["corpus", "song"], sort=True):
        tgt = rows[(rows["role"] == "target") & (rows["stem"] == target)]
        if tgt.empty:
            continue
        t = tgt.iloc[0]
        ctx = rows[(rows["role"] == "context") | ((rows["role"] == "target") & (rows["stem"] != target))].sort_values("stem")
        click = rows[rows["role"] == "metronome"]
        out.append(Song(
            key=f"{corpus}/{song}", song=str(song), split=str(t["split"]), target=np.asarray(t["codes"], dtype=np.int64),
            contexts=tuple((str(r.stem), np.asarray(r.codes, dtype=np.int64)) for r in ctx.itertuples()),
            metronome=None if click.empty else np.asarray(click.iloc[0]["codes"], dtype=np.int64),
            beats=np.asarray(t["beats"], dtype=np.float64), downbeats=np.asarray(t["downbeats"], dtype=np.float64),
            tempo_bpm=tempo_of(t["tempo_bpm"], np.asarray(t["beats"], dtype=np.float64)), genre=str(t["genre"]), description=str(t["description"]),
        ))  # fmt: skip
    return out


def tempo_of(tempo: Any, beats: np.ndarray) -> float:
    """The annotated tempo, else the median beat period's (0 when neither is known)."""
    if tempo is not None and np.isfinite(float(tempo)) and float(tempo) > 0:
        return float(tempo)
    return float(60.0 / np.median(np.diff(beats))) if len(beats) > 2 else 0.0


def crop(codes: np.ndarray, start: int, frames: int, fill: int) -> np.ndarray:
    """codes[:, start:start + frames], padded with `fill` past the end."""
    out = np.full((codes.shape[0], frames), fill, dtype=np.int64)
    part = codes[:, start : start + frames]
    out[:, : part.shape[1]] = part
    return out


@register
class StageTask(Task):
    name = NAME
    summary_keys = ("target",)
    metric_directions = {"beat_f": "higher", "kad_clap": "lower", "fd_clap": "lower"}

    def parse_settings(self, section: Mapping[str, Any]) -> StageSettings:
        return StageSettings.from_config(section)

    # ------------------------------------------------------------------ data
    def read_songs(self) -> None:
        if not self.job.inputs.tokens:
            raise StemlabError(f"model {self.job.model}: the job names no token shards; set models.{self.job.model}.inputs.tokens: true")
        frame, self.codec_meta = read_token_rows(self.job.inputs.tokens)
        self.songs = songs_of(frame, self.settings.target)
        rate = self.codec_meta["frame_rate"]
        self.target_frames = max(1, int(round(self.settings.clip_seconds * rate)))
        self.context_frames = tuple(max(1, int(round(s * rate))) for s in self.settings.context_seconds)
        self.max_streams = max([len(s.contexts) for s in self.songs] + [1])

    def setup(self) -> None:
        self.read_songs()
        self.train_songs = [s for s in self.songs if s.split == "train" and s.contexts]
        if not self.train_songs:
            raise StemlabError(f"model {self.job.model}: no training song with a {self.settings.target} target and a context in the token shards; check tokenize_stage and settings.target")
        self.valid_songs = [s for s in self.songs if s.split == "valid" and s.contexts]

    def build_model(self) -> nn.Module:
        from stemlab.stage.text import text_encoder

        cfg = self.settings.text_encoder
        folder = self.pretrained_dir(cfg["pretrained"]) if cfg["source"] == "pretrained" and cfg["pretrained"] else None
        text = text_encoder(cfg["source"], folder)
        net = lm.StageLM(self.codec_meta["n_codebooks"], self.codec_meta["cardinality"], text.dim, self.settings.model)
        return StageModel(net, text)

    def frozen_modules(self, model: nn.Module) -> dict[str, nn.Module]:
        return {"text": model.text}

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {"codec": dict(self.codec_meta), "max_streams": self.max_streams,
                "codec_file": str(self.upstream_file(self.settings.codec))}  # what the generate CLI decodes with

    def restore(self, export: Mapping[str, Any]) -> None:
        self.codec_meta = dict(export["codec"])
        self.max_streams = int(export["max_streams"])
        rate = self.codec_meta["frame_rate"]
        self.target_frames = max(1, int(round(self.settings.clip_seconds * rate)))
        self.context_frames = tuple(max(1, int(round(s * rate))) for s in self.settings.context_seconds)

    def meta(self, model: nn.Module) -> dict[str, Any]:
        return {"train_songs": len(self.train_songs), "valid_songs": len(self.valid_songs), "target_frames": self.target_frames,
                "codec": self.codec_meta, "lm_parameters": sum(p.numel() for p in model.lm.parameters())}  # fmt: skip

    def example(self, song: Song, start: int, context_frames: int, mode: str, chosen: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(target (K, Ft), context (S, K, Fc)) of one crop; mode: mix (the `chosen` context stems), metronome
        or dropped (all PAD)."""
        pad = self.codec_meta["cardinality"]
        target = crop(song.target, start, self.target_frames, pad)
        k = target.shape[0]
        ctx = np.full((self.max_streams, k, context_frames), lm.ABSENT, dtype=np.int64)
        if mode == "metronome" and song.metronome is not None:
            ctx[0] = crop(song.metronome, start, context_frames, pad)
        elif mode == "mix" and chosen:
            for i, c in enumerate(chosen[: self.max_streams]):
                ctx[i] = crop(song.contexts[c][1], start, context_frames, pad)
        else:
            ctx[0] = pad
        return target, ctx

    def data(self, start: int) -> Iterator[dict[str, Any]]:
        s = self.settings
        index = start
        while True:
            g = rng(self.loop.seed, "stage-batch", index)
            picks = g.integers(0, len(self.train_songs), size=self.loop.batch_size)
            fc = int(g.integers(self.context_frames[0], self.context_frames[1] + 1))  # one prefix length a micro-batch
            targets, contexts, texts = [], [], []
            for p in picks:
                song = self.train_songs[int(p)]
                offset = int(g.integers(0, max(1, song.frames - self.target_frames) + 1))
                u = g.random()
                mode = "dropped" if u < s.context_dropout else ("metronome" if g.random() < s.metronome_prob and song.metronome is not None else "mix")
                n = len(song.contexts)
                chosen = [i for i in range(n) if g.random() < 0.5] or [int(g.integers(0, n))]
                t, c = self.example(song, offset, fc, mode, chosen)
                targets.append(t)
                contexts.append(c)
                texts.append(song.description)
            texts = lm.drop_texts(texts, s.word_dropout, s.text_dropout, g)
            yield {"target": torch.from_numpy(np.stack(targets)), "context": torch.from_numpy(np.stack(contexts)), "texts": texts}
            index += 1

    def loss(self, model: nn.Module, batch: Mapping[str, Any], generator: torch.Generator):
        device = next(model.lm.parameters()).device
        states, mask = model.text(batch["texts"])
        return lm.sequence_loss(model.lm, batch["context"].to(device), batch["target"].to(device), states.to(device), mask.to(device))

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        songs = self.valid_songs or self.train_songs
        n = min(len(songs), self.loop.batch_size * max(1, self.loop.valid_batches))
        fc = self.context_frames[1]
        pairs = [self.example(song, 0, fc, "mix", list(range(len(song.contexts)))) for song in songs[:n]]
        target = torch.from_numpy(np.stack([p[0] for p in pairs]))
        context = torch.from_numpy(np.stack([p[1] for p in pairs]))
        device = next(model.lm.parameters()).device
        states, mask = model.text([song.description for song in songs[:n]])
        loss, terms = lm.sequence_loss(model.lm, context.to(device), target.to(device), states.to(device), mask.to(device))
        return {"loss": float(loss), "accuracy": terms["accuracy"]}

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        from stemlab.stage.evaluate import evaluate

        return evaluate(self, model)
