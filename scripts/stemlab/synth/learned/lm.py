"""The harmony LM: token embedding -> LSTM -> next-token logits (trained by the frame, models.harmony_lm)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LMSize:
    embed: int
    hidden: int
    layers: int
    dropout: float


class HarmonyLM(nn.Module):
    def __init__(self, vocab_size: int, size: LMSize) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, size.embed)
        self.lstm = nn.LSTM(
            size.embed, size.hidden, size.layers, batch_first=True, dropout=size.dropout if size.layers > 1 else 0.0
        )
        self.drop = nn.Dropout(size.dropout)
        self.out = nn.Linear(size.hidden, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(batch, time) token ids -> (batch, time, vocab) logits of the next token (dropout on the
        embeddings, between layers and on the last layer's output while training)."""
        hidden, _ = self.lstm(self.drop(self.embed(ids)))
        return self.out(self.drop(hidden))


def masked_nll(logits: torch.Tensor, ids: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean NLL (nats) and accuracy of the next tokens where `targets` (batch, time) is true; logits[:, t]
    predicts ids[:, t + 1]."""
    pred, nxt, keep = logits[:, :-1], ids[:, 1:], targets[:, 1:]
    nll = nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), nxt.reshape(-1), reduction="none")
    keep = keep.reshape(-1).to(nll.dtype)
    n = keep.sum().clamp(min=1.0)
    acc = ((pred.argmax(-1).reshape(-1) == nxt.reshape(-1)).to(nll.dtype) * keep).sum() / n
    return (nll * keep).sum() / n, acc
