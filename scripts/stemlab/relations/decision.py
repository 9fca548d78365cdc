"""The decision part: a decoder-only transformer that writes the target track's symbols while attending to
the guide track's symbols (cross-attention), and its decoding.

Vocabulary: the K codebook symbols, then start, end and pad. A symbol is embedded by its frozen codebook
centre (projected to the model width when the two differ) or, optionally, by a learned embedding; start,
end and pad always have learned ones. Positions are learned. Training: cross-entropy with label smoothing
on [y1..yn, end] from [start, y1..yn] (pad ignored), scheduled sampling (each input symbol replaced by the
model's own prediction with a probability that rises over training). Decoding: exactly n symbols, top-p
sampling, optionally restricted to the symbols of the memory track (constrained generation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DecisionSize:
    layers: int
    d_model: int
    heads: int
    ffn: int
    dropout: float
    embedding: str  # centroid | learned

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> DecisionSize:
        return cls(layers=int(section["layers"]), d_model=int(section["d_model"]), heads=int(section["heads"]),
                   ffn=int(section["ffn"]), dropout=float(section["dropout"]), embedding=str(section["embedding"]))  # fmt: skip


class DecisionTransformer(nn.Module):
    def __init__(self, centres: torch.Tensor, size: DecisionSize, max_len: int) -> None:
        super().__init__()
        k, dim = centres.shape
        self.k = k
        self.start, self.end, self.pad = k, k + 1, k + 2
        self.vocab = k + 3
        self.register_buffer("centres", centres.clone().float())
        d = size.d_model
        self.centroid = size.embedding == "centroid"
        if self.centroid:
            self.project = nn.Identity() if dim == d else nn.Linear(dim, d)
        else:
            self.symbols = nn.Embedding(k, d)
        self.special = nn.Embedding(3, d)
        self.guide_pos = nn.Embedding(max_len, d)
        self.target_pos = nn.Embedding(max_len + 1, d)
        layer = nn.TransformerDecoderLayer(d, size.heads, size.ffn, size.dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, size.layers)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, self.vocab)
        self.max_len = max_len

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        is_symbol = tokens < self.k
        symbols = tokens.clamp(max=self.k - 1)
        base = self.project(self.centres[symbols]) if self.centroid else self.symbols(symbols)
        special = self.special((tokens - self.k).clamp(min=0))
        return torch.where(is_symbol[..., None], base, special)

    def forward(self, guide: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """guide (B, n) symbols (pad allowed), inputs (B, L) decoder input -> logits (B, L, vocab)."""
        g = self.embed(guide) + self.guide_pos(torch.arange(guide.shape[1], device=guide.device))
        x = self.embed(inputs) + self.target_pos(torch.arange(inputs.shape[1], device=inputs.device))
        causal = torch.triu(torch.ones(inputs.shape[1], inputs.shape[1], dtype=torch.bool, device=inputs.device), 1)
        h = self.decoder(x, g, tgt_mask=causal, memory_key_padding_mask=guide == self.pad, tgt_is_causal=True)
        return self.head(self.norm(h))


def shifted(model: DecisionTransformer, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(decoder input [start, y1..yn], labels [y1..yn, end]) of target symbols (B, n); pads stay pads."""
    b = target.shape[0]
    start = torch.full((b, 1), model.start, dtype=target.dtype, device=target.device)
    inputs = torch.cat([start, target], dim=1)
    end = torch.full((b, 1), model.end, dtype=target.dtype, device=target.device)
    labels = torch.cat([target, end], dim=1)
    # the end symbol follows the last real symbol: a padded tail keeps pads
    lengths = (target != model.pad).sum(dim=1)
    labels = torch.where(torch.arange(labels.shape[1], device=target.device)[None] > lengths[:, None], model.pad, labels)
    labels[torch.arange(b), lengths] = model.end
    return inputs, labels


def training_loss(
    model: DecisionTransformer, guide: torch.Tensor, target: torch.Tensor, own_prob: float, label_smoothing: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy with scheduled sampling: each input symbol after start is the model's own (argmax)
    prediction with probability `own_prob` (a first, gradient-free pass gives the predictions)."""
    inputs, labels = shifted(model, target)
    if own_prob > 0:
        with torch.no_grad():
            predicted = model(guide, inputs).argmax(dim=-1).clamp(max=model.k - 1)  # symbols only
        swap = torch.rand(inputs.shape, generator=generator, device="cpu").to(inputs.device) < own_prob
        swap[:, 0] = False
        swap &= inputs != model.pad
        mixed = inputs.clone()
        mixed[:, 1:] = torch.where(swap[:, 1:], predicted[:, :-1], inputs[:, 1:])
        inputs = mixed
    logits = model(guide, inputs)
    loss = F.cross_entropy(logits.reshape(-1, model.vocab), labels.reshape(-1), ignore_index=model.pad,
                           label_smoothing=label_smoothing)  # fmt: skip
    mask = labels != model.pad
    accuracy = float(((logits.argmax(dim=-1) == labels) & mask).sum() / mask.sum().clamp(min=1))
    return loss, {"ce": float(loss.detach()), "accuracy": accuracy, "own_prob": own_prob}


def top_p_sample(logits: torch.Tensor, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """One draw per row from the smallest set of symbols whose probability reaches top_p (logits -inf = banned)."""
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    keep = sorted_probs.cumsum(dim=-1) - sorted_probs < top_p
    keep[:, 0] = True
    sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
    choice = torch.multinomial(sorted_probs.cpu(), 1, generator=generator).to(logits.device)
    return order.gather(1, choice)[:, 0]


@torch.no_grad()
def decode(
    model: DecisionTransformer, guide: torch.Tensor, length: int, top_p: float, generator: torch.Generator,
    allowed: torch.Tensor | None = None, prefix: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, length) symbols for guide (B, n): autoregressive, top-p; `allowed` (B, K) bool restricts each
    row's symbols (constrained generation); `prefix` (B, p) symbols already fixed (sliding windows)."""
    b = guide.shape[0]
    tokens = torch.full((b, 1), model.start, dtype=torch.long, device=guide.device)
    if prefix is not None and prefix.shape[1]:
        tokens = torch.cat([tokens, prefix.long()], dim=1)
    ban = torch.zeros(b, model.vocab, dtype=torch.bool, device=guide.device)
    ban[:, model.k :] = True  # exactly `length` symbols: no start, end or pad
    if allowed is not None:
        ban[:, : model.k] |= ~allowed
        ban[ban[:, : model.k].all(dim=1), : model.k] = False  # nothing allowed: fall back to every symbol
    while tokens.shape[1] - 1 < length:
        logits = model(guide, tokens)[:, -1].masked_fill(ban, float("-inf"))
        tokens = torch.cat([tokens, top_p_sample(logits, top_p, generator)[:, None]], dim=1)
    return tokens[:, 1:]
