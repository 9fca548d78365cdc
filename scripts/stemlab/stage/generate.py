"""Generating a stem with a trained stage model: for a user's folder of context stems (`generate_from_folder`,
the CLI's `generate`) and for the held-out songs of the workflow (`heldout_examples`, rule generate_stage)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stemlab.atomic import atomic_dir, write_text
from stemlab.audio import read_audio, resample, write_audio
from stemlab.errors import StemlabError
from stemlab.logs import log
from stemlab.seeding import derive_seed
from stemlab.stage import lm

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3", ".w64", ".rf64")


def context_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise StemlabError(f"{folder}: not a folder; pass the folder that holds the context stems")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise StemlabError(f"{folder}: no audio files ({', '.join(s[1:] for s in AUDIO_SUFFIXES)}); put the context stems there")
    return files


def read_context(files: list[Path], sample_rate: int) -> np.ndarray:
    """(S, T) mono stems at `sample_rate`, zero-padded to the longest."""
    stems = []
    for path in files:
        audio, sr = read_audio(path)
        stems.append(resample(audio.mean(axis=1, keepdims=True), sr, sample_rate)[:, 0])
    length = max(len(s) for s in stems)
    return np.stack([np.pad(s, (0, length - len(s))) for s in stems]).astype(np.float32)


def default_model(target: str, seed: int = 1) -> Path:
    for candidate in (Path(f"results/models/stage/target~{target}/seed-{seed}/final.pt"), Path(f"results/models/stage/seed-{seed}/final.pt")):
        if candidate.is_file():
            return candidate
    raise StemlabError(f"no trained stage model for target {target} under results/models/stage/; run `snakemake train` or pass --model")


def load_model(model_path: Path, codec_path: Path | None, pretrained: Path | None) -> tuple[Any, nn.Module, Any]:
    """(task, model, codec) of a stage final.pt; the codec is the one it was trained on (--codec overrides)."""
    from stemlab.stage.codec import load_codec
    from stemlab.train.task import load_trained, read_final

    payload = read_final(model_path, "stage")
    export = payload.get("export") or {}
    codec_file = codec_path or Path(str(export.get("codec_file") or ""))
    if not codec_file.is_file():
        raise StemlabError(f"{codec_file}: the model's codec final.pt is not there; pass --codec results/models/codec/seed-<s>/final.pt")
    settings = payload.get("settings") or {}
    snapshot = (settings.get("text_encoder") or {}).get("pretrained") or "t5_base"
    inputs = {"upstream": {str(settings.get("codec", "codec")): str(codec_file)},
              "pretrained": {snapshot: str(pretrained or Path("resources/pretrained") / snapshot)}}  # fmt: skip
    task, model, _ = load_trained(model_path, "cpu", inputs)
    return task, model, load_codec(codec_file)


@torch.no_grad()
def generate_codes(task: Any, model: nn.Module, context: np.ndarray, frames: int, prompt: str, cfg: float, top_k: int,
                   seed: int) -> np.ndarray:  # fmt: skip
    """(K, frames) target codes for a context of (S, K, Fc) codes."""
    states, mask = model.text([prompt])
    g = torch.Generator().manual_seed(derive_seed(seed, "stage-cli"))
    codes = lm.sample(model.lm, torch.from_numpy(context[None]), frames, states, mask, cfg_scale=cfg, top_k=top_k, generator=g)
    return codes[0].numpy()


def generate_from_folder(folder: Path, out: Path, *, target: str, seconds: float, cfg: float, model_path: Path | None,
                         codec_path: Path | None = None, pretrained: Path | None = None, seed: int = 0,
                         prompt: str = "", top_k: int = 250) -> Path:  # fmt: skip
    """Write a `seconds`-long generated `target` stem (mono, the codec's rate) for the context stems in `folder`."""
    if seconds <= 0:
        raise StemlabError(f"--seconds {seconds}: give a positive length")
    files = context_files(folder)
    task, model, codec = load_model(model_path or default_model(target), codec_path, pretrained)
    if task.settings.target != target:
        raise StemlabError(f"{model_path}: the model generates {task.settings.target}, not {target}; pass --target {task.settings.target} or its model")
    sr = int(codec.sample_rate)
    stems = read_context(files, sr)
    limit = task.context_frames[1] * int(round(sr / task.codec_meta["frame_rate"]))
    stems = stems[: task.max_streams, :limit]
    with torch.no_grad():
        codes = np.stack([codec.encode(torch.from_numpy(s)[None, None])[0].numpy() for s in stems])
    context = np.full((task.max_streams, *codes.shape[1:]), lm.ABSENT, dtype=np.int64)
    context[: len(codes)] = codes
    frames = int(np.ceil(seconds * task.codec_meta["frame_rate"]))
    log.info("stage: %d context stems (%d frames) -> %d frames of %s", len(files), codes.shape[-1], frames, target)
    generated = generate_codes(task, model, context, frames, prompt, cfg, top_k, seed)
    with torch.no_grad():
        audio = codec.decode(torch.from_numpy(generated)[None])[0, 0].numpy()
    n = int(round(seconds * sr))
    audio = np.pad(audio, (0, max(0, n - len(audio))))[:n]
    write_audio(out, audio[:, None].astype(np.float32), sr)
    return out


def heldout_examples(job: Any, model_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> None:
    """Rule generate_stage: for the first crop of up to `eval.examples` held-out songs, the generated stem
    (`<song>.flac`, mix context, eval.cfg_scale), the metronome-conditioned one (`<song>.metronome.flac`) and
    the context it heard (`<song>.context.flac`), with index.csv; the same draws as the evaluation's."""
    from stemlab.device import torch_threads
    from stemlab.stage import evaluate as ev
    from stemlab.train.registry import task_class

    task = task_class(job.model, job.task)(job)
    cfg = ev.EvalSettings.from_config(job.eval)
    examples = int(job.eval.get("examples", 8))
    with torch_threads(job.cpu_threads):
        model, _ = task.load(Path(model_dir) / "final.pt", "cpu")
        task.read_songs()
        firsts = [it for it in ev.items_of(task.songs, cfg.splits, task.target_frames, None) if it.start == 0][:examples]
        codec = ev.load_codec(task.upstream_file(task.settings.codec))
        sr = int(codec.sample_rate)
        audio = {mode: ev.decode(codec, ev.generate(task, model, firsts, mode, cfg.cfg_scale, cfg, tag="examples")) for mode in ("mix", "metronome")}
        with atomic_dir(out_dir) as tmp:
            lines = io.StringIO()
            writer = csv.writer(lines, lineterminator="\n")
            writer.writerow(["corpus_song", "file", "metronome_file", "context_file", "seconds", "cfg"])
            names = [it.song.song for it in firsts]
            for i, it in enumerate(firsts):
                name = it.song.song if names.count(it.song.song) == 1 else it.song.key.replace("/", "_")
                write_audio(tmp / f"{name}.flac", audio["mix"][i][:, None], sr)
                write_audio(tmp / f"{name}.metronome.flac", audio["metronome"][i][:, None], sr)
                write_audio(tmp / f"{name}.context.flac", ev.context_audio(task, codec, it)[:, None], sr)
                writer.writerow([it.song.key, f"{name}.flac", f"{name}.metronome.flac", f"{name}.context.flac",
                                 f"{audio['mix'].shape[1] / sr:.3f}", cfg.cfg_scale])  # fmt: skip
            write_text(tmp / "index.csv", lines.getvalue())
