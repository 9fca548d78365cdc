"""The `megami` model: MEGAMI's trained parts put together for full-song mixing, evaluated at mix level.

Nothing is trained here. The model is its upstream models (inputs.upstream: clap, fx_encoder,
domain_adaptor, fx_generator, fxprocessor; inputs.pretrained: the snapshots those load), all frozen, and the loop runs one no-op step whatever
loop.steps says, so final.pt holds no weights: it records the mixing settings and the upstream files it
was made from with their sha256 (what `python -m stemlab.megami.mix` loads). Its identity follows the
upstream files, so retraining any of them remakes it. Evaluation (stemlab.megami.evaluate_mix) mixes the
test-split songs of its corpora (read through their megami segment tables) with every system.

`python -m stemlab.megami.mix_songs --config JOB --model-dir DIR --out results/mixes/megami/seed-<s>` (rule
mix_megami) mixes every mixable song of the test split whole, with the seed's sampling seed of the evaluation, into
<out>/<corpus>/<song>.flac, plus index.csv (song, tracks, dropped silent tracks, gains).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from stemlab.data.segment_tables import read_segment_tables
from stemlab.errors import StemlabError
from stemlab.logs import log, progress
from stemlab.megami.evaluate_fxprocessor import select_items as evenly
from stemlab.megami.mix import UPSTREAM, MixSettings, TrainedPipeline
from stemlab.train.loop import StepContext
from stemlab.train.registry import register
from stemlab.train.task import Task, load_trained

WINDOW = "megami"


class MegamiParts(nn.Module):
    """The upstream networks as submodules (frozen), with the tasks that embed through them."""

    def __init__(self, parts: Mapping[str, tuple[Task, nn.Module]]) -> None:
        super().__init__()
        self.nets = nn.ModuleDict({name: net.requires_grad_(False) for name, (_, net) in parts.items()})
        self.tasks = {name: task for name, (task, _) in parts.items()}

    def pipeline(self, settings: MixSettings) -> TrainedPipeline:
        device = next(itertools.chain(self.nets.parameters(), self.nets.buffers())).device
        return TrainedPipeline({n: (self.tasks[n], self.nets[n]) for n in self.nets}, settings, device)


@register
class MegamiTask(Task):
    name = "megami"
    metric_directions = {
        "kad_clap": "lower", "kad_fx": "lower", "dist_loudness": "lower", "dist_centroid": "lower",
        "dist_width": "lower", "dist_crest": "lower",
    }  # fmt: skip

    def __init__(self, job: Any) -> None:
        super().__init__(job)
        # nothing to train: one no-op step makes final.pt, train_log.csv and meta.json as usual
        self.loop = dataclasses.replace(self.loop, steps=1, warmup_steps=0)

    def parse_settings(self, section: Mapping[str, Any]) -> MixSettings:
        return MixSettings.from_config(section)

    def _upstream(self) -> dict[str, Path]:
        return {name: self.upstream_file(name) for name in UPSTREAM}

    def setup(self) -> None:
        for name, path in self._upstream().items():
            if not path.is_file():
                raise StemlabError(f"{path}: the {name} model is missing; run its train_model job first")

    def build_model(self) -> nn.Module:
        upstream = {name: str(path) for name, path in self._upstream().items()}
        inputs = {"upstream": upstream, "pretrained": dict(self.job.inputs.pretrained)}
        parts = {}
        for name in UPSTREAM:
            task, net, payload = load_trained(upstream[name], "cpu", inputs)  # the frame moves the model
            if payload.get("model") != name:
                raise StemlabError(f"{upstream[name]}: holds model {payload.get('model')!r}, not {name!r}; fix models.megami.inputs.upstream")
            parts[name] = (task, net)
        self._check_dims(parts)
        return MegamiParts(parts)

    def _check_dims(self, parts: Mapping[str, tuple[Task, nn.Module]]) -> None:
        clap_dim = int(parts["clap"][0].embedding_dim())
        fx_dim = int(parts["fx_encoder"][0].embedding_dim())
        cfg = getattr(getattr(parts["fx_generator"][1], "net", None), "cfg", None)
        if cfg is not None and (int(cfg.context_dim) != clap_dim or int(cfg.fx_dim) != fx_dim):
            raise StemlabError(
                f"the fx_generator model works on CLAP {cfg.context_dim}-d and effect {cfg.fx_dim}-d embeddings, but clap "
                f"gives {clap_dim} and fx_encoder {fx_dim}; re-train fx_generator on these encoders"
            )
        parts_fx = tuple(getattr(getattr(parts["fxprocessor"][1], "config", None), "cond_parts", ()) or ())
        if parts_fx != (fx_dim, clap_dim):
            raise StemlabError(
                f"the fxprocessor model is conditioned on embeddings of sizes {list(parts_fx)}, not (effect {fx_dim}, CLAP "
                f"{clap_dim}); train it with settings.conditioning: embeddings on these encoders"
            )

    def frozen_modules(self, model: nn.Module) -> dict[str, nn.Module]:
        return {"nets": model.nets}

    def optimizers(self, model: nn.Module, cfg: Any) -> dict[str, torch.optim.Optimizer]:
        return {}

    def data(self, start: int) -> Iterator[Any]:
        return itertools.repeat({})

    def train_step(self, model: nn.Module, micro_batches: list[Any], ctx: StepContext) -> tuple[torch.Tensor, Mapping[str, float]]:
        return torch.zeros(()), {}

    def export(self, model: nn.Module) -> dict[str, Any]:
        from stemlab.encoders.cache import sha256_file

        upstream = self._upstream()
        return {
            "upstream": {n: str(p) for n, p in upstream.items()},
            "sha256": {n: sha256_file(p) for n, p in upstream.items()},
            "pretrained": dict(self.job.inputs.pretrained),
        }

    # ------------------------------------------------------------------ evaluation
    def held_out_songs(self, splits: Sequence[str]) -> list[tuple[str, str, str]]:
        """(corpus, shard, song) of every song of `splits` that has dry and wet tracks."""
        from stemlab.megami.evaluate_mix import held_out_songs, mixable

        table = read_segment_tables(self.segment_tables(WINDOW))
        return [key for key in held_out_songs(table, splits) if mixable(self.stems_root, *key)]

    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        from stemlab.megami.evaluate_mix import EvalSettings, evaluate_songs, load_song

        cfg = EvalSettings.from_config(self.job.eval)
        songs = [load_song(self.stems_root, *key, cfg.max_seconds) for key in evenly(self.held_out_songs(cfg.splits), cfg.max_songs)]
        log.info("megami: %d songs of the %s split(s), %s", len(songs), "/".join(cfg.splits), f"{cfg.max_seconds} s each" if cfg.max_seconds else "whole")
        return evaluate_songs(model.pipeline(self.settings), songs, self.settings, cfg, self.job.seed)

    def mix_songs(self, model: nn.Module, out: str | Path) -> pd.DataFrame:
        """Every mixable song of the test split, whole, into out/<corpus>/<song>.flac (one folder, written
        atomically)."""
        from stemlab.atomic import atomic_dir
        from stemlab.audio import SAMPLE_RATE, write_audio
        from stemlab.megami.evaluate_mix import load_song, megami_seed
        from stemlab.megami.mix import megami_mixes, prepare

        pipeline = model.pipeline(self.settings)
        rows = []
        with atomic_dir(out) as tmp:
            for corpus, shard, song in progress(self.held_out_songs(("test",)), desc="megami mixes"):
                loaded = load_song(self.stems_root, corpus, shard, song, None)
                prepared = prepare(loaded.names, loaded.dry, self.settings)
                (mix,), _, _ = megami_mixes(pipeline, prepared, self.settings, 1, megami_seed(self.job.seed, song))
                (tmp / corpus).mkdir(exist_ok=True)
                write_audio(tmp / corpus / f"{song}.flac", mix.mix.T, SAMPLE_RATE)
                rows.append({"corpus": corpus, "song": song, "file": f"{corpus}/{song}.flac", "tracks": " ".join(mix.names),
                             "dropped": " ".join(prepared.dropped), "gains_db": " ".join(f"{g:.2f}" for g in mix.gains_db)})  # fmt: skip
            if not rows:
                raise StemlabError(f"model {self.job.model}: no test song has dry and wet tracks; nothing to mix")
            index = pd.DataFrame(rows)
            index.to_csv(tmp / "index.csv", index=False)
        return index

