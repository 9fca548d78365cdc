"""One annotated FX chain rendered on any dry content: the pairs the effect encoder learns from and is
evaluated on.

A synthetic stem's chain (song.json `stems[*].fx`) starts with a `trim` Gain that brought *its* dry stem
to the engine's reference loudness (stemlab.synth.mixing.REFERENCE_LUFS). On other content that gain is
meaningless, so a chain is rendered as the engine would have rendered it on that content: the dry crop is
trimmed to the reference loudness (measured on the crop), then every other stage, fader and pan are
re-applied by stemlab.synth.mixing.apply_stem_fx. A pre-roll of dry audio before the crop runs through
the chain first and is cut off, so reverb tails, delays and compressor envelopes are settled.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stemlab.data.segment_tables import read_window
from stemlab.loudness import integrated_loudness
from stemlab.synth.mixing import REFERENCE_LUFS, apply_stem_fx

SAMPLE_RATE = 44_100
MAX_TRIM_DB = 40.0  # a near-silent crop is not boosted beyond this
SILENT_LUFS = -70.0  # crops quieter than this count as silent (BS.1770 absolute gate)


@dataclass(frozen=True)
class Content:
    """A dry crop: `samples` frames of `path` from `start`, rendered after `preroll` frames before it."""

    path: Path
    start: int
    samples: int
    preroll: int

    def read(self) -> np.ndarray:
        """(frames, 2) float32 of the pre-roll + crop (zeros before the file's start)."""
        lead = min(self.preroll, self.start)
        data = read_window(self.path, self.start - lead, lead + self.samples)  # (2, frames)
        pad = self.preroll - lead
        if pad:
            data = np.concatenate([np.zeros((2, pad), dtype=np.float32), data], axis=1)
        return np.ascontiguousarray(data.T)


def content_loudness(dry: np.ndarray) -> float:
    """LUFS of a dry crop (frames, 2); -inf when silent or shorter than one gating block."""
    if dry.shape[0] < int(0.4 * SAMPLE_RATE) + 1:
        rms = float(np.sqrt(np.mean(np.square(dry, dtype=np.float64)))) if dry.size else 0.0
        return 20 * math.log10(rms) - 0.691 if rms > 0 else -math.inf
    return float(integrated_loudness(dry, SAMPLE_RATE))


def trim_gain_db(dry: np.ndarray) -> float:
    lufs = content_loudness(dry)
    if not math.isfinite(lufs):
        return 0.0
    return float(min(MAX_TRIM_DB, REFERENCE_LUFS - lufs))


def without_trim(fx: dict[str, Any]) -> dict[str, Any]:
    """The chain without its `trim` stages (the content-specific part)."""
    out = copy.deepcopy(fx)
    out["chain"] = [stage for stage in fx.get("chain", []) if stage.get("stage") != "trim"]
    return out


def render(fx: dict[str, Any], dry: np.ndarray, preroll: int) -> np.ndarray:
    """(2, samples) float32: `fx` (an annotated stem chain) applied to the trimmed dry (frames, 2); the
    first `preroll` frames are rendered and dropped."""
    gain = np.float32(10.0 ** (trim_gain_db(dry[preroll:] if dry.shape[0] > preroll else dry) / 20.0))
    wet = apply_stem_fx(np.ascontiguousarray(dry * gain, dtype=np.float32), without_trim(fx), SAMPLE_RATE)
    return np.ascontiguousarray(wet[preroll:].T, dtype=np.float32)


def is_audible(dry: np.ndarray, preroll: int) -> bool:
    return content_loudness(dry[preroll:]) > SILENT_LUFS
