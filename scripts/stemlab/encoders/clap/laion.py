"""laion-clap's own model code, imported offline: every quirk of that import lives in this module.

- laion_clap imports torchvision at import time, whose only wheels for this torch are CUDA-linked. When the
  real import fails, a stand-in torchvision (a real FrozenBatchNorm2d, InterpolationMode, placeholder
  transforms and datasets, each with a ModuleSpec) is installed for the import and removed after it, so
  nothing else believes torchvision is there (transformers checks for it). transformers' model classes are
  imported before the stand-in for the same reason.
- laion_clap's package __init__ puts its folder on sys.path (so clap_module would load twice) and imports
  its training code, which loads three tokenizers from a model hub at import time. The package is
  therefore registered without running its __init__, and only laion_clap.clap_module (the model code:
  create_model, ClipLoss, tokenize) is imported; configs and patches go to that one copy.
- HTSAT's size is fixed per model_name (tiny/base/large); `htsat_sizes` overrides the factory for the
  sizes this project trains at demo scale.
- No hub: text branch "transformer" (CLIP-style, the BPE vocabulary shipped in the wheel), never
  roberta/bert/bart, never CLAP_Module (both download).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import sys
import tempfile
import types
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

VOCAB_SIZE = 49408  # the BPE vocabulary in the wheel; its end-of-text token has the highest id


def _stub(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)
    module.__dict__.update(attrs)
    return module


class _Placeholder:
    """Stands for a torchvision transform or dataset class; laion_clap only needs the names to exist."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("torchvision is not installed: this laion_clap image/dataset path is unavailable")


