"""Write one canonical song directory from a SongSpec: song.json, mix.flac, wet/<stem>.flac, dry/<stem>.flac.

Sub-tracks of one category are summed into one wet (and dry) file. The per-category average that the
track-relationship model uses is that sum times `average_scale` (= 1 / n_tracks), recorded per stem, so
no second file is written. When a sum (or the mix) would clip the FLAC, the whole song (mix, wet and dry
alike, so relations between them hold) is scaled by one gain, recorded as data.gain_db.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from stemlab.audio import SAMPLE_RATE, write_audio
from stemlab.data.conform import AudioPolicy, Header, inspect, load, song_length
from stemlab.loudness import rounded_lufs
from stemlab.data.spec import SongSpec, SourceTrack

CEILING = 0.999  # peak a rescaled song is brought to (PCM full scale is 1.0)
DATA_LAYOUT_VERSION = 1


def _rel(path: Path, root: Path) -> str:
    """Path relative to the corpus root (not resolved: resources/corpora may be a tree of symlinks)."""
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return path.name


def _sum_tracks(tracks: list[SourceTrack], headers: dict[Path, Header], policy: AudioPolicy, n: int) -> np.ndarray:
    total = np.zeros((n, policy.n_channels), dtype=np.float32)
    for track in tracks:
        audio = load(headers[track.path], policy, n)
        if track.gain != 1.0:
            audio *= np.float32(track.gain)
        total += audio
    return total


def _db(x: float) -> float:
    return round(20.0 * math.log10(x), 4)


def build_song(spec: SongSpec, out_dir: Path, policy: AudioPolicy, root: Path) -> dict:
    """Convert one song into `out_dir` (which must not exist); returns the song.json it wrote."""
    headers = {t.path: inspect(t.path, policy) for t in spec.all_tracks()}
    n = song_length(list(headers.values()), policy, spec.id)
    out_dir.mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=out_dir.parent))
    try:
        return _build(spec, out_dir, scratch, policy, root, headers, n)
    finally:
        for f in scratch.iterdir():
            f.unlink()
        scratch.rmdir()


def _build(spec, out_dir, scratch, policy, root, headers, n) -> dict:
    pending: list[tuple[Path, Path]] = []  # (scratch float WAV, canonical FLAC)
    peak = 0.0
    wet_sum = np.zeros((n, policy.n_channels), dtype=np.float32)
    stems = []
    for stem in spec.stems:
        entry: dict = {"name": stem.category, "category": stem.category, "files": {}}
        for kind, tracks in (("wet", stem.wet), ("dry", stem.dry)):
            if not tracks:
                continue
            audio = _sum_tracks(tracks, headers, policy, n)
            peak = max(peak, float(np.max(np.abs(audio))))
            if kind == "wet":
                wet_sum += audio
            tmp = scratch / f"{kind}-{stem.category}.wav"
            sf.write(tmp, audio, SAMPLE_RATE, subtype="FLOAT")
            rel = f"{kind}/{stem.category}.flac"
            pending.append((tmp, out_dir / rel))
            entry["files"][kind] = rel
            entry[f"{kind}_sources"] = [
                {"path": _rel(t.path, root), "label": t.label, "gain": t.gain} for t in tracks
            ]
        entry["n_tracks"] = len(stem.wet)
        entry["reduction"] = "sum"
        entry["average_scale"] = 1.0 / len(stem.wet)
        if stem.dry_missing:
            entry["dry_missing"] = stem.dry_missing
        stems.append(entry)

    if spec.mix is not None:
        mix = load(headers[spec.mix.path], policy, n)
        if spec.mix.gain != 1.0:
            mix *= np.float32(spec.mix.gain)
        energy = float(np.sum(np.square(mix, dtype=np.float64)))
        resid = float(np.sum(np.square(mix - wet_sum, dtype=np.float64)))
        residual_db = round(10 * math.log10(max(resid, 1e-20) / energy), 3) if energy > 0 else None
        mix_source = "file"
    else:
        mix, residual_db, mix_source = wet_sum, None, "sum_of_wet"
    peak = max(peak, float(np.max(np.abs(mix))))
    tmp = scratch / "mix.wav"
    sf.write(tmp, mix, SAMPLE_RATE, subtype="FLOAT")
    pending.append((tmp, out_dir / "mix.flac"))
    del mix, wet_sum

    gain = CEILING / peak if peak > CEILING else 1.0
    loudness: dict[str, float | None] = {}
    for tmp, target in pending:
        audio, _ = sf.read(tmp, dtype="float32", always_2d=True)
        if gain != 1.0:
            audio *= np.float32(gain)
        write_audio(target, audio, SAMPLE_RATE, subtype=policy.flac_subtype)
        loudness[target.relative_to(out_dir).as_posix()] = rounded_lufs(audio, SAMPLE_RATE)
    for entry in stems:
        entry["loudness_lufs"] = loudness[entry["files"]["wet"]]
        if "dry" in entry["files"]:
            entry["dry_loudness_lufs"] = loudness[entry["files"]["dry"]]

    adjusted = {
        _rel(h.path, root): {"frames": h.frames, "sample_rate": h.sample_rate}
        for h in headers.values()
        if h.frames_out != n
    }
    resampled = {_rel(h.path, root): h.sample_rate for h in headers.values() if h.sample_rate != SAMPLE_RATE}
    channel_fix = {_rel(h.path, root): h.channels for h in headers.values() if h.channels != policy.n_channels}
    song = {
        "id": spec.id,
        "corpus": spec.corpus,
        "split": spec.split,
        "sample_rate": SAMPLE_RATE,
        "n_frames": n,
        "channels": policy.n_channels,
        "duration_s": round(n / SAMPLE_RATE, 6),
        "mix": "mix.flac",
        "mix_loudness_lufs": loudness["mix.flac"],
        "stems": stems,
        "source": {**spec.extras, "dir": _rel(spec.source_dir, root)},
        "data": {
            "layout_version": DATA_LAYOUT_VERSION,
            "mix_source": mix_source,
            "mix_residual_db": residual_db,
            "gain_db": _db(gain),
            "channel_policy": policy.channels,
            "channels_converted": channel_fix,
            "length_policy": policy.length_mismatch,
            "length_adjusted": adjusted,
            "resampled_from": resampled,
            "average": "per-category average = wet file x average_scale (1 / n_tracks)",
        },
    }
    write_song_json(out_dir, song)
    return song


def write_song_json(song_dir: Path, song: dict) -> None:
    text = json.dumps(song, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    (song_dir / "song.json").write_text(text, encoding="utf-8")
