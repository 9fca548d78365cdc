"""One synthetic song end to end: compose -> symbolic gate -> render -> mix -> audio gate -> files.

song.json follows stemlab.synth.schema.SONG_SCHEMA.

Everything about song `index` derives from (seed, index, attempt): the genre and split from
(seed, index), all other choices from per-purpose generators rng(seed, "synth", index, attempt, ...).
Nothing depends on the shard, the worker or what the process generated before.

Config: SynthSettings.from_config(section, seed) reads the `synth` config section (what the synth_shard
rule passes as `--config`). SynthSettings keeps its own defaults (the engine runs by hand, without the
workflow, and the synth env has no jsonschema to read the schema with); they equal the schema's `synth`
defaults, which tests/test_config_schema.py checks, together with every `synth` key being read.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stemlab import __version__ as STEMLAB_VERSION
from stemlab import seeding
from stemlab.audio import SAMPLE_RATE, write_audio
from stemlab.atomic import atomic_path, write_text
from stemlab.download.fetch import sha256_file
from stemlab.errors import StemlabError, check_section_keys
from stemlab.synth import SYNTH_VERSION, mixing, quality
from stemlab.synth.compose import ComposeParams
from stemlab.synth.genres import GENRE_NAMES, GENRES, Genre
from stemlab.synth.learned.composer import ComposerConfig, load_composer
from stemlab.loudness import rounded_lufs
from stemlab.synth.midi import part_midi
from stemlab.synth.render import BLOCK, DC_CUTOFF_HZ, DCBlocker, Renderer, check_stereo_f32
from stemlab.synth.score import Score
from stemlab.synth.sources.genrefile import load_genre_files
from stemlab.synth.sources.midisource import SourcePlanner, SourceRejected, SourceSettings, compose_from_source, source_for
from stemlab.synth.sources.samples import SampleLayers, SampleSettings
from stemlab.synth.sources.soundfonts import SoundfontPools
from stemlab.synth.theory import key_name
from stemlab.synth.timing import PPQ, TAP_LEVEL, beat_positions, beat_ticks, downbeat_ticks, metrical_levels, tatum_ticks

log = logging.getLogger("stemlab.synth")
OUTPUTS = ("mix", "stems", "dry", "midi")
# FLAC level 1 (libsndfile maps 0..1 to levels 0..8; its default is 5): lossless like any level, about
# a fifth less encoding CPU for a few percent larger files (scripts/bench/synth_throughput.py); level 0
# is no faster on rendered stems (0.363 against 0.353 CPU-s for a 60 s song) and 12.5 % larger
FLAC_COMPRESSION = 0.125
SPLITS = ("train", "valid", "test")
# keys of the synth section that are not settings of the engine: the shard plan (read by the generate
# CLI), the job's threads, and the synth_validity job's own section
PLAN_KEYS = ("songs", "shard_size")
NOT_SETTINGS = ("workers", "validity", "corpora")  # corpora: read by the download rules, passed as --corpus
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class SynthSettings:
    seed: int = 42
    genres: tuple[str, ...] = GENRE_NAMES
    duration_s: tuple[float, float] = (150.0, 210.0)
    tail_s: float = 2.5
    other_parts: tuple[int, int] = (2, 6)
    soundfonts: tuple[str, ...] = ("/usr/share/sounds/sf2/FluidR3_GM.sf2",)
    outputs: tuple[str, ...] = OUTPUTS
    max_attempts: int = 5
    splits: tuple[tuple[str, float], ...] = (("train", 0.8), ("valid", 0.1), ("test", 0.1))
    quality: quality.QualityConfig = field(default_factory=quality.QualityConfig)
    composer: ComposerConfig = field(default_factory=ComposerConfig)
    sample_rate: int = SAMPLE_RATE
    genre_files: tuple[str, ...] = ()
    user_genres: tuple[Genre, ...] = ()  # the genres of genre_files (from_config loads them)
    soundfont_pools: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (stem category, soundfonts)
    sources: SourceSettings = field(default_factory=SourceSettings)
    samples: SampleSettings = field(default_factory=SampleSettings)

    @classmethod
    def from_config(cls, section: Mapping | None, seed: int | None = None, corpus_dirs: Mapping[str, str] | None = None) -> SynthSettings:
        """The `synth` config section (schema shape: duration {min_s, max_s}, other_parts {min, max},
        splits {train, valid, test}, quality {...}) as settings; a missing key keeps its default.
        songs and shard_size (the shard plan) are the caller's; workers and validity are refused, they
        cannot change a song."""
        known = ("genres", "duration", "tail_s", "other_parts", "soundfonts", "outputs", "max_attempts",
                 "splits", "quality", "composer", "genre_files", "soundfont_pools", "sources", "samples", *PLAN_KEYS)  # fmt: skip
        s = check_section_keys(section, known, "synth")
        d = cls()
        duration = check_section_keys(s.get("duration"), ("min_s", "max_s"), "synth.duration")
        parts = check_section_keys(s.get("other_parts"), ("min", "max"), "synth.other_parts")
        splits = check_section_keys(s.get("splits"), SPLITS, "synth.splits")
        genre_files = tuple(str(f) for f in s.get("genre_files", d.genre_files))
        soundfonts = tuple(str(f) for f in s["soundfonts"]) if "soundfonts" in s else d.soundfonts
        pools = SoundfontPools.from_config(soundfonts, s.get("soundfont_pools"))
        try:
            return cls(
                seed=d.seed if seed is None else int(seed),
                genres=tuple(s["genres"]) if "genres" in s else d.genres,
                duration_s=(float(duration.get("min_s", d.duration_s[0])), float(duration.get("max_s", d.duration_s[1]))),
                tail_s=float(s.get("tail_s", d.tail_s)),
                other_parts=(int(parts.get("min", d.other_parts[0])), int(parts.get("max", d.other_parts[1]))),
                soundfonts=soundfonts,
                outputs=tuple(s["outputs"]) if "outputs" in s else d.outputs,
                max_attempts=int(s.get("max_attempts", d.max_attempts)),
                # in SPLITS order whatever the order of the mapping, so a reordered config is the same run
                splits=tuple((k, float(splits[k])) for k in SPLITS if k in splits) if splits else d.splits,
                quality=quality.QualityConfig.from_config(s.get("quality")),
                composer=ComposerConfig.from_config(s.get("composer")),
                genre_files=genre_files,
                user_genres=tuple(load_genre_files(genre_files).values()),
                soundfont_pools=pools.families,
                sources=SourceSettings.from_config(s.get("sources"), corpus_dirs),
                samples=SampleSettings.from_config(s.get("samples")),
            )
        except (TypeError, ValueError) as exc:
            raise StemlabError(f"synth: {exc}; fix the config (see config/README.md)") from exc

    def __post_init__(self) -> None:
        table = self.genre_table
        bad = [g for g in self.genres if g not in table]
        if bad or not self.genres:
            extra = f" or a genre of synth.genre_files ({', '.join(g.name for g in self.user_genres) or 'none given'})"
            raise StemlabError(f"unknown genre {bad[0] if bad else '(none)'}; synth.genres takes {', '.join(GENRE_NAMES)}{extra}")
        bad = [o for o in self.outputs if o not in OUTPUTS]
        if bad:
            raise StemlabError(f"unknown output {bad[0]!r}; synth.outputs takes {', '.join(OUTPUTS)}")
        lo, hi = self.duration_s
        if not 0 < lo <= hi:
            raise StemlabError(f"synth.duration: need 0 < min_s <= max_s, got {lo}..{hi}")
        a, b = self.other_parts
        if not 2 <= a <= b <= 6:
            raise StemlabError(f"synth.other_parts: need 2 <= min <= max <= 6, got {a}..{b}")
        if self.max_attempts < 1:
            raise StemlabError("synth.max_attempts must be at least 1")
        total = sum(f for _, f in self.splits)
        if any(s not in SPLITS for s, _ in self.splits) or total <= 0 or any(f < 0 for _, f in self.splits):
            raise StemlabError(f"synth.splits: fractions of {', '.join(SPLITS)} that are >= 0 and sum to > 0")


    @property
    def genre_table(self) -> dict[str, Genre]:
        """The built-in presets and the user-defined genres, by name."""
        return {**GENRES, **{g.name: g for g in self.user_genres}}

    @property
    def pools(self) -> SoundfontPools:
        return SoundfontPools(self.soundfonts, self.soundfont_pools)


def song_id(index: int) -> str:
    return f"syn-{index:06d}"


def genre_for(settings: SynthSettings, index: int) -> str:
    """Genres cycle in shuffled blocks, so every run of len(genres) songs holds each genre once."""
    g = len(settings.genres)
    block, pos = divmod(index, g)
    order = seeding.rng(settings.seed, "synth", "genre-block", block).permutation(g)
    return settings.genres[int(order[pos])]


def split_for(settings: SynthSettings, index: int) -> str:
    """A low-discrepancy split: u = frac(offset + index * golden ratio) against the cumulative fractions,
    so even a handful of songs spreads over the splits in proportion."""
    offset = seeding.derive_seed(settings.seed, "synth", "split") / 2**63
    u = (offset + index * GOLDEN) % 1.0
    total = sum(f for _, f in settings.splits)
    acc = 0.0
    for name, frac in settings.splits:
        acc += frac / total
        if u < acc:
            return name
    return settings.splits[-1][0]


QUANTIZE_CHUNK = 1 << 17  # samples per step: the four passes of quantize24 run in cache


def quantize24(audio: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Exactly what a 24-bit FLAC stores and returns (libsndfile: x * 2^23, round half even, clip);
    `out=audio` quantises a float32 array in place (no copy)."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if out is None:
        out = np.empty_like(audio)
    src, dst = audio.reshape(-1), out.reshape(-1)
    # float32 is exact here: scaling by powers of two and rounding to integers below 2^24 lose nothing
    for start in range(0, src.size, QUANTIZE_CHUNK):
        q = dst[start : start + QUANTIZE_CHUNK]
        np.multiply(src[start : start + QUANTIZE_CHUNK], np.float32(8388608.0), out=q)
        np.rint(q, out=q)
        np.clip(q, np.float32(-8388608.0), np.float32(8388607.0), out=q)
        q *= np.float32(1.0 / 8388608.0)
    return out


def pcm24_words(q: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """A quantize24 result as the int32 words libsndfile stores for PCM_24 (sample * 2^31, exact in
    float32): the FLAC writer then skips its own float conversion, about a tenth of the encoding CPU.
    One pass into `out` (int32, reusable across files of one song)."""
    if out is None:
        out = np.empty(q.shape, dtype=np.int32)
    return np.multiply(q, np.float32(2147483648.0), dtype=np.float32, out=out, casting="unsafe")


STEM_CHUNK = quality.STATS_CHUNK  # frames per step of finish_stem: the statistics' own chunks (same sums)


def finish_stem(audio: np.ndarray, dc: DCBlocker | None = None, gains: tuple[float, float] | None = None) -> tuple[float, float]:
    """A stem made final in place, chunk by chunk while each chunk is in cache: the DC blocker `dc`
    (a dry stem) or the fader/pan `gains` (a wet stem), then its quality.signal_stats (peak, DC) before
    quantising (quantising would hide clipping), then quantize24. The same numbers as the four passes
    over the whole stem one after another; returns the statistics."""
    check_stereo_f32(audio, "finish_stem")
    acc = quality.SignalStats(audio.shape[1])
    for a in range(0, len(audio), STEM_CHUNK):
        part = audio[a : a + STEM_CHUNK]
        if dc is not None:
            dc(part)
        if gains is not None:
            mixing.scale_channels(part, gains, out=part)
        acc.add(part)
        quantize24(part, out=part)
    return acc.result()


@dataclass
class Song:
    meta: dict
    dry: dict[str, np.ndarray]
    wet: dict[str, np.ndarray]
    mix: np.ndarray
    midi: dict[str, bytes]


class GateRejected(Exception):
    def __init__(self, stage: str, reasons: list[str]):
        super().__init__(f"{stage}: {'; '.join(reasons)}")
        self.stage, self.reasons = stage, reasons


def genre_preset(genre: Genre) -> dict:
    """What song.json records of the song's genre: its tempo ranges (what the validity table's tempo
    prior reads, also for a genre of a genre file) and whether it is a built-in preset."""
    return {
        "builtin": GENRES.get(genre.name) is genre,
        "tempo": [float(x) for x in genre.tempo],
        "compound_tempo": [float(x) for x in genre.compound_tempo],
        "drums_prob": float(genre.drums_prob),
    }


def _r6(x: float) -> float:
    return round(float(x), 6)


def _beat_unit(score: Score) -> str:
    m = score.meter
    if m.compound:
        return "dotted_quarter" if m.denominator == 8 else "dotted_half"
    return {4: "quarter", 8: "eighth", 2: "half"}[m.denominator]


def annotate(score: Score) -> dict:
    """Composition annotations; every time in seconds comes from Tempo.seconds(ticks) (one conversion)."""
    sec = score.tempo.seconds
    m = score.meter
    end = score.end_tick
    chords = []
    for c in score.chords:
        chords.append(
            {
                "start_s": _r6(sec(c.start)),
                "end_s": _r6(sec(c.end)),
                "start_tick": c.start,
                "end_tick": c.end,
                "symbol": c.chord.symbol(score.tonic, score.mode),
                "roman": c.chord.roman,
                "root_pc": c.chord.root_pc(score.tonic),
                "quality": c.chord.quality,
                "pitch_classes": list(c.chord.pitch_classes(score.tonic)),
                "section": c.section,
            }
        )
    arrangement = []
    for s in score.sections:
        arrangement.append(
            {
                "index": s.index,
                "section": s.name,
                "occurrence": s.occurrence,
                "start_bar": s.start_bar,
                "bars": s.bars,
                "start_s": _r6(sec(s.start)),
                "end_s": _r6(sec(s.end)),
                "start_tick": s.start,
                "end_tick": s.end,
                "progression": list(s.progression),
                "chords": [{"start_s": c["start_s"], "symbol": c["symbol"], "roman": c["roman"]} for c in chords if c["section"] == s.index],
                "active_stems": [p.name for p in score.parts if s.index in p.active],
            }
        )
    return {
        "genre": score.genre,
        "key": key_name(score.tonic, score.mode),
        "mode": score.mode,
        "tonic_pc": score.tonic,
        "tempo_bpm": _r6(score.tempo.beat_bpm(m)),
        "beat_unit": _beat_unit(score),
        "time_signature": [m.numerator, m.denominator],
        "beats_per_bar": m.beats_per_bar,
        "swing": {
            "ratio": score.swing.ratio,
            "unit": "none" if score.swing.ratio == 0.5 else ("8th" if score.swing.unit_ticks == m.beat_ticks else "16th"),
            "unit_ticks": score.swing.unit_ticks,
        },
        "midi": {"ticks_per_beat": PPQ, "us_per_quarter": score.tempo.us_per_quarter, "end_tick": end},
        "music_end_s": _r6(sec(end)),
        "beats": [_r6(sec(t)) for t in beat_ticks(m, end)],
        "downbeats": [_r6(sec(t)) for t in downbeat_ticks(m, end)],
        "beat_positions": beat_positions(m, end),
        "tatums": [_r6(sec(t)) for t in tatum_ticks(m, score.swing, end)],
        "metrical_levels": metrical_levels(m),
        "tap_pulse": TAP_LEVEL,
        "arrangement": arrangement,
        "chords": chords,
    }


class SongMaker:
    """Generates songs with one renderer (one worker); stateless between songs."""

    def __init__(self, settings: SynthSettings, renderer: Renderer, soundfont_digests: dict[str, str] | None = None):
        self.settings = settings
        self.renderer = renderer
        self.digests = soundfont_digests or {sf: sha256_file(sf) for sf in settings.pools.all()}
        self.composer = load_composer(settings.composer)
        self.versions = self._versions()
        self.planner = SourcePlanner(settings.sources)
        self.planner.prepare()
        self.layers = SampleLayers(settings.samples, settings.sample_rate)

    def _versions(self) -> dict:
        from importlib import metadata

        import soundfile

        from stemlab.synth.render import fluidsynth_version

        def dist(name: str) -> str:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return "unknown"

        return {
            "stemlab": STEMLAB_VERSION,
            "synth": SYNTH_VERSION,
            "fluidsynth": fluidsynth_version(),
            "pyfluidsynth": dist("pyfluidsynth"),
            "pedalboard": dist("pedalboard"),
            "mido": dist("mido"),
            "numpy": np.__version__,
            "libsndfile": soundfile.__libsndfile_version__,
            "soundfonts": [{"file": Path(sf).name, "path": sf, "sha256": self.digests[sf]} for sf in self.settings.pools.all()],
        }

    def rng_factory(self, index: int, attempt: int):
        seed = self.settings.seed
        return lambda *keys: seeding.rng(seed, "synth", index, "attempt", attempt, *keys)

    def compose(self, index: int, attempt: int) -> Score:
        return self.compose_song(index, attempt)[0]

    def compose_song(self, index: int, attempt: int) -> tuple[Score, str, dict | None, dict[str, dict]]:
        """The score, its composition source, what song.json records of the source's file, and the
        parts the sample library plays (by stem name)."""
        s = self.settings
        params = ComposeParams(s.duration_s, s.other_parts)
        genre = s.genre_table[genre_for(s, index)]
        source = source_for(s.seed, s.sources, index)
        try:
            score, source_file = compose_from_source(
                source, self.planner, genre, params, s.pools, self.renderer.presets, self.rng_factory(index, attempt), self.composer
            )
        except SourceRejected as exc:
            raise GateRejected("source", [str(exc)]) from exc
        samples = self.layers.plan(score, self.rng_factory(index, attempt))
        return score, source, source_file, samples

    def make(self, index: int) -> Song:
        rejected = []
        for attempt in range(self.settings.max_attempts):
            try:
                song = self.attempt(index, attempt)
            except GateRejected as exc:
                rejected.append({"attempt": attempt, "stage": exc.stage, "reasons": exc.reasons})
                log.info("%s attempt %d rejected by the %s gate: %s", song_id(index), attempt, exc.stage, "; ".join(exc.reasons))
                continue
            song.meta["quality"]["rejected"] = rejected
            return song
        last = rejected[-1]
        raise StemlabError(
            f"{song_id(index)}: failed the quality gate in all {self.settings.max_attempts} attempts "
            f"(last: {last['stage']}: {last['reasons'][0]}); raise synth.max_attempts or check synth.soundfonts"
        )

    def attempt(self, index: int, attempt: int) -> Song:
        s = self.settings
        sr = s.sample_rate
        rng = self.rng_factory(index, attempt)
        score, source, source_file, samples = self.compose_song(index, attempt)
        reasons, sym_metrics = quality.symbolic(score, s.quality)
        if reasons:
            raise GateRejected("symbolic", reasons)
        music_frames = score.tempo.frame(score.end_tick, sr)
        n_frames = music_frames + int(round(s.tail_s * sr))
        genre = s.genre_table[score.genre]
        beat_s = score.tempo.seconds(score.meter.beat_ticks)

        side = 1.0 if rng("pan").random() < 0.5 else -1.0
        dry, pres, stats, stems_meta = {}, {}, {}, []
        for part in score.parts:
            if part.name in samples:
                raw = self.layers.render(score, part, samples[part.name], n_frames)
            else:
                raw = self.renderer.render(score, part, n_frames)
            # DC-blocked and quantised in place: the wet stem is made from exactly what dry/<stem>.flac holds
            stats[part.name] = {"dry": finish_stem(raw, dc=DCBlocker(sr))}
            dry[part.name] = raw
            del raw
            dry_lufs = rounded_lufs(dry[part.name], sr)
            if dry_lufs is None:
                raise GateRejected("audio", [f"dry stem {part.name} is silent"])
            pan_side = 0.0
            if part.role not in ("drums", "bass", "melody"):
                pan_side, side = side, -side
            fx = mixing.sample_stem_fx(genre.mix, part.role, beat_s, dry_lufs, rng("mix", part.name), pan_side)
            pres[part.name] = mixing.process_chain(dry[part.name], fx, sr)
            stems_meta.append((part, fx, dry_lufs))
        r_master = rng("master")
        target = mixing.sample_mix_target(genre.mix, r_master)
        shift, bus_lufs = mixing.stage_faders([pres[p.name] for p in score.parts], [fx for _, fx, _ in stems_meta], target, sr)
        if not np.isfinite(bus_lufs):
            raise GateRejected("audio", ["the mix bus is silent"])
        wet = {}
        for part, fx, _ in stems_meta:
            pre = pres.pop(part.name)  # faded and quantised in place: the pre-fader stem is not needed any more
            stats[part.name]["wet"] = finish_stem(pre, gains=mixing.stem_gains(fx))
            wet[part.name] = pre
            del pre
        bus = mixing.sum_stems([wet[p.name] for p in score.parts])
        master = mixing.sample_master_fx(genre.mix, target, round(bus_lufs, 3), beat_s, r_master)
        raw_mix = mixing.apply_master(bus, master, sr)
        del bus
        frames_per_tick = music_frames / score.end_tick
        reasons, audio_metrics = quality.audio(score, frames_per_tick, stats, wet, raw_mix, s.quality)
        if reasons:
            raise GateRejected("audio", reasons)
        mix = quantize24(raw_mix, out=raw_mix)
        del raw_mix
        master["bus_loudness_lufs"] = round(bus_lufs, 3)
        master["stem_fader_shift_db"] = shift

        sid = song_id(index)
        outputs = set(s.outputs)
        stems = []
        for part, fx, dry_lufs in stems_meta:
            pitches = [n.pitch for n in part.notes]
            stems.append(
                {
                    "name": part.name,
                    "category": part.instrument.category,
                    "role": part.role,
                    "style": part.style,
                    "instrument": {
                        "name": part.instrument.name,
                        "program": part.instrument.program,
                        "bank": part.instrument.bank,
                        "is_drum": part.instrument.is_drum,
                        "channel": part.channel,
                    },
                    "program": part.instrument.program,
                    "soundfont": Path(part.soundfont).name,
                    "soundfont_sha256": self.digests.get(part.soundfont),  # null for a sample part
                    "samples": self.layers.record(samples[part.name]) if part.name in samples else None,
                    "monophonic": part.monophonic,
                    "n_notes": len(part.notes),
                    "pitch_range": [min(pitches), max(pitches)],
                    "active_sections": list(part.active),
                    "files": {
                        "wet": f"wet/{part.name}.flac" if "stems" in outputs else None,
                        "dry": f"dry/{part.name}.flac" if "dry" in outputs else None,
                        "midi": f"midi/{part.name}.mid" if "midi" in outputs else None,
                    },
                    "loudness_lufs": rounded_lufs(wet[part.name], sr),
                    "dry_loudness_lufs": dry_lufs,
                    "fx": fx,
                }
            )
        meta = {
            "id": sid,
            "corpus": "synthetic",
            "index": index,
            "seed": s.seed,
            "attempt": attempt,
            "split": split_for(s, index),
            "sample_rate": sr,
            "channels": 2,
            "n_frames": n_frames,
            "duration_s": _r6(n_frames / sr),
            **annotate(score),
            # how the song was composed (stemlab.synth.sources.midisource.SOURCES) and from which corpus file;
            # not `source`, which canonical song.json files of real corpora use for where they came from
            "composition_source": source,
            "composition_file": source_file,
            "genre_preset": genre_preset(genre),
            "stems": stems,
            "mix": "mix.flac" if "mix" in outputs else None,
            "mix_loudness_lufs": rounded_lufs(mix, sr),
            "mix_peak_dbfs": audio_metrics["mix_peak_dbfs"],
            "master_fx": master,
            "generator": {
                "genres": list(s.genres),
                "genre_files": [Path(f).name for f in s.genre_files],
                "duration_s": list(s.duration_s),
                "other_parts": list(s.other_parts),
                "tail_s": s.tail_s,
                "max_attempts": s.max_attempts,
            },
            "composer": dict(self.composer.record),
            "render": {
                "engine": "fluidsynth",
                "synth_gain": self.renderer.gain,
                "reverb": False,
                "chorus": False,
                "interpolation": "4th order (FluidSynth default)",
                "block_frames": BLOCK,
                "max_onset_error_ms": round(BLOCK / 2 / sr * 1000, 3),
                "tail_s": s.tail_s,
                "dc_blocker_hz": DC_CUTOFF_HZ,
                "format": "FLAC PCM_24",
            },
            "quality": {
                "attempt": attempt,
                "rejected": [],
                "symbolic": sym_metrics,
                "audio": audio_metrics,
                "musicality": quality.musicality(score),
            },
            "versions": self.versions,
        }
        midi = {p.name: part_midi(score, p, f"{sid} {p.name}") for p in score.parts}
        return Song(meta, dry, wet, mix, midi)


def write_song(song: Song, song_dir: Path, outputs: tuple[str, ...]) -> None:
    """The canonical song directory; song.json last, so a song without it is incomplete."""
    sr = song.meta["sample_rate"]
    words = np.empty(song.mix.shape, dtype=np.int32)  # one buffer for every file: all have the song's length
    if "mix" in outputs:
        write_audio(song_dir / "mix.flac", pcm24_words(song.mix, words), sr, compression_level=FLAC_COMPRESSION)
    for name in song.wet:
        if "stems" in outputs:
            write_audio(song_dir / "wet" / f"{name}.flac", pcm24_words(song.wet[name], words), sr, compression_level=FLAC_COMPRESSION)
        if "dry" in outputs:
            write_audio(song_dir / "dry" / f"{name}.flac", pcm24_words(song.dry[name], words), sr, compression_level=FLAC_COMPRESSION)
        if "midi" in outputs:
            with atomic_path(song_dir / "midi" / f"{name}.mid") as tmp:
                tmp.write_bytes(song.midi[name])
    write_text(song_dir / "song.json", json.dumps(song.meta, indent=1, ensure_ascii=False, allow_nan=False) + "\n")


def manifest_row(song: Song) -> dict:
    m = song.meta
    return {
        "song_id": m["id"],
        "index": m["index"],
        "split": m["split"],
        "genre": m["genre"],
        "tempo_bpm": m["tempo_bpm"],
        "time_signature": f"{m['time_signature'][0]}/{m['time_signature'][1]}",
        "key": m["key"],
        "mode": m["mode"],
        "duration_s": m["duration_s"],
        "n_frames": m["n_frames"],
        "sample_rate": m["sample_rate"],
        "n_stems": len(m["stems"]),
        "stems": ",".join(s["name"] for s in m["stems"]),
        "roles": ",".join(s["role"] for s in m["stems"]),
        "n_sections": len(m["arrangement"]),
        "attempt": m["attempt"],
        "composer": m["composer"]["backend"],
        "mix_loudness_lufs": m["mix_loudness_lufs"],
        "seed": m["seed"],
        "source": m["composition_source"],
    }
