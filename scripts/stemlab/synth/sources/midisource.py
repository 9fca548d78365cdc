"""Composition sources of a song besides the genre engine, chosen per song by synth.sources weights:

- `generated`: the genre engine alone (compose.compose);
- `groove`: a drum groove of a MIDI drum corpus (Groove MIDI Dataset layout) fixes the meter, the tempo
  and the drum part, looped over the song; the genre engine writes the other parts;
- `midi_song`: a whole multitrack MIDI song (Lakh MIDI layout) is the score: its tempo, meter and
  tracks (one per stem category, the one with most notes), its chords estimated from the notes;
- `midi_chords`: the chord progression of a multitrack MIDI file (estimated per bar, in its estimated
  key) replaces the genre's Markov progression; the genre engine writes every part.

Everything a source draws comes from the song's own generators (rng(seed, "synth", index, attempt, ...)),
and the corpus file lists are sorted, so a song is the same bytes whatever the shard or worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stemlab import seeding
from stemlab.download.fetch import sha256_file
from stemlab.errors import StemlabError
from stemlab.synth import instruments as gm
from stemlab.synth import parts as gen
from stemlab.synth.compose import ComposeOverrides, ComposeParams, Presets, _finish, _soundfont, compose
from stemlab.synth.genres import Genre
from stemlab.synth.score import ChordSpan, Note, Part, Score, SectionSpan
from stemlab.synth.sources.midifile import (
    GROOVE_TO_GM,
    MidiSong,
    MidiUnsupported,
    chord_tokens,
    corpus_files,
    estimate_key,
    pitch_class_weights,
    read_midi,
    safe_join,
)
from stemlab.synth.sources.soundfonts import SoundfontPools
from stemlab.synth.theory import parse_roman
from stemlab.synth.timing import Swing, Tempo
from stemlab.taxonomy import STEMS

SOURCES = ("generated", "groove", "midi_song", "midi_chords")
CORPUS_OF = {"groove": "groove", "midi_song": "lakh", "midi_chords": "lakh"}
CORPORA = ("groove", "lakh")
FILE_DRAWS = 8  # files tried per attempt before the attempt counts as rejected


class SourceRejected(Exception):
    """No usable corpus file in this attempt's draws (the song re-rolls like a gate rejection)."""


@dataclass(frozen=True)
class SourceSettings:
    weights: tuple[tuple[str, float], ...] = (("generated", 1.0), ("groove", 0.0), ("midi_song", 0.0), ("midi_chords", 0.0))
    corpus_dirs: tuple[tuple[str, str], ...] = ()  # corpus -> folder (resources/corpora/<corpus>)

    @classmethod
    def from_config(cls, weights: Mapping | None, corpus_dirs: Mapping[str, str] | None = None) -> SourceSettings:
        d = dict(cls().weights)
        given = dict(weights or {})
        bad = sorted(set(given) - set(SOURCES))
        if bad:
            raise StemlabError(f"synth.sources: unknown source {bad[0]!r}; the sources are {', '.join(SOURCES)}")
        try:
            w = tuple((s, float(given.get(s, d[s]))) for s in SOURCES)
        except (TypeError, ValueError) as exc:
            raise StemlabError(f"synth.sources: {exc}; give each source a number >= 0") from exc
        if any(v < 0 or not math.isfinite(v) for _, v in w) or sum(v for _, v in w) <= 0:
            raise StemlabError("synth.sources: weights must be >= 0 with at least one above 0")
        dirs = dict(corpus_dirs or {})
        bad = sorted(set(dirs) - set(CORPORA))
        if bad:
            raise StemlabError(f"--corpus: unknown corpus {bad[0]!r}; the synth corpora are {', '.join(CORPORA)}")
        settings = cls(w, tuple(sorted(dirs.items())))
        return settings

    def used_corpora(self) -> list[str]:
        return sorted({CORPUS_OF[s] for s, w in self.weights if w > 0 and s in CORPUS_OF})

    def check(self) -> None:
        """Every source with weight has its corpus folder, holding MIDI files (one line otherwise)."""
        dirs = dict(self.corpus_dirs)
        for corpus in self.used_corpora():
            users = [s for s, w in self.weights if w > 0 and CORPUS_OF.get(s) == corpus]
            folder = dirs.get(corpus)
            if not folder or not Path(folder).is_dir():
                raise StemlabError(
                    f"synth.sources.{users[0]} > 0 needs the {corpus} MIDI corpus: set synth.corpora.{corpus}.path "
                    f"(a folder or archive) or .url and .sha256 (the workflow passes it as --corpus {corpus}=DIR)"
                )
            if not corpus_files(folder):
                raise StemlabError(f"{folder}: no MIDI files (*.mid, *.midi) for synth.sources.{users[0]}; check synth.corpora.{corpus}")


