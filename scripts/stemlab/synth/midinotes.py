"""Read the notes of a standard MIDI file (tempo map honoured) for analysis against audio."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import mido

from stemlab.errors import StemlabError


@dataclass(frozen=True)
class Note:
    start: float  # seconds
    end: float  # seconds
    pitch: int  # MIDI note number
    velocity: int
    channel: int


def read_notes(path: str | os.PathLike[str]) -> list[Note]:
    """All notes of a MIDI file in seconds, sorted by (start, pitch).

    A note-on with velocity 0 is a note-off; overlapping notes of the same pitch and channel close
    first-in first-out; a note still sounding at the end of the file ends at the last event.
    """
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"{path}: MIDI file not found; re-run the rule that generates the song")
    try:
        mid = mido.MidiFile(path)
    except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:
        raise StemlabError(f"{path}: cannot parse MIDI ({exc}); regenerate the song") from exc

    notes: list[Note] = []
    open_notes: dict[tuple[int, int], list[tuple[float, int]]] = {}
    now = 0.0
    # iterating a MidiFile merges the tracks and converts delta ticks to seconds with the tempo map
    for msg in mid:
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault((msg.channel, msg.note), []).append((now, msg.velocity))
        elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
            stack = open_notes.get((msg.channel, msg.note))
            if stack:
                start, velocity = stack.pop(0)
                notes.append(Note(start, now, msg.note, velocity, msg.channel))
    for (channel, pitch), stack in open_notes.items():
        for start, velocity in stack:
            notes.append(Note(start, now, pitch, velocity, channel))
    notes.sort(key=lambda n: (n.start, n.pitch, n.end))
    return notes


def is_monophonic(notes: list[Note], tolerance: float = 0.02) -> bool:
    """True if no note starts more than `tolerance` seconds before the previous one ends."""
    latest_end = float("-inf")
    for note in notes:
        if note.start < latest_end - tolerance:
            return False
        latest_end = max(latest_end, note.end)
    return True
