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


# The metrical hierarchy a song is annotated with, finest first. Every level is a whole number of tatums
# and starts at tick 0, so level k's instants are tatums[::k.tatums].
# - tatum: the pattern grid (Meter.step_ticks), the smallest subdivision the engine writes: sixteenth
#   notes in every meter (16th-note patterns in simple meters, 16th-note drum fills in compound ones).
# - division: the beat's first subdivision: two eighths of a quarter beat, three eighths of a dotted
#   quarter (the "eighth-note pulse" of 6/8, 9/8, 12/8 that beat trackers often follow).
# - beat: the annotated beat (`beats`): the denominator's note in simple meters, the dotted quarter in
#   compound ones.
# - bar: the downbeats.
METRICAL_LEVELS = ("tatum", "division", "beat", "bar")
# The level a listener taps along to: the beat, i.e. the dotted quarter in compound meters (not its
# eighths) and the denominator's note in simple ones.
TAP_LEVEL = "beat"
NOTE_VALUES = {PPQ // 4: "sixteenth", PPQ // 2: "eighth", 3 * PPQ // 4: "dotted_eighth", PPQ: "quarter",
               3 * PPQ // 2: "dotted_quarter", 2 * PPQ: "half", 3 * PPQ: "dotted_half", 4 * PPQ: "whole"}  # fmt: skip


def level_ticks(meter: Meter) -> dict[str, int]:
    """Ticks per unit of each metrical level of `meter`."""
    division = meter.beat_ticks // 3 if meter.compound else meter.beat_ticks // 2
    return {"tatum": meter.step_ticks, "division": max(meter.step_ticks, division),
            "beat": meter.beat_ticks, "bar": meter.bar_ticks}  # fmt: skip


def note_value(ticks: int) -> str:
    """"quarter", "dotted_quarter", ... for a duration in ticks; "<n>_ticks" for anything else."""
    return NOTE_VALUES.get(int(ticks), f"{int(ticks)}_ticks")


def metrical_levels(meter: Meter) -> list[dict]:
    """The song.json `metrical_levels`: per level its name, note value, ticks and tatums per unit."""
    ticks = level_ticks(meter)
    return [
        {"level": level, "unit": "bar" if level == "bar" else note_value(ticks[level]), "ticks": ticks[level],
         "tatums": ticks[level] // meter.step_ticks}
        for level in METRICAL_LEVELS
    ]  # fmt: skip


def tatum_ticks(meter: Meter, swing: Swing, end_tick: int) -> list[int]:
    """The tatum grid where the notes sound: the straight sixteenth-note grid moved by the song's swing
    exactly as each note is (beats and downbeats never move: the swing unit divides the beat)."""
    return [swing.apply(t) for t in range(0, end_tick, meter.step_ticks)]


def beat_positions(meter: Meter, end_tick: int) -> list[int]:
    """Position of each beat of beat_ticks in its bar: 1 on the downbeat, up to beats_per_bar."""
    return [t // meter.beat_ticks % meter.beats_per_bar + 1 for t in beat_ticks(meter, end_tick)]


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
