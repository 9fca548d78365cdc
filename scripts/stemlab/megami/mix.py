"""Full-song automatic mixing with MEGAMI, and the CLI that mixes a folder of dry tracks.

    python -m stemlab.megami.mix DRY_DIR OUT.flac [--samples N] [--seed S] [--model FINAL.pt] [--device D]

Pipeline for one song (every track a (2, time) float32 array at 44.1 kHz, all of one length):

1. silent tracks (loudest 400 ms frame below `silence_dbfs`) are dropped;
2. each track's loudest window of `window_samples` (525,312 = 11.9 s; zero-padded when shorter) is
   embedded by CLAP (the content embedding of the dry track);
3. the FxGenerator samples every track's effect embedding jointly from those (N samples = N mixes);
4. the FxProcessor applies each embedding to its whole dry track, in blocks with crossfade;
5. each processed track gets the gain that brings its level (MEGAMI's gated-max log-RMS of the same
   window) to the level its generated embedding encodes (stemlab.megami.features.effect_level_db),
   clamped to ±`max_gain_db`;
6. the tracks are summed and the mix is peak-normalised to `peak_dbfs`.

The same steps with the true effect embeddings of the wet tracks give the `oracle` mix, and with the
generated gains applied to the dry tracks (no FxProcessor) the `only_rms` mix (stemlab.megami.mix_task).

The CLI reads every audio file of DRY_DIR (any sample rate, resampled with soxr VHQ to 44.1 kHz; mono is
duplicated to stereo, more channels are folded to L = mean of odd, R = mean of even channels; shorter
tracks are padded at the end to the longest), loads the trained models named by the megami model's
final.pt (`results/models/megami/seed-<s>/final.pt`, made by `snakemake results/models/megami/seed-1/final.pt`)
and writes OUT.flac atomically (24-bit); N > 1 writes OUT-1.flac ... OUT-N.flac. An unreadable or silent
file stops it with one line naming the file (`--drop-silent` drops silent files instead).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from stemlab.audio import SAMPLE_RATE
from stemlab.errors import StemlabError, run_cli
from stemlab.logs import log, setup_logging
from stemlab.megami.evaluate_fxprocessor import loudest_excerpt
from stemlab.megami.features import effect_level_db, measured_level_db

EMBED_BATCH = 8  # windows per encoder call
AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".w64", ".rf64", ".caf")


@dataclass(frozen=True)
class MixSettings:
    """models.megami.settings (defaults: the schema's)."""

    window_samples: int
    block_samples: int
    crossfade_samples: int | None  # None: the FxProcessor's receptive field
    steps: int
    sampler: str
    cfg_scale: float
    peak_dbfs: float
    silence_dbfs: float
    max_gain_db: float

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None = None) -> MixSettings:
        from stemlab.config import settings_section

        v = settings_section("models", "megami", "settings", section=section or {})
        if v["crossfade_samples"] is not None and 2 * v["crossfade_samples"] > v["block_samples"]:
            raise StemlabError(
                f"models.megami.settings.crossfade_samples ({v['crossfade_samples']}) must be at most half of block_samples "
                f"({v['block_samples']}); lower it or raise block_samples"
            )
        return cls(
            window_samples=int(v["window_samples"]), block_samples=int(v["block_samples"]),
            crossfade_samples=None if v["crossfade_samples"] is None else int(v["crossfade_samples"]), steps=int(v["steps"]), sampler=str(v["sampler"]),
            cfg_scale=float(v["cfg_scale"]), peak_dbfs=float(v["peak_dbfs"]), silence_dbfs=float(v["silence_dbfs"]),
            max_gain_db=float(v["max_gain_db"]),
        )  # fmt: skip


