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


def write_audio(
    path: str | os.PathLike[str], audio: np.ndarray, sr: int, *, subtype: str = "PCM_24", compression_level: float | None = None
) -> None:
    """Write audio atomically; the format follows the suffix (.flac, .wav).

    Integer arrays are written as they are (int32: libsndfile keeps the top bits), floats as float32.
    `compression_level` (FLAC only, 0..1, libsndfile maps it to FLAC levels 0..8; None = libsndfile's
    default, level 5) trades encoding time for file size; the decoded samples are the same at any level.
    """
    path = Path(path)
    fmt = {".flac": "FLAC", ".wav": "WAV"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported audio suffix (use .flac or .wav)")
    kwargs = {"compression_level": compression_level} if fmt == "FLAC" and compression_level is not None else {}
    with atomic_path(path) as tmp:
        data = audio if isinstance(audio, np.ndarray) and audio.dtype in (np.int16, np.int32) else np.asarray(audio, dtype=np.float32)
        sf.write(tmp, data, sr, format=fmt, subtype=subtype, **kwargs)


def wav_truncation(path: str | os.PathLike[str]) -> str | None:
    """Why a RIFF/WAVE file is cut short (its data chunk promises more bytes than the file has), else None.

    libsndfile reads a truncated WAV without complaint (it returns the frames that are there), so a
    download that stopped half-way would pass for a shorter song; this header check catches it.
    Non-WAV files, RF64 and streamed WAVs (data size 0 or 0xFFFFFFFF) are not judged here.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            if len(chunk) < 8:
                break
            ident, length = chunk[:4], int.from_bytes(chunk[4:], "little")
            if ident == b"data":
                if length in (0, 0xFFFFFFFF):
                    return None
                have = size - pos - 8
                if have < length:
                    return f"data chunk holds {have} of {length} bytes"
                return None
            pos += 8 + length + (length & 1)
    return "no data chunk"


def read_audio_complete(
    path: str | os.PathLike[str],
    *,
    expected_sr: int | None = None,
    allow_empty: bool = False,
) -> tuple[np.ndarray, int]:
    """read_audio that also rejects truncated WAV files (see wav_truncation)."""
    path = Path(path)
    if path.is_file():
        problem = wav_truncation(path)
        if problem is not None:
            raise StemlabError(f"{path}: truncated or corrupt WAV ({problem}); re-download or re-extract the file")
    return read_audio(path, expected_sr=expected_sr, allow_empty=allow_empty)


def audio_info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(frames, sample rate, channels) from the header, with the same one-line errors as read_audio."""
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"{path}: audio file not found; check the path or re-run the rule that makes it")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StemlabError(f"{path}: cannot decode audio ({reason}); re-export or re-download the file") from exc
    return int(info.frames), int(info.samplerate), int(info.channels)
