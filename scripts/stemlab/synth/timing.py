"""Musical time: ticks are the only clock; seconds, frames and beats are derived from ticks in one place.

A song has one tempo (an integer number of microseconds per quarter note, exactly as the MIDI file
stores it) and one time signature. `seconds(tick)` is used by the renderer, the MIDI writer and the
annotation alike, so beats, sections and note onsets cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

PPQ = 480  # ticks per quarter note


@dataclass(frozen=True)
class Meter:
    numerator: int
    denominator: int

    @property
    def compound(self) -> bool:
        """6/8, 9/8, 12/8: the beat is a dotted quarter made of three eighths."""
        return self.denominator == 8 and self.numerator % 3 == 0 and self.numerator > 3

    @property
    def beats_per_bar(self) -> int:
        return self.numerator // 3 if self.compound else self.numerator

    @property
    def beat_ticks(self) -> int:
        note = PPQ * 4 // self.denominator
        return note * 3 if self.compound else note

    @property
    def bar_ticks(self) -> int:
        return self.beats_per_bar * self.beat_ticks

    @property
    def steps_per_beat(self) -> int:
        """Grid of the patterns: sixteenth notes (4 per quarter beat, 6 per dotted-quarter beat)."""
        return 6 if self.compound else 16 // self.denominator

    @property
    def step_ticks(self) -> int:
        return self.beat_ticks // self.steps_per_beat

    @property
    def steps_per_bar(self) -> int:
        return self.steps_per_beat * self.beats_per_bar

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True)
class Tempo:
    """Tempo as MIDI stores it: microseconds per quarter note."""

    us_per_quarter: int

    @classmethod
    def from_beat_bpm(cls, bpm: float, meter: Meter) -> Tempo:
        quarters_per_beat = meter.beat_ticks / PPQ
        return cls(int(round(60_000_000 / (bpm * quarters_per_beat))))

    def seconds(self, tick: int | float) -> float:
        return float(tick) * self.us_per_quarter / (PPQ * 1_000_000)

    def beat_bpm(self, meter: Meter) -> float:
        return 60_000_000 / self.us_per_quarter * PPQ / meter.beat_ticks

    def frame(self, tick: int | float, sample_rate: int) -> int:
        """Nearest sample frame of a tick (integer arithmetic: identical on every platform)."""
        num = int(tick) * self.us_per_quarter * sample_rate
        den = PPQ * 1_000_000
        return (2 * num + den) // (2 * den)


def beat_ticks(meter: Meter, end_tick: int) -> list[int]:
    return list(range(0, end_tick, meter.beat_ticks))


def downbeat_ticks(meter: Meter, end_tick: int) -> list[int]:
    return list(range(0, end_tick, meter.bar_ticks))


@dataclass(frozen=True)
class Swing:
    """Delays every second subdivision of `unit_ticks`: ratio 0.5 is straight, 2/3 is triplet swing."""

    ratio: float
    unit_ticks: int

    def apply(self, tick: int) -> int:
        if self.ratio == 0.5 or self.unit_ticks <= 0:
            return tick
        base, pos = divmod(tick, self.unit_ticks)
        half = self.unit_ticks / 2
        split = self.ratio * self.unit_ticks
        if pos <= half:
            new = pos * split / half
        else:
            new = split + (pos - half) * (self.unit_ticks - split) / half
        return base * self.unit_ticks + int(round(new))
