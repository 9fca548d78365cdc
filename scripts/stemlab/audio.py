"""Audio I/O for every stage: soundfile for files, soxr for resampling; arrays are float32 (frames, channels)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from stemlab.atomic import atomic_path
from stemlab.errors import StemlabError

SAMPLE_RATE = 44_100


def read_audio(
    path: str | os.PathLike[str],
    *,
    expected_sr: int | None = None,
    allow_empty: bool = False,
) -> tuple[np.ndarray, int]:
    """Read any soundfile-supported file as float32 (frames, channels); bad input raises StemlabError."""
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"{path}: audio file not found; check the path or re-run the rule that makes it")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StemlabError(f"{path}: cannot decode audio ({reason}); re-export or re-download the file") from exc
    if data.shape[0] == 0 and not allow_empty:
        raise StemlabError(f"{path}: audio has zero samples; replace the file or drop the stem")
    if not np.isfinite(data).all():
        raise StemlabError(f"{path}: audio contains NaN or inf samples; re-export the file")
    if expected_sr is not None and sr != expected_sr:
        raise StemlabError(f"{path}: sample rate {sr} Hz, expected {expected_sr} Hz; resample it first")
    return data, int(sr)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr VHQ) of float32 (frames, channels)."""
    if sr_in == sr_out:
        return audio
    import soxr

    return soxr.resample(audio, sr_in, sr_out, quality="VHQ").astype(np.float32, copy=False)


def write_audio(path: str | os.PathLike[str], audio: np.ndarray, sr: int, *, subtype: str = "PCM_24") -> None:
    """Write audio atomically; the format follows the suffix (.flac, .wav)."""
    path = Path(path)
    fmt = {".flac": "FLAC", ".wav": "WAV"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported audio suffix (use .flac or .wav)")
    with atomic_path(path) as tmp:
        sf.write(tmp, np.asarray(audio, dtype=np.float32), sr, format=fmt, subtype=subtype)
