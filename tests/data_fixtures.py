"""Small corpora in the MoisesDB, MUSDB18-HQ and MedleyDB layouts, built from synthetic audio.

Every signal is a decaying tone burst pattern (a different pitch per track) so stems are distinguishable,
with a silent stretch in the middle of some tracks so activity has something to find.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from stemlab.seeding import rng

SR = 44_100


def tone(seconds: float, freq: float, *, sr: int = SR, channels: int = 2, gap: tuple[float, float] | None = None,
         amp: float = 0.2, seed: int = 0) -> np.ndarray:
    """Bursts of a tone every 0.25 s, optional silence in [gap[0], gap[1]) seconds."""
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    env = np.exp(-((t % 0.25) * 12.0))
    x = amp * env * np.sin(2 * np.pi * freq * t)
    x += 0.002 * rng(seed, "noise", freq).standard_normal(n)
    if gap is not None:
        x[int(gap[0] * sr) : int(gap[1] * sr)] = 0.0
    out = np.stack([x * (0.8 + 0.2 * c) for c in range(channels)], axis=1)
    return out.astype(np.float32)


def write_wav(path: Path, audio: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, sr, subtype=subtype)
    return path


# --------------------------------------------------------------------------- MoisesDB

MOISES_STEMS = {  # stem folder -> list of (trackType, frequency)
    "vocals": [("lead_female_singer", 440.0)],
    "bass": [("bass_guitar", 55.0)],
    "drums": [("kick_drum", 80.0), ("snare_drum", 200.0)],
    "guitar": [("clean_electric_guitar", 330.0), ("acoustic_guitar", 392.0)],
}


def song_uuid(seed: int, i: int) -> str:
    return str(uuid.UUID(int=int(rng(seed, "uuid", i).integers(0, 2**62)) << 64 | i))


def make_moisesdb(root: Path, n_songs: int = 3, seconds: float = 3.0, seed: int = 0, wrap: str = "moisesdb_v0.1") -> Path:
    """<root>/<wrap>/<uuid>/data.json + <stem>/<track id>.wav; returns root."""
    base = root / wrap if wrap else root
    for i in range(n_songs):
        song = base / song_uuid(seed, i)
        stems = []
        for s, (stem, tracks) in enumerate(MOISES_STEMS.items()):
            entries = []
            for k, (kind, freq) in enumerate(tracks):
                tid = song_uuid(seed + 1000 + s * 10 + k, i)
                gap = (1.0, 2.0) if stem == "vocals" else None
                write_wav(song / stem / f"{tid}.wav", tone(seconds, freq * (1 + 0.01 * i), gap=gap, seed=i))
                entries.append({"id": tid, "trackType": kind, "type": "audio/x-wav", "extension": "wav", "has_bleed": False})
            stems.append({"id": song_uuid(seed + 2000 + s, i), "stemName": stem, "tracks": entries})
        meta = {"song": f"Song {i}", "artist": f"Artist {i}", "genre": "pop", "stems": stems}
        (song / "data.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


# --------------------------------------------------------------------------- MUSDB18-HQ

MUSDB_FREQS = {"drums": 80.0, "bass": 55.0, "other": 330.0, "vocals": 440.0}


def make_musdb(root: Path, train: list[str], test: list[str], seconds: float = 3.0, wrap: str = "musdb18hq") -> Path:
    base = root / wrap if wrap else root
    for subset, names in (("train", train), ("test", test)):
        (base / subset).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            folder = base / subset / name
            stems = {stem: tone(seconds, f * (1 + 0.02 * i), seed=i) for stem, f in MUSDB_FREQS.items()}
            for stem, audio in stems.items():
                write_wav(folder / f"{stem}.wav", audio)
            write_wav(folder / "mixture.wav", sum(stems.values()))
    return root


# --------------------------------------------------------------------------- MedleyDB

MEDLEY_STEMS = [  # (instrument, raw instruments, frequency)
    ("drum set", ["kick drum", "snare drum"], 80.0),
    ("electric bass", ["electric bass"], 55.0),
    ("female singer", ["female singer"], 440.0),
    ("clean electric guitar", ["clean electric guitar"], 330.0),
    ("distorted electric guitar", ["distorted electric guitar", "distorted electric guitar"], 294.0),
]


def make_medleydb(root: Path, n_songs: int = 3, seconds: float = 3.0, coefficients: bool = True,
                  wrap: str = "MedleyDB/Audio") -> Path:
    """<root>/<wrap>/<TrackId>/{_METADATA.yaml,_MIX.wav,_STEMS/,_RAW/} (+ mixing_coefficients yaml at root)."""
    base = root / wrap if wrap else root
    table = {}
    for i in range(n_songs):
        track = f"Artist{i}_Song{i}"
        folder = base / track
        stems_meta, mix, coefs = {}, None, {}
        for s, (instrument, raws, freq) in enumerate(MEDLEY_STEMS, start=1):
            raw_meta, raw_sum = {}, None
            for r, raw_instrument in enumerate(raws, start=1):
                audio = tone(seconds, freq * r * (1 + 0.01 * i), amp=0.1, seed=i)
                write_wav(folder / f"{track}_RAW" / f"{track}_RAW_{s:02d}_{r:02d}.wav", audio)
                raw_meta[f"R{r:02d}"] = {"filename": f"{track}_RAW_{s:02d}_{r:02d}.wav", "instrument": raw_instrument}
                raw_sum = audio if raw_sum is None else raw_sum + audio
            stem_audio = 0.9 * raw_sum  # "processing"
            write_wav(folder / f"{track}_STEMS" / f"{track}_STEM_{s:02d}.wav", stem_audio, subtype="PCM_24")
            coef = 0.5 + 0.1 * s
            coefs[s] = coef
            mix = coef * stem_audio if mix is None else mix + coef * stem_audio
            stems_meta[f"S{s:02d}"] = {"component": "", "filename": f"{track}_STEM_{s:02d}.wav",
                                       "instrument": instrument, "raw": raw_meta}
        write_wav(folder / f"{track}_MIX.wav", mix)
        meta = {"artist": f"Artist {i}", "title": f"Song {i}", "genre": "Rock", "has_bleed": "no",
                "mix_filename": f"{track}_MIX.wav", "raw_dir": f"{track}_RAW", "stem_dir": f"{track}_STEMS",
                "stems": stems_meta, "version": 2.0}
        (folder / f"{track}_METADATA.yaml").write_text(yaml.safe_dump(meta), encoding="utf-8")
        table[track] = {"audio": coefs, "stft": {k: 1.0 for k in coefs}}
    if coefficients:
        (root / "mixing_coefficients_version2.yaml").write_text(yaml.safe_dump(table), encoding="utf-8")
    return root


# --------------------------------------------------------------------------- synthetic shard


def make_synth_shard(shard_dir: Path, n_songs: int = 2, seconds: float = 3.0, split: str = "train", start: int = 0) -> Path:
    """A shard in the synth engine's output layout (song.json with stems[].files), for linking tests."""
    for i in range(start, start + n_songs):
        song = shard_dir / f"synth-{i:06d}"
        stems = []
        total = None
        for name, freq in (("drums", 80.0), ("bass", 55.0), ("piano", 262.0)):
            wet = tone(seconds, freq, seed=i)
            dry = tone(seconds, freq, amp=0.1, seed=i)
            for kind, audio in (("wet", wet), ("dry", dry)):
                song.joinpath(kind).mkdir(parents=True, exist_ok=True)
                sf.write(song / kind / f"{name}.flac", audio, SR, subtype="PCM_24")
            stems.append({"name": name, "category": name, "role": name,
                          "files": {"wet": f"wet/{name}.flac", "dry": f"dry/{name}.flac"}, "loudness_lufs": -20.0})
            total = wet if total is None else total + wet
        sf.write(song / "mix.flac", total, SR, subtype="PCM_24")
        meta = {"id": song.name, "split": split, "sample_rate": SR, "n_frames": int(total.shape[0]), "stems": stems,
                "genre": "pop", "tempo_bpm": 120.0, "beats": [0.0, 0.5, 1.0]}
        (song / "song.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return shard_dir
