"""The two-layer quality gate: symbolic checks before rendering, audio checks after.

Each check returns (reasons, metrics): an empty `reasons` list passes. The metrics go into song.json.

Defaults: QualityConfig keeps its own (the engine runs without the workflow, and the synth env has no
jsonschema to read the schema with); they equal the schema's `synth.quality` defaults, which
tests/test_config_schema.py checks. `clip_level` is Python-only (not a config key).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from stemlab.synth.score import Score
from stemlab.synth.theory import SCALES


@dataclass(frozen=True)
class QualityConfig:
    max_pitch_share: float = 0.5  # most common pitch of a melody / counter-melody (bass: 0.9)
    max_repeats: int = 8  # longest run of one pitch in a melody
    max_span: int = 36  # semitones a bass, melody or counter-melody may span
    clip_level: float = 1.0  # a sample at or above this magnitude would clip on writing
    silence_dbfs: float = -60.0  # RMS a stem must exceed in every section where it plays
    max_dc: float = 0.005  # |mean| of any channel of a dry or wet stem or the mix

    @classmethod
    def from_config(cls, section: Mapping | None) -> QualityConfig:
        """synth.quality (missing keys keep their defaults); ints stay ints, the rest become floats."""
        from stemlab.errors import StemlabError, check_section_keys

        types = {f.name: f.type for f in fields(cls) if f.name != "clip_level"}
        values = check_section_keys(section, types, "synth.quality")
        try:
            return cls(**{k: int(v) if types[k] in (int, "int") else float(v) for k, v in values.items()})
        except (TypeError, ValueError) as exc:
            raise StemlabError(f"synth.quality: {exc}; give numbers") from exc


def _run(pitches: list[int]) -> int:
    best = run = 0
    prev = None
    for p in pitches:
        run = run + 1 if p == prev else 1
        prev = p
        best = max(best, run)
    return best


def symbolic(score: Score, cfg: QualityConfig) -> tuple[list[str], dict]:
    reasons: list[str] = []
    metrics: dict = {}
    for part in score.parts:
        notes = part.notes
        m: dict = {"n_notes": len(notes)}
        metrics[part.name] = m
        if not notes:
            reasons.append(f"empty part {part.name}")
            continue
        for sec in score.sections:
            if sec.index in part.active and not any(n.start < sec.end and n.end > sec.start for n in notes):
                reasons.append(f"{part.name} has no notes in active section {sec.index} ({sec.name})")
        if part.instrument.is_drum:
            continue
        pitches = [n.pitch for n in notes]
        lo, hi = min(pitches), max(pitches)
        m["pitch_range"] = [lo, hi]
        share = Counter(pitches).most_common(1)[0][1] / len(pitches)
        m["top_pitch_share"] = round(share, 4)
        m["longest_repeat"] = _run(pitches) if part.monophonic else None
        if lo < part.instrument.lo or hi > part.instrument.hi:
            reasons.append(f"{part.name} leaves the range of {part.instrument.name} ({lo}-{hi})")
        if part.role in ("bass", "melody", "counter") and hi - lo > cfg.max_span:
            reasons.append(f"{part.name} spans {hi - lo} semitones (> {cfg.max_span})")
        limit = {"melody": cfg.max_pitch_share, "counter": min(1.0, cfg.max_pitch_share + 0.15), "bass": 0.9}.get(part.role)
        if limit is not None and len(pitches) >= 8 and share > limit:
            reasons.append(f"{part.name} is stuck on pitch {Counter(pitches).most_common(1)[0][0]} ({share:.0%} of notes)")
        if part.role == "melody" and m["longest_repeat"] > cfg.max_repeats:
            reasons.append(f"{part.name} repeats one pitch {m['longest_repeat']} times in a row")
    return reasons, metrics


def musicality(score: Score) -> dict:
    """Descriptive scores of the melody: chord tones on beats, notes in the key, stepwise motion."""
    melody = [p for p in score.parts if p.role == "melody"]
    if not melody:
        return {}
    notes = melody[0].notes
    beat = score.meter.beat_ticks
    scale = {(score.tonic + s) % 12 for s in SCALES[score.mode]}
    on_beat = [n for n in notes if abs(n.start - round(n.start / beat) * beat) <= 15]
    chord_tone = [n for n in on_beat if n.pitch % 12 in score.chord_at(n.start).chord.pitch_classes(score.tonic)]
    steps = [abs(b.pitch - a.pitch) for a, b in zip(notes, notes[1:])]
    return {
        "melody_chord_tone_ratio_on_beats": round(len(chord_tone) / max(1, len(on_beat)), 4),
        "melody_in_key_ratio": round(sum(n.pitch % 12 in scale for n in notes) / max(1, len(notes)), 4),
        "melody_stepwise_ratio": round(sum(s <= 2 for s in steps) / max(1, len(steps)), 4),
        "melody_mean_interval": round(float(np.mean(steps)) if steps else 0.0, 3),
    }


def _dbfs(x: float) -> float | None:
    return round(20 * np.log10(x), 3) if x > 0 else None


STATS_CHUNK = 1 << 16  # frames per step: every statistic of a chunk is taken while it is in cache


class SignalStats:
    """(peak |x|, largest |mean| of a channel) accumulated over consecutive chunks of one signal."""

    def __init__(self, channels: int):
        self.hi, self.lo = -np.inf, np.inf
        self.sums = [0.0] * channels
        self.frames = 0

    def add(self, part: np.ndarray) -> None:
        if not part.size:
            return
        self.hi, self.lo = max(self.hi, float(part.max())), min(self.lo, float(part.min()))
        # per-channel 1-D sums: ~10x faster than a float64 reduction over axis 0 of (frames, channels)
        self.sums = [t + float(part[:, c].sum(dtype=np.float64)) for c, t in enumerate(self.sums)]
        self.frames += len(part)

    def result(self) -> tuple[float, float]:
        if not self.frames:
            return 0.0, 0.0
        return max(-self.lo, self.hi), max(abs(t) for t in self.sums) / self.frames


def signal_stats(audio: np.ndarray) -> tuple[float, float]:
    """(peak |x|, largest |mean| of a channel) of (frames, channels) audio, in STATS_CHUNK steps."""
    acc = SignalStats(audio.shape[1])
    for a in range(0, len(audio), STATS_CHUNK):
        acc.add(audio[a : a + STATS_CHUNK])
    return acc.result()


def mean_square(audio: np.ndarray) -> float:
    """Mean of x^2 over all samples, accumulated in float64 chunk by chunk (no float64 copy)."""
    if not audio.size:
        return 0.0
    total = 0.0
    for a in range(0, len(audio), STATS_CHUNK):
        part = audio[a : a + STATS_CHUNK]
        total += float(np.einsum("ij,ij->", part, part, dtype=np.float64))
    return total / audio.size


def audio(
    score: Score,
    frames_per_tick: float,
    stats: dict[str, dict[str, tuple[float, float]]],
    wet: dict[str, np.ndarray],
    mix: np.ndarray,
    cfg: QualityConfig,
) -> tuple[list[str], dict]:
    """Clipping and DC (dry, wet, mix), silence (wet, mix). `stats[stem][kind]` holds signal_stats of
    the unquantised dry and wet stems (quantising would hide clipping); `wet` is used for silence."""
    reasons: list[str] = []
    metrics: dict = {"stems": {}}
    for part in score.parts:
        name = part.name
        m: dict = {}
        metrics["stems"][name] = m
        for kind in ("dry", "wet"):
            peak, dc = stats[name][kind]
            m[f"{kind}_peak_dbfs"] = _dbfs(peak)
            if peak >= cfg.clip_level:
                reasons.append(f"{kind} stem {name} clips (peak {peak:.3f})")
            m[f"{kind}_dc"] = round(dc, 6)
            if dc > cfg.max_dc:  # the dry stems come DC-blocked (render.DCBlocker)
                reasons.append(f"{kind} stem {name} has DC offset {dc:.4f}")
        quietest = None
        w = wet[name]
        for sec in score.sections:
            if sec.index not in part.active:
                continue
            a, b = int(sec.start * frames_per_tick), int(sec.end * frames_per_tick)
            rms = math.sqrt(mean_square(w[a:b])) if b > a else 0.0
            db = 20 * np.log10(rms) if rms > 0 else -np.inf
            quietest = db if quietest is None else min(quietest, db)
            if db < cfg.silence_dbfs:
                reasons.append(f"wet stem {name} is silent in section {sec.index} ({sec.name}): {db:.1f} dBFS")
        m["quietest_active_section_dbfs"] = None if quietest is None or not np.isfinite(quietest) else round(quietest, 3)
    peak, dc = signal_stats(mix)
    metrics["mix_peak_dbfs"] = _dbfs(peak)
    metrics["mix_dc"] = round(dc, 6)
    rms = math.sqrt(mean_square(mix))
    metrics["mix_rms_dbfs"] = _dbfs(rms)
    if peak >= cfg.clip_level:
        reasons.append(f"mix clips (peak {peak:.3f})")
    if rms <= 0 or 20 * np.log10(rms) < cfg.silence_dbfs:
        reasons.append("mix is silent")
    if dc > cfg.max_dc:
        reasons.append(f"mix has DC offset {dc:.4f}")
    return reasons, metrics
