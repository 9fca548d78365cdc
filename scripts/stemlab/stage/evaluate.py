"""Evaluation of the stage model on held-out contexts (results/tables/stage.csv).

Items: crops of `clip_seconds` (non-overlapping, from the song start) of every song of `eval.splits` with a
target and a context, at most `eval.max_items` (evenly spaced). Each item's context is the longest prefix
(`context_seconds` max) of all its other stems, or of its click track; the LM generates the target stem
(top-k sampling, `eval.top_k`) at every CFG scale of `eval.cfg_scales`. Systems, all decoded by the codec:

    stage              mix-conditioned generation at `eval.cfg_scale` (others: stage_cfg<s>)
    stage_metronome    the same model conditioned on the click track (stage_metronome_cfg<s>)
    ground_truth       the real target stem of the crop
    random_stem        the real target stem of a crop of another song
    tempo_loop         another song's target crop time-stretched to the context's tempo (librosa phase
                       vocoder), its first beat moved onto the context's, looped to the clip length
    noise              white noise at the real stem's RMS (never silent)

Metrics: beat_f (F-measure, ±`beat_window_s`, of the beats a tracker finds on the system's stem against the
context's annotated beats inside the crop; stemlab.synth.validity), kad_clap and fd_clap (KAD and Fréchet
distance, in the trained CLAP's space, of each system's stems against the real target stems of
`eval.reference_items` training-split crops; per-song jackknife pseudo-values, stemlab.stage.distances).
Rows of metric `spectrogram` (value NaN) hold mel spectrograms of the context, the generated and the real
stems of the first `eval.spectrogram_items` items for the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from stemlab.errors import StemlabError
from stemlab.logs import progress
from stemlab.seeding import derive_seed, rng
from stemlab.stage import lm
from stemlab.stage.task import NAME, Song, StageTask

CLAP_RATE = 44_100
BASELINES = ("ground_truth", "random_stem", "tempo_loop", "noise")


@dataclass(frozen=True)
class EvalSettings:
    splits: tuple[str, ...]
    max_items: int | None
    seed: int
    cfg_scale: float
    cfg_scales: tuple[float, ...]
    top_k: int
    temperature: float
    batch_size: int
    beat_tracker: str
    beat_window_s: float
    beat_trim_s: float
    reference_items: int
    clap: str
    spectrogram_items: int
    spectrogram_bands: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> EvalSettings:
        from stemlab.config import settings_section

        v = settings_section("models", NAME, "eval", section=section)
        scales = tuple(dict.fromkeys(float(s) for s in [v["cfg_scale"], *v["cfg_scales"]]))
        return cls(splits=tuple(v["splits"]), max_items=v["max_items"], seed=int(v["seed"]), cfg_scale=float(v["cfg_scale"]),
                   cfg_scales=scales, top_k=int(v["top_k"]), temperature=float(v["temperature"]),
                   batch_size=int(v["batch_size"]), beat_tracker=str(v["beat_tracker"]),
                   beat_window_s=float(v["beat_window_s"]), beat_trim_s=float(v["beat_trim_s"]),
                   reference_items=int(v["reference_items"]), clap=str(v["clap"]),
                   spectrogram_items=int(v["spectrogram_items"]), spectrogram_bands=int(v["spectrogram_bands"]))  # fmt: skip


@dataclass(frozen=True)
class Item:
    song: Song
    start: int  # frame

    @property
    def key(self) -> str:
        return f"{self.song.key}/{self.start}"


def system_name(base: str, scale: float, main: float) -> str:
    return base if scale == main else f"{base}_cfg{scale:g}"


def load_codec(path: Any) -> Any:
    from stemlab.stage.codec import load_codec as load

    return load(path)


def load_clap(task: StageTask, cfg: EvalSettings) -> tuple[Any, nn.Module]:
    """The trained CLAP of `eval.clap` (an upstream model), frozen: (its task, its network)."""
    from stemlab.train.task import load_trained

    inputs = {"upstream": dict(task.job.inputs.upstream), "pretrained": dict(task.job.inputs.pretrained)}
    clap_task, net, _ = load_trained(task.upstream_file(cfg.clap), "cpu", inputs)
    if not hasattr(clap_task, "embed"):
        raise StemlabError(f"models.stage.eval.clap: {cfg.clap!r} is not an encoder (its task has no embed); name the CLAP model")
    return clap_task, net.requires_grad_(False)


def items_of(songs: Sequence[Song], splits: Sequence[str], frames: int, limit: int | None) -> list[Item]:
    """Non-overlapping full crops of the songs of `splits` that have a context, evenly thinned to `limit`."""
    items = [Item(s, start) for s in songs if s.split in splits and s.contexts for start in range(0, s.frames - frames + 1, frames)]
    if limit is not None and len(items) > limit:
        items = [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]
    return items


def crop_beats(beats: np.ndarray, start_s: float, length_s: float) -> np.ndarray:
    inside = beats[(beats >= start_s) & (beats < start_s + length_s)]
    return inside - start_s


# --------------------------------------------------------------------------- generation


def conditions(task: StageTask, items: Sequence[Item], mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(targets (N, K, Ft), contexts (N, S, K, Fc)) of the items under `mode` (mix: every context stem)."""
    fc = task.context_frames[1]
    pairs = [task.example(it.song, it.start, fc, mode, list(range(len(it.song.contexts)))) for it in items]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


