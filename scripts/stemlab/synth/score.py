"""The symbolic song: sections, chords and parts, all in ticks."""

from __future__ import annotations

from dataclasses import dataclass, field

from stemlab.synth.instruments import Instrument
from stemlab.synth.theory import Chord
from stemlab.synth.timing import Meter, Swing, Tempo

DRUM_CHANNEL = 9
MELODIC_CHANNEL = 0


@dataclass(frozen=True)
class Note:
    start: int  # tick
    end: int  # tick (exclusive)
    pitch: int
    velocity: int


@dataclass(frozen=True)
class SectionSpan:
    index: int  # position in the arrangement
    name: str
    occurrence: int  # 0 = first time this section type is played
    start_bar: int
    bars: int
    start: int  # tick
    end: int  # tick
    progression: tuple[str, ...]  # roman numerals of this section type


@dataclass(frozen=True)
class ChordSpan:
    start: int
    end: int
    chord: Chord
    section: int  # SectionSpan.index


@dataclass
class Part:
    name: str  # stem name = MoisesDB category, unique in a song
    role: str  # drums, bass, harmony, melody, counter, percussion
    instrument: Instrument
    style: str
    soundfont: str
    monophonic: bool
    active: list[int] = field(default_factory=list)  # SectionSpan indices where it plays
    notes: list[Note] = field(default_factory=list)

    @property
    def channel(self) -> int:
        return DRUM_CHANNEL if self.instrument.is_drum else MELODIC_CHANNEL


@dataclass
class Score:
    genre: str
    tonic: int
    mode: str
    meter: Meter
    tempo: Tempo
    swing: Swing
    sections: list[SectionSpan]
    chords: list[ChordSpan]
    parts: list[Part]

    @property
    def end_tick(self) -> int:
        return self.sections[-1].end

    def chord_at(self, tick: int) -> ChordSpan:
        for span in self.chords:
            if span.start <= tick < span.end:
                return span
        return self.chords[-1]

    def next_chord(self, tick: int) -> ChordSpan:
        for i, span in enumerate(self.chords):
            if span.start <= tick < span.end:
                return self.chords[min(i + 1, len(self.chords) - 1)]
        return self.chords[-1]

