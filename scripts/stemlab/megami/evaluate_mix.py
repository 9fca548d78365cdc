"""MEGAMI at mix level on held-out songs: long rows for the frame's summariser (results/tables/megami.csv).

Systems (every one mixes the song's dry tracks; silent ones are dropped):
    megami          the full pipeline (stemlab.megami.mix): generated effects, FxProcessor, generated gains
    oracle          the FxProcessor driven by the true effect embeddings of the wet tracks, and their gains
    only_rms        the dry tracks with only the generated gains (no FxProcessor)
    equal_loudness  the dry tracks brought to one integrated loudness, summed
    random_style    each dry track through a chain of the synth engine's mix-style sampler
                    (stemlab.synth.mixing.sample_stem_fx) of a genre drawn at random per track
    reference       the song's real mix and wet tracks (rows of mix features only)
Every mix is peak-normalised, then loudness-normalised to `eval.loudness_lufs` (-14 LUFS) before it is
embedded or measured.

Metrics (item = song):
    kad_clap, kad_fx  KAD (stemlab.megami.kad) of the system's mixes against the reference mixes over the
                      windows of `eval.kad_window_samples` of every evaluated song, in CLAP space and in
                      effect-encoder space. The rows are the songs' centred jackknife pseudo-values: their
                      mean per seed is the KAD of the seed's whole set, and the summary's bootstrap over
                      songs (then seeds) gives the jackknife-based 95 % interval.
    dist_loudness, dist_centroid, dist_width, dist_crest
                      mean over the song's tracks of |feature(system's track) - feature(wet track)|:
                      loudness relative to the track sum (LU), spectral centroid (octaves), stereo width,
                      crest factor (dB) (stemlab.megami.features)
    mix_centroid_hz, mix_stereo_width, mix_crest_db
                      features of the normalised mix itself, reference included (the figure's distributions)
    spectrogram       for the first `eval.spectrogram_songs` songs: a log-band spectrogram of an excerpt of
                      each mix in the `spectrogram` column (value NaN: not a metric, the summary skips it)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stemlab.audio import SAMPLE_RATE
from stemlab.data.segment_tables import song_dir, song_json, stem_files
from stemlab.errors import StemlabError
from stemlab.logs import log, progress
from stemlab.megami.evaluate_fxprocessor import loudest_excerpt
from stemlab.megami.features import feature_distances, signal_features
from stemlab.megami.kad import jackknife_items
from stemlab.megami.mix import Mix, MixSettings, Pipeline, gain_only_mix, megami_mixes, prepare, processed_mix, sum_normalised
from stemlab.metrics import integrated_loudness
from stemlab.seeding import derive_seed, rng

SYSTEMS = ("megami", "oracle", "only_rms", "equal_loudness", "random_style")
REFERENCE = "reference"
EQUAL_LOUDNESS_LUFS = -23.0
# the role the synth engine's sampler takes for a stem of a corpus without roles, by category
CATEGORY_ROLES = {"drums": "drums", "bass": "bass", "vocals": "melody", "percussion": "percussion"}


@dataclass(frozen=True)
class EvalSettings:
    """models.megami.eval (defaults: the schema's)."""

    splits: tuple[str, ...]
    max_songs: int | None
    max_seconds: float | None
    samples: int
    loudness_lufs: float
    kad_window_samples: int
    spectrogram_songs: int
    spectrogram_seconds: float
    spectrogram_bands: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> EvalSettings:
        from stemlab.config import settings_section

        v = settings_section("models", "megami", "eval", section=section or {})
        return cls(
            splits=tuple(v["splits"]), max_songs=v["max_songs"], max_seconds=v["max_seconds"], samples=int(v["samples"]),
            loudness_lufs=float(v["loudness_lufs"]), kad_window_samples=int(v["kad_window_samples"]),
            spectrogram_songs=int(v["spectrogram_songs"]), spectrogram_seconds=float(v["spectrogram_seconds"]),
            spectrogram_bands=int(v["spectrogram_bands"]),
        )  # fmt: skip


@dataclass
class Song:
    """One held-out song: its dry and wet tracks (2, time) over the evaluated span, and its mix."""

    song: str
    names: list[str]
    roles: list[str]
    dry: list[np.ndarray]
    wet: list[np.ndarray]
    mix: np.ndarray


def held_out_songs(table: pd.DataFrame, splits: Sequence[str] = ("test",)) -> list[tuple[str, str, str]]:
    """(corpus, shard, song) of the songs of `splits`, sorted."""
    rows = table[table["split"].isin(list(splits))][["corpus", "shard", "song"]].drop_duplicates()
    return sorted(map(tuple, rows.astype(str).to_numpy().tolist()))


def song_pairs(stems_root: str | Path, corpus: str, shard: str, song: str) -> list[tuple[str, str, Path, Path]]:
    """(name, role, dry file, wet file) of the song's stems that have both files."""
    directory = song_dir(stems_root, corpus, shard, song)
    meta = song_json(str(directory / "song.json"))
    pairs = []
    for entry in meta.get("stems", []):
        dry, wet = stem_files(directory, entry)
        if dry.is_file() and wet.is_file():
            role = entry.get("role") or CATEGORY_ROLES.get(str(entry.get("category")), "harmony")
            pairs.append((str(entry["name"]), str(role), dry, wet))
    return pairs


def mixable(stems_root: str | Path, corpus: str, shard: str, song: str) -> bool:
    return bool(song_pairs(stems_root, corpus, shard, song))


def _read(path: Path, start: int, frames: int | None) -> np.ndarray:
    import soundfile as sf

    from stemlab.data.segment_tables import read_window

    if frames is None:
        frames = sf.info(str(path)).frames - start
    return read_window(path, start, frames)


def load_song(stems_root: str | Path, corpus: str, shard: str, song: str, max_seconds: float | None) -> Song:
    """The song's stems that have a dry and a wet file, over the loudest `max_seconds` of its mix (all of
    it when None)."""
    pairs = song_pairs(stems_root, corpus, shard, song)
    if not pairs:
        raise StemlabError(f"{song_dir(stems_root, corpus, shard, song)}: no stem has both a dry and a wet file; the song cannot be mixed")
    directory = song_dir(stems_root, corpus, shard, song)
    mix = _read(directory / str(song_json(str(directory / "song.json")).get("mix") or "mix.flac"), 0, None)
    start, frames = 0, mix.shape[1]
    if max_seconds is not None and frames > int(max_seconds * SAMPLE_RATE):
        frames = int(max_seconds * SAMPLE_RATE)
        start = loudest_excerpt(mix, frames)
        mix = mix[:, start : start + frames]
    return Song(
        song=song, names=[p[0] for p in pairs], roles=[p[1] for p in pairs],
        dry=[_read(p[2], start, frames) for p in pairs], wet=[_read(p[3], start, frames) for p in pairs], mix=mix,
    )  # fmt: skip


# --------------------------------------------------------------------------- baselines


def equal_loudness_mix(dry: Sequence[np.ndarray], names: Sequence[str], settings: MixSettings) -> Mix:
    gains = np.array([EQUAL_LOUDNESS_LUFS - integrated_loudness(d, SAMPLE_RATE) for d in dry])
    return sum_normalised(dry, gains, names, settings.peak_dbfs)


def random_style_mix(dry: Sequence[np.ndarray], names: Sequence[str], roles: Sequence[str], settings: MixSettings,
                     generator: np.random.Generator) -> Mix:  # fmt: skip
    """Each track through a chain sampled from the mix style of a genre drawn per track (fader and pan
    included), at a tempo drawn from the genre's range."""
    from stemlab.synth.genres import GENRE_NAMES, GENRES
    from stemlab.synth.mixing import ROLE_LEVEL_DB, apply_stem_fx, sample_stem_fx

    stems, side = [], 1.0
    for d, role in zip(dry, roles):
        genre = GENRES[GENRE_NAMES[int(generator.integers(len(GENRE_NAMES)))]]
        role = role if role in ROLE_LEVEL_DB else "harmony"
        beat_s = 60.0 / float(generator.uniform(*genre.tempo))
        pan_side = 0.0 if role in ("drums", "bass", "melody") else side
        if pan_side:
            side = -side
        lufs = integrated_loudness(d, SAMPLE_RATE)
        fx = sample_stem_fx(genre.mix, role, beat_s, lufs, generator, pan_side)
        stems.append(np.ascontiguousarray(apply_stem_fx(np.ascontiguousarray(d.T), fx, SAMPLE_RATE).T[:, : d.shape[1]]))
    return sum_normalised(stems, np.zeros(len(stems)), names, settings.peak_dbfs)


# --------------------------------------------------------------------------- measurements


def loudness_normalised(audio: np.ndarray, lufs: float) -> np.ndarray:
    level = integrated_loudness(audio, SAMPLE_RATE)
    return (audio * np.float32(10.0 ** ((lufs - level) / 20.0))).astype(np.float32)


def kad_windows(audio: np.ndarray, n: int) -> np.ndarray:
    """(windows, 2, n): consecutive windows of `audio`, the last one kept when it is at least half full."""
    length = audio.shape[1]
    starts = list(range(0, max(1, length - n + 1), n))
    if length > n and length - (starts[-1] + n) >= n // 2:
        starts.append(length - n)
    out = np.zeros((len(starts), audio.shape[0], n), dtype=np.float32)
    for k, s in enumerate(starts):
        part = audio[:, s : s + n]
        out[k, :, : part.shape[1]] = part
    return out


def relative_track_features(stems: Sequence[np.ndarray]) -> list[dict[str, float]]:
    """signal_features of each stem with its loudness relative to the stems' sum (LU)."""
    bus = integrated_loudness(np.sum(stems, axis=0), SAMPLE_RATE)
    out = []
    for s in stems:
        f = signal_features(s)
        f["loudness_lufs"] -= bus
        out.append(f)
    return out


def banded_spectrogram(audio: np.ndarray, bands: int, fmin: float = 40.0, fmax: float = 16000.0, n_fft: int = 2048,
                       hop: int = 1024) -> np.ndarray:  # fmt: skip
    """(bands, frames) dB power of the mid signal in log-spaced bands between fmin and fmax."""
    mid = audio.mean(axis=0).astype(np.float64)
    if len(mid) < n_fft:
        mid = np.pad(mid, (0, n_fft - len(mid)))
    frames = np.lib.stride_tricks.sliding_window_view(mid, n_fft)[::hop]
    power = np.square(np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1)))  # (frames, bins)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    edges = np.geomspace(fmin, fmax, bands + 1)
    which = np.digitize(freqs, edges) - 1
    banded = np.stack([power[:, which == b].sum(axis=1) if np.any(which == b) else np.zeros(len(power)) for b in range(bands)])
    return (10.0 * np.log10(banded + 1e-10)).astype(np.float32)


