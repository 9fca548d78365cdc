"""NT-Xent (InfoNCE over 2B views, SimCLR) with the views of one chain as positives."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z: torch.Tensor, chain: torch.Tensor, temperature: float) -> tuple[torch.Tensor, dict[str, float]]:
    """z (2B, d) unit vectors: rows i and i + B are the two views of one chain. Other rows of the same
    chain (a chain drawn twice in one batch) are neither positives nor negatives.

    Returns the mean cross-entropy of picking the partner view among the other 2B - 1 rows, and the
    top-1 rate of that pick (`top1`)."""
    n = z.shape[0]
    if n % 2 or chain.shape[0] != n:
        raise ValueError("z must hold two views per chain and `chain` one id per row")
    half = n // 2
    partner = torch.cat([torch.arange(half, n), torch.arange(0, half)]).to(z.device)
    logits = (z.float() @ z.float().T) / temperature
    same = chain[:, None] == chain[None, :]
    ignore = same.clone()
    ignore[torch.arange(n), partner] = False  # the partner stays; self and repeats of the chain go
    logits = logits.masked_fill(ignore, float("-inf"))
    loss = F.cross_entropy(logits, partner)
    top1 = (logits.argmax(dim=1) == partner).float().mean()
    return loss, {"top1": float(top1.detach())}
