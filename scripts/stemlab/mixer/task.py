"""The `mixer` model on the frame: trained on distort-and-fix examples of the training split's wet stems.

setup        the training examples (stemlab.mixer.examples) and their frozen inputs: the upstream audio
             encoders (inputs.upstream, settings.audio_encoders) embed each distorted crop, the first
             encoder's cache (inputs.cache) gives the song context, the frozen text encoder the prompt
build_model  fusion MLP -> K soft-prefix tokens -> MistralForCausalLM (a snapshot, or built from its
             config with the word-level grammar tokenizer trained here) with LoRA adapters through peft
             when settings.lora.enabled (adapter-only checkpoints: the frozen base is rebuilt, never
             saved); the direct regressor beside it
loss         answer-token cross-entropy (prefix, BOS and padding masked) + the regressor's presence BCE and
             masked argument MSE (disjoint parameters; one optimizer)
evaluate     stemlab.mixer.evaluate on the test split
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

from stemlab.config import settings_section
from stemlab.data.segment_tables import read_segment_tables
from stemlab.errors import StemlabError
from stemlab.logs import log
from stemlab.mixer.distort import DistortSettings
from stemlab.mixer.grammar import format_chain, parse_chain
from stemlab.mixer.model import (
    Dims, Fusion, MixerNet, Regressor, TextEncoder, answer_loss, build_decoder, encode_answer, grammar_tokenizer,
    minilm_dir, regression_targets, tokenizer_from_json, tokenizer_json, with_lora,
)  # fmt: skip
from stemlab.train.registry import register
from stemlab.train.sampling import evenly_spaced, step_indices
from stemlab.train.task import Task, load_trained

CACHE_BATCH = 16


@dataclass(frozen=True)
class MixerSettings:
    raw: dict[str, Any]
    distortions: DistortSettings

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]


@dataclass
class Inputs:
    """The frozen inputs of a set of examples, as tensors."""

    slots: list[torch.Tensor]
    category: torch.Tensor

    def take(self, index: torch.Tensor | np.ndarray) -> tuple[list[torch.Tensor], torch.Tensor]:
        index = torch.as_tensor(index)
        return [s[index] for s in self.slots], self.category[index]


def active_rows(table: pd.DataFrame, split: str) -> pd.DataFrame:
    return table[(table["split"] == split) & table["active"].astype(bool)].reset_index(drop=True)


@register
class MixerTask(Task):
    name = "mixer"
    metric_directions = {
        "parse_rate": "higher", "tool_f1": "higher", "improvement_mrstft": "higher", "improvement_fx": "higher",
        "intent_success": "higher", "parse_rate_intent": "higher", "tool_f1_intent": "higher",
        **{f"param_mae_{t}": "lower" for t in ("change_volume", "pan", "apply_eq", "apply_low_pass", "apply_high_pass",
                                                "apply_compression", "apply_reverb", "apply_delay", "normalize")},
    }  # fmt: skip
    # relative improvements explode where the distorted stem is already close to the clean one: seed medians
    metric_statistics = {"improvement_mrstft": "median", "improvement_fx": "median"}

    def parse_settings(self, section: Mapping[str, Any]) -> MixerSettings:
        raw = settings_section("models", "mixer", "settings", section=section)
        return MixerSettings(raw, DistortSettings.from_config(raw["distortions"]))

    # ------------------------------------------------------------------ frozen inputs
    def audio_encoders(self, device: torch.device | str = "cpu") -> list[tuple[Task, nn.Module]]:
        """The upstream encoders of settings.audio_encoders, loaded frozen (their final.pt files)."""
        inputs = {"upstream": dict(self.job.inputs.upstream), "pretrained": dict(self.job.inputs.pretrained)}
        out = []
        for name in self.settings["audio_encoders"]:
            task, net, _ = load_trained(self.upstream_file(name), device, inputs)
            if not hasattr(task, "embed"):
                raise StemlabError(f"models.mixer.settings.audio_encoders: {name!r} is not an encoder (its task has no embed); list encoders only")
            out.append((task, net.requires_grad_(False)))
        return out

    def text_encoder(self, device: torch.device | str = "cpu") -> TextEncoder:
        cfg = self.settings["text_encoder"]
        if cfg["source"] == "minilm":
            return TextEncoder(minilm_dir(), device)
        if not cfg["pretrained"]:
            raise StemlabError("models.mixer.settings.text_encoder.pretrained: name the BERT snapshot (a pretrained download)")
        return TextEncoder(self.pretrained_dir(cfg["pretrained"]), device)

    def decoder_snapshot(self) -> Path | None:
        cfg = self.settings["decoder"]
        if cfg["source"] != "pretrained":
            return None
        if not cfg["pretrained"]:
            raise StemlabError("models.mixer.settings.decoder.pretrained: name the decoder snapshot (a pretrained download)")
        return self.pretrained_dir(cfg["pretrained"])

    def tokenizer(self) -> Any:
        if "_tokenizer" not in self.__dict__:
            snapshot = self.decoder_snapshot()
            if snapshot is None:
                self._tokenizer = tokenizer_from_json(self._tokenizer_json) if getattr(self, "_tokenizer_json", None) else grammar_tokenizer()
            else:
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(snapshot)
                if tok.pad_token_id is None:
                    tok.pad_token = tok.eos_token
                self._tokenizer = tok
        return self._tokenizer

    def frozen_inputs(self, examples: list, table: pd.DataFrame, encoders: list, text: TextEncoder,
                      audio: list[np.ndarray] | None = None) -> tuple[Inputs, Dims]:  # fmt: skip
        """The examples' frozen inputs; `audio`: the encoders' embeddings of the distorted crops, when known."""
        from stemlab.mixer.examples import category_ids, context_embeddings, embed_audio, text_embeddings

        if audio is None:
            audio = embed_audio(encoders, [e.distorted for e in examples], CACHE_BATCH, "cpu")
        slots = [text_embeddings(text.encode, [e.prompt for e in examples]), *audio]
        context = 0
        if self.settings["context"]:
            cache = self.embedding_cache(self.settings["audio_encoders"][0])
            slots += np.split(context_embeddings(cache, examples, table, self.settings["window"]), 2, axis=1)
            context = cache.dim
        categories = self.dims.categories if getattr(self, "dims", None) else tuple(sorted({e.category for e in examples}))
        dims = Dims(slots[0].shape[1], tuple(a.shape[1] for a in audio), context, categories)
        tensors = [torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32)) for s in slots]
        return Inputs(tensors, torch.from_numpy(category_ids([e.category for e in examples], categories))), dims

    # ------------------------------------------------------------------ training
    def setup(self) -> None:
        from stemlab.mixer.examples import make_examples, most_frequent_chain

        s = self.settings
        table = read_segment_tables(self.segment_tables(s["window"]))
        rows = evenly_spaced(list(range(len(active_rows(table, "train")))), s["max_windows"])
        train = active_rows(table, "train").iloc[rows]
        if train.empty:
            raise StemlabError(f"model mixer: no active training windows in the {s['window']} segment tables; check inputs.corpora")
        examples = make_examples(train, self.stems_root, s["segment_samples"], s["examples_per_window"], self.loop.seed,
                                 s.distortions, s["intent_fraction"], s["min_rms_db"])  # fmt: skip
        if not examples:
            raise StemlabError(f"model mixer: every training window is quieter than settings.min_rms_db = {s['min_rms_db']} dB")
        log.info("mixer: %d training examples from %d stem windows", len(examples), len(train))
        self.inputs, self.dims = self.frozen_inputs(examples, table, self.audio_encoders(), self.text_encoder())
        tok = self.tokenizer()
        answers = [encode_answer(tok, format_chain(e.target), s["max_answer_tokens"]) for e in examples]
        width = max(len(a) for a in answers)
        self.answer = torch.full((len(answers), width), int(tok.pad_token_id), dtype=torch.long)
        for i, a in enumerate(answers):
            self.answer[i, : len(a)] = torch.tensor(a)
        self.answer_len = torch.tensor([len(a) for a in answers])
        presence, values, mask = regression_targets([e.target for e in examples])
        self.reg = (torch.from_numpy(presence), torch.from_numpy(values), torch.from_numpy(mask))
        self.most_frequent = format_chain(most_frequent_chain([e.distortion.fix for e in examples if e.intent is None]))
        self._digest = {"examples": len(examples), "answer_tokens": int(self.answer_len.sum())}

    def identity(self) -> dict[str, Any]:
        return dict(getattr(self, "_digest", {}))

    def build_model(self) -> nn.Module:
        s = self.settings
        tok = self.tokenizer()
        special = {"bos": int(tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id), "eos": int(tok.eos_token_id), "pad": int(tok.pad_token_id)}
        decoder = build_decoder(s["decoder"], len(tok), special, s["prefix_tokens"] + 1 + s["max_answer_tokens"], self.decoder_snapshot())
        if s["lora"]["enabled"]:
            decoder = with_lora(decoder, s["lora"])
        width = int(decoder.get_input_embeddings().weight.shape[1])
        fusion = Fusion(self.dims, s["fusion_hidden"], s["prefix_tokens"], width, s["dropout"])
        return MixerNet(fusion, decoder, Regressor(self.dims, s["regressor_hidden"]), special["bos"])

    def data(self, start: int) -> Iterator[dict[str, Any]]:
        n = len(self.answer_len)
        index = start
        while True:
            idx = torch.from_numpy(step_indices(n, self.loop.batch_size, self.loop.seed, index))
            slots, category = self.inputs.take(idx)
            width = int(self.answer_len[idx].max())
            yield {"slots": slots, "category": category, "answer": self.answer[idx, :width], "answer_len": self.answer_len[idx],
                   "presence": self.reg[0][idx], "values": self.reg[1][idx], "mask": self.reg[2][idx]}  # fmt: skip
            index += 1

    def loss(self, model: nn.Module, batch: Any, generator: torch.Generator) -> tuple[torch.Tensor, Mapping[str, float]]:
        logits = model.logits(batch["slots"], batch["category"], batch["answer"], batch["answer_len"])
        prefix_len = logits.shape[1] - batch["answer"].shape[1]
        decoder_loss = answer_loss(logits, batch["answer"], batch["answer_len"], prefix_len)
        presence, values = model.regressor(batch["slots"], batch["category"])
        reg_presence = nn.functional.binary_cross_entropy_with_logits(presence, batch["presence"])
        reg_values = ((values - batch["values"]).square() * batch["mask"]).sum() / batch["mask"].sum().clamp_min(1.0)
        loss = decoder_loss + reg_presence + reg_values
        return loss, {"decoder_loss": float(decoder_loss.detach()), "regressor_presence": float(reg_presence.detach()),
                      "regressor_values": float(reg_values.detach())}  # fmt: skip

    def export(self, model: nn.Module) -> dict[str, Any]:
        out: dict[str, Any] = {"dims": self.dims.to_dict(), "most_frequent": self.most_frequent,
                               # what the CLI loads the frozen encoders and snapshots from
                               "upstream": dict(self.job.inputs.upstream), "pretrained": dict(self.job.inputs.pretrained)}  # fmt: skip
        if self.decoder_snapshot() is None:
            out["tokenizer"] = tokenizer_json(self.tokenizer())
        return out

    def restore(self, export: Mapping[str, Any]) -> None:
        self.dims = Dims.from_dict(export["dims"])
        self.most_frequent = str(export.get("most_frequent", ""))
        parse_chain(self.most_frequent)
        if export.get("tokenizer"):
            self._tokenizer_json = str(export["tokenizer"])
            self.__dict__.pop("_tokenizer", None)

    def meta(self, model: nn.Module) -> dict[str, Any]:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return {"trainable_parameters": int(trainable), "parameters": int(sum(p.numel() for p in model.parameters())),
                "most_frequent": self.most_frequent}  # fmt: skip

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, model: nn.Module, payload: Mapping[str, Any], out_dir: Path) -> pd.DataFrame:
        from stemlab.mixer.evaluate import evaluate

        return evaluate(self, model, out_dir)
