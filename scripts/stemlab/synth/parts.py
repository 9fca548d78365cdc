"""Note generators, one per role: drums, bass, harmony (comping), melody, counter-melody, percussion.

Each generator writes the notes of one section occurrence on the straight grid (swing and humanising
come later, in compose). `rng` is keyed by (part, section type), so a repeated section replays the
same material; `occ_rng` is keyed by the occurrence and only varies fills and crashes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from stemlab.synth import instruments as gm
from stemlab.synth.genres import Genre
from stemlab.synth.sampling import weighted_choice
from stemlab.synth.score import ChordSpan, Note, Part, Score, SectionSpan
from stemlab.synth.theory import Chord, degree_of, scale_pitches

DRUM_VELOCITY = {"X": 112, "x": 88, "o": 50}
SECTION_GAIN = {"intro": 0.85, "verse": 0.95, "chorus": 1.05, "bridge": 1.0, "outro": 0.9}
CYMBALS = {gm.CLOSED_HAT, gm.PEDAL_HAT, gm.OPEN_HAT, gm.RIDE, gm.RIDE_BELL, gm.SIDESTICK}
FILL_KEYS = (gm.SNARE, gm.HIGH_TOM, gm.MID_TOM, gm.LOW_TOM, gm.FLOOR_TOM)

BASS_PATTERNS: dict[str, tuple[str, ...]] = {
    "root_eighths": ("R.R.R.R.R.R.R.R.", "R.R.R.R.R.R.5.R."),
    "root_fifth": ("R.......5.......", "R...5...R...5..."),
    "root_whole": ("R...............",),
    "root_beats": ("R...R...R...R...",),
    "octave": ("R.8.R.8.R.8.R.8.",),
    "syncopated": ("R.....R...R..5..", "R..R....R.-.R...", "R.......-.R.5.R."),
    "offbeat": ("--R.--R.--R.--R.",),
    "boogie": ("R.3.5.6.8.6.5.3.",),
    "tumbao": ("------5.....N...",),
    "reggae": ("--R.R.--5...R.-.", "R...--R.5.--R..."),
}
COMP_PATTERNS: dict[str, tuple[str, ...]] = {
    "block": ("x.......x.......", "x...x...x...x...", "x.....x.....x...", "x.x.x.x.x.x.x.x."),
    "strum": ("x.x.x.x.x.x.x.x.", "x..x..x.x.x.x.x.", "x...x.x..xx.x.x."),
    "power": ("x.x.x.x.x.x.x.x.", "x.......x.x.x.x.", "x..x..x.x..x..x."),
    "jazz_comp": ("x.....x.........", "...x......x.....", "x.........x..x..", "......x....x....", "--x.....x.....x."),
    "montuno": ("x.x..x.x.x..x.x.", "-.x.x..x.x.x..x."),
    "skank": ("----x.------x.--", "----x.x.----x.x."),
}
ARTICULATION = {"block": 0.95, "strum": 0.9, "power": 0.5, "jazz_comp": 0.8, "montuno": 0.55, "skank": 0.45}
MELODY_CELLS_COMPOUND = {"x.....": 2.0, "x...x.": 3.0, "x.x.x.": 2.0, "-...x.": 1.0, "x.x...": 1.0}
MELODY_CELLS_EIGHTH = {"x.": 3.0, "xx": 2.0, "-x": 1.0}


# ----------------------------------------------------------------------------- helpers
def pattern_events(pattern: str) -> list[tuple[int, str, int]]:
    """(step, symbol, length in steps) for each onset of a pattern; '.' holds, '-' starts a rest."""
    out = []
    marks = [i for i, ch in enumerate(pattern) if ch != "."] + [len(pattern)]
    for a, b in zip(marks[:-1], marks[1:]):
        if pattern[a] != "-":
            out.append((a, pattern[a], b - a))
    return out


def generic_pattern(steps_per_beat: int, beats: int, symbols: str = "x") -> str:
    """One onset per beat (cycling through `symbols`), held to the next beat."""
    return "".join(symbols[b % len(symbols)] + "." * (steps_per_beat - 1) for b in range(beats))


def near(pc: int, ref: float, lo: int, hi: int) -> int:
    """The pitch of class `pc` in [lo, hi] closest to `ref` (ties: lower)."""
    cands = [p for p in range(lo, hi + 1) if p % 12 == pc % 12]
    if not cands:
        return int(np.clip(ref, lo, hi))
    return min(cands, key=lambda p: (abs(p - ref), p))


def split_at_chords(score: Score, start: int, end: int) -> list[tuple[int, int, ChordSpan]]:
    """Cut [start, end) at chord changes."""
    out = []
    t = start
    while t < end:
        span = score.chord_at(t)
        stop = min(end, span.end) if span.end > t else end
        out.append((t, stop, span))
        t = stop
    return out


def _vel(base: float, rng: np.random.Generator, spread: int = 6) -> int:
    return int(np.clip(round(base + rng.integers(-spread, spread + 1)), 1, 127))


def _bar_tick(score: Score, sec: SectionSpan, bar: int, step: int = 0) -> int:
    return sec.start + bar * score.meter.bar_ticks + step * score.meter.step_ticks


# ----------------------------------------------------------------------------- drums
def drums(score: Score, genre: Genre, part: Part, sec: SectionSpan, rng, occ_rng) -> list[Note]:
    m = score.meter
    grooves = genre.grooves[str(m)]
    if sec.name == "bridge":
        groove = grooves[-1]
    elif rng.random() < 0.6:
        groove = grooves[0]
    else:
        groove = grooves[int(rng.integers(len(grooves)))]
    light = sec.name == "intro" and rng.random() < 0.6
    gain = SECTION_GAIN[sec.name]
    last_section = sec.index == len(score.sections) - 1
    notes: list[Note] = []
    step = m.step_ticks
    for bar in range(sec.bars):
        t0 = _bar_tick(score, sec, bar)
        if last_section and bar == sec.bars - 1 and sec.bars > 1:
            notes += [Note(t0, t0 + step, gm.KICK, 115), Note(t0, t0 + step, gm.CRASH, 110)]  # final hit
            continue
        fill_from = None
        if bar == sec.bars - 1 and sec.bars >= 2 and not last_section and occ_rng.random() < 0.55:
            fill_from = m.steps_per_bar - m.steps_per_beat * int(occ_rng.integers(1, 3))
        for key, pat in groove.items():
            for s, ch, _ in pattern_events(pat):
                if light and key not in CYMBALS and not (key == gm.KICK and s == 0):
                    continue
                if fill_from is not None and s >= fill_from and key != gm.KICK:
                    continue
                base = DRUM_VELOCITY[ch] * gain
                notes.append(Note(t0 + s * step, t0 + (s + 1) * step, key, _vel(base, occ_rng, 5)))
        if fill_from is not None:
            every = 1 if rng.random() < 0.5 else 2
            n = m.steps_per_bar - fill_from
            for i, s in enumerate(range(fill_from, m.steps_per_bar, every)):
                key = FILL_KEYS[min(len(FILL_KEYS) - 1, i * len(FILL_KEYS) // max(1, n // every))]
                notes.append(Note(t0 + s * step, t0 + (s + 1) * step, key, _vel(75 + 35 * i / max(1, n // every), occ_rng, 4)))
    if sec.index > 0 and sec.name != "intro" and occ_rng.random() < 0.8:
        notes.append(Note(sec.start, sec.start + step, gm.CRASH, _vel(105 * gain, occ_rng, 4)))
    return notes


def percussion(score: Score, genre: Genre, part: Part, sec: SectionSpan, rng, occ_rng) -> list[Note]:
    m = score.meter
    patterns = genre.percussion[str(m)]
    groove = patterns[int(rng.integers(len(patterns)))]
    gain = SECTION_GAIN[sec.name] * 0.9
    notes = []
    for bar in range(sec.bars):
        t0 = _bar_tick(score, sec, bar)
        for key, pat in groove.items():
            for s, ch, _ in pattern_events(pat):
                notes.append(Note(t0 + s * m.step_ticks, t0 + (s + 1) * m.step_ticks, key, _vel(DRUM_VELOCITY[ch] * gain, occ_rng, 8)))
    return notes


# ----------------------------------------------------------------------------- bass
class _BassVoice:
    """Keeps the bass in its low register and close to where it was."""

    def __init__(self, part: Part, tonic: int):
        inst = part.instrument
        self.lo, self.hi = inst.lo, inst.hi
        self.anchor = float(self.lo + 10)
        self.tonic = tonic

    def root(self, span: ChordSpan) -> int:
        p = near(span.chord.root_pc(self.tonic), self.anchor, self.lo, min(self.hi - 12, self.lo + 17))
        self.anchor = 0.7 * self.anchor + 0.3 * p
        return p

    def pitch(self, token: str, span: ChordSpan, nxt: ChordSpan) -> int:
        root = self.root(span)
        iv = span.chord.intervals()
        if token == "R":
            p = root
        elif token == "8":
            p = root + 12
        elif token == "5":
            p = root + 7 if 7 in iv or len(iv) < 3 else root + iv[2]
        elif token == "3":
            p = root + iv[1]
        elif token == "6":
            p = root + 9
        elif token == "7":
            p = root + (iv[3] if len(iv) > 3 else 10)
        elif token == "N":
            p = near(nxt.chord.root_pc(self.tonic), root, self.lo, self.hi)
        else:
            raise ValueError(f"bad bass token {token!r}")
        while p > self.hi:
            p -= 12
        return p


def bass(score: Score, genre: Genre, part: Part, sec: SectionSpan, rng, occ_rng) -> list[Note]:
    m = score.meter
    voice = _BassVoice(part, score.tonic)
    if part.style == "walking":
        return _walking(score, sec, rng, voice)
    if m.steps_per_bar == 16 and part.style in BASS_PATTERNS:
        options = BASS_PATTERNS[part.style]
        pattern = options[int(rng.integers(len(options)))]
    elif part.style == "root_whole":
        pattern = "R" + "." * (m.steps_per_bar - 1)
    else:
        pattern = generic_pattern(m.steps_per_beat, m.beats_per_bar, "R5" if part.style != "root_beats" else "R")
    base = float(rng.uniform(*genre.velocity)) * SECTION_GAIN[sec.name]
    notes = []
    for bar in range(sec.bars):
        for s, token, length in pattern_events(pattern):
            start = _bar_tick(score, sec, bar, s)
            end = start + max(1, int(length * m.step_ticks * 0.92))
            for i, (a, b, span) in enumerate(split_at_chords(score, start, min(end, sec.end))):
                tok = token if i == 0 else "R"
                p = voice.pitch(tok, span, score.next_chord(a))
                notes.append(Note(a, b, p, _vel(base + (6 if s == 0 else 0), rng)))
    return notes


def _walking(score: Score, sec: SectionSpan, rng, voice: _BassVoice) -> list[Note]:
    beat = score.meter.beat_ticks
    notes = []
    spans = [c for c in score.chords if c.section == sec.index]
    for k, span in enumerate(spans):
        nxt = spans[k + 1] if k + 1 < len(spans) else score.next_chord(span.start)
        root = voice.root(span)
        target = near(nxt.chord.root_pc(score.tonic), root, voice.lo, voice.hi)
        n = max(1, (span.end - span.start) // beat)
        line = [root]
        tones = sorted({root + iv - 12 * o for iv in span.chord.intervals()[:4] for o in (0, 1) if voice.lo <= root + iv - 12 * o <= voice.hi})
        for i in range(1, n):
            prev = line[-1]
            if i == n - 1:
                side = 1 if target < prev else -1
                cand = target + side if rng.random() < 0.6 else target + 2 * side
                line.append(int(np.clip(cand, voice.lo, voice.hi)))
            else:
                options = [t for t in tones if t != prev and abs(t - prev) <= 7] or [prev + 2]
                line.append(int(options[int(rng.integers(len(options)))]))
        for i, p in enumerate(line):
            t = span.start + i * beat
            notes.append(Note(t, t + int(beat * 0.9), p, _vel(88 if i == 0 else 80, rng)))
    return notes


# ----------------------------------------------------------------------------- harmony
def chord_tones(chord: Chord, style: str) -> list[int]:
    """Intervals to voice: at most four; rootless (3-7-9/5) for jazz comping."""
    iv = list(chord.intervals())
    if style == "power":
        return [0, 7, 12]
    if style == "jazz_comp" and len(iv) >= 4:
        return [iv[1], iv[3], 14 if 14 in iv else iv[2]]
    if len(iv) > 4:
        iv = [x for x in iv if x != 7][:4]
    return iv


def voicing(pcs: list[int], lo: int, hi: int, prev: tuple[int, ...] | None, center: float) -> tuple[int, ...]:
    """Close-position voicing (some inversion, some octave) in [lo, hi] nearest the previous one."""
    pcs = [p % 12 for p in pcs]
    best: tuple[float, tuple[int, ...]] | None = None
    n = len(pcs)
    for inv in range(n):
        order = pcs[inv:] + pcs[:inv]
        for base in range(lo, hi + 1):
            if base % 12 != order[0]:
                continue
            v = [base]
            for pc in order[1:]:
                nxt = v[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                v.append(nxt)
            if v[-1] > hi:
                continue
            cost = abs(np.mean(v) - center) * 0.3
            if prev:
                cost += abs(np.mean(v) - np.mean(prev)) + 0.5 * abs(max(v) - max(prev))
            if best is None or cost < best[0]:
                best = (cost, tuple(v))
    if best is None:  # range too narrow for a close voicing: stack upward from lo
        return tuple(sorted({lo + ((pc - lo) % 12) for pc in pcs}))
    return best[1]


def _comp_range(part: Part, style: str) -> tuple[int, int]:
    lo, hi = part.instrument.lo, part.instrument.hi
    if style in ("power", "shuffle"):
        return max(lo, 40), min(hi, 64)
    return max(lo, 47), min(hi, 81)


def harmony(score: Score, genre: Genre, part: Part, sec: SectionSpan, rng, occ_rng) -> list[Note]:
    m = score.meter
    style = part.style
    lo, hi = _comp_range(part, style)
    center = (lo + hi) / 2
    prev: tuple[int, ...] | None = None
    base = float(rng.uniform(*genre.velocity)) * SECTION_GAIN[sec.name] * (0.8 if style in ("pad", "arpeggio", "alberti") else 0.9)
    notes: list[Note] = []

    def voiced(span: ChordSpan) -> tuple[int, ...]:
        nonlocal prev
        pcs = [span.chord.root_pc(score.tonic) + iv for iv in chord_tones(span.chord, style)]
        prev = voicing(pcs, lo, hi, prev, center)
        return prev

    spans = [c for c in score.chords if c.section == sec.index]
    if style == "pad":
        for span in spans:
            for p in voiced(span):
                notes.append(Note(span.start, span.end - 10, p, _vel(base, rng, 4)))
        return notes
    if style in ("arpeggio", "alberti"):
        every = 1 if (genre.name == "electronic" and m.steps_per_beat == 4) else 2
        every = max(1, min(every, m.steps_per_beat))
        for span in spans:
            v = voiced(span)
            if style == "alberti" and len(v) >= 3:
                order = [v[0], v[-1], v[1], v[-1]]
            else:
                order = list(v) + list(v[-2:0:-1])
            t = span.start
            i = 0
            dur = every * m.step_ticks
            while t < span.end:
                notes.append(Note(t, min(t + dur, span.end), order[i % len(order)], _vel(base + (8 if i % 4 == 0 else 0), rng, 4)))
                t += dur
                i += 1
        return notes
    if style == "shuffle":
        for bar in range(sec.bars):
            for b in range(m.beats_per_bar):
                for half, six in ((0, False), (m.steps_per_beat // 2, True)):
                    t = _bar_tick(score, sec, bar, b * m.steps_per_beat + half)
                    span = score.chord_at(t)
                    root = near(span.chord.root_pc(score.tonic), (lo + hi) / 2 - 6, lo, hi - 9)
                    for p in (root, root + (9 if six else 7)):
                        notes.append(Note(t, t + int(m.step_ticks * m.steps_per_beat / 2 * 0.85), p, _vel(base, rng, 5)))
        return notes
    if m.steps_per_bar == 16 and style in COMP_PATTERNS:
        options = COMP_PATTERNS[style]
        patterns = [options[int(rng.integers(len(options)))] for _ in range(2)]
    else:
        patterns = [generic_pattern(m.steps_per_beat, m.beats_per_bar)]
    art = ARTICULATION.get(style, 0.9)
    roll = 12 if style == "strum" else 0
    for bar in range(sec.bars):
        pattern = patterns[bar % len(patterns)] if style == "jazz_comp" else patterns[0]
        for k, (s, _, length) in enumerate(pattern_events(pattern)):
            start = _bar_tick(score, sec, bar, s)
            end = start + max(1, int(length * m.step_ticks * art))
            for a, b, span in split_at_chords(score, start, min(end, sec.end)):
                v = voiced(span)
                up = style == "strum" and (s // 2) % 2 == 1
                ordered = list(reversed(v))[:3] if up else list(v)
                for j, p in enumerate(ordered):
                    onset = min(a + j * roll, b - 1)
                    accent = 8 if s == 0 else 0
                    notes.append(Note(onset, b, p, _vel(base + accent - (10 if up else 0), rng, 5)))
                if style == "montuno":
                    notes.append(Note(a, b, v[-1] + 12 if v[-1] + 12 <= part.instrument.hi else v[0] - 12, _vel(base, rng, 5)))
    return notes


# ----------------------------------------------------------------------------- melody
def _melody_cells(score: Score, genre: Genre) -> dict[str, float]:
    spb = score.meter.steps_per_beat
    if spb == 6:
        return MELODY_CELLS_COMPOUND
    if spb == 2:
        return MELODY_CELLS_EIGHTH
    return genre.melody_rhythm


def melody_window(part: Part, width: int = 19) -> tuple[int, int]:
    lo, hi = part.instrument.lo, part.instrument.hi
    center = int(np.clip(72, lo + width // 2, hi - width // 2)) if hi - lo >= width else (lo + hi) // 2
    return max(lo, center - width // 2), min(hi, center + (width - width // 2))


def _rhythm(bars: int, score: Score, cells: dict[str, float], rng) -> list[tuple[int, int]]:
    """(start step, length in steps) of the notes of a motif; it ends with a breath."""
    m = score.meter
    n_beats = bars * m.beats_per_bar
    while True:
        text = "".join(str(weighted_choice(rng, cells)) for _ in range(n_beats))
        if n_beats >= 4:
            text = text[: -m.steps_per_beat] + "-" + "." * (m.steps_per_beat - 1)
        ev = [(s, length) for s, _, length in pattern_events(text)]
        if len(ev) >= max(2, bars):
            return ev


class ScaleWalk:
    """Scale-degree Markov chain: the next degree depends on the current one (step sizes from the
    genre, tendency tones resolving: 7 -> 1, 4 -> 3 in major), reflected at the range edges."""

    def __init__(self, tonic: int, mode: str, lo: int, hi: int, steps: dict[int, float]):
        self.tonic, self.mode = tonic, mode
        self.pitches = scale_pitches(tonic, mode, lo, hi)
        self.steps = steps

    def transition(self, idx: int) -> dict[int, float]:
        deg = degree_of(self.pitches[idx], self.tonic, self.mode)
        w = dict(self.steps)
        if self.mode == "major" and deg == 6:
            w[1] = w.get(1, 0) * 3
        if deg == 3:
            w[-1] = w.get(-1, 0) * 2
        out = {}
        for step, weight in w.items():
            j = idx + step
            if not 0 <= j < len(self.pitches):
                j = idx - step
            if 0 <= j < len(self.pitches):
                out[j] = out.get(j, 0.0) + weight
        return out

    def walk(self, start: int, n: int, rng) -> list[int]:
        seq = [start]
        for _ in range(n - 1):
            seq.append(int(weighted_choice(rng, self.transition(seq[-1]))))
        return seq

    def tonic_index_near(self, idx: int) -> int:
        cands = [i for i, p in enumerate(self.pitches) if (p - self.tonic) % 12 == 0]
        return min(cands, key=lambda i: abs(i - idx)) if cands else idx


def melody(score: Score, genre: Genre, part: Part, sec: SectionSpan, rng, occ_rng, walk_class=ScaleWalk) -> list[Note]:
    """Motifs of rhythm cells and scale-walk pitches; `walk_class` (ScaleWalk's signature) may be a
    composer backend's walk."""
    m = score.meter
    lo, hi = melody_window(part)
    walk = walk_class(score.tonic, score.mode, lo, hi, genre.melody_steps)
    cells = _melody_cells(score, genre)
    motif_bars = 2 if sec.bars >= 4 else sec.bars
    start_idx = len(walk.pitches) // 2
    rhythm_a = _rhythm(motif_bars, score, cells, rng)
    pitches_a = walk.walk(start_idx, len(rhythm_a), rng)
    half = len(pitches_a) // 2
    pitches_a2 = pitches_a[:half] + walk.walk(pitches_a[half - 1] if half else start_idx, len(pitches_a) - half + 1, rng)[1:]
    rhythm_b = _rhythm(motif_bars, score, cells, rng)
    pitches_b = walk.walk(pitches_a[-1], len(rhythm_b), rng)
    pitches_b[-1] = walk.tonic_index_near(pitches_b[-1])
    units = [(rhythm_a, pitches_a), (rhythm_a, pitches_a2), (rhythm_a, pitches_a), (rhythm_b, pitches_b)]
    base = float(rng.uniform(*genre.velocity)) * SECTION_GAIN[sec.name]
    legato = 0.95 if genre.name in ("classical", "pop", "electronic") else 0.85
    notes: list[Note] = []
    for u, bar0 in enumerate(range(0, sec.bars, motif_bars)):
        rhythm, idxs = units[u % 4]
        if bar0 + motif_bars > sec.bars:
            break
        for (s, length), idx in zip(rhythm, idxs):
            start = _bar_tick(score, sec, bar0, s)
            end = start + max(1, int(length * m.step_ticks * legato))
            pitch = walk.pitches[idx]
            on_beat = s % m.steps_per_beat == 0
            span = score.chord_at(start)
            if on_beat and rng.random() < genre.chord_tone_prob:
                pcs = span.chord.pitch_classes(score.tonic)
                pitch = min((p for p in range(lo, hi + 1) if p % 12 in pcs), key=lambda p: (abs(p - pitch), p), default=pitch)
            accent = 8 if s % (m.steps_per_beat * m.beats_per_bar) == 0 else 0
            notes.append(Note(start, min(end, sec.end), pitch, _vel(base + accent, rng)))
    return notes


def counter(score: Score, genre: Genre, part: Part, sec: SectionSpan, rng, occ_rng) -> list[Note]:
    """Guide-tone line: the 3rd or 7th of each chord, voice-led, one or two notes per chord."""
    lo, hi = part.instrument.lo, part.instrument.hi
    center = int(np.clip(62, lo + 6, hi - 6))
    lo, hi = max(lo, center - 9), min(hi, center + 9)
    prev = float(center)
    base = float(rng.uniform(*genre.velocity)) * SECTION_GAIN[sec.name] * 0.85
    notes = []
    for span in (c for c in score.chords if c.section == sec.index):
        iv = span.chord.intervals()
        root = span.chord.root_pc(score.tonic)
        guides = [root + iv[1]] + ([root + iv[3]] if len(iv) > 3 else [root + iv[2]])
        length = span.end - span.start
        halves = 2 if length >= 2 * score.meter.beat_ticks and rng.random() < 0.35 else 1
        seg = length // halves
        for h in range(halves):
            pc = guides[h % len(guides)] if halves == 2 else guides[int(rng.integers(len(guides)))]
            p = near(pc, prev, lo, hi)
            prev = p
            t = span.start + h * seg
            notes.append(Note(t, t + seg - 20, p, _vel(base, rng, 4)))
    return notes


GENERATORS: dict[str, Callable[..., list[Note]]] = {
    "drums": drums,
    "percussion": percussion,
    "bass": bass,
    "harmony": harmony,
    "melody": melody,
    "counter": counter,
}
MONOPHONIC_ROLES = frozenset({"bass", "melody", "counter"})
