"""Independent check of the synthetic annotations: beat tracking of the mix against the annotated
beats, pitch tracking of monophonic stems (bass, melody) against their MIDI.

Pure functions first (beat matching, note accuracy), then the analysis of one song directory and the
per-genre summary table that the `synth_validity` rule writes.

Config: `synth.validity` (what the synth_validity rule passes as `--config`) is read by
ValidityParams.from_config (the analysis) and Selection.from_config (which songs). Both keep their own
defaults (the analysis runs by hand, and the synth env has no jsonschema to read the schema with); they
equal the schema's, which tests/test_config_schema.py checks. The pitch-tracker fields of
ValidityParams (pitch_sr ... roles) are Python-only, not config keys.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stemlab.audio import read_audio, resample
from stemlab.errors import StemlabError, check_section_keys
from stemlab.synth.midinotes import Note, is_monophonic, read_notes
from stemlab.synth.songdir import load_song, time_signature_text

BEAT_TRACKERS = ("essentia", "librosa")
TEMPO_PRIORS = ("genre", "none")
ESSENTIA_TEMPO_LIMITS = (40, 180, 60, 250)  # RhythmExtractor2013: minTempo in [40, 180], maxTempo in [60, 250]


@dataclass(frozen=True)
class PitchRole:
    """pYIN settings for one role. pYIN's defaults are tuned for the singing voice; two of them matter
    for rendered instrument parts:
    - frame_length: the YIN window must hold two periods of fmin (bass down to 30 Hz needs 2048
      samples at 22.05 kHz), but a 93 ms frame spans several notes of a fast melody line, so melody
      parts use 1024 (fmin 60 Hz).
    - max_transition_rate (octaves/s): the HMM's bound on pitch movement. A bass line jumping an octave
      up while the previous note's release still rings is periodic at the LOWER note's period too, and
      at the voice-tuned 35.9 oct/s the HMM stays an octave low for the whole note; 200 oct/s lets it
      follow a jump within a frame."""

    fmin: float
    fmax: float
    frame_length: int
    max_transition_rate: float = 35.92


@dataclass(frozen=True)
class ValidityParams:
    beat_tracker: str = "essentia"
    beat_window_s: float = 0.07  # half-width of the hit window (MIREX / mir_eval: 70 ms)
    beat_trim_s: float = 5.0  # beats before this time are ignored in both sequences (MIREX convention)
    # What the tracker is told, as a musician would be: the tempo range of the song's genre for its meter
    # class (the preset's range, widened by the margin on both sides), never the song's own tempo. Without
    # it the tracker picks its favourite metrical level (~120 bpm) and locks 80-bpm reggae at 160.
    tempo_prior: str = "genre"
    tempo_prior_margin: float = 0.1
    stem_audio: str = "dry"  # which stem rendering the pitch tracker hears: dry or wet
    pitch_tolerance_semitones: float = 0.5
    pitch_sr: int = 22_050
    pitch_hop: int = 256
    pitch_resolution: float = 0.25  # pyin bin width in semitones
    note_core: float = 0.5  # central fraction of each note whose frames are compared
    min_voiced_fraction: float = 0.5  # of the core frames; below that the note counts as missed
    roles: dict[str, PitchRole] = field(
        default_factory=lambda: {
            "bass": PitchRole(30.0, 500.0, 2048, 200.0),
            "melody": PitchRole(60.0, 2100.0, 1024),
        }
    )

    @classmethod
    def from_config(cls, section: Mapping | None) -> ValidityParams:
        """synth.validity as analysis parameters (a missing key keeps its default); its song selection
        (splits, max_songs_per_genre) is Selection's."""
        values = check_section_keys(section, (*CONFIG_PARAMS, *Selection.KEYS), "synth.validity")
        params = {k: values[k] for k in CONFIG_PARAMS if k in values}
        try:
            params = {k: v if k in ("beat_tracker", "tempo_prior", "stem_audio") else float(v) for k, v in params.items()}
        except (TypeError, ValueError) as exc:
            raise StemlabError(f"synth.validity: {exc}; give numbers") from exc
        return cls(**params)

    def __post_init__(self) -> None:
        if self.beat_tracker not in BEAT_TRACKERS:
            raise StemlabError(
                f"synth.validity.beat_tracker={self.beat_tracker!r} is not one of {', '.join(BEAT_TRACKERS)}; "
                "fix the config"
            )
        if self.tempo_prior not in TEMPO_PRIORS:
            raise StemlabError(
                f"synth.validity.tempo_prior={self.tempo_prior!r} is not one of {', '.join(TEMPO_PRIORS)}; fix the config"
            )
        if not 0 <= self.tempo_prior_margin < 1:
            raise StemlabError(
                f"synth.validity.tempo_prior_margin={self.tempo_prior_margin!r} must be in [0, 1); fix the config"
            )
        if self.stem_audio not in ("dry", "wet"):
            raise StemlabError(f"synth.validity.stem_audio={self.stem_audio!r} must be dry or wet; fix the config")


