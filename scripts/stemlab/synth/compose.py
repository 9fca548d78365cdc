"""Compose one song: genre -> meter, tempo, key, form, chords, instruments, activity, notes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from stemlab.synth import parts as gen
from stemlab.synth.form import plan_form
from stemlab.synth.genres import Genre, PoolEntry, check_genre
from stemlab.synth.harmony import markov_chords, section_progression
from stemlab.synth.sampling import weighted_choice
from stemlab.synth.instruments import AUX_PERCUSSION, DRUM_KITS, MELODIC, Instrument
from stemlab.synth.score import ChordSpan, Note, Part, Score, SectionSpan
from stemlab.synth.sources.soundfonts import SoundfontPools
from stemlab.synth.theory import parse_roman
from stemlab.synth.timing import Meter, Swing, Tempo
from stemlab.taxonomy import STEMS

RngFactory = Callable[..., np.random.Generator]
# (bank, program) pairs each soundfont provides; None = assume every GM preset exists
Presets = Mapping[str, frozenset[tuple[int, int]]]

# how likely a part of each role plays in each section type (drums, bass, first harmony: always,
# except the intro may leave drums or bass out)
ACTIVITY = {
    "drums": {"intro": 0.6, "verse": 1.0, "chorus": 1.0, "bridge": 1.0, "outro": 1.0},
    "bass": {"intro": 0.5, "verse": 1.0, "chorus": 1.0, "bridge": 1.0, "outro": 1.0},
    "harmony": {"intro": 1.0, "verse": 1.0, "chorus": 1.0, "bridge": 1.0, "outro": 1.0},
    "harmony2": {"intro": 0.4, "verse": 0.5, "chorus": 1.0, "bridge": 0.8, "outro": 0.5},
    "melody": {"intro": 0.2, "verse": 1.0, "chorus": 1.0, "bridge": 0.6, "outro": 0.2},
    "counter": {"intro": 0.3, "verse": 0.4, "chorus": 1.0, "bridge": 0.8, "outro": 0.3},
    "percussion": {"intro": 0.3, "verse": 0.6, "chorus": 1.0, "bridge": 0.6, "outro": 0.5},
}


ROLE_LIMITS = {"harmony": 3, "melody": 1, "counter": 1, "percussion": 1}
SUSTAINED = {16, 17, 18, 19, 21, 48, 49, 50, 61, 88, 89, 90, 95, 99, 100}
GUITARS = {24, 25, 26, 27, 28, 29, 30}
PLUCKED_STYLES = {"strum", "power", "shuffle", "skank"}
KEY_STYLES = {"block", "arpeggio", "alberti", "jazz_comp", "montuno", "skank"}


def comp_style_weights(genre: Genre, inst: Instrument, taken: list[str]) -> dict[str, float]:
    """The genre's comping styles, re-weighted by what suits the instrument; a style already used by
    another harmony part is avoided, and parts after the first lean towards pads."""
    out = {}
    for style, w in genre.comp_styles.items():
        if style == "power" and inst.program not in (29, 30):
            continue
        if inst.program in SUSTAINED:
            w *= 4.0 if style == "pad" else 0.3
        elif inst.program in GUITARS:
            w *= 3.0 if style in PLUCKED_STYLES else 0.6
        elif style in KEY_STYLES:
            w *= 2.0
        if style in taken:
            w *= 0.1
        if taken and style == "pad":
            w *= 2.0
        out[style] = w
    return out or {"pad": 1.0}


@dataclass(frozen=True)
class ComposeParams:
    duration_s: tuple[float, float]
    other_parts: tuple[int, int]  # how many parts besides drums and bass


@dataclass(frozen=True)
class ComposeOverrides:
    """What a composition source (stemlab.synth.sources) fixes instead of the genre's draws; every draw
    still happens, so the other choices of the song stay those of its generators."""

    meter: Meter | None = None
    us_per_quarter: int | None = None  # the tempo; a fixed tempo also plays straight (no swing)
    key: tuple[int, str] | None = None  # (tonic pitch class, mode)
    drums: bool | None = None  # force a drum stem on (or off)
    # (section name, number of chords, loop length, is the last section) -> chord tokens
    progression: Callable[[str, int, int, bool], list[str]] | None = None
    # (score, drum part) -> the drum part's notes, in place of the genre's grooves
    drum_notes: Callable[[Score, Part], list[Note]] | None = None


def _has(presets: Presets | None, sf: str, inst: Instrument) -> bool:
    return presets is None or (inst.bank, inst.program) in presets[sf]


def _soundfont(rng: np.random.Generator, soundfonts: list[str], presets: Presets | None, inst: Instrument) -> str | None:
    ok = [sf for sf in soundfonts if _has(presets, sf, inst)]
    return ok[int(rng.integers(len(ok)))] if ok else None


def _instrument(entry: PoolEntry) -> Instrument:
    return AUX_PERCUSSION if entry.program < 0 else MELODIC[entry.program]


def choose_parts(
    genre: Genre,
    meter: Meter,
    params: ComposeParams,
    soundfonts: list[str] | SoundfontPools,
    presets: Presets | None,
    rng: np.random.Generator,
    drums: bool = True,
) -> list[Part]:
    """Drums (unless `drums` is False) and bass, then a harmony part, a melody and further parts of
    distinct stem categories. Each part's soundfont is drawn from the pool of its stem category."""
    pools = soundfonts if isinstance(soundfonts, SoundfontPools) else SoundfontPools(tuple(soundfonts))
    parts: list[Part] = []

    def add(inst: Instrument, role: str, style: str) -> bool:
        sf = _soundfont(rng, list(pools.pool(inst.category)), presets, inst)
        if sf is None:
            return False
        parts.append(Part(inst.category, role, inst, style, sf, role in gen.MONOPHONIC_ROLES))
        return True

    def provided(inst: Instrument) -> bool:
        return any(_has(presets, sf, inst) for sf in pools.pool(inst.category))

    if drums:
        kits = [DRUM_KITS[k] for k in genre.drum_kits if provided(DRUM_KITS[k])]
        kits = kits or [DRUM_KITS[0]]
        if not add(kits[int(rng.integers(len(kits)))], "drums", str(meter)):
            raise ValueError("no soundfont provides a GM drum kit (bank 128)")
    basses = [MELODIC[p] for p in genre.bass_programs if provided(MELODIC[p])]
    if not basses or not add(basses[int(rng.integers(len(basses)))], "bass", str(weighted_choice(rng, genre.bass_styles))):
        raise ValueError("no soundfont provides the genre's bass programs")

    lo, hi = params.other_parts
    target = int(rng.integers(lo, hi + 1))
    pool = [e for e in genre.pool if e.program >= 0 or str(meter) in genre.percussion]
    pool = [e for e in pool if provided(_instrument(e))]
    wanted = ["harmony", "melody"] + [None] * max(0, target - 2)
    comp_styles: list[str] = []
    for want in wanted[:target]:
        used = {p.name for p in parts}
        counts = {r: sum(p.role == r for p in parts) for r in ROLE_LIMITS}
        cands = []
        for e in pool:
            inst = _instrument(e)
            if inst.category in used:
                continue
            roles = [r for r in e.roles if (want is None or r == want) and counts[r] < ROLE_LIMITS[r]]
            cands += [(e, r) for r in roles]
        if not cands:
            continue
        weights = np.array([e.weight * (0.5 if r == "harmony" and want is None else 1.0) for e, r in cands])
        entry, role = cands[int(rng.choice(len(cands), p=weights / weights.sum()))]
        style = ""
        if role == "harmony":
            styles = comp_style_weights(genre, _instrument(entry), comp_styles)
            style = str(weighted_choice(rng, styles))
            comp_styles.append(style)
        elif role == "percussion":
            style = "aux"
        else:
            style = role
        add(_instrument(entry), role, style)
    return parts


