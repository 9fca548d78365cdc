"""A tiny encoder task for the embedding-cache tests: a strided convolution, pooled, projected to `dim`.

Registered as model `tiny_encoder` (and `plain_test`, a model that is no encoder); the workflow test copies this file into a copy of the workflow as a
task module (stemlab.toyencoder) and names it in a config overlay.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from stemlab.encoders.base import EncoderTask
from stemlab.seeding import derive_seed
from stemlab.train.registry import register
from stemlab.train.task import Task

CLIP = 4096


class TinyEncoder(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 8, kernel_size=64, stride=32)
        self.proj = nn.Linear(17, dim)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(audio))
        level = torch.log10(audio.square().mean(dim=(1, 2)) + 1e-8)[:, None]
        return self.proj(torch.cat([h.mean(-1), h.amax(-1), level], dim=1))


@register
class TinyEncoderTask(EncoderTask):
    name = "tiny_encoder"

    def parse_settings(self, section):
        return {"dim": int(section.get("dim", 6))}

    def build_model(self) -> nn.Module:
        return TinyEncoder(self.settings["dim"])

    def embedding_dim(self) -> int:
        return self.settings["dim"]

    def embed(self, model: nn.Module, audio: torch.Tensor) -> torch.Tensor:
        return model(audio)

    def data(self, start: int) -> Iterator[torch.Tensor]:
        index = start
        while True:
            g = torch.Generator().manual_seed(derive_seed(self.loop.seed, "clips", index))
            yield 0.1 * torch.randn(self.loop.batch_size, 2, CLIP, generator=g)
            index += 1

    def loss(self, model, batch, generator):
        loss = (model(batch).norm(dim=1) - 1).square().mean()
        return loss, {"norm_err": float(loss.detach())}


@register
class PlainTask(Task):
    """A model of the frame that is not an encoder (the cache refuses it)."""

    name = "plain_test"

    def build_model(self) -> nn.Module:
        return nn.Linear(1, 1)

    def data(self, start: int) -> Iterator[torch.Tensor]:
        while True:
            yield torch.ones(2, 1)

    def loss(self, model, batch, generator):
        loss = model(batch).square().mean()
        return loss, {"mse": float(loss.detach())}