# the fields of ValidityParams that are keys of synth.validity
CONFIG_PARAMS = ("beat_tracker", "tempo_prior", "tempo_prior_margin", "beat_window_s", "beat_trim_s", "stem_audio",
                 "pitch_tolerance_semitones")  # fmt: skip


@dataclass(frozen=True)
class Selection:
    """Which songs the validity table analyses: those of `splits`, at most `max_songs_per_genre` per
    genre (0 = all), the lowest song ids first."""

    splits: tuple[str, ...] = ("test",)
    max_songs_per_genre: int = 0
    KEYS = ("splits", "max_songs_per_genre")

    @classmethod
    def from_config(cls, section: Mapping | None) -> Selection:
        values = check_section_keys(section, (*CONFIG_PARAMS, *cls.KEYS), "synth.validity")
        d = cls()
        splits = values.get("splits", d.splits)
        if isinstance(splits, str) or not splits:
            raise StemlabError("synth.validity.splits must be a non-empty list of train, valid, test")
        try:
            count = int(values.get("max_songs_per_genre", d.max_songs_per_genre))
        except (TypeError, ValueError) as exc:
            raise StemlabError(f"synth.validity.max_songs_per_genre: {exc}; give a whole number") from exc
        return cls(tuple(str(s) for s in splits), count)


# --------------------------------------------------------------------------- beats


def match_events(reference: Sequence[float], estimated: Sequence[float], window: float) -> int:
    """Size of a maximum one-to-one matching with |ref - est| <= window.

    For points on a line with a symmetric window the greedy sweep over both sorted lists is optimal:
    the earliest unmatched reference takes the earliest estimate still inside its window.
    """
    ref = np.sort(np.asarray(reference, dtype=float))
    est = np.sort(np.asarray(estimated, dtype=float))
    i = j = hits = 0
    while i < len(ref) and j < len(est):
        if est[j] < ref[i] - window:
            j += 1
        elif est[j] > ref[i] + window:
            i += 1
        else:
            hits += 1
            i += 1
            j += 1
    return hits


def scoring_span(reference: Sequence[float], trim: float) -> tuple[float, float]:
    """The span both beat sequences are scored on: from `trim` seconds (MIREX) to half a beat after
    the last annotated beat. A song's annotation ends with its music; the release/FX tail after it
    has no beats, and trackers extrapolate beats into it."""
    ref = np.sort(np.asarray(reference, dtype=float))
    period = float(np.median(np.diff(ref))) if len(ref) > 1 else 0.0
    return trim, (float(ref[-1]) + period / 2 if len(ref) else trim)


def beat_scores(
    reference: Sequence[float], estimated: Sequence[float], window: float = 0.07, trim: float = 5.0
) -> dict[str, float]:
    """F-measure, precision and recall of estimated beats (seconds) against reference beats, both
    restricted to scoring_span(reference, trim)."""
    lo, hi = scoring_span(reference, trim)
    ref = np.asarray(reference, dtype=float)
    est = np.asarray(estimated, dtype=float)
    ref = ref[(ref >= lo) & (ref <= hi)]
    est = est[(est >= lo) & (est <= hi)]
    if len(ref) == 0:
        raise ValueError(f"no reference beats after {trim} s: the excerpt is too short to score")
    hits = match_events(ref, est, window)
    precision = hits / len(est) if len(est) else 0.0
    recall = hits / len(ref)
    f = 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)
    return {"beat_f": f, "beat_precision": precision, "beat_recall": recall, "n_ref_beats": len(ref), "n_est_beats": len(est)}


