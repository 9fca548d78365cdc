"""Tiny MIDI corpora the tests write: a Groove-MIDI-Dataset-style drum folder (info.csv + beats and a fill)
and a Lakh-style folder of multitrack songs (one with a tempo change, which the engine skips)."""

from __future__ import annotations

import csv
from pathlib import Path

import mido

TPB = 480


def _track(events: list[tuple[int, mido.Message]], name: str, meta: list[mido.MetaMessage] = ()) -> mido.MidiTrack:
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0), *meta])
    now = 0
    for tick, msg in sorted(events, key=lambda e: (e[0], e[1].type == "note_on")):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def _notes(channel: int, notes: list[tuple[int, int, int, int]], program: int | None = None) -> list:
    events = [] if program is None else [(0, mido.Message("program_change", channel=channel, program=program))]
    for start, end, pitch, vel in notes:
        events.append((start, mido.Message("note_on", channel=channel, note=pitch, velocity=vel)))
        events.append((end, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    return events


def _tempo_meta(bpm: float, num: int, den: int, change_at: int | None = None) -> list:
    meta = [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
            mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0)]  # fmt: skip
    if change_at is not None:
        meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm * 1.5), time=change_at))
    return meta


def drum_file(path: Path, bpm: float, num: int = 4, den: int = 4, bars: int = 2) -> None:
    """A kick-snare-hat beat; hats on the TD-11's key 22 (the dataset's closed-hat edge)."""
    bar = TPB * 4 * num // den
    eighth = TPB // 2
    notes = []
    for b in range(bars):
        t0 = b * bar
        for k in range(bar // eighth):
            notes.append((t0 + k * eighth, t0 + k * eighth + 60, 22, 70 + 20 * (k % 2 == 0)))
        notes.append((t0, t0 + 60, 36, 110))
        notes.append((t0 + bar // 2, t0 + bar // 2 + 60, 38, 100))
    mid = mido.MidiFile(ticks_per_beat=TPB)
    mid.tracks.append(_track(_notes(9, notes), "drums", _tempo_meta(bpm, num, den)))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)


def groove_corpus(root: Path) -> Path:
    """drummer1/session1/*.mid + info.csv, as the Groove MIDI Dataset lays them out."""
    rows = []
    for i, (style, bpm, kind, sig) in enumerate([("funk", 96, "beat", "4-4"), ("rock", 120, "beat", "4-4"),
                                                 ("jazz", 100, "beat", "3-4"), ("rock", 110, "fill", "4-4")]):  # fmt: skip
        num, den = (int(x) for x in sig.split("-"))
        name = f"drummer1/session1/{i + 1}_{style}_{bpm}_{kind}_{sig}.mid"
        drum_file(root / name, bpm, num, den)
        rows.append({"drummer": "drummer1", "session": "drummer1/session1", "id": f"drummer1/session1/{i + 1}", "style": style,
                     "bpm": bpm, "beat_type": kind, "time_signature": sig, "midi_filename": name, "audio_filename": "",
                     "duration": 4.0, "split": "train"})  # fmt: skip
    with open(root / "info.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def song_file(path: Path, bpm: float, tonic: int = 0, change_tempo: bool = False, bars: int = 8) -> None:
    """Drums, a bass line, block chords I-vi-IV-V and a melody, each on its own track and channel."""
    bar = TPB * 4
    prog = [(0, (0, 4, 7)), (9, (0, 3, 7)), (5, (0, 4, 7)), (7, (0, 4, 7))]  # I vi IV V in C major, then + tonic
    bass, chords, melody, drums = [], [], [], []
    for b in range(bars):
        t0 = b * bar
        root, quality = prog[b % 4]
        bass += [(t0 + k * TPB, t0 + (k + 1) * TPB - 20, 36 + (tonic + root) % 12, 90) for k in range(4)]
        chords += [(t0, t0 + bar - 10, 60 + (tonic + root + iv) % 12, 70) for iv in quality]
        melody += [(t0 + k * TPB, t0 + (k + 1) * TPB - 40, 72 + (tonic + root + quality[k % 3]) % 12, 85) for k in range(4)]
        drums += [(t0 + k * TPB, t0 + k * TPB + 60, 36 if k % 2 == 0 else 38, 100) for k in range(4)]
    mid = mido.MidiFile(ticks_per_beat=TPB)
    mid.tracks.append(_track([], "conductor", _tempo_meta(bpm, 4, 4, bar * 2 if change_tempo else None)))
    mid.tracks.append(_track(_notes(0, chords, program=0), "piano"))
    mid.tracks.append(_track(_notes(1, bass, program=33), "bass"))
    mid.tracks.append(_track(_notes(2, melody, program=73), "flute"))
    mid.tracks.append(_track(_notes(9, drums), "drums"))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)


def lakh_corpus(root: Path) -> Path:
    """Lakh-style nested folders of .mid files (the second has a tempo change: skipped)."""
    song_file(root / "a" / "song_a.mid", 100, tonic=0)
    song_file(root / "b" / "song_b.mid", 120, tonic=2, change_tempo=True)
    song_file(root / "c" / "song_c.mid", 90, tonic=7)
    return root
