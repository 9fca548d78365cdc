"""Per-song features of one canonical shard -> results/data/features/<corpus>/<shard>.parquet.

One row per song: essentia tempo and beats (RhythmExtractor2013 on the mono mix), key (KeyExtractor),
EBU R128 integrated loudness and loudness range of the mix (essentia LoudnessEBUR128), and BS.1770 (stemlab.loudness)
integrated loudness and sample peak of the mix and of every wet stem (list columns aligned with `stems`).
Silent or sub-400 ms signals have null loudness.

Config: FeatureSettings.from_config reads `data.features` (what the preprocess rule passes as `--config`).
Its defaults are kept here (the data CLIs run by hand; the data env has no jsonschema); they equal the
schema's, which tests/test_config_schema.py checks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from stemlab.audio import SAMPLE_RATE, read_audio
from stemlab.loudness import rounded_lufs
from stemlab.data.manifest import read_manifests, write_table
from stemlab.errors import StemlabError, check_section_keys
from stemlab.logs import progress

RHYTHM_METHODS = ("multifeature", "degara")
KEY_PROFILES = ("bgate", "edma", "temperley", "krumhansl", "shaath")


@dataclass(frozen=True)
class FeatureSettings:
    rhythm_method: str = "multifeature"  # essentia RhythmExtractor2013 method
    key_profile: str = "bgate"  # essentia KeyExtractor profile

    @classmethod
    def from_config(cls, section: Mapping | None) -> FeatureSettings:
        """data.features (a missing key keeps its default)."""
        allowed = {"rhythm_method": RHYTHM_METHODS, "key_profile": KEY_PROFILES}
        values = check_section_keys(section, allowed, "data.features")
        for key, value in values.items():
            if value not in allowed[key]:
                raise StemlabError(f"data.features.{key} is {value!r}; use one of {', '.join(allowed[key])}")
        return cls(**values)


SCHEMA = pa.schema(
    [
        ("song", pa.string()),
        ("corpus", pa.string()),
        ("shard", pa.string()),
        ("split", pa.string()),
        ("duration_s", pa.float64()),
        ("bpm", pa.float64()),
        ("bpm_confidence", pa.float64()),
        ("beats", pa.list_(pa.float64())),
        ("key", pa.string()),
        ("scale", pa.string()),
        ("key_strength", pa.float64()),
        ("mix_lufs", pa.float64()),
        ("mix_ebu_lufs", pa.float64()),
        ("mix_lra", pa.float64()),
        ("mix_peak_db", pa.float64()),
        ("stems", pa.list_(pa.string())),
        ("stem_lufs", pa.list_(pa.float64())),
        ("stem_peak_db", pa.list_(pa.float64())),
    ]
)


def _peak_db(audio: np.ndarray) -> float | None:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return round(20 * math.log10(peak), 4) if peak > 0 else None


def _finite(value: float) -> float | None:
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


def song_features(song_dir: Path, settings: FeatureSettings = FeatureSettings()) -> dict:
    import essentia
    import essentia.standard as es

    essentia.log.infoActive = False
    song = json.loads((song_dir / "song.json").read_text(encoding="utf-8"))
    mix, sr = read_audio(song_dir / song.get("mix", "mix.flac"), expected_sr=SAMPLE_RATE)
    mono = np.ascontiguousarray(mix.mean(axis=1), dtype=np.float32)
    row: dict = {"song": song["id"], "duration_s": mix.shape[0] / sr}
    if np.any(mono) and mono.shape[0] >= sr:  # essentia's trackers need a second of non-silent audio
        bpm, beats, confidence, _, _ = es.RhythmExtractor2013(method=settings.rhythm_method)(mono)
        key, scale, strength = es.KeyExtractor(profileType=settings.key_profile, sampleRate=sr)(mono)
        row.update(bpm=_finite(bpm), bpm_confidence=_finite(confidence), beats=[round(float(b), 5) for b in beats])
        row.update(key=str(key), scale=str(scale), key_strength=_finite(strength))
    else:
        row.update(bpm=None, bpm_confidence=None, beats=[], key=None, scale=None, key_strength=None)
    stereo = mix if mix.shape[1] == 2 else np.repeat(mix, 2, axis=1)
    if mono.shape[0] >= 3 * sr and np.any(mono):  # EBU R128 short-term needs 3 s
        _, _, integrated, lra = es.LoudnessEBUR128(sampleRate=sr)(np.ascontiguousarray(stereo, dtype=np.float32))
        row.update(mix_ebu_lufs=_finite(integrated), mix_lra=_finite(lra))
    else:
        row.update(mix_ebu_lufs=None, mix_lra=None)
    row["mix_lufs"] = rounded_lufs(mix, sr)
    row["mix_peak_db"] = _peak_db(mix)
    row["stems"], row["stem_lufs"], row["stem_peak_db"] = [], [], []
    for stem in song["stems"]:
        audio, _ = read_audio(song_dir / stem["files"]["wet"], expected_sr=SAMPLE_RATE)
        row["stems"].append(stem["name"])
        row["stem_lufs"].append(rounded_lufs(audio, sr))
        row["stem_peak_db"].append(_peak_db(audio))
    return row


def shard_features(stems_dir: Path, out: Path, settings: FeatureSettings) -> int:
    manifest = read_manifests([stems_dir])
    rows = []
    for rec in progress(list(manifest.itertuples(index=False)), desc=f"features {stems_dir.name}"):
        song_dir = stems_dir / rec.path
        if not (song_dir / "song.json").is_file():
            raise StemlabError(f"{song_dir / 'song.json'}: missing; re-run the stems rule for {stems_dir}")
        row = song_features(song_dir, settings)
        row.update(corpus=rec.corpus, shard=rec.shard, split=rec.split)
        rows.append(row)
    write_table(out, sorted(rows, key=lambda r: r["song"]), SCHEMA)
    return len(rows)
