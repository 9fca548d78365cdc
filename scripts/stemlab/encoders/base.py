"""What every encoder task offers beyond the frame's Task: one embedding per audio clip.

The embedding cache (stemlab.encoders.cache) and the models that condition on embeddings call `embed` on
a loaded encoder (stemlab.train.task.load_trained); each encoder converts the canonical audio (44.1 kHz,
stereo) to what its network hears (CLAP: 48 kHz mono) itself.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from stemlab.train.task import Task

CANONICAL_RATE = 44_100


class EncoderTask(Task):
    """A task whose model embeds audio clips; `embed` takes canonical audio and returns (batch, dim)."""

    sample_rate: ClassVar[int] = CANONICAL_RATE  # the rate `embed` receives

    def embedding_dim(self) -> int:
        raise NotImplementedError

    def embed(self, model: nn.Module, audio: torch.Tensor) -> torch.Tensor:
        """(batch, 2, time) float32 at 44.1 kHz on the model's device -> (batch, embedding_dim) float32."""
        raise NotImplementedError
