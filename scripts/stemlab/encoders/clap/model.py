"""The CLAP models this project builds with laion-clap's code: a configured one trained here (HTSAT audio
branch + the CLIP-style transformer text branch), or LAION's stock architecture for a pretrained file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlab.encoders.clap import laion
from stemlab.encoders.clap.windows import CLAP_RATE
from stemlab.errors import StemlabError

HTSAT_NAMES = ("tiny", "base", "large")


def model_config(settings: Any, text_type: str = "transformer") -> dict[str, Any]:
    """laion-clap's JSON model config from the task settings (audio front end, HTSAT, text branch)."""
    htsat, audio, text = settings.htsat, settings.audio, settings.text
    widths = {"tiny": 768, "base": 1024, "large": 2048}
    width = widths[htsat["name"]] if htsat["name"] in HTSAT_NAMES else laion.htsat_width(htsat)
    clip = int(round(settings.clip_seconds * CLAP_RATE))
    config = {
        "embed_dim": width,
        "joint_embed_shape": int(settings.joint_dim),
        "audio_cfg": {
            "audio_length": 1024, "clip_samples": clip, "mel_bins": int(audio["mel_bins"]), "sample_rate": CLAP_RATE,
            "window_size": int(audio["window_size"]), "hop_size": int(audio["hop_size"]), "fmin": int(audio["fmin"]),
            "fmax": int(audio["fmax"]), "class_num": 527, "model_type": "HTSAT",
            "model_name": htsat["name"] if htsat["name"] in HTSAT_NAMES else "tiny",
        },
        "text_cfg": {"context_length": int(text["context_length"]), "vocab_size": laion.VOCAB_SIZE,
                     "width": int(text["width"]), "heads": int(text["heads"]), "layers": int(text["layers"])},
    }  # fmt: skip
    if text_type != "transformer":
        config["text_cfg"]["model_type"] = text_type
    return config


def build(settings: Any, text_type: str = "transformer", roberta_config: Mapping[str, Any] | None = None) -> nn.Module:
    """The CLAP model of `settings` (random initialisation: the caller seeds it)."""
    sizes = None if settings.htsat["name"] in HTSAT_NAMES else settings.htsat
    if text_type == "transformer":
        model = laion.build_clap(model_config(settings), sizes)
    elif text_type == "roberta":
        config = model_config(settings, "roberta")
        model = _with_offline_roberta(lambda: laion.build_clap(config, sizes, "roberta"), roberta_config)
    else:
        raise StemlabError(f"CLAP text branch {text_type!r} is not supported offline; use transformer or roberta")
    laion.set_spec_augment(model, settings.spec_augment)
    return model


def _with_offline_roberta(make, roberta_config: Mapping[str, Any] | None) -> nn.Module:
    """Build with laion-clap's roberta text branch constructed from a config instead of a hub download."""
    from transformers import RobertaConfig, RobertaModel

    model_mod = laion.submodule("model")

    class OfflineRoberta:
        @staticmethod
        def from_pretrained(name: str, *args: Any, **kwargs: Any) -> nn.Module:
            return RobertaModel(RobertaConfig(**dict(roberta_config or {})))

    original = model_mod.RobertaModel
    model_mod.RobertaModel = OfflineRoberta
    try:
        return make()
    finally:
        model_mod.RobertaModel = original


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StemlabError(f"{path}: missing from the pretrained snapshot; add it to pretrained.<name>.files") from None
    except json.JSONDecodeError as exc:
        raise StemlabError(f"{path}: not valid JSON ({exc.msg}); fix the file in the pretrained snapshot") from exc


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def audio_embedding(model: nn.Module, waveform: torch.Tensor) -> torch.Tensor:
    """L2-normalised joint-space embeddings of (batch, clip_samples) 48 kHz mono clips."""
    device = waveform.device
    features = model.audio_projection(model.encode_audio({"waveform": waveform}, device=device)["embedding"])
    return torch.nn.functional.normalize(features, dim=-1)


def text_embedding(model: nn.Module, tokens: Any) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.nn.functional.normalize(model.encode_text(tokens, device=device), dim=-1)


def scores(model: nn.Module, audio: torch.Tensor, text: torch.Tensor, mlp_pairs: bool) -> torch.Tensor:
    """Audio x text similarities of L2-normalised audio and text embeddings, as the loss trained them.

    ClipLoss(mlp_loss=True) never compares audio with text directly: it contrasts the audio embedding with
    the text embedding's MLP head (text_transform) and the audio MLP head (audio_transform) with the text
    embedding. `mlp_pairs` scores those two pairs, as laion-clap's own evaluation does (the mean of both
    logit matrices, each at its logit scale); without it, the plain cosine of LAION's inference hook."""
    if not mlp_pairs:
        return audio @ text.T
    scale_a, scale_t = model.get_logit_scale()
    return (scale_a * audio @ model.text_transform(text).T + scale_t * model.audio_transform(audio) @ text.T) / 2
