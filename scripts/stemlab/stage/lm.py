"""The accompaniment LM of Strano et al. (2025): a MusicGen-style decoder over codec tokens with prefix
conditioning on the context stems and cross-attention to a text prompt.

Tokens: K codebooks of `cardinality` codes per frame; PAD = cardinality (delay fill, dropped context),
SEP = cardinality + 1 (the separator frame). One training sequence, before the delay pattern:

    [context codes (K, Fc) | one SEP frame (K, 1) | target codes (K, Ft)]

MusicGen's delay pattern shifts codebook k right by k frames over the whole sequence (`delay`, exact
inverse `undelay`), so frame p of the delayed sequence holds token p − k of codebook k. An input frame is
the sum of the K codebook embeddings plus a sinusoidal position; K linear heads predict the next frame.
The loss is the cross-entropy over the target's tokens only (`target_mask`: every position whose undelayed
token lies in the target part, exactly K · Ft of them). With probability `context_dropout` an example's
context is all PAD: that, with the text dropped too, is the unconditional branch of classifier-free
guidance, logits = uncond + s · (cond − uncond) (`cfg_logits`; s = 1 is the conditional model alone).

Several context stems: the codec tokenizes each stem alone (its tokens cannot be mixed the way the paper
mixes the context audio before EnCodec), so a context is S token streams (B, S, K, Fc) and a context frame's
embedding is, per codebook, the mean of the present streams' code embeddings (ABSENT = −1 marks a stream
without a stem; stream 0 also carries the separator and the target).

The decoder is pre-norm: causal self-attention, cross-attention to the projected text states (plus one
learned null state, so a dropped or empty prompt attends to it alone), feed-forward; keys and values are
cached while sampling (`sample`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ROLE_CONTEXT, ROLE_SEP, ROLE_TARGET, ROLE_FILL = 0, 1, 2, -1
ABSENT = -1  # a context stream without a stem at this position


@dataclass(frozen=True)
class LMSize:
    """The decoder's sizes (models.stage.settings.model; defaults in the schema)."""

    d_model: int
    layers: int
    heads: int
    ffn: int
    dropout: float

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> LMSize:
        return cls(d_model=int(section["d_model"]), layers=int(section["layers"]), heads=int(section["heads"]),
                   ffn=int(section["ffn"]), dropout=float(section["dropout"]))  # fmt: skip


# --------------------------------------------------------------------------- delay pattern


def delay(codes: torch.Tensor, fill: int) -> torch.Tensor:
    """(B, K, T) -> (B, K, T + K − 1): codebook k shifted right by k frames, `fill` elsewhere."""
    b, k, t = codes.shape
    out = codes.new_full((b, k, t + k - 1), fill)
    for q in range(k):
        out[:, q, q : q + t] = codes[:, q]
    return out


def undelay(delayed: torch.Tensor) -> torch.Tensor:
    """Inverse of `delay`: (B, K, T + K − 1) -> (B, K, T)."""
    b, k, length = delayed.shape
    t = length - k + 1
    return torch.stack([delayed[:, q, q : q + t] for q in range(k)], dim=1)


def layout(n_codebooks: int, context_frames: int, target_frames: int) -> torch.Tensor:
    """(K, L) role of each delayed position: context, separator, target or delay fill."""
    roles = torch.cat([
        torch.full((context_frames,), ROLE_CONTEXT), torch.full((1,), ROLE_SEP), torch.full((target_frames,), ROLE_TARGET)
    ]).long()  # fmt: skip
    return delay(roles.expand(1, n_codebooks, -1).contiguous(), ROLE_FILL)[0]


def build_sequence(context: torch.Tensor, target: torch.Tensor, cardinality: int) -> torch.Tensor:
    """The delayed token streams (B, S, K, Fc + 1 + Ft + K − 1) of context (B, S, K, Fc) and target
    (B, K, Ft): stream 0 is [context 0 | SEP | target], streams 1.. their context stem, ABSENT after it."""
    b, s, k, _ = context.shape
    sep = target.new_full((b, k, 1), cardinality + 1)
    first = delay(torch.cat([context[:, 0], sep, target], dim=2), cardinality)
    if s == 1:
        return first[:, None]
    rest = torch.cat([context[:, 1:], context.new_full((b, s - 1, k, 1 + target.shape[2]), ABSENT)], dim=3)
    rest = delay(rest.reshape(b * (s - 1), k, -1), ABSENT).view(b, s - 1, k, -1)
    return torch.cat([first[:, None], rest], dim=1)


def target_mask(n_codebooks: int, context_frames: int, target_frames: int) -> torch.Tensor:
    """(K, L) bool: the delayed positions whose token is a target token (what the loss covers)."""
    return layout(n_codebooks, context_frames, target_frames) == ROLE_TARGET