def _activity(parts: list[Part], sections: list[SectionSpan], rng: np.random.Generator) -> None:
    seen_harmony = False
    for part in parts:
        key = part.role
        if part.role == "harmony":
            key = "harmony2" if seen_harmony else "harmony"
            seen_harmony = True
        table = ACTIVITY[key]
        part.active = [s.index for s in sections if rng.random() < table[s.name]]
        if not part.active:  # every part plays somewhere: in the (first) chorus, else the longest section
            choruses = [s for s in sections if s.name == "chorus"]
            part.active = [(choruses[0] if choruses else max(sections, key=lambda s: s.bars)).index]


def _finish(notes: list[Note], swing: Swing, end_tick: int, humanize: int, monophonic: bool, rng) -> list[Note]:
    """Swing, humanise, keep inside the song, and remove overlaps (same pitch; all notes if monophonic)."""
    out = []
    for n in sorted(notes, key=lambda n: (n.start, n.pitch)):
        start, end = swing.apply(n.start), swing.apply(n.end)
        if humanize:
            start += int(rng.integers(-humanize, humanize + 1))
        start = max(0, start)
        end = min(end, end_tick)
        if end - start >= 10:
            out.append(Note(start, end, n.pitch, n.velocity))
    out.sort(key=lambda n: (n.start, n.pitch, n.end))
    cleaned: list[Note] = []
    last_by_pitch: dict[int, int] = {}
    for n in out:
        if monophonic and cleaned:
            prev = cleaned[-1]
            if n.start <= prev.start:
                continue  # two onsets at once in a monophonic line: keep the first
            if prev.end > n.start:
                cleaned[-1] = Note(prev.start, n.start, prev.pitch, prev.velocity)
        i = last_by_pitch.get(n.pitch)
        if i is not None and cleaned[i].end > n.start:
            prev = cleaned[i]
            if n.start <= prev.start:
                continue
            cleaned[i] = Note(prev.start, n.start, prev.pitch, prev.velocity)
        last_by_pitch[n.pitch] = len(cleaned)
        cleaned.append(n)
    return [n for n in cleaned if n.end > n.start]


