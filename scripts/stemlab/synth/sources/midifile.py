"""MIDI files of a corpus as material for songs: notes per track in the engine's ticks, the tempo and time
signature of the file's tempo map, and chords estimated from the notes where a file has none.

The engine's score has one tempo and one meter, so a file is usable when its tempo map holds one tempo
and one time signature (repeats of the same value are fine) of a meter the engine plays; other files
are skipped (MidiUnsupported). Notes are moved to the engine's grid of 480 ticks per quarter; the beats
and downbeats then follow exactly from the file's tempo and time signature.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from stemlab.synth.score import DRUM_CHANNEL, Note
from stemlab.synth.theory import QUALITIES, SCALES
from stemlab.synth.timing import PPQ, Meter

METERS = ("4/4", "3/4", "5/4", "6/8", "12/8")
MIDI_SUFFIXES = (".mid", ".midi")
# Groove MIDI Dataset (Roland TD-11) keys that General MIDI kits lack or name otherwise
GROOVE_TO_GM = {22: 42, 26: 46, 58: 43, 40: 38, 55: 49, 52: 49, 59: 51}


class MidiUnsupported(ValueError):
    """A file the engine cannot use as it is (tempo or meter changes, no notes, unreadable)."""


@dataclass(frozen=True)
class Track:
    program: int  # GM program (0-based) of the track's first program change, 0 without one
    is_drum: bool
    notes: tuple[Note, ...]  # engine ticks, sorted by (start, pitch)
    name: str = ""


@dataclass(frozen=True)
class MidiSong:
    us_per_quarter: int
    meter: Meter
    tracks: tuple[Track, ...]
    end_tick: int  # end of the last note, engine ticks

    @property
    def bars(self) -> int:
        return max(1, -(-self.end_tick // self.meter.bar_ticks))


def read_midi(path: str | os.PathLike[str]) -> MidiSong:
    """The file's tempo, meter and tracks; MidiUnsupported when the engine cannot use it."""
    import mido

    try:
        mid = mido.MidiFile(os.fspath(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise MidiUnsupported(f"unreadable MIDI file ({exc})") from exc
    if mid.type == 2 or mid.ticks_per_beat <= 0:
        raise MidiUnsupported("MIDI type 2 (independent sequences) or no ticks per beat")
    scale = PPQ / mid.ticks_per_beat
    tempos: set[int] = set()
    meters: set[tuple[int, int]] = set()
    # (channel, track) -> program, notes; a track may hold several channels
    programs: dict[tuple[int, int], int] = {}
    names: dict[int, str] = {}
    notes: dict[tuple[int, int], list[Note]] = {}
    for t, track in enumerate(mid.tracks):
        tick = 0
        open_notes: dict[tuple[int, int], tuple[int, int]] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempos.add(int(msg.tempo))
            elif msg.type == "time_signature":
                meters.add((int(msg.numerator), int(msg.denominator)))
            elif msg.type == "track_name":
                names[t] = str(msg.name)
            elif msg.type == "program_change":
                programs.setdefault((msg.channel, t), int(msg.program))
            elif msg.type == "note_on" and msg.velocity > 0:
                open_notes[(msg.channel, msg.note)] = (tick, int(msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                begun = open_notes.pop((msg.channel, msg.note), None)
                if begun is not None:
                    start, end = int(round(begun[0] * scale)), int(round(tick * scale))
                    if msg.channel == DRUM_CHANNEL:
                        end = max(end, start + PPQ // 8)  # drum hits: note-offs often come at once
                    if end > start:
                        notes.setdefault((msg.channel, t), []).append(Note(start, end, msg.note, begun[1]))
    if len(tempos) > 1:
        raise MidiUnsupported(f"{len(tempos)} tempi in the tempo map (the engine plays one)")
    if len(meters) > 1:
        raise MidiUnsupported(f"{len(meters)} time signatures (the engine plays one)")
    num, den = meters.pop() if meters else (4, 4)
    if f"{num}/{den}" not in METERS:
        raise MidiUnsupported(f"time signature {num}/{den} (the engine plays {', '.join(METERS)})")
    tracks = []
    for (channel, t), ns in sorted(notes.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ns.sort(key=lambda n: (n.start, n.pitch))
        tracks.append(Track(programs.get((channel, t), 0), channel == DRUM_CHANNEL, tuple(ns), names.get(t, "")))
    if not tracks:
        raise MidiUnsupported("no notes")
    end = max(n.end for tr in tracks for n in tr.notes)
    return MidiSong(tempos.pop() if tempos else 500_000, Meter(num, den), tuple(tracks), end)


def corpus_files(root: str | os.PathLike[str]) -> tuple[str, ...]:
    """The MIDI files under `root` as sorted relative POSIX paths (what a song records and draws from).
    A Groove MIDI Dataset folder (info.csv beside the files) lists only its beats (not fills) in the
    engine's meters."""
    root = Path(root)
    info = sorted(root.rglob("info.csv"))
    if info:
        out = []
        for table in info:
            base = table.parent.relative_to(root)
            with open(table, newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    meter = str(row.get("time_signature", "4-4")).replace("-", "/")
                    if row.get("beat_type", "beat") == "beat" and meter in METERS and row.get("midi_filename"):
                        out.append(str(PurePosixPath(base.as_posix()) / row["midi_filename"]).removeprefix("./"))
        return tuple(sorted(out))
    files = [p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file()]
    return tuple(sorted(p.relative_to(root).as_posix() for p in files))


def safe_join(root: str | os.PathLike[str], relative: str) -> Path:
    """`root/relative`, refusing a path that leaves `root` (a corpus table is user input)."""
    base = Path(root).resolve()
    path = (base / relative).resolve()
    if base != path and base not in path.parents:
        raise MidiUnsupported(f"{relative} leaves the corpus folder")
    return path


# --------------------------------------------------------------------------- chords and key from notes
CHORD_QUALITIES = ("maj", "min", "7", "min7", "dim")
# Krumhansl-Kessler key profiles
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def pitch_class_weights(notes: Sequence[Note], start: int, end: int) -> np.ndarray:
    """Duration (ticks inside [start, end)) of each pitch class, velocity-weighted."""
    w = np.zeros(12)
    for n in notes:
        overlap = min(n.end, end) - max(n.start, start)
        if overlap > 0:
            w[n.pitch % 12] += overlap * n.velocity
    return w


def estimate_key(weights: np.ndarray) -> tuple[int, str]:
    """(tonic pitch class, mode) whose Krumhansl-Kessler profile correlates best with `weights`."""
    if not weights.any():
        return 0, "major"
    best = (-2.0, 0, "major")
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(weights, np.roll(profile, tonic))[0, 1])
            if r > best[0] + 1e-12:
                best = (r, tonic, mode)
    return best[1], best[2]


def estimate_chord(weights: np.ndarray) -> tuple[int, str] | None:
    """(root pitch class, quality) of the chord template that explains `weights` best: the share of the
    weight on its tones minus a penalty per tone, the root's own weight breaking ties; None for silence."""
    total = weights.sum()
    if total <= 0:
        return None
    best = None
    for quality in CHORD_QUALITIES:
        tones = QUALITIES[quality]
        for root in range(12):
            pcs = [(root + iv) % 12 for iv in tones]
            score = weights[pcs].sum() / total - 0.08 * len(pcs) + 0.05 * weights[root] / total
            if best is None or score > best[0] + 1e-12:
                best = (score, root, quality)
    return best[1], best[2]


NUMERALS = ("I", "II", "III", "IV", "V", "VI", "VII")


def roman_token(root_pc: int, quality: str, tonic: int, mode: str) -> str:
    """A roman numeral that stemlab.synth.theory.parse_roman reads back as (root, quality) in the key."""
    interval = (root_pc - tonic) % 12
    scale = SCALES[mode]
    if interval in scale:
        degree, acc = scale.index(interval), ""
    else:  # outside the scale: a flat of the degree above (bII, bIII, bVI, bVII, #iv in major)
        up = next((d for d, s in enumerate(scale) if s == (interval + 1) % 12), None)
        degree, acc = (up, "b") if up is not None else (next(d for d, s in enumerate(scale) if s == (interval - 1) % 12), "#")
    numeral = NUMERALS[degree]
    if quality in ("min", "min7", "dim"):
        numeral = numeral.lower()
    suffix = {"maj": "", "min": "", "7": "7", "min7": "7", "dim": "o"}[quality]
    return acc + numeral + suffix


def chord_tokens(song: MidiSong, tonic: int, mode: str, span_ticks: int) -> list[str]:
    """One roman-numeral token per `span_ticks` of the song (pitched tracks only); a silent span keeps
    the chord before it (the tonic at the start)."""
    pitched = [n for tr in song.tracks if not tr.is_drum for n in tr.notes]
    out: list[str] = []
    for start in range(0, song.bars * song.meter.bar_ticks, span_ticks):
        found = estimate_chord(pitch_class_weights(pitched, start, start + span_ticks))
        if found is None:
            out.append(out[-1] if out else ("I" if mode == "major" else "i"))
        else:
            out.append(roman_token(found[0], found[1], tonic, mode))
    return out
