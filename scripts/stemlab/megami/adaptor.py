"""MEGAMI's CLAP domain adaptor: an MLP that maps the CLAP embedding of a wet (processed) track towards the
CLAP embedding of its dry original, so a generator trained on wet-only corpora can be conditioned on dry
tracks at inference.

    a(e) = normalize(W2 relu(W1 e + b1) + b2)        loss = 1 - cos(a(CLAP(wet)), CLAP(dry))

(paper: 512 -> 512 -> ReLU -> 512; here `dim` is the CLAP embedding dimension of the configured encoder and
`hidden` the width). Inputs are L2-normalised first, as the cache's CLAP embeddings already are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DomainAdaptor(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, clap: torch.Tensor) -> torch.Tensor:
        """(..., dim) CLAP embeddings of wet tracks -> (..., dim) unit vectors in the dry domain."""
        return F.normalize(self.mlp(F.normalize(clap.float(), dim=-1)), dim=-1)


def cosine_loss(adapted: torch.Tensor, dry: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(adapted, dry) over the batch."""
    return (1.0 - F.cosine_similarity(adapted.float(), dry.float(), dim=-1)).mean()