def source_for(seed: int, sources: SourceSettings, index: int) -> str:
    """The composition source of song `index` (not of the attempt: a re-roll keeps the source)."""
    names = [s for s, _ in sources.weights]
    w = np.array([v for _, v in sources.weights])
    return names[int(seeding.rng(seed, "synth", "source", index).choice(len(names), p=w / w.sum()))]


def category_of(program: int) -> str:
    """The stem category of a GM program (the families of the General MIDI 1 table)."""
    if program in gm.MELODIC:
        return gm.MELODIC[program].category
    family = program // 8
    table = {0: "piano", 1: "percussion", 2: "other_keys", 3: "guitar", 4: "bass", 5: "bowed_strings", 6: "bowed_strings",
             7: "wind", 8: "wind", 9: "wind", 10: "other_keys", 11: "other_keys", 12: "other", 13: "other_plucked",
             14: "percussion", 15: "other"}  # fmt: skip
    if program in (46, 104, 105, 106, 107, 108):
        return "other_plucked"
    if program in (47, 55) or 52 <= program <= 54:
        return "percussion" if program == 47 else "other"
    return table[family]


@dataclass
class SourcePlanner:
    """The material of one worker's songs: corpus file lists (read once), files read per song."""

    sources: SourceSettings
    _files: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def prepare(self) -> None:
        """Check the corpora of the sources with weight (one line per problem) and list their files."""
        self.sources.check()
        for corpus in self.sources.used_corpora():
            self.files(corpus)

    def files(self, corpus: str) -> tuple[str, ...]:
        if corpus not in self._files:
            self._files[corpus] = corpus_files(dict(self.sources.corpus_dirs)[corpus])
        return self._files[corpus]

    def draw(self, corpus: str, rng: Callable[..., np.random.Generator], need_drums: bool = False) -> tuple[MidiSong, dict]:
        """A usable file of `corpus` (up to FILE_DRAWS draws) and what song.json records of it."""
        files = self.files(corpus)
        root = dict(self.sources.corpus_dirs)[corpus]
        skipped = []
        for k in range(FILE_DRAWS):
            rel = files[int(rng("source", "file", k).integers(len(files)))]
            try:
                path = safe_join(root, rel)
                song = read_midi(path)
                if need_drums and not any(t.is_drum for t in song.tracks):
                    raise MidiUnsupported("no drum track (channel 10)")
                if not need_drums and not any(not t.is_drum for t in song.tracks):
                    raise MidiUnsupported("no pitched track")
            except MidiUnsupported as exc:
                skipped.append(f"{rel}: {exc}")
                continue
            return song, {"corpus": corpus, "path": rel, "sha256": sha256_file(path), "skipped": skipped}
        raise SourceRejected(f"no usable {corpus} file in {FILE_DRAWS} draws (last: {skipped[-1]})")


# --------------------------------------------------------------------------- the sources


def groove_overrides(groove: MidiSong) -> ComposeOverrides:
    drum_notes = [n for t in groove.tracks if t.is_drum for n in t.notes]
    bar = groove.meter.bar_ticks
    bars = groove.bars

    def notes(score: Score, part: Part) -> list[Note]:
        out = []
        for sec in score.sections:
            if sec.index not in part.active:
                continue
            for b in range(sec.bars):
                src = (sec.start_bar + b) % bars
                t0 = sec.start + b * bar
                for n in drum_notes:
                    if src * bar <= n.start < (src + 1) * bar:
                        start = t0 + n.start - src * bar
                        pitch = GROOVE_TO_GM.get(n.pitch, n.pitch)
                        if 27 <= pitch <= 87:
                            out.append(Note(start, min(start + (n.end - n.start), t0 + bar), pitch, n.velocity))
        return out

    return ComposeOverrides(meter=groove.meter, us_per_quarter=groove.us_per_quarter, drums=True, drum_notes=notes)


def chord_overrides(song: MidiSong, rng: Callable[..., np.random.Generator]) -> tuple[ComposeOverrides, dict]:
    pitched = [n for t in song.tracks if not t.is_drum for n in t.notes]
    tonic, mode = estimate_key(pitch_class_weights(pitched, 0, song.end_tick))
    tokens = chord_tokens(song, tonic, mode, song.meter.bar_ticks)

    def progression(section: str, n_chords: int, loop: int, final: bool) -> list[str]:
        offset = int(rng("source", "chords", section).integers(len(tokens)))
        seq = [tokens[(offset + i) % len(tokens)] for i in range(n_chords)]
        if final:
            seq[-1] = "I" if mode == "major" else "i"
        return seq

    return ComposeOverrides(key=(tonic, mode), progression=progression), {"chords": "estimated", "file_key": [tonic, mode]}