@torch.no_grad()
def generate(task: StageTask, model: nn.Module, items: Sequence[Item], mode: str, scale: float, cfg: EvalSettings,
             tag: str = "eval") -> np.ndarray:  # fmt: skip
    """Generated target codes (N, K, Ft) for the items' contexts under `mode`, deterministic per batch."""
    _, contexts = conditions(task, items, mode)
    device = next(model.lm.parameters()).device
    out = []
    for lo in progress(range(0, len(items), cfg.batch_size), desc=f"stage generate {mode} cfg {scale:g}"):
        batch = items[lo : lo + cfg.batch_size]
        states, mask = model.text([it.song.description for it in batch])
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, task.job.seed, "stage-generate", tag, mode, scale, lo))
        codes = lm.sample(model.lm, torch.from_numpy(contexts[lo : lo + len(batch)]).to(device), task.target_frames,
                          states.to(device), mask.to(device), cfg_scale=scale, top_k=cfg.top_k, generator=g,
                          temperature=cfg.temperature)  # fmt: skip
        out.append(codes.cpu().numpy())
    return np.concatenate(out)


def decode(codec: Any, codes: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """(N, K, F) codes -> (N, T) mono audio at the codec's rate."""
    out = []
    with torch.no_grad():
        for lo in range(0, len(codes), batch_size):
            audio = codec.decode(torch.from_numpy(np.ascontiguousarray(codes[lo : lo + batch_size])).long())
            out.append(audio[:, 0].detach().cpu().numpy().astype(np.float32))
    return np.concatenate(out)


def context_audio(task: StageTask, codec: Any, item: Item) -> np.ndarray:
    """The mix of the item's context stems over the context prefix, decoded stem by stem and summed."""
    fc = task.context_frames[1]
    pad = task.codec_meta["cardinality"]
    from stemlab.stage.task import crop

    codes = np.stack([crop(c, item.start, fc, pad) for _, c in item.song.contexts])
    return decode(codec, np.minimum(codes, pad - 1)).sum(axis=0)


# --------------------------------------------------------------------------- baselines


def other_index(n: int, i: int, songs: Sequence[str], generator: np.random.Generator) -> int:
    """A random item index of another song than item i's (item i itself when every item is of one song)."""
    others = [j for j in range(n) if songs[j] != songs[i]]
    return int(others[generator.integers(0, len(others))]) if others else i


def tempo_loop(source: np.ndarray, sr: int, source_tempo: float, source_beats: np.ndarray, tempo: float,
               first_beat: float | None, length: int) -> np.ndarray:  # fmt: skip
    """`source` stretched from `source_tempo` to `tempo`, its first beat moved to `first_beat`, looped to `length`."""
    import librosa

    rate = float(np.clip(tempo / source_tempo, 0.25, 4.0)) if tempo > 0 and source_tempo > 0 else 1.0
    stretched = librosa.effects.time_stretch(source.astype(np.float32), rate=rate) if abs(rate - 1.0) > 1e-3 else source.astype(np.float32)
    if first_beat is not None and len(source_beats) and tempo > 0:
        period = int(round(60.0 / max(tempo, 1e-6) * sr))
        shift = int(round(first_beat * sr - source_beats[0] / rate * sr)) % max(period, 1)
        stretched = np.concatenate([stretched[len(stretched) - shift :] if shift else stretched[:0], stretched])
    reps = int(np.ceil(length / max(len(stretched), 1)))
    return np.tile(stretched, max(reps, 1))[:length]


def noise_like(reference: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(reference, dtype=np.float64)))) or 1e-3
    return (generator.standard_normal(len(reference)) * rms).astype(np.float32)