# --------------------------------------------------------------------------- the evaluation


def megami_seed(seed: int, song: str) -> int:
    """The FxGenerator's sampling seed of one song in a run of `seed` (evaluation and the mix rule)."""
    return derive_seed(seed, "megami", song)


def song_mixes(pipeline: Pipeline, song: Song, settings: MixSettings, cfg: EvalSettings, seed: int) -> tuple[dict[str, list[Mix]], list[np.ndarray], list[str]]:
    """Every system's mixes of one song (megami and only_rms: `cfg.samples` each), the kept wet tracks
    and the kept track names."""
    prepared = prepare(song.names, song.dry, settings)
    kept = [song.names.index(n) for n in prepared.names]
    wet = [song.wet[i] for i in kept]
    roles = [song.roles[i] for i in kept]
    mixes, effects, content = megami_mixes(pipeline, prepared, settings, cfg.samples, megami_seed(seed, song.song))
    true_effects = pipeline.effects(prepared.window(wet))
    systems = {
        "megami": mixes,
        "oracle": [processed_mix(pipeline, prepared, true_effects, content, settings)],
        "only_rms": [gain_only_mix(prepared, e, settings) for e in effects],
        "equal_loudness": [equal_loudness_mix(prepared.dry, prepared.names, settings)],
        "random_style": [random_style_mix(prepared.dry, prepared.names, roles, settings, rng(seed, "random_style", song.song))],
    }
    return systems, wet, prepared.names


