"""Segment tables: for each window of data.segments, every (song, stem, start, length) with its activity.

Windows start at 0, hop, 2*hop, ... and only full windows are listed; a song shorter than one window
gives one segment of its full length (the model pads). Activity: the stem's signal is cut into frames of
`frame` samples; a frame is active when its RMS (power averaged over channels) is above `threshold_db`
dBFS; a stem is active in a segment when at least `min_active_fraction` of the frames that overlap the
segment are active. `rms_db` is the exact RMS of the stem over the segment (null for digital silence).

One job reads a shard's audio once and writes the rows of every window (column `window`); a merge rule
splits them into results/data/segments/<corpus>/<window>.parquet. No audio is copied.

Config: the segments_shard rule passes {"segments": data.segments, "activity": data.activity} as
`--config` (segments_config). Activity keeps its own defaults (the data CLIs run by hand; the data env has
no jsonschema); they equal the schema's `data.activity` defaults, which tests/test_config_schema.py checks.
The windows have no Python defaults: a job names every window it cuts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stemlab.audio import SAMPLE_RATE, read_audio
from stemlab.data.manifest import read_manifests, write_arrow, write_table
from stemlab.errors import StemlabError, check_section_keys
from stemlab.logs import progress

SCHEMA = pa.schema(
    [
        ("corpus", pa.string()),
        ("shard", pa.string()),
        ("split", pa.string()),
        ("song", pa.string()),
        ("stem", pa.string()),
        ("category", pa.string()),
        ("window", pa.string()),  # the data.segments window (megami, stage, ...)
        ("start", pa.int64()),  # first sample (44.1 kHz)
        ("length", pa.int64()),  # samples
        ("active", pa.bool_()),
        ("active_fraction", pa.float32()),
        ("rms_db", pa.float32()),
    ]
)


@dataclass(frozen=True)
class Window:
    name: str
    length: int
    hop: int


@dataclass(frozen=True)
class Activity:
    frame: int = 2048
    threshold_db: float = -50.0
    min_active_fraction: float = 0.1

    @classmethod
    def from_config(cls, section: Mapping | None) -> Activity:
        """data.activity (a missing key keeps its default)."""
        values = check_section_keys(section, ("frame", "threshold_db", "min_active_fraction"), "data.activity")
        try:
            return cls(**{k: int(v) if k == "frame" else float(v) for k, v in values.items()})
        except (TypeError, ValueError) as exc:
            raise StemlabError(f"data.activity: {exc}; give numbers") from exc


def windows_from_config(segments_cfg: Mapping) -> list[Window]:
    out = []
    for name in sorted(segments_cfg):
        w = check_section_keys(segments_cfg[name], ("length", "hop"), f"data.segments.{name}")
        if set(w) != {"length", "hop"}:
            raise StemlabError(f"data.segments.{name}: give both length and hop (samples)")
        if int(w["length"]) < 1 or int(w["hop"]) < 1:
            raise StemlabError(f"data.segments.{name}: length and hop must be >= 1 samples")
        out.append(Window(name, int(w["length"]), int(w["hop"])))
    return out


def segments_config(cfg: Mapping) -> tuple[list[Window], Activity]:
    """The windows and activity settings of a segments job's `--config`: {"segments": data.segments,
    "activity": data.activity} (activity may be left out: its defaults)."""
    cfg = check_section_keys(cfg, ("segments", "activity"), "--config")
    segments = cfg.get("segments")
    if not isinstance(segments, Mapping) or not segments:
        raise StemlabError("--config has no segments (data.segments: window -> {length, hop}); name at least one window")
    return windows_from_config(segments), Activity.from_config(cfg.get("activity"))


def starts(n_frames: int, length: int, hop: int) -> list[tuple[int, int]]:
    """(start, length) of every window of a song of n_frames samples."""
    if n_frames <= length:
        return [(0, n_frames)]
    return [(s, length) for s in range(0, n_frames - length + 1, hop)]


def frame_activity(power: np.ndarray, activity: Activity) -> np.ndarray:
    """Per-frame active flags from per-sample power (mean over channels)."""
    n_frames = -(-power.shape[0] // activity.frame)
    padded = np.zeros(n_frames * activity.frame, dtype=np.float64)
    padded[: power.shape[0]] = power
    frames = padded.reshape(n_frames, activity.frame).mean(axis=1)
    # the last, partial frame is averaged over its real samples only
    tail = power.shape[0] - (n_frames - 1) * activity.frame
    frames[-1] = padded[(n_frames - 1) * activity.frame :].sum() / tail
    threshold = 10.0 ** (activity.threshold_db / 10.0)
    return frames > threshold


def stem_segments(audio: np.ndarray, windows: list[Window], activity: Activity) -> list[dict]:
    power = np.mean(np.square(audio, dtype=np.float64), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    active = frame_activity(power, activity)
    rows = []
    for window in windows:
        for start, length in starts(audio.shape[0], window.length, window.hop):
            f0 = start // activity.frame
            f1 = -(-(start + length) // activity.frame)
            fraction = float(active[f0:f1].mean())
            mean_power = (cumulative[start + length] - cumulative[start]) / length
            rms_db = 10.0 * math.log10(mean_power) if mean_power > 0 else None
            rows.append(
                {
                    "window": window.name,
                    "start": start,
                    "length": length,
                    "active": fraction >= activity.min_active_fraction,
                    "active_fraction": fraction,
                    "rms_db": rms_db,
                }
            )
    return rows


def shard_segments(stems_dir: Path, out: Path, windows: list[Window], activity: Activity) -> int:
    manifest = read_manifests([stems_dir])
    rows: list[dict] = []
    for rec in progress(list(manifest.itertuples(index=False)), desc=f"segments {stems_dir.name}"):
        song_dir = stems_dir / rec.path
        song = json.loads((song_dir / "song.json").read_text(encoding="utf-8"))
        base = {"corpus": rec.corpus, "shard": rec.shard, "split": rec.split, "song": rec.song}
        for stem in song["stems"]:
            path = song_dir / stem["files"]["wet"]
            audio, _ = read_audio(path, expected_sr=SAMPLE_RATE)
            if audio.shape[0] != int(song["n_frames"]):
                raise StemlabError(f"{path}: {audio.shape[0]} frames, song.json says {song['n_frames']}; re-run the stems rule")
            for row in stem_segments(audio, windows, activity):
                rows.append({**base, "stem": stem["name"], "category": stem["category"], **row})
    rows.sort(key=lambda r: (r["window"], r["song"], r["stem"], r["start"]))
    write_table(out, rows, SCHEMA)
    return len(rows)


def merge_segments(shard_tables: list[Path], window: str, out: Path) -> int:
    """Rows of one window from every shard table of a corpus, sorted by (song, stem, start)."""
    tables = []
    for path in shard_tables:
        if not Path(path).is_file():
            raise StemlabError(f"{path}: missing; re-run the segments_shard rule")
        table = pq.read_table(path)
        tables.append(table.filter(pc.equal(table["window"], window)).cast(SCHEMA))
    merged = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    merged = merged.sort_by([("song", "ascending"), ("stem", "ascending"), ("start", "ascending")])
    write_arrow(out, merged)
    return merged.num_rows