class Pipeline(Protocol):
    """The trained parts of MEGAMI as array functions (TrainedPipeline; tests use stand-ins)."""

    def content(self, windows: np.ndarray) -> np.ndarray:
        """(tracks, 2, window) -> (tracks, d_clap) CLAP embeddings."""

    def effects(self, windows: np.ndarray) -> np.ndarray:
        """(tracks, 2, window) -> (tracks, d_fx) effect-encoder embeddings."""

    def generate(self, content: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
        """(tracks, d_clap) -> (n_samples, tracks, d_fx) effect embeddings sampled jointly."""

    def process(self, dry: np.ndarray, effect: np.ndarray, content: np.ndarray) -> np.ndarray:
        """One whole dry track (2, time), its effect (d_fx,) and content (d_clap,) embedding -> (2, time)."""


# --------------------------------------------------------------------------- one song


def window_at(audio: np.ndarray, start: int, n: int) -> np.ndarray:
    out = np.zeros((audio.shape[0], n), dtype=np.float32)
    part = audio[:, start : start + n]
    out[:, : part.shape[1]] = part
    return out


@dataclass
class Prepared:
    """The audible tracks of one song, equally long, with the loudest window of each (dry)."""

    names: list[str]
    dry: list[np.ndarray]
    starts: list[int]
    windows: np.ndarray  # (tracks, 2, window_samples)
    dropped: list[str] = field(default_factory=list)

    def window(self, audio: Sequence[np.ndarray]) -> np.ndarray:
        """The windows of other signals of these tracks (e.g. processed or wet) at the same positions."""
        n = self.windows.shape[-1]
        return np.stack([window_at(a, s, n) for a, s in zip(audio, self.starts)])


def is_silent(audio: np.ndarray, silence_dbfs: float) -> bool:
    return not np.any(audio) or measured_level_db(audio) < silence_dbfs


def prepare(names: Sequence[str], tracks: Sequence[np.ndarray], settings: MixSettings) -> Prepared:
    """Drop silent tracks, pad the rest to the longest, find each one's loudest window."""
    if len(names) != len(tracks):
        raise ValueError("one name per track is required")
    keep = [i for i, t in enumerate(tracks) if not is_silent(t, settings.silence_dbfs)]
    dropped = [names[i] for i in range(len(names)) if i not in keep]
    if not keep:
        raise StemlabError(f"every track is silent (below {settings.silence_dbfs} dBFS): {', '.join(names)}; nothing to mix")
    length = max(tracks[i].shape[1] for i in keep)
    dry = [np.pad(np.asarray(tracks[i], dtype=np.float32), ((0, 0), (0, length - tracks[i].shape[1]))) for i in keep]
    n = settings.window_samples
    starts = [loudest_excerpt(d, n) for d in dry]
    windows = np.stack([window_at(d, s, n) for d, s in zip(dry, starts)])
    return Prepared([names[i] for i in keep], dry, starts, windows, dropped)


def gains_to_level(effects: np.ndarray, windows: np.ndarray, max_gain_db: float) -> np.ndarray:
    """(tracks,) dB: the level each effect embedding encodes minus the level measured on its track's window."""
    target = effect_level_db(effects)
    measured = np.array([measured_level_db(w) for w in windows])
    return np.clip(target - measured, -max_gain_db, max_gain_db)


@dataclass
class Mix:
    """One mix: the stems as they are summed (after gains and peak normalisation) and their sum."""

    mix: np.ndarray  # (2, time)
    stems: list[np.ndarray]
    gains_db: np.ndarray  # per stem, before the common peak normalisation
    names: list[str]


def sum_normalised(stems: Sequence[np.ndarray], gains_db: np.ndarray, names: Sequence[str], peak_dbfs: float) -> Mix:
    """Stems times their gains, summed, the sum (and the stems by the same factor) peak-normalised."""
    scaled = [(s * np.float32(10.0 ** (g / 20.0))).astype(np.float32) for s, g in zip(stems, gains_db)]
    bus = np.sum(scaled, axis=0, dtype=np.float32)
    peak = float(np.max(np.abs(bus)))
    factor = np.float32(10.0 ** (peak_dbfs / 20.0) / peak) if peak > 0 else np.float32(1.0)
    return Mix((bus * factor).astype(np.float32), [(s * factor).astype(np.float32) for s in scaled], np.asarray(gains_db), list(names))


def processed_mix(pipeline: Pipeline, prepared: Prepared, effects: np.ndarray, content: np.ndarray, settings: MixSettings) -> Mix:
    """The FxProcessor applied to every track with `effects`, gains from the same embeddings, summed."""
    wet = [pipeline.process(d, e, c) for d, e, c in zip(prepared.dry, effects, content)]
    gains = gains_to_level(effects, prepared.window(wet), settings.max_gain_db)
    return sum_normalised(wet, gains, prepared.names, settings.peak_dbfs)


def gain_only_mix(prepared: Prepared, effects: np.ndarray, settings: MixSettings) -> Mix:
    """The dry tracks with only the gains of `effects` (the loudness-only ablation)."""
    gains = gains_to_level(effects, prepared.windows, settings.max_gain_db)
    return sum_normalised(prepared.dry, gains, prepared.names, settings.peak_dbfs)


def megami_mixes(pipeline: Pipeline, prepared: Prepared, settings: MixSettings, n_samples: int, seed: int) -> tuple[list[Mix], np.ndarray, np.ndarray]:
    """(N mixes, the generated effects (N, tracks, d_fx), the content embeddings (tracks, d_clap))."""
    content = pipeline.content(prepared.windows)
    effects = pipeline.generate(content, n_samples, seed)
    if effects.shape[:2] != (n_samples, len(prepared.names)):
        raise StemlabError(f"the FxGenerator returned effects of shape {effects.shape} for {n_samples} samples of {len(prepared.names)} tracks")
    return [processed_mix(pipeline, prepared, e, content, settings) for e in effects], effects, content


# --------------------------------------------------------------------------- the trained pipeline


class TrainedPipeline:
    """MEGAMI's trained parts: CLAP and the effect encoder (encoder tasks), the FxGenerator (+ domain
    adaptor) and the FxProcessor, as loaded by stemlab.train.task.load_trained."""

    def __init__(self, parts: Mapping[str, tuple[Any, Any]], settings: MixSettings, device: Any = "cpu") -> None:
        import torch

        self.parts = dict(parts)
        self.settings = settings
        self.device = torch.device(device)

    def _embed(self, name: str, windows: np.ndarray) -> np.ndarray:
        import torch

        task, model = self.parts[name]
        with torch.inference_mode():
            out = [task.embed(model, torch.from_numpy(np.ascontiguousarray(windows[i : i + EMBED_BATCH])).to(self.device))
                   for i in range(0, len(windows), EMBED_BATCH)]  # fmt: skip
        return torch.cat(out).float().cpu().numpy()

    def content(self, windows: np.ndarray) -> np.ndarray:
        return self._embed("clap", windows)

    def effects(self, windows: np.ndarray) -> np.ndarray:
        return self._embed("fx_encoder", windows)

    def generate(self, content: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
        import torch

        from stemlab.megami.generator import sample_effect_embeddings

        s = self.settings
        with torch.inference_mode():
            out = sample_effect_embeddings(
                self.parts["fx_generator"][1], self.parts["domain_adaptor"][1], torch.from_numpy(content).to(self.device),
                n_samples, seed, steps=s.steps, sampler=s.sampler, cfg_scale=s.cfg_scale,
            )  # fmt: skip
        return out.float().cpu().numpy()

    def process(self, dry: np.ndarray, effect: np.ndarray, content: np.ndarray) -> np.ndarray:
        from stemlab.megami.fxprocessor import process_track

        s = self.settings
        try:
            out = process_track(self.parts["fxprocessor"][1], dry, effect, content, s.block_samples, overlap=s.crossfade_samples, device=self.device)
        except ValueError as exc:
            raise StemlabError(f"the FxProcessor cannot run over the track: {exc}; fix models.megami.settings.block_samples / crossfade_samples") from exc
        return np.asarray(out, dtype=np.float32)[:, : dry.shape[1]]


UPSTREAM = ("clap", "fx_encoder", "domain_adaptor", "fx_generator", "fxprocessor")


def load_pipeline(model: str | os.PathLike[str], device: str = "auto") -> TrainedPipeline:
    """The trained pipeline named by the megami model's final.pt (its upstream files, checked by sha256)."""
    from stemlab.device import resolve_device
    from stemlab.encoders.cache import sha256_file
    from stemlab.train.task import load_trained, read_final

    payload = read_final(model, "megami")
    export = payload.get("export") or {}
    upstream = dict(export.get("upstream") or {})
    digests = dict(export.get("sha256") or {})
    missing = [m for m in UPSTREAM if m not in upstream]
    if missing:
        raise StemlabError(f"{model}: names no {missing[0]} model; re-run the train_model job of megami")
    for name in UPSTREAM:
        path = Path(upstream[name])
        if not path.is_file():
            raise StemlabError(f"{path}: the {name} model that {model} was made with is missing; run from the workflow's directory or re-train {name}")
        if digests.get(name) and sha256_file(path) != digests[name]:
            raise StemlabError(f"{path}: the {name} model changed since {model} was made; re-run `snakemake {model}`")
    dev = resolve_device(device)
    inputs = {"upstream": upstream, "pretrained": dict(export.get("pretrained") or {})}
    parts = {}
    for name in UPSTREAM:
        task, net, _ = load_trained(upstream[name], dev, inputs)
        parts[name] = (task, net)
    return TrainedPipeline(parts, MixSettings.from_config(payload.get("settings") or {}), dev)


# --------------------------------------------------------------------------- the CLI


def to_stereo(audio: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (2, frames): mono duplicated, more channels folded to L (odd) / R (even)."""
    x = np.asarray(audio, dtype=np.float32)
    if x.shape[1] == 1:
        return np.repeat(x.T, 2, axis=0)
    if x.shape[1] == 2:
        return np.ascontiguousarray(x.T)
    return np.stack([x[:, 0::2].mean(axis=1), x[:, 1::2].mean(axis=1)]).astype(np.float32)


def read_folder(folder: str | os.PathLike[str], silence_dbfs: float, drop_silent: bool = False) -> tuple[list[str], list[np.ndarray]]:
    """Every audio file of `folder` (sorted by name) as (2, frames) float32 at 44.1 kHz."""
    from stemlab.audio import read_audio, resample

    folder = Path(folder)
    if not folder.is_dir():
        raise StemlabError(f"{folder}: not a folder; pass the folder that holds the dry tracks")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise StemlabError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}); put the dry tracks there")
    names, tracks = [], []
    for path in files:
        audio, sr = read_audio(path)
        track = to_stereo(resample(audio, sr, SAMPLE_RATE))
        if is_silent(track, silence_dbfs):
            if not drop_silent:
                raise StemlabError(f"{path}: the track is silent (below {silence_dbfs} dBFS); remove it or pass --drop-silent")
            log.warning("%s: silent, dropped", path)
            continue
        names.append(path.stem)
        tracks.append(track)
    if not tracks:
        raise StemlabError(f"{folder}: every track is silent; nothing to mix")
    return names, tracks


def output_paths(out: str | os.PathLike[str], n_samples: int) -> list[Path]:
    out = Path(out)
    if n_samples == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{k}{out.suffix}") for k in range(1, n_samples + 1)]


def mix_folder(pipeline: Pipeline, settings: MixSettings, folder: str | os.PathLike[str], out: str | os.PathLike[str],
               n_samples: int = 1, seed: int = 0, drop_silent: bool = False) -> list[Path]:  # fmt: skip
    """Mix the dry tracks of `folder` into `out` (N > 1: out-1 ... out-N); returns the files written."""
    from stemlab.audio import write_audio

    if n_samples < 1:
        raise StemlabError("--samples must be >= 1")
    if Path(out).suffix.lower() not in (".flac", ".wav"):
        raise StemlabError(f"{out}: the mix is written as FLAC or WAV; name it .flac or .wav")
    names, tracks = read_folder(folder, settings.silence_dbfs, drop_silent)
    prepared = prepare(names, tracks, settings)
    log.info("mixing %d tracks of %.1f s, %d sample(s), seed %d", len(prepared.names), prepared.dry[0].shape[1] / SAMPLE_RATE, n_samples, seed)
    mixes, _, _ = megami_mixes(pipeline, prepared, settings, n_samples, seed)
    paths = output_paths(out, n_samples)
    for path, mix in zip(paths, mixes):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_audio(path, mix.mix.T, SAMPLE_RATE)
        log.info("%s: gains %s dB", path, ", ".join(f"{n} {g:+.1f}" for n, g in zip(mix.names, mix.gains_db)))
    return paths


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stemlab.megami.mix", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("dry_dir", help="folder of dry tracks (one file per track)")
    parser.add_argument("out", help="the mix to write (.flac or .wav)")
    parser.add_argument("--samples", type=int, default=1, help="mixes to draw (N > 1 writes OUT-1 ... OUT-N)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the FxGenerator's noise")
    parser.add_argument("--model", default="results/models/megami/seed-1/final.pt", help="the megami model's final.pt")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--drop-silent", action="store_true", help="drop silent files instead of stopping")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    pipeline = load_pipeline(args.model, args.device)
    for path in mix_folder(pipeline, pipeline.settings, args.dry_dir, args.out, args.samples, args.seed, args.drop_silent):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
