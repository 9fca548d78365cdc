"""Audio I/O for every stage: soundfile for files, soxr for resampling; arrays are float32 (frames, channels)."""

from __future__ import annotations

import io
import os
import struct
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
    data = audio if isinstance(audio, np.ndarray) and audio.dtype in (np.int16, np.int32) else np.asarray(audio, dtype=np.float32)
    with atomic_path(path) as tmp:
        if fmt == "FLAC":
            # libFLAC hands libsndfile one frame (a few kB) at a time: encoded in memory and written in
            # one call, the file costs one write instead of thousands (same bytes)
            buf = io.BytesIO()
            sf.write(buf, data, sr, format=fmt, subtype=subtype, **kwargs)
            tmp.write_bytes(buf.getbuffer())
        else:
            sf.write(tmp, data, sr, format=fmt, subtype=subtype, **kwargs)


_W64_TAIL = bytes.fromhex("f3acd3118cd100c04f8edb8a")
W64_RIFF = b"riff" + bytes.fromhex("2e91cf11a5d628db04c10000")
W64_WAVE = b"wave" + _W64_TAIL
W64_DATA = b"data" + _W64_TAIL
CONTAINERS = "WAV, RF64, W64, AIFF/AIFC or FLAC"
# AIFC compression types stored as plain samples: SSND bytes = frames x channels x bytes per sample
_AIFC_PCM = frozenset({b"NONE", b"twos", b"sowt", b"raw ", b"fl32", b"FL32", b"fl64", b"FL64", b"in24", b"42ni", b"in32", b"23ni"})


def container(head: bytes) -> str | None:
    """The audio container of a file from its first 40 bytes, or None if it is none of CONTAINERS."""
    if head[8:12] == b"WAVE" and head[:4] in (b"RIFF", b"RIFX"):
        return "WAV"
    if head[8:12] == b"WAVE" and head[:4] in (b"RF64", b"BW64"):
        return "RF64"
    if head[:16] == W64_RIFF and head[24:40] == W64_WAVE:
        return "W64"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if head[:4] == b"fLaC":
        return "FLAC"
    return None


def _chunks(fh, pos: int, size: int, id_len: int, size_fmt: str, align: int, with_header: bool = False):
    """(chunk id, offset of its body, declared body length) of every chunk header from `pos` on."""
    head = id_len + struct.calcsize(size_fmt)
    while pos + head <= size:
        fh.seek(pos)
        raw = fh.read(head)
        length = struct.unpack(size_fmt, raw[id_len:])[0] - (head if with_header else 0)
        if length < 0:
            return
        yield raw[:id_len], pos + head, length
        pos += head + length + (-length % align)


def _cut(what: str, have: int, length: int) -> str | None:
    return f"{what} holds {max(have, 0)} of {length} bytes" if have < length else None


def _riff_truncation(fh, size: int, big: bool) -> str | None:
    fmt = ">I" if big else "<I"
    for ident, body, length in _chunks(fh, 12, size, 4, fmt, 2):
        if ident == b"data":
            return None if length in (0, 0xFFFFFFFF) else _cut("data chunk", size - body, length)
    return "no data chunk"


def _rf64_truncation(fh, size: int) -> str | None:
    data_size = None
    for ident, body, length in _chunks(fh, 12, size, 4, "<I", 2):
        if ident == b"ds64" and length >= 16:
            fh.seek(body + 8)
            data_size = struct.unpack("<Q", fh.read(8))[0]
        elif ident == b"data":
            if length == 0xFFFFFFFF:
                if data_size is None:
                    return "data chunk size is in a ds64 chunk that is missing"
                length = data_size
            return _cut("data chunk", size - body, length)
    return "no data chunk"


def _w64_truncation(fh, size: int) -> str | None:
    for ident, body, length in _chunks(fh, 40, size, 16, "<Q", 8, with_header=True):
        if ident == W64_DATA:
            return _cut("data chunk", size - body, length)
    return "no data chunk"


def _aiff_truncation(fh, size: int) -> str | None:
    comm = ssnd = None
    for ident, body, length in _chunks(fh, 12, size, 4, ">I", 2):
        if ident == b"COMM" and length >= 18:
            fh.seek(body)
            comm = fh.read(min(length, 22))
        elif ident == b"SSND":
            ssnd = (body, length)
    if comm is None or ssnd is None:
        return "no COMM chunk" if comm is None else "no SSND chunk"
    body, length = ssnd
    cut = _cut("SSND chunk", size - body, length)
    if cut or length < 8 or (len(comm) >= 22 and comm[18:22] not in _AIFC_PCM):
        return cut  # a compressed AIFC: only the chunk size is checked
    channels, frames, bits = struct.unpack(">hIh", comm[:8])
    fh.seek(body)
    offset = struct.unpack(">I", fh.read(4))[0]
    have = (length - 8 - offset) // max(channels * ((bits + 7) // 8), 1)
    return f"COMM declares {frames} frames but the SSND chunk holds {have}" if have < frames else None


def audio_truncation(path: str | os.PathLike[str]) -> str | None:
    """Why a WAV, RF64, W64 or AIFF/AIFC file is cut short (its header promises more than the file has), else None.

    libsndfile reads a truncated file of these containers without complaint (it returns the frames that
    are there), so a download that stopped half-way would pass for a shorter song; this header check
    catches it. FLAC (its decoder reports a cut stream) and other containers are not judged here, nor
    streamed WAVs (data size 0 or 0xFFFFFFFF).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(40)
        kind = container(head)
        try:
            if kind == "WAV":
                return _riff_truncation(fh, size, big=head[:4] == b"RIFX")
            if kind == "RF64":
                return _rf64_truncation(fh, size)
            if kind == "W64":
                return _w64_truncation(fh, size)
            if kind == "AIFF":
                return _aiff_truncation(fh, size)
        except struct.error:  # a header field runs past the end of the file
            return "the header is cut short"
    return None


def read_audio_complete(
    path: str | os.PathLike[str],
    *,
    expected_sr: int | None = None,
    allow_empty: bool = False,
) -> tuple[np.ndarray, int]:
    """read_audio for source files: only the CONTAINERS, and none that is cut short (see audio_truncation)."""
    path = Path(path)
    if path.is_file():
        with open(path, "rb") as fh:
            kind = container(fh.read(40))
        if kind is None:
            raise StemlabError(
                f"{path}: not a {CONTAINERS} file (the containers checked for completeness); re-export it as WAV or "
                "FLAC, or re-download it if it is damaged"
            )
        problem = audio_truncation(path)
        if problem is not None:
            raise StemlabError(f"{path}: truncated or corrupt {kind} ({problem}); re-download or re-extract the file")
    data, sr = read_audio(path, expected_sr=expected_sr, allow_empty=allow_empty)
    declared = audio_info(path)[0]
    if declared and data.shape[0] < declared:
        raise StemlabError(f"{path}: truncated audio ({data.shape[0]} of {declared} frames decode); re-download or re-extract the file")
    return data, sr


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
