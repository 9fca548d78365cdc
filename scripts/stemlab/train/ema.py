"""Exponential moving average of a model's trainable weights (validated and exported instead of the raw ones)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class EMA:
    """Shadow copies of the trainable floating-point parameters, updated after every optimizer step:
    shadow = decay_t * shadow + (1 - decay_t) * param, decay_t = min(decay, (1 + t) / (10 + t)) with
    ramp-up (t = updates so far), else decay. Buffers (e.g. BatchNorm statistics) are the model's own."""

    def __init__(self, model: nn.Module, decay: float, rampup: bool = True) -> None:
        if not 0 < decay < 1:
            raise ValueError("EMA decay must be in (0, 1)")
        self.decay, self.rampup, self.updates = float(decay), bool(rampup), 0
        self.shadow = {
            name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad and p.is_floating_point()
        }

    def decay_at(self, updates: int) -> float:
        return min(self.decay, (1.0 + updates) / (10.0 + updates)) if self.rampup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.decay_at(self.updates)
        params = dict(model.named_parameters())
        for name, shadow in self.shadow.items():
            shadow.lerp_(params[name].detach(), 1.0 - decay)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"updates": self.updates, "shadow": {k: v.detach().cpu() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        if set(state["shadow"]) != set(self.shadow):
            raise ValueError("EMA state does not match the model's trainable parameters")
        self.updates = int(state["updates"])
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """The model carries the EMA weights inside the block, its own weights again after it."""
        params = dict(model.named_parameters())
        saved = {name: params[name].detach().clone() for name in self.shadow}
        with torch.no_grad():
            for name, shadow in self.shadow.items():
                params[name].copy_(shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in saved.items():
                    params[name].copy_(value)