def score_from_midi(
    song: MidiSong, genre: Genre, params: ComposeParams, pools: SoundfontPools, presets: Presets | None,
    rng: Callable[..., np.random.Generator],
) -> Score:  # fmt: skip
    """A whole MIDI song as the score: its first bars up to a length drawn from params.duration_s, one
    track per stem category (the one with most notes), one section, chords estimated per bar."""
    meter, tempo = song.meter, Tempo(song.us_per_quarter)
    bar_s = tempo.seconds(meter.bar_ticks)
    target = float(rng("source", "duration").uniform(*params.duration_s))
    bars = max(1, min(song.bars, int(round(target / bar_s))))
    end = bars * meter.bar_ticks
    by_category: dict[str, tuple] = {}
    for t in song.tracks:
        notes = [Note(n.start, min(n.end, end), n.pitch, n.velocity) for n in t.notes if n.start < end]
        if not notes:
            continue
        if t.is_drum:
            inst = gm.DRUM_KITS.get(t.program, gm.DRUM_KITS[0])
            notes = [n for n in notes if 27 <= n.pitch <= 87]
        else:
            category = category_of(t.program)
            name = gm.MELODIC[t.program].name if t.program in gm.MELODIC else f"GM program {t.program}"
            inst = gm.Instrument(t.program, name, category, 0, 127)
        if notes and len(notes) > len(by_category.get(inst.category, (None, []))[1]):
            by_category[inst.category] = (inst, notes)
    pitched = [n for c, (_, ns) in by_category.items() if c != "drums" for n in ns]
    tonic, mode = estimate_key(pitch_class_weights(pitched, 0, end))
    tokens = chord_tokens(MidiSong(song.us_per_quarter, meter, song.tracks, end), tonic, mode, meter.bar_ticks)[:bars]
    section = SectionSpan(0, "verse", 0, 0, bars, 0, end, tuple(tokens))
    chords = [ChordSpan(i * meter.bar_ticks, (i + 1) * meter.bar_ticks, parse_roman(tok, mode), 0) for i, tok in enumerate(tokens)]
    r = rng("parts")
    parts = []
    for category in sorted(by_category, key=STEMS.index):
        inst, notes = by_category[category]
        sf = _soundfont(r, list(pools.pool(category)), presets, inst)
        if sf is None:
            continue
        overlapping = any(a.end > b.start for a, b in zip(notes, notes[1:]))
        role = "drums" if inst.is_drum else "bass" if category == "bass" else "harmony"
        part = Part(category, role, inst, "midi", sf, not inst.is_drum and not overlapping, [0])
        part.notes = _finish(notes, Swing(0.5, 0), end, 0, part.monophonic, None)
        if part.notes:
            parts.append(part)
    melodic = [p for p in parts if p.role == "harmony" and p.monophonic]
    if melodic:  # the highest monophonic line leads
        max(melodic, key=lambda p: float(np.mean([n.pitch for n in p.notes]))).role = "melody"
    if not any(p.role != "drums" for p in parts):
        raise SourceRejected("no pitched track that a soundfont can play")
    return Score(genre.name, tonic, mode, meter, tempo, Swing(0.5, 0), [section], chords, parts)


def compose_from_source(
    source: str, planner: SourcePlanner, genre: Genre, params: ComposeParams, pools: SoundfontPools,
    presets: Presets | None, rng: Callable[..., np.random.Generator], composer=None,
) -> tuple[Score, dict | None]:  # fmt: skip
    """The score of a song of `source` and what song.json records as `source_file` (None: generated).
    `composer` (the learned backend, or None: Markov) draws what the engine composes itself."""
    if source == "generated":
        return compose(genre, params, pools, rng, presets, composer=composer), None
    if source == "groove":
        groove, meta = planner.draw("groove", rng, need_drums=True)
        return compose(genre, params, pools, rng, presets, overrides=groove_overrides(groove), composer=composer), {**meta, "chords": "generated"}
    song, meta = planner.draw("lakh", rng)
    if source == "midi_chords":
        overrides, extra = chord_overrides(song, rng)
        return compose(genre, params, pools, rng, presets, overrides=overrides, composer=composer), {**meta, **extra}
    return score_from_midi(song, genre, params, pools, presets, rng), {**meta, "chords": "estimated"}
