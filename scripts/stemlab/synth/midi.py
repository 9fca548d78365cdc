"""Standard MIDI files (type 1) of single parts: a conductor track and the part's track."""

from __future__ import annotations

import io

import mido

from stemlab.synth.score import Part, Score
from stemlab.synth.theory import midi_key_signature
from stemlab.synth.timing import PPQ


def _conductor(score: Score, title: str) -> mido.MidiTrack:
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=title, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=score.tempo.us_per_quarter, time=0))
    m = score.meter
    track.append(mido.MetaMessage("time_signature", numerator=m.numerator, denominator=m.denominator, time=0))
    track.append(mido.MetaMessage("key_signature", key=midi_key_signature(score.tonic, score.mode), time=0))
    now = 0
    for s in score.sections:
        track.append(mido.MetaMessage("marker", text=f"{s.name} {s.occurrence + 1}", time=s.start - now))
        now = s.start
    track.append(mido.MetaMessage("end_of_track", time=score.end_tick - now))
    return track


def part_track(score: Score, part: Part) -> mido.MidiTrack:
    ch = part.channel
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=f"{part.name}: {part.instrument.name}", time=0))
    track.append(mido.Message("program_change", channel=ch, program=part.instrument.program, time=0))
    events = []
    for n in part.notes:
        events.append((n.start, 1, n.pitch, n.velocity))
        events.append((n.end, 0, n.pitch, 0))
    events.sort()  # at equal ticks note-offs (0) come before note-ons (1)
    now = 0
    for tick, on, pitch, vel in events:
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, channel=ch, note=pitch, velocity=vel if on else 0, time=tick - now))
        now = tick
    if now > score.end_tick:
        raise ValueError(f"{part.name}: a note ends after the song ({now} > {score.end_tick} ticks)")
    track.append(mido.MetaMessage("end_of_track", time=score.end_tick - now))
    return track


def part_midi(score: Score, part: Part, title: str) -> bytes:
    """The bytes of a part's MIDI file (deterministic: no timestamps, fixed resolution)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    mid.tracks.append(_conductor(score, title))
    mid.tracks.append(part_track(score, part))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()