# --------------------------------------------------------------------------- metrics


def beat_rows(audio: Mapping[str, np.ndarray], items: Sequence[Item], sr: int, cfg: EvalSettings,
              extra: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    from stemlab.synth.validity import beat_scores, track_beats

    rows = []
    for i, it in enumerate(progress(items, desc="stage beats")):
        ref = extra["reference_beats"][it.key]
        if len(ref[ref >= cfg.beat_trim_s]) == 0:
            continue
        for system, clips in audio.items():
            est = track_beats(clips[i], sr, cfg.beat_tracker)
            score = beat_scores(ref, est, cfg.beat_window_s, cfg.beat_trim_s)
            rows.append({"system": system, "metric": "beat_f", "value": score["beat_f"], "item": it.key,
                         "song": it.song.key, **extra["columns"][system]})  # fmt: skip
    return rows


def clap_embeddings(encoder: tuple[Any, nn.Module], clips: np.ndarray, sr: int) -> np.ndarray:
    """(N, T) mono clips at `sr` -> (N, dim) CLAP embeddings (the encoder hears 44.1 kHz stereo)."""
    from stemlab.audio import resample

    task, net = encoder
    device = next(iter(net.parameters())).device
    out = []
    for clip in clips:
        audio = resample(clip[:, None].astype(np.float32), sr, CLAP_RATE)[:, 0]
        stereo = torch.from_numpy(np.stack([audio, audio]))[None].to(device)
        out.append(task.embed(net, stereo).cpu().numpy()[0])
    return np.stack(out).astype(np.float64)


def distance_rows(embeddings: Mapping[str, np.ndarray], reference: np.ndarray, items: Sequence[Item],
                  columns: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    from stemlab.stage.distances import frechet_distance, jackknife_evaluated, kad_fixed_bandwidth

    groups = [it.song.key for it in items]
    kad = kad_fixed_bandwidth(reference)
    rows = []
    for system, emb in embeddings.items():
        for metric, fn in (("kad_clap", kad), ("fd_clap", frechet_distance)):
            _, pseudo = jackknife_evaluated(fn, reference, emb, groups)
            rows += [{"system": system, "metric": metric, "value": v, "item": g, "song": g, **columns[system]} for g, v in pseudo.items()]
    return rows


def mel_image(audio: np.ndarray, sr: int, bands: int) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=audio.astype(np.float32), sr=sr, n_fft=1024, hop_length=256, n_mels=bands)
    return librosa.power_to_db(mel, ref=1.0, top_db=80.0).astype(np.float32)


# --------------------------------------------------------------------------- the evaluation


def evaluate(task: StageTask, model: nn.Module) -> pd.DataFrame:
    cfg = EvalSettings.from_config(task.job.eval)
    task.read_songs()
    items = items_of(task.songs, cfg.splits, task.target_frames, cfg.max_items)
    if len(items) < 2:
        raise StemlabError(f"model {task.job.model}: fewer than 2 held-out crops of {task.settings.clip_seconds} s in the {', '.join(cfg.splits)} split; lower clip_seconds or eval.max_items")
    codec = load_codec(task.upstream_file(task.settings.codec))
    sr = int(codec.sample_rate)
    rate = float(task.codec_meta["frame_rate"])
    clip_s = task.target_frames / rate
    length = int(round(clip_s * sr))
    target = task.settings.target

    audio: dict[str, np.ndarray] = {}
    columns: dict[str, dict[str, Any]] = {}
    for scale in cfg.cfg_scales:
        for base, mode in (("stage", "mix"), ("stage_metronome", "metronome")):
            name = system_name(base, scale, cfg.cfg_scale)
            audio[name] = decode(codec, generate(task, model, items, mode, scale, cfg))
            columns[name] = {"target": target, "cfg": scale, "condition": mode}
    real_codes, _ = conditions(task, items, "mix")
    real = decode(codec, np.minimum(real_codes, task.codec_meta["cardinality"] - 1))
    audio["ground_truth"] = real
    songs = [it.song.key for it in items]
    g = rng(cfg.seed, "stage-baselines", task.job.seed)
    picks = [other_index(len(items), i, songs, g) for i in range(len(items))]
    audio["random_stem"] = real[picks]
    loops = []
    reference_beats = {}
    for i, it in enumerate(items):
        start_s = it.start / rate
        ref = crop_beats(it.song.beats, start_s, clip_s)
        reference_beats[it.key] = ref
        j = other_index(len(items), i, songs, g)
        other = items[j]
        other_beats = crop_beats(other.song.beats, other.start / rate, clip_s)
        loops.append(tempo_loop(real[j], sr, other.song.tempo_bpm, other_beats, it.song.tempo_bpm, float(ref[0]) if len(ref) else None, real.shape[1]))
    audio["tempo_loop"] = np.stack(loops).astype(np.float32)
    audio["noise"] = np.stack([noise_like(r, g) for r in real])
    for name in BASELINES:
        columns[name] = {"target": target, "cfg": np.nan, "condition": name}
    audio = {k: v[:, :length] if v.shape[1] >= length else np.pad(v, ((0, 0), (0, length - v.shape[1]))) for k, v in audio.items()}

    rows = beat_rows(audio, items, sr, cfg, {"reference_beats": reference_beats, "columns": columns})

    encoder = load_clap(task, cfg)
    ref_items = items_of(task.songs, ("train",), task.target_frames, cfg.reference_items)
    if len(ref_items) < 2:
        raise StemlabError(f"model {task.job.model}: fewer than 2 training crops for the CLAP reference set; lower clip_seconds")
    ref_codes, _ = conditions(task, ref_items, "mix")
    reference = clap_embeddings(encoder, decode(codec, np.minimum(ref_codes, task.codec_meta["cardinality"] - 1)), sr)
    embeddings = {name: clap_embeddings(encoder, clips, sr) for name, clips in progress(audio.items(), desc="stage clap", total=len(audio))}
    rows += distance_rows(embeddings, reference, items, columns)

    main, metro = system_name("stage", cfg.cfg_scale, cfg.cfg_scale), system_name("stage_metronome", cfg.cfg_scale, cfg.cfg_scale)
    for i, it in enumerate(items[: cfg.spectrogram_items]):
        panels = {"context": context_audio(task, codec, it), main: audio[main][i], metro: audio[metro][i], "ground_truth": audio["ground_truth"][i]}
        for system, clip in panels.items():
            image = mel_image(clip, sr, cfg.spectrogram_bands)
            rows.append({"system": system, "metric": "spectrogram", "value": float("nan"), "item": it.key, "song": it.song.key,
                         "target": target, "cfg": cfg.cfg_scale, "condition": system, "spectrogram": image.reshape(-1).tolist(),
                         "spectrogram_bands": image.shape[0], "spectrogram_seconds": len(clip) / sr})  # fmt: skip
    return pd.DataFrame(rows)