def metrical_variants(reference: Sequence[float]) -> dict[str, np.ndarray]:
    """The annotated beats at other metrical levels (as in the continuity-based beat measures):
    double and triple tempo, half tempo on either phase, and the off-beats."""
    ref = np.sort(np.asarray(reference, dtype=float))
    mids = (ref[:-1] + ref[1:]) / 2
    thirds = np.concatenate([ref[:-1] + (ref[1:] - ref[:-1]) * k / 3 for k in (1, 2)])
    return {
        "annotated": ref,
        "double": np.sort(np.concatenate([ref, mids])),
        "triple": np.sort(np.concatenate([ref, thirds])),  # the eighth notes of a compound meter
        "half_odd": ref[0::2],
        "half_even": ref[1::2],
        "offbeat": mids,
    }


def best_metrical_level(
    reference: Sequence[float], estimated: Sequence[float], window: float = 0.07, trim: float = 5.0
) -> tuple[str, float]:
    """Which metrical variant of the annotation the tracker followed, and its F-measure (diagnostic:
    a tracker locked to the off-beat or to double tempo scores 0 / 0.67 on the plain measure even
    when the annotation is exact)."""
    lo, hi = scoring_span(reference, trim)
    est = np.asarray(estimated, dtype=float)
    est = est[(est >= lo) & (est <= hi)]
    best = ("annotated", -1.0)
    for name, ref in metrical_variants(reference).items():
        ref = ref[(ref >= lo) & (ref <= hi)]
        if len(ref) == 0:
            continue
        hits = match_events(ref, est, window)
        f = 0.0 if hits == 0 else 2 * hits / (len(ref) + len(est))
        if f > best[1] + 1e-12:
            best = (name, f)
    return best[0], max(best[1], 0.0)


def pulse_reference(meta: Mapping) -> tuple[list[float], str]:
    """The instants beat F is scored against, at the level a listener taps (song.json `tap_pulse`; the
    annotated beat where a song has none), and that pulse's name: its note value from
    `metrical_levels` ("dotted_quarter" in 6/8, 9/8, 12/8), else `beat_unit`, else the level."""
    level = str(meta.get("tap_pulse") or "beat")
    units = {str(lv.get("level")): lv for lv in meta.get("metrical_levels") or [] if isinstance(lv, Mapping)}
    if level == "beat":
        times = meta.get("beats") or []
    elif level == "bar":
        times = meta.get("downbeats") or []
    elif level in units and meta.get("tatums"):
        times = list(meta["tatums"])[:: int(units[level]["tatums"])]
    else:
        raise StemlabError(
            f"song.json of {meta.get('id', '?')}: tap_pulse {level!r} has no annotated instants; regenerate the shard"
        )
    name = units[level]["unit"] if level in units else (meta.get("beat_unit") if level == "beat" else None)
    return [float(t) for t in times], str(name or level)


def genre_tempo_range(genre: str, time_signature: str, margin: float, recorded: dict | None = None) -> tuple[float, float] | None:
    """The genre preset's tempo range (bpm of the annotated beat) for the meter class of
    `time_signature` ("6/8": compound), widened by `margin` each way; for a genre of a genre file the
    ranges song.json records (`recorded`: its genre_preset); None for a genre without either (songs of
    real corpora)."""
    from stemlab.synth.genres import GENRES
    from stemlab.synth.timing import Meter

    preset = GENRES.get(genre)
    if preset is not None:
        ranges = (preset.compound_tempo, preset.tempo)
    elif recorded and recorded.get("tempo") and recorded.get("compound_tempo"):
        ranges = (recorded["compound_tempo"], recorded["tempo"])
    else:
        return None
    num, _, den = time_signature.partition("/")
    compound = Meter(int(num), int(den)).compound if num.isdigit() and den.isdigit() else False
    lo, hi = ranges[0] if compound else ranges[1]
    return float(lo) * (1.0 - margin), float(hi) * (1.0 + margin)