def compose(
    genre_name: str | Genre,
    params: ComposeParams,
    soundfonts: list[str] | SoundfontPools,
    rng: RngFactory,
    presets: Presets | None = None,
    *,
    overrides: ComposeOverrides | None = None,
    composer=None,
) -> Score:
    """A full song. `rng(*purpose)` returns an independent generator for each purpose. `genre_name` is
    a built-in preset's name or a Genre (a user-defined one). `composer` (stemlab.synth.learned.composer)
    draws the chords and the melody's walk; None = the Markov chains. `overrides` replace parts of the
    composition with a source's (a MIDI file's progression or drum groove)."""
    genre = check_genre(genre_name)
    ov = overrides or ComposeOverrides()
    r = rng("global")
    meter_text = str(weighted_choice(r, genre.meters))
    num, den = (int(x) for x in meter_text.split("/"))
    meter = ov.meter or Meter(num, den)
    bpm = float(r.uniform(*(genre.compound_tempo if meter.compound else genre.tempo)))
    tempo = Tempo.from_beat_bpm(round(bpm * 2) / 2, meter)
    swing_ratio = round(float(r.uniform(*genre.swing)), 3) if not meter.compound and meter.denominator == 4 else 0.5
    if ov.us_per_quarter is not None:
        tempo, swing_ratio = Tempo(int(ov.us_per_quarter)), 0.5
    unit = meter.beat_ticks if genre.swing_unit == "8th" else meter.beat_ticks // 2
    swing = Swing(swing_ratio, unit if swing_ratio != 0.5 else 0)
    mode = str(weighted_choice(r, genre.modes))
    tonic = int(r.choice(12, p=np.array(genre.tonics) / sum(genre.tonics)))
    if ov.key is not None:
        tonic, mode = ov.key
    grammar = genre.grammars.get(mode) or next(iter(genre.grammars.values()))

    duration = float(r.uniform(*params.duration_s))
    bar_s = tempo.seconds(meter.bar_ticks)
    form = plan_form(duration / bar_s, rng("form"))

    cpb = float(weighted_choice(r, genre.chords_per_bar))
    if cpb == 2 and (meter.bar_ticks % 2 or meter.beats_per_bar % 2):
        cpb = 1.0
    progressions: dict[str, list[str]] = {}
    for fs in form:
        if fs.name not in progressions:
            n_chords = max(1, int(fs.bars * cpb))
            loop = max(1, int(min(fs.bars, 4) * cpb))
            final = fs.name == form[-1].name
            if ov.progression is not None:
                progressions[fs.name] = ov.progression(fs.name, n_chords, loop, final)
            else:
                progressions[fs.name] = section_progression(
                    grammar, fs.name, n_chords, loop, rng("chords", fs.name), final=final,
                    chain=composer.chain(genre.name, mode, fs.name) if composer else markov_chords,
                )  # fmt: skip
    sections, chords = [], []
    tick, bar = 0, 0
    for i, fs in enumerate(form):
        end = tick + fs.bars * meter.bar_ticks
        prog = progressions[fs.name]
        span_ticks = (end - tick) // len(prog)
        sections.append(SectionSpan(i, fs.name, fs.occurrence, bar, fs.bars, tick, end, tuple(prog)))
        for k, token in enumerate(prog):
            a = tick + k * span_ticks
            b = end if k == len(prog) - 1 else a + span_ticks
            chords.append(ChordSpan(a, b, parse_roman(token, mode), i))
        tick, bar = end, bar + fs.bars

    # drawn from their own generator, so a genre that always has drums composes what it did before
    drums = genre.drums_prob >= 1.0 or (genre.drums_prob > 0.0 and rng("drums").random() < genre.drums_prob)
    drums = drums if ov.drums is None else ov.drums
    parts = choose_parts(genre, meter, params, soundfonts, presets, rng("parts"), drums)
    parts.sort(key=lambda p: STEMS.index(p.name))  # taxonomy order, as every corpus lists stems
    score = Score(genre.name, tonic, mode, meter, tempo, swing, sections, chords, parts)
    _activity(parts, sections, rng("activity"))
    for part in parts:
        notes: list[Note] = []
        fn = composer.part_generator(part.role, genre.name, mode) if composer else gen.GENERATORS[part.role]
        if part.role == "drums" and ov.drum_notes is not None:
            notes = ov.drum_notes(score, part)
        else:
            for s in sections:
                if s.index in part.active:
                    notes += fn(score, genre, part, s, rng("notes", part.name, s.name), rng("vary", part.name, s.index))
        humanize = 0 if part.instrument.is_drum else genre.humanize_ticks
        part.notes = _finish(notes, swing, score.end_tick, humanize, part.monophonic, rng("humanize", part.name))
    return score