def cfg_logits(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: uncond + scale · (cond − uncond); scale 1 is `cond` itself."""
    if scale == 1.0:
        return cond
    return uncond + scale * (cond - uncond)


# --------------------------------------------------------------------------- network


def sinusoidal(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(L,) -> (L, dim) transformer sinusoids (sin on the first half, cos on the second)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32, device=positions.device) / max(1, half))
    angles = positions.float()[:, None] * freqs[None, :]
    out = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(out, (0, dim - 2 * half))


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"d_model {d} is not a multiple of heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                cache: dict[str, torch.Tensor] | None = None, causal: bool = False) -> torch.Tensor:  # fmt: skip
        q = self._split(self.q(x))
        src = x if memory is None else memory
        k, v = self._split(self.k(src)), self._split(self.v(src))
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        p = self.dropout if self.training else 0.0
        if causal and x.shape[1] > 1:
            n_q, n_k = q.shape[2], k.shape[2]
            allowed = torch.ones(n_q, n_k, dtype=torch.bool, device=x.device).tril(n_k - n_q)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        b, h, n, dh = out.shape
        return self.o(out.transpose(1, 2).reshape(b, n, h * dh))


class Block(nn.Module):
    def __init__(self, size: LMSize) -> None:
        super().__init__()
        d = size.d_model
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = Attention(d, size.heads, size.dropout)
        self.cross_attn = Attention(d, size.heads, size.dropout)
        self.ffn = nn.Sequential(nn.Linear(d, size.ffn), nn.GELU(), nn.Linear(size.ffn, d))
        self.drop = nn.Dropout(size.dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
                cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:  # fmt: skip
        x = x + self.drop(self.self_attn(self.norm1(x), cache=cache, causal=True))
        x = x + self.drop(self.cross_attn(self.norm2(x), memory=memory, mask=memory_mask))
        return x + self.drop(self.ffn(self.norm3(x)))


class StageLM(nn.Module):
    """The decoder: K codebook embeddings (vocabulary cardinality + 2), positions, blocks, K heads."""

    def __init__(self, n_codebooks: int, cardinality: int, text_dim: int, size: LMSize) -> None:
        super().__init__()
        self.n_codebooks, self.cardinality, self.size = n_codebooks, cardinality, size
        d = size.d_model
        self.embed = nn.ModuleList(nn.Embedding(cardinality + 2, d) for _ in range(n_codebooks))
        self.text_proj = nn.Linear(text_dim, d)
        self.null_text = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.ModuleList(Block(size) for _ in range(size.layers))
        self.norm = nn.LayerNorm(d)
        self.heads = nn.ModuleList(nn.Linear(d, cardinality) for _ in range(n_codebooks))

    @property
    def pad(self) -> int:
        return self.cardinality

    @property
    def sep(self) -> int:
        return self.cardinality + 1

    def memory(self, text_states: torch.Tensor, text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected text states with the null state in front, and the (B, 1, 1, 1 + L) attention mask."""
        b = text_states.shape[0]
        mem = torch.cat([self.null_text.expand(b, -1, -1), self.text_proj(text_states)], dim=1)
        mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=text_mask.device), text_mask.bool()], dim=1)
        return mem, mask[:, None, None, :]

    def frames(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """(B, S, K, L) token streams -> (B, L, d): per codebook the mean embedding of the present streams,
        summed over codebooks, plus positions offset .. offset + L."""
        present = tokens >= 0
        count = present.sum(dim=1).clamp_min(1).unsqueeze(-1).float()  # (B, K, L, 1)
        x = 0
        for q in range(self.n_codebooks):
            e = self.embed[q](tokens[:, :, q].clamp_min(0)) * present[:, :, q].unsqueeze(-1)
            x = x + e.sum(dim=1) / count[:, q]
        pos = torch.arange(offset, offset + tokens.shape[-1], device=tokens.device)
        return x + sinusoidal(pos, self.size.d_model)[None].to(x.dtype)

    def forward(self, tokens: torch.Tensor, text_states: torch.Tensor, text_mask: torch.Tensor,
                caches: list[dict[str, torch.Tensor]] | None = None, offset: int = 0) -> torch.Tensor:  # fmt: skip
        """(B, S, K, L) token streams -> (B, K, L, cardinality) logits of the next frame at every position."""
        mem, mask = self.memory(text_states, text_mask)
        x = self.frames(tokens, offset)
        for i, block in enumerate(self.blocks):
            x = block(x, mem, mask, None if caches is None else caches[i])
        x = self.norm(x)
        return torch.stack([head(x) for head in self.heads], dim=1)


def sequence_loss(model: StageLM, context: torch.Tensor, target: torch.Tensor, text_states: torch.Tensor,
                  text_mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """Cross-entropy of the target tokens of [context (B, S, K, Fc) | SEP | target (B, K, Ft)] (teacher
    forcing) and its accuracy."""
    seq = build_sequence(context, target, model.cardinality)
    logits = model(seq[..., :-1], text_states, text_mask)  # position p predicts frame p + 1
    mask = target_mask(model.n_codebooks, context.shape[3], target.shape[2])[:, 1:].to(seq.device)
    labels = seq[:, 0, :, 1:]
    picked = logits[:, mask]  # (B, N, C) with N = K · Ft
    wanted = labels[:, mask]
    loss = F.cross_entropy(picked.reshape(-1, picked.shape[-1]).float(), wanted.reshape(-1))
    accuracy = float((picked.argmax(-1) == wanted).float().mean())
    return loss, {"accuracy": accuracy, "target_tokens": float(mask.sum())}


def top_k_sample(logits: torch.Tensor, k: int, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """(..., C) logits -> (...) samples among the k most likely codes (k 0: all)."""
    flat = logits.reshape(-1, logits.shape[-1]).float() / max(temperature, 1e-6)
    if 0 < k < flat.shape[-1]:
        kth = torch.topk(flat, k, dim=-1).values[:, -1:]
        flat = flat.masked_fill(flat < kth, float("-inf"))
    probs = torch.softmax(flat, dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).to(logits.device).view(logits.shape[:-1])


@torch.no_grad()
def sample(
    model: StageLM, context: torch.Tensor, target_frames: int, text_states: torch.Tensor, text_mask: torch.Tensor,
    *, cfg_scale: float, top_k: int, generator: torch.Generator, temperature: float = 1.0,
    uncond_text_states: torch.Tensor | None = None, uncond_text_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Target codes (B, K, target_frames) continuing [context (B, S, K, Fc) | SEP], with CFG against the all-PAD context
    and the empty prompt (scale 1: no unconditional pass). Deterministic given `generator`."""
    was_training = model.training
    model.eval()
    b, _, k, fc = context.shape
    device = context.device
    guided = cfg_scale != 1.0
    ctx = context
    states, smask = text_states, text_mask
    if guided:
        unconditional = torch.full_like(context, ABSENT)
        unconditional[:, 0] = model.pad
        ctx = torch.cat([context, unconditional])
        if uncond_text_states is None:
            uncond_text_states = text_states.new_zeros(b, 1, text_states.shape[-1])
            uncond_text_mask = torch.zeros(b, 1, dtype=torch.bool, device=device)
        width = max(text_states.shape[1], uncond_text_states.shape[1])
        states = torch.cat([F.pad(text_states, (0, 0, 0, width - text_states.shape[1])),
                            F.pad(uncond_text_states, (0, 0, 0, width - uncond_text_states.shape[1]))])  # fmt: skip
        smask = torch.cat([F.pad(text_mask.bool(), (0, width - text_mask.shape[1])),
                           F.pad(uncond_text_mask.bool(), (0, width - uncond_text_mask.shape[1]))])  # fmt: skip
    placeholder = context.new_zeros(ctx.shape[0], k, target_frames)
    seq = build_sequence(ctx, placeholder, model.cardinality)
    roles = layout(k, fc, target_frames).to(device)
    is_target = roles == ROLE_TARGET
    first = fc + 1  # the first delayed frame holding a target token (codebook 0)
    caches: list[dict[str, torch.Tensor]] = [{} for _ in model.blocks]
    logits = model(seq[..., :first], states, smask, caches, 0)[:, :, -1]
    for p in range(first, seq.shape[-1]):
        step = cfg_logits(logits[:b], logits[b:], cfg_scale) if guided else logits
        drawn = top_k_sample(step, top_k, temperature, generator)  # (B, K)
        where = is_target[:, p][None, :]
        seq[:b, 0, :, p] = torch.where(where, drawn, seq[:b, 0, :, p])
        if guided:
            seq[b:, 0, :, p] = torch.where(where, drawn, seq[b:, 0, :, p])
        if p + 1 < seq.shape[-1]:
            logits = model(seq[..., p : p + 1], states, smask, caches, p)[:, :, -1]
    model.train(was_training)
    return undelay(seq[:b, 0])[:, :, first:]


def word_dropout(text: str, p: float, generator: np.random.Generator) -> str:
    """Each word kept with probability 1 − p (the paper's word dropout of the prompt)."""
    words = text.split()
    if not words or p <= 0:
        return text
    keep = generator.random(len(words)) >= p
    return " ".join(w for w, k in zip(words, keep.tolist()) if k)


def drop_texts(texts: Sequence[str], word_p: float, text_p: float, generator: np.random.Generator) -> list[str]:
    """Word dropout, then the whole prompt dropped (empty) with probability `text_p`."""
    out = []
    for text in texts:
        text = word_dropout(text, word_p, generator)
        out.append("" if generator.random() < text_p else text)
    return out
