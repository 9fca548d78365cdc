"""LAION's pretrained CLAP (the music checkpoint music_audioset_epoch_15_esc_90.14.pt: HTSAT-base audio,
RoBERTa text, 512-d joint space) from a `pretrained:` snapshot folder, offline.

The snapshot holds the stock checkpoint, RoBERTa's tokenizer files (vocab.json, merges.txt) and optionally
roberta_config.json (default: roberta-base's architecture). The stock file needs its keys adapted before
it loads into laion-clap's CLAP with current transformers: weights under `state_dict`, a `module.` prefix
from distributed training, and `text_branch.embeddings.position_ids`, a buffer that transformers no
longer keeps in the state dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlab.encoders.clap import model as clap_model
from stemlab.errors import StemlabError

ROBERTA_BASE = {
    "vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
    "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
}  # fmt: skip
DROPPED_KEYS = ("text_branch.embeddings.position_ids",)


def adapt_stock_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The weights of a stock LAION-CLAP checkpoint under the keys laion-clap's CLAP has today."""
    state = checkpoint.get("state_dict", checkpoint)
    out = {}
    for key, value in state.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        if key in DROPPED_KEYS or not isinstance(value, torch.Tensor):
            continue
        out[key] = value
    return out


def load_stock_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    try:
        with open(path, "rb") as fh:
            checkpoint = torch.load(fh, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise StemlabError(f"{path}: missing from the pretrained snapshot; check models.clap.settings.pretrained.checkpoint") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the same user problem
        raise StemlabError(f"{path}: not a readable CLAP checkpoint ({type(exc).__name__}); re-download the snapshot") from exc
    if not isinstance(checkpoint, Mapping):
        raise StemlabError(f"{path}: not a CLAP checkpoint (no state dict); check the snapshot's files")
    return adapt_stock_state_dict(checkpoint)


def build_pretrained(settings: Any, snapshot: Path) -> nn.Module:
    """LAION-CLAP with the stock weights of the snapshot (HTSAT sizes and text branch from the settings)."""
    config_path = snapshot / "roberta_config.json"
    roberta = clap_model.read_json(config_path) if config_path.is_file() else ROBERTA_BASE
    model = clap_model.build(settings, "roberta", roberta)
    state = load_stock_checkpoint(snapshot / str(settings.pretrained["checkpoint"]))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        wrong = (list(missing) or list(unexpected))[0]
        raise StemlabError(
            f"{snapshot / settings.pretrained['checkpoint']}: does not fit the configured CLAP ({len(missing)} missing, "
            f"{len(unexpected)} unexpected entries, e.g. {wrong}); check models.clap.settings (htsat, audio, joint_dim)"
        )
    return model


@lru_cache(maxsize=4)
def _roberta_tokenizer(snapshot: str):
    from transformers import RobertaTokenizer

    folder = Path(snapshot)
    for name in ("vocab.json", "merges.txt"):
        if not (folder / name).is_file():
            raise StemlabError(f"{folder / name}: missing from the pretrained snapshot; add RoBERTa's {name} to its files")
    # from the folder (transformers 5 ignores vocab_file/merges_file given to the constructor)
    return RobertaTokenizer.from_pretrained(str(folder), local_files_only=True)


def roberta_tokens(snapshot: Path, texts: list[str], context_length: int) -> dict[str, torch.Tensor]:
    """input_ids and attention_mask as laion-clap's RoBERTa branch takes them (padded to context_length)."""
    tokens = _roberta_tokenizer(str(snapshot))(
        texts, padding="max_length", truncation=True, max_length=context_length, return_tensors="pt"
    )
    return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}
