"""Fx-Encoder++ (PyPI fxencoder-plusplus 0.1.5) as the pretrained source of the effect encoder.

The package builds its network offline when its CLAP sub-modules are off
(`FxEncoderPlusPlus(audio_clap_module=False, text_clap_module=False)`: 84 M parameters); its own
`load_model()` downloads weights from a model hub, so the weights come from a `pretrained:` snapshot
(download_pretrained) instead and are loaded here.

- Import: the package imports laion_clap at import time but uses it only in the CLAP sub-modules, which
  stay off. laion_clap's import needs torchvision (broken for this torch build) and a transformers stack,
  so when laion_clap is not imported already, a placeholder module stands in for the duration of the
  import and is removed from sys.modules again (the package keeps it as an unused global).
- Checkpoint: the stock file `fxenc_plusplus_default.pt` is what the package's `load_model` reads: either
  a bare state dict or {"epoch", "state_dict", ...}, keys possibly prefixed `module.` (DataParallel),
  and holding the CLAP sub-modules (`audio_clap_model.*`, `text_clap_model.*`) that are off here. Those
  are dropped, the prefix stripped, the rest loaded strictly (one-line error naming a missing key).
- Embedding: MEGAMI takes the encoder's 2,048-d output before the projection head
  (`model.fx_encoder(x)["embedding"]`; `get_fx_embedding`'s 128-d projection is not used) and joins it with
  its 64 interpretable features: 2,112-d (stemlab.encoders.fx.features.join).
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from stemlab.encoders.fx.features import af_embedding, join
from stemlab.errors import StemlabError

SAMPLE_RATE = 44_100
EMBEDDING_DIM = 2048  # MixtureFxEncoder's output
STOCK_CHANNELS = (64, 128, 256, 512, 1024, 2048)  # conv block widths of the stock MixtureFxEncoder
# the widths `build` makes by default: the stock ones; a test sets narrower ones (same key layout, smaller shapes)
CHANNELS: tuple[int, ...] = STOCK_CHANNELS
_OFF_MODULES = ("audio_clap_model.", "text_clap_model.")
MIN_SAMPLES = 512 * 32 + 2048  # five 2x2 poolings of 512-sample hops need >= 32 frames


def package():
    """fxencoder_plusplus.model, imported without laion_clap (see the module docstring)."""
    if "fxencoder_plusplus.model" in sys.modules:
        return sys.modules["fxencoder_plusplus.model"]
    placeholder = None
    if "laion_clap" not in sys.modules:
        placeholder = types.ModuleType("laion_clap")
        placeholder.__doc__ = "placeholder: fxencoder_plusplus's CLAP sub-modules are not used by stemlab"
        sys.modules["laion_clap"] = placeholder
    try:
        import fxencoder_plusplus.model as model
    except ImportError as exc:
        raise StemlabError(
            f"cannot import fxencoder_plusplus ({exc}); install fxencoder-plusplus==0.1.5 (requirements.txt) "
            "or set models.fx_encoder.settings.source: trained"
        ) from exc
    finally:
        if placeholder is not None and sys.modules.get("laion_clap") is placeholder:
            del sys.modules["laion_clap"]
    return model


_INIT_FUNCTIONS = ("uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
                   "trunc_normal_", "constant_", "zeros_", "ones_")


@contextlib.contextmanager
def _no_init() -> Iterator[None]:
    """Skip torch.nn.init's random initialisation while building (every entry is then loaded from the
    checkpoint, strictly): 84 M parameters initialise in ~15 s on a CPU, allocate in well under one."""
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS}
    for name in _INIT_FUNCTIONS:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


def build(channels: Sequence[int] | None = None) -> nn.Module:
    """FxEncoderPlusPlus with its CLAP sub-modules off (extractor on, as in the stock checkpoint), weights
    uninitialised (load them with `load_weights`); `channels` other than the stock widths replaces the
    conv blocks and fc_1 by narrower ones (same entry names, smaller shapes)."""
    pkg = package()
    channels = tuple(CHANNELS if channels is None else channels)
    if len(channels) != len(STOCK_CHANNELS):
        raise ValueError(f"Fx-Encoder++ has {len(STOCK_CHANNELS)} conv blocks")
    with _no_init():
        net = pkg.FxEncoderPlusPlus(embed_dim=EMBEDDING_DIM, audio_clap_module=False, text_clap_module=False,
                                    extractor_module=True, device="cpu")  # fmt: skip
        if channels != STOCK_CHANNELS:
            enc = net.fx_encoder
            widths = (2, *channels)
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]), start=1):
                setattr(enc, f"conv_block{i}", pkg.ConvBlock(in_channels=a, out_channels=b))
            enc.fc_1 = nn.Linear(channels[-1], EMBEDDING_DIM, bias=True)
    return net


def adapt_state_dict(obj: object, where: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The stock checkpoint's entries that the CLAP-less network has (see the module docstring)."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state:
        raise StemlabError(f"{where}: not an Fx-Encoder++ checkpoint (no state dict); check pretrained.<name>.files")
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key.startswith(_OFF_MODULES):
            continue
        out[key] = value
    return out


def load_weights(net: nn.Module, path: str | os.PathLike[str]) -> None:
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"{path}: Fx-Encoder++ checkpoint not found; run the download_pretrained rule (snakemake downloads)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decode failure is the same user problem
        raise StemlabError(f"{path}: cannot read the Fx-Encoder++ checkpoint ({type(exc).__name__}); check its url and sha256") from exc
    state = adapt_state_dict(obj, path)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        what = f"lacks {missing[0]}" if missing else f"has unknown entry {unexpected[0]}"
        raise StemlabError(f"{path}: the checkpoint {what}; it is not the fxencoder-plusplus 0.1.5 default model")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shapes
        line = str(exc).splitlines()[-1].strip() if str(exc) else "shape mismatch"
        raise StemlabError(f"{path}: checkpoint shapes do not fit Fx-Encoder++ ({line})") from exc


class PretrainedEmbedder(nn.Module):
    """join(Fx-Encoder++ 2,048-d encoder output, MEGAMI features): 2,112-d, unit norm. Never trained."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.fxpp = net

    @property
    def dim(self) -> int:
        return EMBEDDING_DIM + 64

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio.float()
        padded = torch.nn.functional.pad(x, (0, MIN_SAMPLES - x.shape[-1])) if x.shape[-1] < MIN_SAMPLES else x
        learned = self.fxpp.fx_encoder(padded)["embedding"]
        return join(learned, af_embedding(x, SAMPLE_RATE))
