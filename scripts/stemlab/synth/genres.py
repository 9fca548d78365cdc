"""The nine genre presets: what each genre allows (tempo, meter, swing, keys, chord grammar, grooves,
instruments, playing styles, mix style). Pure data; the composer samples from it.

Pattern strings run over one bar on the meter's sixteenth-note grid (Meter.steps_per_bar characters):
drums `X` accent, `x` normal, `o` ghost, `.` nothing; bass `R` root, `5` fifth, `8` octave, `3` third,
`7` seventh, `N` root of the next chord, `.` hold, `-` rest; comping `x` hit, `.` hold, `-` rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stemlab.synth import instruments as gm

Range = tuple[float, float]


@dataclass(frozen=True)
class ChordGrammar:
    """Second-order Markov chain over roman numerals.

    P(c | a, b) is `second[(a, b)]` where the pair is listed, else `first[b]` with a return to `a`
    (a-b-a ping-pong) damped by `return_penalty`.
    """

    first: dict[str, dict[str, float]]
    second: dict[tuple[str, str], dict[str, float]]
    tonic: str
    starts: dict[str, float]  # first chord of chorus / bridge sections (verse, intro, outro start on the tonic)
    return_penalty: float = 0.35


@dataclass(frozen=True)
class MixStyle:
    reverb_wet: Range = (0.05, 0.2)
    reverb_room: Range = (0.2, 0.6)
    comp_threshold_db: Range = (-30.0, -18.0)
    comp_ratio: Range = (1.5, 4.0)
    saturation_prob: float = 0.3
    saturation_drive_db: Range = (2.0, 10.0)
    chorus_prob: float = 0.15
    delay_prob: float = 0.2
    delay_feedback: Range = (0.1, 0.4)
    delay_mix: Range = (0.08, 0.25)
    brightness_db: Range = (-3.0, 3.0)
    level_spread_db: float = 2.0
    mix_lufs: Range = (-14.0, -10.0)
    glue_ratio: Range = (1.5, 3.0)
    limiter_ceiling_db: Range = (-1.5, -0.5)


@dataclass(frozen=True)
class PoolEntry:
    program: int
    roles: tuple[str, ...]  # harmony, melody, counter, percussion
    weight: float = 1.0


@dataclass(frozen=True)
class Genre:
    name: str
    tempo: Range  # beats per minute (the annotated beat)
    meters: dict[str, float]
    swing: Range  # ratio of the delayed subdivision (0.5 = straight), simple meters only
    swing_unit: str  # "8th" or "16th"
    modes: dict[str, float]
    tonics: tuple[float, ...]  # weights of the 12 tonic pitch classes (C..B)
    grammars: dict[str, ChordGrammar]  # by mode
    chords_per_bar: dict[float, float]  # 0.5 = one chord every two bars
    drum_kits: tuple[int, ...]
    grooves: dict[str, tuple[dict[int, str], ...]]  # meter -> drum patterns (first = main)
    bass_programs: tuple[int, ...]
    bass_styles: dict[str, float]
    comp_styles: dict[str, float]
    pool: tuple[PoolEntry, ...]
    melody_rhythm: dict[str, float]  # beat-rhythm cells (simple meter, 4 steps per beat)
    melody_steps: dict[int, float]  # scale-step intervals of the melody Markov chain
    chord_tone_prob: float
    percussion: dict[str, tuple[dict[int, str], ...]] = field(default_factory=dict)
    compound_tempo: Range = (48.0, 72.0)
    humanize_ticks: int = 6
    velocity: Range = (70, 110)
    mix: MixStyle = field(default_factory=MixStyle)
    drums_prob: float = 1.0  # probability that a song has a drum stem


# ----------------------------------------------------------------------------- drum grooves
K, S, R, C = gm.KICK, gm.SNARE, gm.SIDESTICK, gm.CLAP
H, P, O, Y, CR = gm.CLOSED_HAT, gm.PEDAL_HAT, gm.OPEN_HAT, gm.RIDE, gm.CRASH

GENERIC_GROOVES: dict[str, tuple[dict[int, str], ...]] = {
    "3/4": (
        {K: "X...........", S: "....x...x...", H: "x.x.x.x.x.x."},
        {K: "X.......x...", R: "....x...x...", Y: "x...x...x..."},
    ),
    "6/8": (
        {K: "X.....x.....", S: "......X.....", H: "x.x.x.x.x.x."},
        {K: "X...........", R: "......x.....", Y: "x.x.x.x.x.x."},
    ),
    "12/8": (
        {K: "X...........X.....x.....", S: "......X...........X.....", H: "x.x.x.x.x.x.x.x.x.x.x.x."},
        {K: "X...........X...........", S: "......X...........X.....", Y: "x.x.x.x.x.x.x.x.x.x.x.x."},
    ),
    "5/4": (
        {K: "X.......X...........", S: "....x.......x...x...", Y: "x...x.x.x...x.x.x..."},
    ),
}


def _grooves(four: tuple[dict[int, str], ...], *meters: str) -> dict[str, tuple[dict[int, str], ...]]:
    out = {"4/4": four}
    for m in meters:
        out[m] = GENERIC_GROOVES[m]
    return out


# ----------------------------------------------------------------------------- chord grammars
def _g(first, second, tonic, starts, return_penalty=0.35) -> ChordGrammar:
    return ChordGrammar(
        {k: dict(v) for k, v in first.items()},
        {tuple(k.split()): dict(v) for k, v in second.items()},
        tonic,
        dict(starts),
        return_penalty,
    )


POP_MAJOR = _g(
    {
        "I": {"IV": 3, "V": 3, "vi": 3, "ii": 1, "iii": 0.5},
        "ii": {"V": 4, "IV": 1, "vi": 0.5},
        "iii": {"vi": 3, "IV": 2},
        "IV": {"I": 3, "V": 3, "vi": 1, "ii": 1},
        "V": {"I": 3, "vi": 3, "IV": 2},
        "vi": {"IV": 4, "V": 2, "ii": 2, "iii": 0.5},
    },
    {"I V": {"vi": 5, "IV": 2, "I": 1}, "V vi": {"IV": 6, "iii": 1}, "vi IV": {"I": 4, "V": 3}, "ii V": {"I": 6, "vi": 1}},
    "I",
    {"I": 2, "IV": 2, "vi": 2},
)
POP_MINOR = _g(
    {
        "i": {"VI": 3, "iv": 2, "VII": 3, "III": 1, "v": 1},
        "VI": {"VII": 3, "III": 2, "iv": 1, "i": 1},
        "VII": {"i": 3, "III": 2, "VI": 1},
        "III": {"VII": 2, "VI": 2, "iv": 1},
        "iv": {"i": 2, "v": 1, "VII": 2, "VI": 1},
        "v": {"i": 3, "VI": 2},
    },
    {"i VI": {"VII": 2, "III": 3}, "VI III": {"VII": 4}, "III VII": {"i": 2, "iv": 1}, "VI VII": {"i": 5}},
    "i",
    {"i": 2, "VI": 2, "iv": 1},
)
ROCK_MAJOR = _g(
    {
        "I": {"IV": 4, "V": 3, "bVII": 2, "vi": 2},
        "IV": {"I": 4, "V": 3, "bVII": 1},
        "V": {"I": 3, "IV": 3, "vi": 2},
        "bVII": {"IV": 4, "I": 3},
        "vi": {"IV": 3, "V": 3, "I": 1},
        "ii": {"V": 3, "IV": 1},
    },
    {"I bVII": {"IV": 6, "I": 1}, "bVII IV": {"I": 6}, "IV V": {"I": 4, "vi": 2}},
    "I",
    {"I": 2, "IV": 2, "vi": 1},
)
ROCK_MINOR = _g(
    {
        "i": {"VII": 3, "VI": 3, "iv": 2, "III": 1},
        "VII": {"VI": 3, "i": 3, "III": 1},
        "VI": {"VII": 3, "III": 1, "i": 1, "V": 1},
        "III": {"VII": 2, "VI": 2, "iv": 1},
        "iv": {"i": 2, "VII": 2, "V": 1},
        "V": {"i": 4},
    },
    {"i VII": {"VI": 5, "i": 1}, "VII VI": {"VII": 3, "V": 2, "i": 1}, "VI VII": {"i": 5}},
    "i",
    {"i": 2, "VI": 2, "iv": 1},
)
BLUES_MAJOR = _g(
    {
        "I7": {"IV7": 4, "I7": 3, "V7": 1},
        "IV7": {"I7": 4, "IV7": 2, "#ivo7": 1},
        "V7": {"IV7": 4, "I7": 3},
        "#ivo7": {"I7": 3},
    },
    {"I7 I7": {"IV7": 5, "I7": 1}, "V7 IV7": {"I7": 6}, "IV7 IV7": {"I7": 5}, "I7 V7": {"IV7": 4, "I7": 2}},
    "I7",
    {"I7": 2, "IV7": 2},
    return_penalty=0.7,
)
BLUES_MINOR = _g(
    {
        "i7": {"iv7": 4, "i7": 3, "VI7": 1},
        "iv7": {"i7": 4, "iv7": 2},
        "VI7": {"V7": 5},
        "V7": {"i7": 4, "iv7": 2},
    },
    {"i7 i7": {"iv7": 5, "i7": 1}, "VI7 V7": {"i7": 6}, "iv7 iv7": {"i7": 5}},
    "i7",
    {"i7": 2, "iv7": 2},
    return_penalty=0.7,
)
JAZZ_MAJOR = _g(
    {
        "Imaj7": {"vi7": 3, "ii7": 3, "IVmaj7": 2, "VI7": 2, "iii7": 1},
        "ii7": {"V7": 6, "bII7": 2},
        "V7": {"Imaj7": 6, "vi7": 1, "iii7": 1},
        "bII7": {"Imaj7": 5},
        "vi7": {"ii7": 5, "II7": 2},
        "VI7": {"ii7": 6},
        "II7": {"ii7": 2, "V7": 4},
        "iii7": {"vi7": 3, "VI7": 3},
        "IVmaj7": {"iii7": 2, "V7": 2, "viiø7": 1, "ii7": 2},
        "viiø7": {"III7": 5},
        "III7": {"vi7": 5},
    },
    {
        "vi7 ii7": {"V7": 7, "bII7": 1},
        "ii7 V7": {"Imaj7": 8, "vi7": 1},
        "iii7 VI7": {"ii7": 6},
        "Imaj7 VI7": {"ii7": 6},
        "viiø7 III7": {"vi7": 6},
    },
    "Imaj7",
    {"ii7": 2, "IVmaj7": 1, "Imaj7": 1, "vi7": 1},
)
JAZZ_MINOR = _g(
    {
        "i7": {"iv7": 3, "iiø7": 3, "VImaj7": 2, "i6": 1},
        "i6": {"iiø7": 3, "iv7": 2},
        "iiø7": {"V7": 6},
        "V7": {"i7": 5, "i6": 2, "VImaj7": 1},
        "iv7": {"VII7": 3, "V7": 2, "iiø7": 2},
        "VII7": {"IIImaj7": 5},
        "IIImaj7": {"VImaj7": 3, "iiø7": 2},
        "VImaj7": {"iiø7": 4, "bII7": 2},
        "bII7": {"i7": 4},
    },
    {"iiø7 V7": {"i7": 6, "i6": 3}, "iv7 VII7": {"IIImaj7": 7}},
    "i7",
    {"iiø7": 2, "iv7": 2, "VImaj7": 1},
)
HIPHOP_MINOR = _g(
    {
        "i7": {"VImaj7": 3, "iv7": 3, "v7": 1, "VII": 1},
        "VImaj7": {"VII": 2, "v7": 2, "i7": 2, "iv7": 1},
        "iv7": {"v7": 2, "i7": 3, "VImaj7": 1},
        "v7": {"i7": 4},
        "VII": {"i7": 3, "IIImaj7": 1},
        "IIImaj7": {"VImaj7": 2, "iv7": 1},
    },
    {"i7 VImaj7": {"VII": 2, "v7": 2, "iv7": 1}, "VImaj7 v7": {"i7": 5}, "iv7 v7": {"i7": 5}},
    "i7",
    {"i7": 2, "VImaj7": 2, "iv7": 1},
)
HIPHOP_MAJOR = _g(
    {
        "Imaj7": {"vi7": 3, "IVmaj7": 3, "iii7": 1},
        "vi7": {"ii7": 2, "IVmaj7": 2, "Imaj7": 1},
        "IVmaj7": {"iii7": 2, "Imaj7": 2, "V7": 1},
        "iii7": {"vi7": 3, "IVmaj7": 1},
        "ii7": {"V7": 3, "Imaj7": 1},
        "V7": {"Imaj7": 3, "vi7": 1},
    },
    {"ii7 V7": {"Imaj7": 5}, "IVmaj7 iii7": {"vi7": 4}},
    "Imaj7",
    {"Imaj7": 2, "IVmaj7": 2, "vi7": 1},
)
ELECTRONIC_MINOR = _g(
    {
        "i": {"VI": 4, "III": 2, "VII": 2, "iv": 2},
        "VI": {"III": 3, "VII": 3, "iv": 1},
        "III": {"VII": 3, "VI": 1},
        "VII": {"i": 4, "VI": 1},
        "iv": {"VI": 2, "i": 2, "v": 1},
        "v": {"i": 3, "VI": 1},
    },
    {"i VI": {"III": 4, "VII": 3}, "VI III": {"VII": 5}, "III VII": {"i": 3, "VI": 1}},
    "i",
    {"i": 2, "VI": 2, "iv": 1},
)
ELECTRONIC_MAJOR = _g(
    {
        "I": {"V": 3, "vi": 3, "IV": 3},
        "V": {"vi": 3, "IV": 2, "I": 1},
        "vi": {"IV": 4, "V": 1},
        "IV": {"I": 3, "V": 2, "vi": 1},
    },
    {"I V": {"vi": 5, "IV": 1}, "V vi": {"IV": 6}, "vi IV": {"I": 4, "V": 1}},
    "I",
    {"vi": 2, "IV": 2, "I": 1},
)
LATIN_MINOR = _g(
    {
        "i7": {"iv7": 3, "V7": 3, "VImaj7": 1, "iiø7": 1},
        "iv7": {"V7": 3, "i7": 2, "VII7": 1},
        "V7": {"i7": 5, "iv7": 1},
        "VImaj7": {"V7": 2, "iiø7": 3},
        "iiø7": {"V7": 6},
        "VII7": {"IIImaj7": 3},
        "IIImaj7": {"VImaj7": 3},
    },
    {"iiø7 V7": {"i7": 6}, "i7 iv7": {"V7": 3, "VII7": 2}, "VII7 IIImaj7": {"VImaj7": 5}},
    "i7",
    {"iv7": 2, "i7": 2, "VImaj7": 1},
)
LATIN_MAJOR = _g(
    {
        "Imaj7": {"IV": 2, "ii7": 3, "V7": 2, "VI7": 1},
        "ii7": {"V7": 5, "bII7": 1},
        "V7": {"Imaj7": 4, "IV": 1},
        "IV": {"V7": 3, "Imaj7": 2},
        "bII7": {"Imaj7": 4},
        "VI7": {"ii7": 4},
    },
    {"ii7 V7": {"Imaj7": 6, "IV": 1}, "Imaj7 IV": {"V7": 4, "Imaj7": 1}},
    "Imaj7",
    {"ii7": 2, "IV": 1, "Imaj7": 1},
)
REGGAE_MAJOR = _g(
    {
        "I": {"IV": 4, "V": 2, "ii": 1, "vi": 1},
        "IV": {"I": 4, "V": 3},
        "V": {"I": 3, "IV": 3},
        "ii": {"V": 3, "I": 1},
        "vi": {"IV": 2, "ii": 2},
    },
    {"I IV": {"I": 3, "V": 2}, "IV V": {"I": 4, "IV": 1}},
    "I",
    {"IV": 2, "I": 2},
    return_penalty=1.0,
)
REGGAE_MINOR = _g(
    {
        "i": {"iv": 3, "VII": 3, "VI": 1},
        "iv": {"i": 3, "VII": 1},
        "VII": {"i": 4, "VI": 1},
        "VI": {"VII": 3},
    },
    {"i VII": {"i": 3, "VI": 1}, "VI VII": {"i": 5}},
    "i",
    {"iv": 2, "i": 2},
    return_penalty=1.0,
)
CLASSICAL_MAJOR = _g(
    {
        "I": {"IV": 3, "V": 3, "ii": 2, "vi": 2, "iii": 0.5, "V7": 2},
        "ii": {"V": 4, "V7": 4, "viio": 1},
        "iii": {"vi": 3, "IV": 2},
        "IV": {"V": 3, "I": 2, "ii": 2, "V7": 1, "viio": 1},
        "V": {"I": 5, "vi": 2},
        "V7": {"I": 6, "vi": 1},
        "vi": {"ii": 3, "IV": 3, "V": 1},
        "viio": {"I": 5},
    },
    {"IV V7": {"I": 6}, "ii V": {"I": 5, "vi": 2}, "V vi": {"IV": 3, "ii": 3}},
    "I",
    {"IV": 2, "vi": 1, "I": 2},
)
CLASSICAL_MINOR = _g(
    {
        "i": {"iv": 3, "V": 3, "VI": 2, "iio": 1, "III": 1},
        "iio": {"V": 4, "V7": 3},
        "III": {"VI": 3, "iv": 2},
        "iv": {"V": 3, "i": 2, "iio": 2, "V7": 2},
        "V": {"i": 5, "VI": 2},
        "V7": {"i": 6},
        "VI": {"iio": 3, "iv": 2, "V": 2},
        "#viio7": {"i": 5},
    },
    {"iv V7": {"i": 6}, "iio V": {"i": 5, "VI": 2}, "V VI": {"iv": 3, "iio": 2}, "VI iio": {"V": 4, "#viio7": 2}},
    "i",
    {"iv": 2, "VI": 1, "i": 2},
)

# ----------------------------------------------------------------------------- melody
RHYTHM_SPARSE = {"x...": 4, "x.x.": 2, "x..x": 0.5, "-...": 1, "x.--": 1, "-.x.": 1}
RHYTHM_MEDIUM = {"x...": 2, "x.x.": 4, "x..x": 1, "xxx.": 0.5, "-.x.": 1.5, "x.xx": 1, "-...": 0.7}
RHYTHM_BUSY = {"x.x.": 4, "xxxx": 0.7, "x.xx": 1.5, "xx.x": 1, "-.x.": 1, "x...": 1, "-...": 0.4}
# swing phrasing is built from (swung) eighths: no sixteenth-note runs
RHYTHM_SWING = {"x.x.": 5, "x...": 2, "-.x.": 2, "x.-.": 0.8, "-...": 0.5}
STEPS_SMOOTH = {0: 0.8, 1: 4.0, -1: 4.0, 2: 1.6, -2: 1.6, 3: 0.5, -3: 0.5, 4: 0.35, -4: 0.35, 7: 0.1, -7: 0.1}
STEPS_LEAPY = {0: 0.6, 1: 3.0, -1: 3.0, 2: 2.0, -2: 2.0, 3: 0.9, -3: 0.9, 4: 0.6, -4: 0.6, 5: 0.2, -5: 0.2, 7: 0.15, -7: 0.15}

# ----------------------------------------------------------------------------- the presets
EVEN = (1.0,) * 12

GENRES: dict[str, Genre] = {}


def _add(g: Genre) -> None:
    GENRES[g.name] = g


_add(
    Genre(
        name="pop",
        tempo=(88, 128),
        meters={"4/4": 0.9, "6/8": 0.1},
        swing=(0.5, 0.54),
        swing_unit="16th",
        modes={"major": 0.7, "minor": 0.3},
        tonics=(3, 1, 3, 2, 2, 2, 1, 3, 1, 3, 2, 1),
        grammars={"major": POP_MAJOR, "minor": POP_MINOR},
        chords_per_bar={1: 0.8, 2: 0.1, 0.5: 0.1},
        drum_kits=(0, 8),
        grooves=_grooves(
            (
                {K: "X.......X.......", S: "....X.......X...", H: "x.x.x.x.x.x.x.x."},
                {K: "X......x..X.....", S: "....X.......X...", H: "xoxoxoxoxoxoxoxo"},
                {K: "X.......X.x.....", C: "....X.......X...", H: "..x...x...x...x."},
            ),
            "6/8",
        ),
        bass_programs=(33, 34, 38),
        bass_styles={"root_eighths": 2, "root_fifth": 2, "syncopated": 2},
        comp_styles={"block": 3, "strum": 2, "pad": 2, "arpeggio": 1},
        pool=(
            PoolEntry(0, ("harmony", "melody"), 2),
            PoolEntry(4, ("harmony",), 1),
            PoolEntry(25, ("harmony",), 2),
            PoolEntry(27, ("harmony", "counter"), 1),
            PoolEntry(48, ("harmony", "counter"), 1.5),
            PoolEntry(89, ("harmony",), 1),
            PoolEntry(73, ("melody", "counter"), 1),
            PoolEntry(65, ("melody",), 0.7),
            PoolEntry(81, ("melody",), 1),
            PoolEntry(11, ("melody", "counter"), 0.5),
            PoolEntry(46, ("counter", "harmony"), 0.5),
            PoolEntry(-1, ("percussion",), 1),
        ),
        melody_rhythm=RHYTHM_MEDIUM,
        melody_steps=STEPS_SMOOTH,
        chord_tone_prob=0.7,
        percussion={
            "4/4": ({gm.TAMBOURINE: "....x.......x..."}, {gm.MARACAS: "x.x.x.x.x.x.x.x."}),
            "6/8": ({gm.TAMBOURINE: "x.x.x.x.x.x."},),
        },
        humanize_ticks=4,
        mix=MixStyle(mix_lufs=(-12.0, -9.0), chorus_prob=0.2, delay_prob=0.3),
    )
)
_add(
    Genre(
        name="rock",
        tempo=(100, 160),
        meters={"4/4": 0.9, "6/8": 0.05, "3/4": 0.05},
        swing=(0.5, 0.5),
        swing_unit="8th",
        modes={"major": 0.6, "minor": 0.4},
        tonics=(2, 0.5, 3, 0.5, 3, 1, 1, 3, 0.5, 3, 0.5, 1),
        grammars={"major": ROCK_MAJOR, "minor": ROCK_MINOR},
        chords_per_bar={1: 0.7, 2: 0.15, 0.5: 0.15},
        drum_kits=(0, 16, 8),
        grooves=_grooves(
            (
                {K: "X.......X.x.....", S: "....X.......X...", H: "x.x.x.x.x.x.x.x."},
                {K: "X.....x.X.x.....", S: "....X..o....X...", H: "x.x.x.x.x.x.x.x."},
                {K: "X.......X..x....", S: "....X.......X...", Y: "x.x.x.x.x.x.x.x."},
            ),
            "6/8",
            "3/4",
        ),
        bass_programs=(34, 33),
        bass_styles={"root_eighths": 4, "root_fifth": 1, "octave": 1},
        comp_styles={"power": 3, "strum": 2, "block": 1, "pad": 1},
        pool=(
            PoolEntry(29, ("harmony", "melody"), 2),
            PoolEntry(30, ("harmony",), 2),
            PoolEntry(27, ("harmony", "counter"), 1),
            PoolEntry(18, ("harmony", "counter"), 1),
            PoolEntry(0, ("harmony",), 1),
            PoolEntry(48, ("counter", "harmony"), 0.5),
            PoolEntry(81, ("melody",), 0.5),
            PoolEntry(61, ("counter", "melody"), 0.5),
            PoolEntry(-1, ("percussion",), 0.7),
        ),
        melody_rhythm=RHYTHM_MEDIUM,
        melody_steps=STEPS_LEAPY,
        chord_tone_prob=0.75,
        percussion={"4/4": ({gm.TAMBOURINE: "x.x.x.x.x.x.x.x."}, {gm.COWBELL: "x...x...x...x..."})},
        humanize_ticks=6,
        velocity=(80, 120),
        mix=MixStyle(saturation_prob=0.6, saturation_drive_db=(4.0, 14.0), mix_lufs=(-11.0, -8.0)),
    )
)
_add(
    Genre(
        name="hip-hop",
        tempo=(80, 100),
        meters={"4/4": 1.0},
        swing=(0.52, 0.62),
        swing_unit="16th",
        modes={"minor": 0.75, "major": 0.25},
        tonics=(2, 2, 1, 2, 1, 2, 2, 1, 1, 2, 2, 1),
        grammars={"minor": HIPHOP_MINOR, "major": HIPHOP_MAJOR},
        chords_per_bar={1: 0.5, 0.5: 0.5},
        drum_kits=(25, 0, 8),
        grooves=_grooves(
            (
                {K: "X.....x...X.....", S: "....X.......X...", H: "x.x.x.x.x.x.x.x."},
                {K: "X..x......X..x..", S: "....X..o....X...", H: "x.x.x.x.x.xxx.x."},
                {K: "X.........XX....", C: "....X.......X...", H: "x.x.x.x.x.x.x.x."},
            )
        ),
        bass_programs=(38, 39, 33),
        bass_styles={"syncopated": 4, "root_whole": 1},
        comp_styles={"pad": 2, "block": 2, "arpeggio": 1},
        pool=(
            PoolEntry(4, ("harmony", "melody"), 2),
            PoolEntry(0, ("harmony",), 1),
            PoolEntry(89, ("harmony",), 1.5),
            PoolEntry(48, ("harmony", "counter"), 1),
            PoolEntry(11, ("melody", "counter"), 1),
            PoolEntry(73, ("melody",), 1),
            PoolEntry(80, ("melody",), 1),
            PoolEntry(27, ("counter", "harmony"), 1),
            PoolEntry(99, ("harmony",), 0.5),
            PoolEntry(-1, ("percussion",), 1),
        ),
        melody_rhythm=RHYTHM_SPARSE,
        melody_steps=STEPS_SMOOTH,
        chord_tone_prob=0.7,
        percussion={"4/4": ({gm.MARACAS: "x.x.x.x.x.x.x.x."}, {gm.TAMBOURINE: "....x.......x..."})},
        humanize_ticks=3,
        mix=MixStyle(reverb_wet=(0.03, 0.12), saturation_prob=0.5, mix_lufs=(-11.0, -8.5)),
    )
)
_add(
    Genre(
        name="electronic",
        tempo=(118, 132),
        meters={"4/4": 1.0},
        swing=(0.5, 0.56),
        swing_unit="16th",
        modes={"minor": 0.7, "major": 0.3},
        tonics=EVEN,
        grammars={"minor": ELECTRONIC_MINOR, "major": ELECTRONIC_MAJOR},
        chords_per_bar={1: 0.5, 0.5: 0.5},
        # GM bank-128 "Electronic" kit only: FluidR3's TR-808 kick (kit 25) has so soft an attack that
        # off-beat hats and bass out-weigh it and beat trackers lock to the off-beat (6 of 9 808 songs
        # in a 44-song check); 808s stay in hip-hop, where the kick does not carry every beat.
        drum_kits=(24,),
        grooves=_grooves(
            (
                {K: "X...X...X...X...", C: "....X.......X...", O: "..x...x...x...x."},
                {K: "X...X...X...X...", C: "....X.......X...", H: "xoxoxoxoxoxoxoxo", O: "..x...x...x...x."},
                {K: "X.........X.....", S: "....X.......X...", H: "x.x.x.x.x.x.x.x."},
            )
        ),
        bass_programs=(38, 39),
        bass_styles={"octave": 2, "syncopated": 2, "offbeat": 1},
        comp_styles={"pad": 3, "arpeggio": 2, "block": 1},
        pool=(
            PoolEntry(90, ("harmony",), 2),
            PoolEntry(89, ("harmony",), 1.5),
            PoolEntry(81, ("melody", "harmony"), 2),
            PoolEntry(80, ("melody", "counter"), 1.5),
            PoolEntry(50, ("harmony", "counter"), 1),
            PoolEntry(100, ("harmony",), 1),
            PoolEntry(4, ("harmony",), 1),
            PoolEntry(108, ("counter", "melody"), 0.5),
            PoolEntry(-1, ("percussion",), 1),
        ),
        melody_rhythm=RHYTHM_BUSY,
        melody_steps=STEPS_SMOOTH,
        chord_tone_prob=0.75,
        percussion={"4/4": ({gm.MARACAS: "xoxoxoxoxoxoxoxo"}, {gm.TAMBOURINE: "..x...x...x...x."})},
        humanize_ticks=0,
        velocity=(85, 115),
        mix=MixStyle(chorus_prob=0.35, delay_prob=0.45, mix_lufs=(-10.0, -8.0)),
    )
)
_add(
    Genre(
        name="jazz",
        tempo=(100, 200),
        meters={"4/4": 0.8, "3/4": 0.15, "5/4": 0.05},
        swing=(0.6, 0.68),
        swing_unit="8th",
        modes={"major": 0.6, "minor": 0.4},
        tonics=(3, 1, 1.5, 2.5, 0.5, 3, 0.5, 2, 2, 1, 3, 0.5),
        grammars={"major": JAZZ_MAJOR, "minor": JAZZ_MINOR},
        chords_per_bar={1: 0.6, 2: 0.4},
        drum_kits=(32, 40),
        grooves={
            "4/4": (
                {Y: "x...x.x.x...x.x.", P: "....x.......x...", K: "o...o...o...o..."},
                {Y: "x...x.x.x...x.x.", P: "....x.......x...", S: "......o.......o."},
            ),
            "3/4": ({Y: "x...x.x.x.x.", P: "....x...x...", K: "o..........."},),
            "5/4": GENERIC_GROOVES["5/4"],
        },
        bass_programs=(32,),
        bass_styles={"walking": 5, "root_fifth": 1},
        comp_styles={"jazz_comp": 4, "pad": 1},
        pool=(
            PoolEntry(0, ("harmony", "melody"), 3),
            PoolEntry(26, ("harmony", "melody"), 2),
            PoolEntry(4, ("harmony",), 1),
            PoolEntry(66, ("melody", "counter"), 2),
            PoolEntry(65, ("melody", "counter"), 1.5),
            PoolEntry(56, ("melody",), 1.5),
            PoolEntry(57, ("counter",), 0.7),
            PoolEntry(11, ("melody", "harmony"), 1.5),
            PoolEntry(73, ("melody", "counter"), 0.7),
            PoolEntry(16, ("harmony",), 0.5),
        ),
        melody_rhythm=RHYTHM_SWING,
        melody_steps=STEPS_LEAPY,
        chord_tone_prob=0.65,
        humanize_ticks=8,
        velocity=(60, 105),
        mix=MixStyle(
            reverb_wet=(0.1, 0.25),
            reverb_room=(0.3, 0.7),
            comp_ratio=(1.2, 2.5),
            saturation_prob=0.1,
            delay_prob=0.05,
            mix_lufs=(-18.0, -14.0),
        ),
    )
)
_add(
    Genre(
        name="blues",
        tempo=(80, 130),
        meters={"4/4": 0.65, "12/8": 0.35},
        swing=(0.62, 0.68),
        swing_unit="8th",
        modes={"major": 0.7, "minor": 0.3},
        tonics=(1, 0.3, 1, 1, 3, 1, 0.3, 2, 1, 3, 1, 0.5),
        grammars={"major": BLUES_MAJOR, "minor": BLUES_MINOR},
        chords_per_bar={1: 1.0},
        drum_kits=(0, 8, 32),
        grooves=_grooves(
            (
                {K: "X.......X.......", S: "....X.......X...", H: "x.x.x.x.x.x.x.x."},
                {K: "X.......X.......", S: "....X.......X...", Y: "x.x.x.x.x.x.x.x."},
            ),
            "12/8",
        ),
        bass_programs=(33, 32),
        bass_styles={"walking": 2, "boogie": 3, "root_fifth": 1},
        comp_styles={"strum": 2, "block": 2, "pad": 1, "shuffle": 2},
        pool=(
            PoolEntry(27, ("harmony", "melody"), 2),
            PoolEntry(29, ("melody", "harmony"), 1.5),
            PoolEntry(0, ("harmony", "melody"), 2),
            PoolEntry(16, ("harmony", "counter"), 1.5),
            PoolEntry(66, ("melody", "counter"), 1.5),
            PoolEntry(56, ("melody",), 0.7),
            PoolEntry(61, ("counter",), 0.7),
            PoolEntry(-1, ("percussion",), 0.5),
        ),
        melody_rhythm=RHYTHM_MEDIUM,
        melody_steps=STEPS_LEAPY,
        chord_tone_prob=0.7,
        percussion={"4/4": ({gm.TAMBOURINE: "....x.......x..."},), "12/8": ({gm.TAMBOURINE: "......x...........x....."},)},
        humanize_ticks=8,
        mix=MixStyle(reverb_wet=(0.08, 0.22), saturation_prob=0.4, mix_lufs=(-15.0, -11.0)),
    )
)
_add(
    Genre(
        name="latin",
        tempo=(90, 130),
        meters={"4/4": 1.0},
        swing=(0.5, 0.5),
        swing_unit="16th",
        modes={"minor": 0.55, "major": 0.45},
        tonics=(2, 1, 2, 1, 1, 2, 0.5, 2, 1, 2, 1, 0.5),
        grammars={"minor": LATIN_MINOR, "major": LATIN_MAJOR},
        chords_per_bar={1: 0.6, 2: 0.2, 0.5: 0.2},
        drum_kits=(0, 8),
        grooves=_grooves(
            (
                {K: "X..xX..xX..xX..x", R: "X..X..X...X..X..", H: "x.x.x.x.x.x.x.x."},
                {K: "X.......X.......", gm.COWBELL: "X...X...X...X...", R: "....X.......X.x.", H: "x.x.x.x.x.x.x.x."},
            )
        ),
        bass_programs=(32, 33, 35),
        bass_styles={"tumbao": 3, "root_fifth": 2},
        comp_styles={"montuno": 3, "block": 1, "strum": 1, "pad": 1},
        pool=(
            PoolEntry(0, ("harmony", "melody"), 2),
            PoolEntry(24, ("harmony", "melody"), 2),
            PoolEntry(56, ("melody", "counter"), 1.5),
            PoolEntry(57, ("counter",), 1),
            PoolEntry(73, ("melody",), 1),
            PoolEntry(65, ("melody", "counter"), 1),
            PoolEntry(48, ("harmony",), 0.5),
            PoolEntry(11, ("counter", "melody"), 0.7),
            PoolEntry(-1, ("percussion",), 2.5),
        ),
        melody_rhythm=RHYTHM_MEDIUM,
        melody_steps=STEPS_SMOOTH,
        chord_tone_prob=0.7,
        percussion={
            "4/4": (
                {gm.CLAVES: "X..X..X...X.X...", gm.MUTE_CONGA: "o...x...o...x...", gm.OPEN_CONGA: "..............xx"},
                {gm.CLAVES: "X..X..X...X.X...", gm.MARACAS: "xxxxxxxxxxxxxxxx", gm.HI_BONGO: "x.x.x.x.x.x.x.x."},
            )
        },
        humanize_ticks=5,
        mix=MixStyle(reverb_wet=(0.08, 0.2), mix_lufs=(-14.0, -10.0)),
    )
)
_add(
    Genre(
        name="reggae",
        tempo=(68, 92),
        meters={"4/4": 1.0},
        swing=(0.5, 0.6),
        swing_unit="16th",
        modes={"major": 0.6, "minor": 0.4},
        tonics=(2, 1, 1.5, 1, 1.5, 1.5, 0.5, 2, 1, 2, 1, 0.5),
        grammars={"major": REGGAE_MAJOR, "minor": REGGAE_MINOR},
        chords_per_bar={1: 0.5, 0.5: 0.5},
        drum_kits=(0, 8),
        grooves=_grooves(
            (
                {K: "X.......X.......", R: "........X.......", H: "x.x.x.x.x.x.x.x."},
                {K: "X...X...X...X...", S: "....X.......X...", H: "..x...x...x...x."},
                {K: "X...X...X...X...", R: "........X.......", H: "x.xxx.xxx.xxx.xx"},
            )
        ),
        bass_programs=(33, 35),
        bass_styles={"reggae": 4, "root_fifth": 1},
        comp_styles={"skank": 5, "pad": 1},
        pool=(
            PoolEntry(27, ("harmony",), 2),
            PoolEntry(0, ("harmony",), 1),
            PoolEntry(16, ("harmony", "counter"), 2),
            PoolEntry(56, ("melody", "counter"), 1),
            PoolEntry(66, ("melody",), 1),
            PoolEntry(4, ("harmony", "melody"), 1),
            PoolEntry(81, ("melody",), 0.5),
            PoolEntry(-1, ("percussion",), 1),
        ),
        melody_rhythm=RHYTHM_SPARSE,
        melody_steps=STEPS_SMOOTH,
        chord_tone_prob=0.75,
        percussion={"4/4": ({gm.MARACAS: "..x...x...x...x."}, {gm.COWBELL: "....x.......x..."})},
        humanize_ticks=4,
        mix=MixStyle(delay_prob=0.5, delay_feedback=(0.25, 0.5), mix_lufs=(-13.0, -10.0)),
    )
)
_add(
    Genre(
        name="classical",
        tempo=(60, 120),
        meters={"4/4": 0.5, "3/4": 0.35, "6/8": 0.15},
        swing=(0.5, 0.5),
        swing_unit="8th",
        modes={"major": 0.6, "minor": 0.4},
        tonics=(3, 0.5, 3, 2, 1.5, 2.5, 0.3, 3, 1, 2, 2, 0.5),
        grammars={"major": CLASSICAL_MAJOR, "minor": CLASSICAL_MINOR},
        chords_per_bar={1: 0.6, 2: 0.4},
        # an orchestra plays without a drum kit; the Orchestra Kit grooves stay for genre files based on
        # classical that set `drums` above 0
        drums_prob=0.0,
        drum_kits=(48,),
        grooves={
            "4/4": ({K: "X.......x.......", S: "....o.......o..."}, {K: "X...............", gm.TRIANGLE: "x...x...x...x..."}),
            "3/4": ({K: "X...........", S: "....o...o..."},),
            "6/8": ({K: "X.....x.....", S: "......o....."},),
        },
        bass_programs=(43, 32),
        bass_styles={"root_whole": 2, "root_fifth": 2, "root_beats": 1},
        comp_styles={"alberti": 2, "pad": 3, "arpeggio": 2, "block": 1},
        pool=(
            PoolEntry(0, ("harmony", "melody"), 3),
            PoolEntry(48, ("harmony",), 2),
            PoolEntry(40, ("melody", "counter"), 2),
            PoolEntry(42, ("counter",), 1.5),
            PoolEntry(73, ("melody",), 1.5),
            PoolEntry(68, ("melody", "counter"), 1),
            PoolEntry(71, ("melody", "counter"), 1),
            PoolEntry(60, ("counter",), 1),
            PoolEntry(46, ("harmony",), 1),
            PoolEntry(6, ("harmony",), 0.5),
            PoolEntry(9, ("counter",), 0.3),
        ),
        melody_rhythm=RHYTHM_MEDIUM,
        melody_steps=STEPS_SMOOTH,
        chord_tone_prob=0.75,
        humanize_ticks=5,
        velocity=(55, 100),
        mix=MixStyle(
            reverb_wet=(0.2, 0.35),
            reverb_room=(0.5, 0.85),
            comp_threshold_db=(-24.0, -16.0),
            comp_ratio=(1.1, 1.8),
            saturation_prob=0.0,
            chorus_prob=0.0,
            delay_prob=0.0,
            mix_lufs=(-20.0, -15.0),
            glue_ratio=(1.2, 1.8),
        ),
    )
)

GENRE_NAMES: tuple[str, ...] = tuple(GENRES)


def check_genre(name: str | Genre) -> Genre:
    """A built-in preset by name; a Genre (a user-defined one) as it is."""
    if isinstance(name, Genre):
        return name
    if name not in GENRES:
        raise ValueError(f"unknown genre {name!r}; choose from {', '.join(GENRE_NAMES)}")
    return GENRES[name]