def track_beats(
    mono: np.ndarray, sr: int, tracker: str = "essentia", tempo_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Beat times (seconds) of a mono signal by an off-the-shelf tracker that never saw the MIDI;
    `tempo_range` (bpm) bounds the tempo it may choose."""
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if tracker == "essentia":
        import essentia

        essentia.log.infoActive = False
        import essentia.standard as es

        if sr != 44_100:  # RhythmExtractor2013 assumes 44.1 kHz
            mono = resample(mono[:, None], sr, 44_100)[:, 0]
        bounds = {}
        if tempo_range is not None:
            min_lo, min_hi, max_lo, max_hi = ESSENTIA_TEMPO_LIMITS
            bounds = {
                "minTempo": int(np.clip(math.floor(tempo_range[0]), min_lo, min_hi)),
                "maxTempo": int(np.clip(math.ceil(tempo_range[1]), max_lo, max_hi)),
            }
        _, ticks, _, _, _ = es.RhythmExtractor2013(method="multifeature", **bounds)(mono)
        return np.asarray(ticks, dtype=float)
    if tracker == "librosa":
        import librosa

        onset = librosa.onset.onset_strength(y=mono, sr=sr)
        prior = None
        if tempo_range is not None:
            from scipy.stats import uniform

            prior = uniform(tempo_range[0], tempo_range[1] - tempo_range[0])
        bpm = float(librosa.feature.tempo(onset_envelope=onset, sr=sr, prior=prior)[0])
        _, beats = librosa.beat.beat_track(onset_envelope=onset, sr=sr, bpm=bpm, units="time")
        return np.asarray(beats, dtype=float)
    raise ValueError(f"unknown beat tracker {tracker!r}")


# --------------------------------------------------------------------------- pitch


def hz_to_midi(hz: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 69.0 + 12.0 * np.log2(np.asarray(hz, dtype=float) / 440.0)


def track_pitch(mono: np.ndarray, sr: int, role: PitchRole, params: ValidityParams) -> tuple[np.ndarray, np.ndarray]:
    """pYIN f0 track: (frame times in seconds, MIDI pitch per frame with NaN where unvoiced)."""
    import librosa

    audio = resample(np.asarray(mono, dtype=np.float32)[:, None], sr, params.pitch_sr)[:, 0]
    f0, voiced, _ = librosa.pyin(
        audio,
        fmin=role.fmin,
        fmax=role.fmax,
        sr=params.pitch_sr,
        frame_length=role.frame_length,
        max_transition_rate=role.max_transition_rate,
        hop_length=params.pitch_hop,
        resolution=params.pitch_resolution,
        center=True,
    )
    midi = np.where(voiced, hz_to_midi(f0), np.nan)
    times = np.arange(len(midi)) * params.pitch_hop / params.pitch_sr
    return times, midi


def note_results(
    times: np.ndarray,
    midi: np.ndarray,
    notes: Iterable[Note],
    tolerance: float = 0.5,
    core: float = 0.5,
    min_voiced_fraction: float = 0.5,
) -> list[str]:
    """One verdict per note: 'correct', 'wrong' (voiced, median pitch off by more than `tolerance`
    semitones), or 'unvoiced' (too few voiced frames in the central `core` fraction of the note)."""
    times = np.asarray(times, dtype=float)
    midi = np.asarray(midi, dtype=float)
    hop = float(times[1] - times[0]) if len(times) > 1 else 1.0
    verdicts = []
    for note in notes:
        margin = (1.0 - core) / 2.0 * (note.end - note.start)
        lo, hi = note.start + margin, note.end - margin
        idx = np.flatnonzero((times >= lo) & (times <= hi))
        if len(idx) == 0:  # note shorter than a hop: the nearest frame to its centre
            idx = np.array([int(np.clip(round((note.start + note.end) / 2 / hop), 0, len(times) - 1))])
        values = midi[idx]
        voiced = values[np.isfinite(values)]
        if len(voiced) == 0 or len(voiced) < min_voiced_fraction * len(values):
            verdicts.append("unvoiced")
        elif abs(float(np.median(voiced)) - note.pitch) <= tolerance:
            verdicts.append("correct")
        else:
            verdicts.append("wrong")
    return verdicts


# --------------------------------------------------------------------------- one song


def _mono(path: Path) -> tuple[np.ndarray, int]:
    audio, sr = read_audio(path)
    return audio.mean(axis=1), sr


def analyze_song(song_dir: str | os.PathLike[str], params: ValidityParams) -> dict:
    """Beat and pitch scores of one canonical song directory: {"song": flat row, "stems": [row per
    analysed monophonic stem]}."""
    song_dir = Path(song_dir)
    meta = load_song(song_dir)
    song_id = str(meta.get("id", song_dir.name))
    row: dict = {
        "song_id": song_id,
        "genre": meta.get("genre", ""),
        "source": meta.get("composition_source", "generated"),  # how the song was composed (stemlab.synth.sources)
        "time_signature": time_signature_text(meta.get("time_signature")),
        "tempo_bpm": meta.get("tempo_bpm"),
        "split": meta.get("split", ""),
        # the backend that composed it (song.json -> composer; songs made before the key: Markov)
        "composer": (meta.get("composer") or {}).get("backend", "markov"),
    }
    mix, sr = _mono(song_dir / (meta.get("mix") or "mix.flac"))
    row["duration_s"] = len(mix) / sr
    if not meta.get("beats"):
        raise StemlabError(f"{song_dir / 'song.json'}: no 'beats' annotation; regenerate the shard")
    beats, row["beat_pulse"] = pulse_reference(meta)  # beat F is scored at the tap pulse, named here
    tempo_range = None
    if params.tempo_prior == "genre":
        tempo_range = genre_tempo_range(row["genre"], row["time_signature"], params.tempo_prior_margin, meta.get("genre_preset"))
    row["tempo_prior_bpm"] = "" if tempo_range is None else f"{tempo_range[0]:.1f}-{tempo_range[1]:.1f}"
    estimated = track_beats(mix, sr, params.beat_tracker, tempo_range)
    row.update(beat_scores(beats, estimated, params.beat_window_s, params.beat_trim_s))
    row["tracked_level"], row["beat_f_tracked_level"] = best_metrical_level(
        beats, estimated, params.beat_window_s, params.beat_trim_s
    )
    # the same tracker on the drum stem alone: separates annotation errors from tracker errors
    row["beat_f_drums"] = math.nan
    for stem in meta.get("stems", []):
        wet = (stem.get("files") or {}).get("wet")
        if stem.get("role") == "drums" and wet:
            drums, drums_sr = _mono(song_dir / wet)
            row["beat_f_drums"] = beat_scores(
                beats, track_beats(drums, drums_sr, params.beat_tracker, tempo_range), params.beat_window_s, params.beat_trim_s
            )["beat_f"]
            break

    stem_rows = []
    for role, pitch_role in params.roles.items():
        counts = {"correct": 0, "wrong": 0, "unvoiced": 0}
        stems, skipped = [], []
        for stem in meta.get("stems", []):
            if stem.get("role") != role:
                continue
            files = stem.get("files") or {}
            if not files.get("midi") or not files.get(params.stem_audio):
                skipped.append(f"{stem['name']}:no-{params.stem_audio}-or-midi")
                continue
            notes = read_notes(song_dir / files["midi"])
            if not notes:
                continue
            if stem.get("monophonic") is False or not is_monophonic(notes):
                skipped.append(f"{stem['name']}:polyphonic")
                continue
            audio, stem_sr = _mono(song_dir / files[params.stem_audio])
            times, midi = track_pitch(audio, stem_sr, pitch_role, params)
            verdicts = note_results(
                times, midi, notes, params.pitch_tolerance_semitones, params.note_core, params.min_voiced_fraction
            )
            stem_counts = {v: verdicts.count(v) for v in counts}
            for v, n in stem_counts.items():
                counts[v] += n
            stems.append(stem["name"])
            instrument = stem.get("instrument")
            stem_rows.append(
                {
                    "song_id": song_id,
                    "genre": row["genre"],
                    "stem": stem["name"],
                    "role": role,
                    "category": stem.get("category", stem["name"]),
                    "instrument": instrument.get("name", "") if isinstance(instrument, dict) else str(instrument or ""),
                    "notes": len(verdicts),
                    **stem_counts,
                }
            )
        row[f"{role}_stems"] = ",".join(stems)
        row[f"{role}_skipped"] = ",".join(skipped)
        row[f"{role}_notes"] = sum(counts.values())
        row[f"{role}_correct"] = counts["correct"]
        row[f"{role}_wrong"] = counts["wrong"]
        row[f"{role}_unvoiced"] = counts["unvoiced"]
    return {"song": row, "stems": stem_rows}


# --------------------------------------------------------------------------- table


def summarize(songs: pd.DataFrame, roles: Iterable[str], stems: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per genre, per time signature, per composer backend and overall: mean beat scores over songs;
    note accuracy pooled over notes (correct / all notes of the role's monophonic stems). With `stems`, also one row per
    (role, stem category) with that group's note accuracy only."""
    roles = list(roles)
    beat_cols = ("beat_f", "beat_precision", "beat_recall", "beat_f_tracked_level", "beat_f_drums")

    def block(label: str, part: pd.DataFrame) -> dict:
        out: dict = {"group": label, "n_songs": len(part)}
        for col in beat_cols:
            out[col] = float(part[col].mean()) if len(part) and col in part else math.nan
        if "beat_pulse" in part and len(part):  # the pulse levels beat F was scored at
            out["beat_pulse"] = ",".join(sorted(set(part["beat_pulse"].astype(str))))
        if "tracked_level" in part and len(part):
            out["tracked_not_annotated_level"] = int((part["tracked_level"] != "annotated").sum())
        for role in roles:
            n = int(part[f"{role}_notes"].sum())
            out[f"{role}_note_accuracy"] = float(part[f"{role}_correct"].sum()) / n if n else math.nan
            out[f"{role}_notes"] = n
            out[f"{role}_unvoiced"] = int(part[f"{role}_unvoiced"].sum())
        return out

    rows = [block(f"genre={g}", part) for g, part in songs.groupby("genre", sort=True)]
    rows += [block(f"time_signature={t}", part) for t, part in songs.groupby("time_signature", sort=True)]
    if "source" in songs:
        rows += [block(f"source={s}", part) for s, part in songs.groupby("source", sort=True)]
    if "composer" in songs:
        rows += [block(f"composer={c}", part) for c, part in songs.groupby("composer", sort=True)]
    rows.append(block("overall", songs))
    if stems is not None and len(stems):
        for (role, category), part in stems.groupby(["role", "category"], sort=True):
            n = int(part["notes"].sum())
            out = {"group": f"{role}:category={category}", "n_songs": int(part["song_id"].nunique())}
            out[f"{role}_note_accuracy"] = float(part["correct"].sum()) / n if n else math.nan
            out[f"{role}_notes"] = n
            out[f"{role}_unvoiced"] = int(part["unvoiced"].sum())
            rows.append(out)
    table = pd.DataFrame(rows)
    counts = ["n_songs", "tracked_not_annotated_level"] + [f"{r}_{c}" for r in roles for c in ("notes", "unvoiced")]
    for col in counts:
        if col in table:
            table[col] = table[col].astype("Int64")
    return table


def params_to_json(params: ValidityParams) -> str:
    return json.dumps(asdict(params), sort_keys=True)


# --------------------------------------------------------------------------- selection and run


def select_songs(songs: pd.DataFrame, splits: Sequence[str], max_per_genre: int) -> pd.DataFrame:
    """Held-out songs to analyse: rows of `songs` (song_id, genre, split, ...) in `splits`, ordered by
    song id, at most `max_per_genre` per genre (0 = all). Songs are i.i.d. by index, so the first ones
    are an unbiased sample and the choice does not depend on the shard layout."""
    chosen = songs[songs["split"].isin(list(splits))].sort_values("song_id", kind="stable")
    if max_per_genre > 0:  # per genre and composition source, so every source keeps its share
        keys = ["genre", "source"] if "source" in chosen else ["genre"]
        chosen = chosen.groupby(keys, sort=True, group_keys=False).head(max_per_genre)
    return chosen.sort_values("song_id", kind="stable").reset_index(drop=True)


def _analyze(job: tuple[str, ValidityParams]) -> dict:
    song_dir, params = job
    return analyze_song(song_dir, params)


def analyze_songs(
    song_dirs: Sequence[str | os.PathLike[str]], params: ValidityParams, workers: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(songs, stems) tables of analyze_song for every directory, in input order, using `workers` processes."""
    from stemlab.logs import progress

    jobs = [(str(d), params) for d in song_dirs]
    if workers <= 1 or len(jobs) <= 1:
        rows = [_analyze(job) for job in progress(jobs, desc="validity")]
    else:
        from concurrent.futures import ProcessPoolExecutor

        # The first song runs here: it JIT-compiles librosa's numba kernels and writes their on-disk
        # cache once, so forked workers inherit them instead of racing to compile and write the cache
        # (with a cold cache in a fresh venv, a worker died: BrokenProcessPool in a SLURM test run).
        rows = [_analyze(jobs[0])]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows += list(progress(pool.map(_analyze, jobs[1:]), desc="validity", total=len(jobs) - 1))
    stem_columns = ["song_id", "genre", "stem", "role", "category", "instrument", "notes", "correct", "wrong", "unvoiced"]
    stems = pd.DataFrame([s for r in rows for s in r["stems"]], columns=stem_columns)
    return pd.DataFrame([r["song"] for r in rows]), stems


BEAT_F_TARGET = 0.95  # beat F-measure target on 4/4 songs (the paper's validity claim)
NOTE_ACCURACY_TARGET = 0.9  # monophonic parts


def acceptance(songs: pd.DataFrame, roles: Iterable[str]) -> list[str]:
    """Lines stating each acceptance number against its target (printed to the rule's log)."""
    lines = []
    four = songs[songs["time_signature"] == "4/4"]
    if len(four):
        f = float(four["beat_f"].mean())
        verdict = "ok" if f >= BEAT_F_TARGET else "BELOW TARGET"
        lines.append(f"acceptance: beat F-measure on {len(four)} 4/4 songs = {f:.3f} (target >= {BEAT_F_TARGET}): {verdict}")
        if "tracked_level" in four:
            other = four[four["tracked_level"] != "annotated"]
            levels = ", ".join(f"{k}: {v}" for k, v in sorted(other["tracked_level"].value_counts().items()))
            lines.append(
                f"diagnostic: at the metrical level the tracker chose, F = {float(four['beat_f_tracked_level'].mean()):.3f}; "
                f"{len(other)} of {len(four)} 4/4 songs tracked at another level than the annotated beat ({levels or 'none'})"
            )
    else:
        lines.append("acceptance: no 4/4 songs analysed; beat F-measure target not checked")
    if "beat_pulse" in songs:
        for signature, part in songs[songs["time_signature"] != "4/4"].groupby("time_signature", sort=True):
            pulses = ",".join(sorted(set(part["beat_pulse"].astype(str))))
            lines.append(f"diagnostic: beat F-measure on {len(part)} {signature} songs at the {pulses} pulse = {float(part['beat_f'].mean()):.3f}")
    for role in roles:
        n = int(songs[f"{role}_notes"].sum())
        if n == 0:
            lines.append(f"acceptance: no monophonic {role} notes analysed")
            continue
        acc = float(songs[f"{role}_correct"].sum()) / n
        verdict = "ok" if acc >= NOTE_ACCURACY_TARGET else "BELOW TARGET"
        lines.append(f"acceptance: {role} note accuracy over {n} notes = {acc:.3f} (target >= {NOTE_ACCURACY_TARGET}): {verdict}")
    return lines
