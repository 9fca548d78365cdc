"""Source audio -> canonical audio: sample rate, channel and length policies (config `data.audio`).

AudioPolicy keeps its own defaults (the data CLIs run by hand, and the data env has no jsonschema to read
the schema with); they equal the schema's `data.audio` defaults, which tests/test_config_schema.py checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stemlab.audio import SAMPLE_RATE, audio_info, read_audio_complete, resample
from stemlab.errors import StemlabError, check_section_keys

CHANNEL_POLICIES = ("stereo", "mono")
RATE_POLICIES = ("resample", "reject")
LENGTH_POLICIES = ("pad", "trim", "reject")
BAD_SONG_POLICIES = ("fail", "skip")
FLAC_SUBTYPES = ("PCM_16", "PCM_24")


@dataclass(frozen=True)
class AudioPolicy:
    channels: str = "stereo"
    sample_rate_mismatch: str = "resample"
    length_mismatch: str = "pad"
    flac_subtype: str = "PCM_24"
    bad_song: str = "fail"  # a song with bad input fails the job, or is skipped and listed in skipped.json

    @classmethod
    def from_config(cls, audio_cfg: dict | None) -> AudioPolicy:
        """data.audio (a missing key keeps its default; an unknown one is an error)."""
        allowed = {
            "channels": CHANNEL_POLICIES,
            "sample_rate_mismatch": RATE_POLICIES,
            "length_mismatch": LENGTH_POLICIES,
            "flac_subtype": FLAC_SUBTYPES,
            "bad_song": BAD_SONG_POLICIES,
        }
        cfg = check_section_keys(audio_cfg, allowed, "data.audio")
        for key, value in cfg.items():
            if value not in allowed[key]:
                raise StemlabError(f"data.audio.{key} is {value!r}; use one of {', '.join(allowed[key])}")
        return cls(**cfg)

    @property
    def n_channels(self) -> int:
        return 2 if self.channels == "stereo" else 1


@dataclass(frozen=True)
class Header:
    path: Path
    frames: int  # at the source rate
    sample_rate: int
    channels: int

    @property
    def frames_out(self) -> int:
        """Length after resampling to 44.1 kHz (soxr's output length)."""
        if self.sample_rate == SAMPLE_RATE:
            return self.frames
        return int(round(self.frames * SAMPLE_RATE / self.sample_rate))


def inspect(path: Path, policy: AudioPolicy) -> Header:
    """Header checks before any decoding: empty files, channel count, sample rate policy."""
    frames, sr, channels = audio_info(path)
    if frames == 0:
        raise StemlabError(f"{path}: audio has zero samples; replace the file or delete this stem from the song")
    if channels > 2:
        raise StemlabError(f"{path}: {channels} channels; downmix it to mono or stereo (data.audio.channels is {policy.channels})")
    if sr != SAMPLE_RATE and policy.sample_rate_mismatch == "reject":
        raise StemlabError(
            f"{path}: sample rate {sr} Hz, expected {SAMPLE_RATE} Hz; resample the file or set "
            "data.audio.sample_rate_mismatch: resample"
        )
    return Header(path, frames, sr, channels)


def to_channels(audio: np.ndarray, n_channels: int) -> np.ndarray:
    if audio.shape[1] == n_channels:
        return audio
    if n_channels == 1:
        return audio.mean(axis=1, keepdims=True, dtype=np.float32)
    return np.repeat(audio[:, :1], n_channels, axis=1)


def fit_length(audio: np.ndarray, n_frames: int) -> np.ndarray:
    if audio.shape[0] == n_frames:
        return audio
    if audio.shape[0] > n_frames:
        return audio[:n_frames]
    out = np.zeros((n_frames, audio.shape[1]), dtype=np.float32)
    out[: audio.shape[0]] = audio
    return out


def load(header: Header, policy: AudioPolicy, n_frames: int) -> np.ndarray:
    """Decode one source file and conform it: float32 (n_frames, channels) at 44.1 kHz."""
    audio, sr = read_audio_complete(header.path)
    audio = resample(audio, sr, SAMPLE_RATE)
    return fit_length(to_channels(audio, policy.n_channels), n_frames)


def song_length(headers: list[Header], policy: AudioPolicy, song: str) -> int:
    """The canonical length of a song whose files may differ in length (data.audio.length_mismatch)."""
    lengths = [h.frames_out for h in headers]
    short, long = min(lengths), max(lengths)
    if short == long:
        return long
    if policy.length_mismatch == "reject":
        a = headers[lengths.index(short)].path
        b = headers[lengths.index(long)].path
        raise StemlabError(
            f"{a}: {short} frames but {b} has {long} (song {song}); fix the files or set "
            "data.audio.length_mismatch to pad or trim"
        )
    return long if policy.length_mismatch == "pad" else short