class _FrozenBatchNorm2d(nn.Module):
    """torchvision.ops.misc.FrozenBatchNorm2d: BatchNorm2d with fixed statistics and affine parameters."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        for name, init in (("weight", torch.ones), ("bias", torch.zeros), ("running_mean", torch.zeros), ("running_var", torch.ones)):
            self.register_buffer(name, init(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        bias = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)


def _torchvision_standin() -> dict[str, types.ModuleType]:
    transforms = _stub(
        "torchvision.transforms",
        InterpolationMode=types.SimpleNamespace(BICUBIC="bicubic", BILINEAR="bilinear", NEAREST="nearest"),
        **{n: _Placeholder for n in ("Normalize", "Compose", "RandomResizedCrop", "ToTensor", "Resize", "CenterCrop")},
    )
    misc = _stub("torchvision.ops.misc", FrozenBatchNorm2d=_FrozenBatchNorm2d)
    ops = _stub("torchvision.ops", misc=misc)
    datasets = _stub("torchvision.datasets", ImageFolder=_Placeholder)
    root = _stub("torchvision", transforms=transforms, ops=ops, datasets=datasets, __version__="0.0.0+stemlab-standin")
    return {m.__name__: m for m in (root, transforms, ops, misc, datasets)}


@contextlib.contextmanager
def _standin_torchvision() -> Iterator[None]:
    modules = _torchvision_standin()
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name in modules:
            sys.modules.pop(name, None)


@lru_cache(maxsize=1)
def clap_module() -> types.ModuleType:
    """laion_clap.clap_module, imported (with the torchvision stand-in when the real one does not load)."""
    import transformers  # noqa: F401  (before any stand-in)
    from transformers import BartModel, BertModel, RobertaModel  # noqa: F401

    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - a CUDA-linked wheel raises OSError/RuntimeError, a missing one ImportError
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            sys.modules.pop(name)
        with _standin_torchvision():
            return _import_model_code()
    return _import_model_code()


def _import_model_code() -> types.ModuleType:
    if "laion_clap" not in sys.modules:
        spec = importlib.util.find_spec("laion_clap")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("laion-clap is not installed; pip install laion-clap==1.1.7 (see requirements.txt)")
        package = types.ModuleType("laion_clap")
        package.__spec__, package.__path__ = spec, list(spec.submodule_search_locations)
        sys.modules["laion_clap"] = package
    return importlib.import_module("laion_clap.clap_module")


def submodule(name: str) -> types.ModuleType:
    """laion_clap.clap_module.<name> (after the offline import of the model code)."""
    clap_module()
    return importlib.import_module(f"laion_clap.clap_module.{name}")


def _htsat_factory(sizes: Mapping[str, Any]):
    htsat = submodule("htsat")

    def create(audio_cfg, enable_fusion=False, fusion_type="None"):
        return htsat.HTSAT_Swin_Transformer(
            spec_size=int(sizes["spec_size"]), patch_size=4, patch_stride=(4, 4), num_classes=audio_cfg.class_num,
            embed_dim=int(sizes["embed_dim"]), depths=list(sizes["depths"]), num_heads=list(sizes["num_heads"]),
            window_size=int(sizes["window_size"]), config=audio_cfg, enable_fusion=enable_fusion, fusion_type=fusion_type,
        )  # fmt: skip

    return create


def htsat_width(sizes: Mapping[str, Any]) -> int:
    """HTSAT's output width: embed_dim x 2^(stages - 1) (what the CLAP config's embed_dim must equal)."""
    return int(sizes["embed_dim"]) * 2 ** (len(sizes["depths"]) - 1)


def build_clap(model_config: Mapping[str, Any], htsat_sizes: Mapping[str, Any] | None = None,
               text_type: str = "transformer") -> nn.Module:  # fmt: skip
    """A CLAP model from a laion-clap JSON config (embed_dim, audio_cfg, text_cfg), built with
    laion_clap.clap_module.create_model; `htsat_sizes` replaces HTSAT's fixed per-name sizes."""
    module = clap_module()
    model_mod = submodule("model")
    name = "stemlab-" + hashlib.sha256(json.dumps(model_config, sort_keys=True).encode()).hexdigest()[:12]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.json"
        path.write_text(json.dumps(dict(model_config)), encoding="utf-8")
        module.add_model_config(str(path))
    original = model_mod.create_htsat_model
    if htsat_sizes is not None:
        model_mod.create_htsat_model = _htsat_factory(htsat_sizes)
    try:
        model, _ = module.create_model(name, text_type, device=torch.device("cpu"))
    finally:
        model_mod.create_htsat_model = original
    return model


def set_spec_augment(model: nn.Module, sizes: Mapping[str, Any]) -> None:
    """Replace HTSAT's training-time SpecAugment (laion-clap fixes it at 2 time stripes of <= 64 frames and
    2 frequency stripes of <= 8 mel bins, sized for 64 bins and 10 s clips) by the same torchlibrosa
    SpecAugmentation with the configured stripes."""
    htsat = submodule("htsat")
    model.audio_branch.spec_augmenter = htsat.SpecAugmentation(
        time_drop_width=int(sizes["time_drop_width"]), time_stripes_num=int(sizes["time_stripes_num"]),
        freq_drop_width=int(sizes["freq_drop_width"]), freq_stripes_num=int(sizes["freq_stripes_num"]),
    )  # fmt: skip


def tokenize(texts: list[str], context_length: int) -> torch.Tensor:
    """Token ids (batch, context_length) with laion-clap's BPE tokenizer (end-of-text has the highest id).

    laion-clap's tokenize cuts a longer text off *with* its end-of-text token, and the text branch reads
    the position of the highest id as the text's summary token: a cut text keeps end-of-text in its last
    position instead (as CLIP's tokenizer does with truncate=True)."""
    tokens = clap_module().tokenize(texts, context_length=context_length)
    cut = tokens[:, -1] != 0
    tokens[cut, -1] = VOCAB_SIZE - 1
    return tokens


def clip_loss():
    """laion-clap's contrastive loss with the MLP heads (ClipLoss(mlp_loss=True))."""
    return clap_module().ClipLoss(mlp_loss=True)