def evaluate_songs(pipeline: Pipeline, songs: Sequence[Song], settings: MixSettings, cfg: EvalSettings, seed: int) -> pd.DataFrame:
    """The long rows of every system on `songs` (see the module docstring)."""
    if len(songs) < 3:
        raise StemlabError(f"the megami evaluation needs at least 3 held-out songs with dry tracks, found {len(songs)}; raise models.megami.eval.max_songs or use a larger test split")
    rows: list[dict[str, Any]] = []
    embeddings: dict[str, dict[str, list[np.ndarray]]] = {s: {"clap": [], "fx": []} for s in (*SYSTEMS, REFERENCE)}
    groups: dict[str, list[str]] = {s: [] for s in (*SYSTEMS, REFERENCE)}
    for index, song in enumerate(progress(songs, desc="megami mixes")):
        systems, wet, names = song_mixes(pipeline, song, settings, cfg, seed)
        reference = sum_normalised(wet, np.zeros(len(wet)), names, settings.peak_dbfs)
        reference.mix = song.mix  # the real mix (master bus included); its stems stay the wet tracks
        ref_features = relative_track_features(wet)
        spectrogram_start = None
        for system, mixes in [*systems.items(), (REFERENCE, [reference])]:
            for k, mix in enumerate(mixes):
                audio = loudness_normalised(mix.mix, cfg.loudness_lufs)
                windows = kad_windows(audio, cfg.kad_window_samples)
                embeddings[system]["clap"].append(pipeline.content(windows))
                embeddings[system]["fx"].append(pipeline.effects(windows))
                groups[system] += [song.song] * len(windows)
                item = song.song if len(mixes) == 1 else f"{song.song}#{k + 1}"
                whole = signal_features(audio)
                mix_rows = {"mix_centroid_hz": whole["centroid_hz"], "mix_stereo_width": whole["stereo_width"], "mix_crest_db": whole["crest_db"]}
                rows += [{"system": system, "metric": m, "value": v, "item": item, "song": song.song} for m, v in mix_rows.items()]
                if system != REFERENCE:
                    distances = [feature_distances(f, r) for f, r in zip(relative_track_features(mix.stems), ref_features)]
                    for metric in distances[0]:
                        value = float(np.mean([d[metric] for d in distances]))
                        rows.append({"system": system, "metric": metric, "value": value, "item": item, "song": song.song})
                if index < cfg.spectrogram_songs and k == 0:
                    n = int(cfg.spectrogram_seconds * SAMPLE_RATE)
                    if spectrogram_start is None:
                        spectrogram_start = loudest_excerpt(loudness_normalised(song.mix, cfg.loudness_lufs), min(n, audio.shape[1]))
                    spec = banded_spectrogram(audio[:, spectrogram_start : spectrogram_start + n], cfg.spectrogram_bands)
                    rows.append({"system": system, "metric": "spectrogram", "value": float("nan"), "item": song.song, "song": song.song,
                                 "spectrogram": spec.reshape(-1).tolist(), "spectrogram_bands": spec.shape[0],
                                 "spectrogram_start_s": spectrogram_start / SAMPLE_RATE})  # fmt: skip
    for space, metric in (("clap", "kad_clap"), ("fx", "kad_fx")):
        ref = np.concatenate(embeddings[REFERENCE][space])
        for system in SYSTEMS:
            value, pseudo = jackknife_items(ref, np.concatenate(embeddings[system][space]), groups[REFERENCE], groups[system])
            log.info("%s %s: %.3f over %d songs", system, metric, value, len(pseudo))
            rows += [{"system": system, "metric": metric, "value": v, "item": g, "song": g} for g, v in pseudo.items()]
    order = {s: i for i, s in enumerate((*SYSTEMS, REFERENCE))}
    frame = pd.DataFrame(rows)
    return frame.sort_values("system", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
