"""Distort-and-fix examples of segment-table stem windows, with their frozen embeddings.

A stem window (a segment-table row) gives its loudest crop of `segment_samples` (of four evenly spaced
ones) as the clean stem. Example j of the row draws its distortion from rng(seed, "distort", row key, j)
and its prompt from rng(seed, "prompt", row key, j): a function of (seed, row, j) alone. Its inputs:
each audio encoder's embedding of the distorted crop (the upstream encoder's `embed`, batched), the song
context from the first encoder's embedding cache (the song's mix over the window, the mean of its other
stems' wet windows there) and the prompt's text embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from stemlab.audio import SAMPLE_RATE
from stemlab.data.segment_tables import read_window, song_dir, song_json, stem_entry, stem_files
from stemlab.logs import progress
from stemlab.mixer.distort import DistortSettings, Distortion, distort
from stemlab.mixer.prompts import INTENTS, REPAIR_TEMPLATES, Intent, draw_prompt, intent_prompt, repair_prompt, with_intent
from stemlab.mixer.tools import Call
from stemlab.seeding import rng

CROPS = 4


@dataclass
class Example:
    key: tuple[str, str, str, str, int]  # corpus, shard, song, stem, start
    category: str
    genre: str
    clean: np.ndarray | None  # (2, samples); dropped after embedding when not needed
    distorted: np.ndarray | None
    distortion: Distortion
    prompt: str
    intent: Intent | None
    target: list[Call]
    repair_prompt: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def loudest_start(audio: np.ndarray, samples: int) -> int:
    """Start of the loudest of CROPS evenly spaced crops of `samples` (0 when the audio is shorter)."""
    if audio.shape[-1] <= samples:
        return 0
    starts = np.linspace(0, audio.shape[-1] - samples, CROPS).round().astype(int)
    energy = [float(np.mean(np.square(audio[:, s : s + samples], dtype=np.float64))) for s in starts]
    return int(starts[int(np.argmax(energy))])


def crop(audio: np.ndarray, start: int, samples: int) -> np.ndarray:
    """(channels, samples) from `start`, zero-padded past the end."""
    out = np.zeros((audio.shape[0], samples), np.float32)
    part = audio[:, start : start + samples]
    out[:, : part.shape[-1]] = part
    return out


def loudest_crop(audio: np.ndarray, samples: int) -> np.ndarray:
    return crop(audio, loudest_start(audio, samples), samples)


def rms_db(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(audio, dtype=np.float64)) + 1e-12))


def stem_info(stems_root: Path, row: Any) -> tuple[Path, str, str]:
    """(wet file, category, genre) of a segment-table row."""
    directory = song_dir(stems_root, row.corpus, row.shard, row.song)
    song = song_json(str(directory / "song.json"))
    entry = stem_entry(song, str(row.stem), directory)
    _, wet = stem_files(directory, entry)
    return wet, str(entry.get("category") or row.stem), str(song.get("genre") or "")


def make_examples(
    rows: pd.DataFrame, stems_root: Path, segment_samples: int, per_row: int, seed: int, distortions: DistortSettings,
    intent_fraction: float, min_rms_db: float, *, both_prompts: bool = False, desc: str = "mixer examples",
) -> list[Example]:  # fmt: skip
    """The examples of `rows` (windows quieter than min_rms_db skipped); both_prompts: every example gets
    an intent prompt and keeps the repair prompt of the same template (evaluation)."""
    out = []
    for row in progress(list(rows.itertuples(index=False)), desc=desc):
        wet, category, genre = stem_info(stems_root, row)
        clean = loudest_crop(read_window(wet, int(row.start), int(row.length)), segment_samples)
        if rms_db(clean) < min_rms_db:
            continue
        key = (str(row.corpus), str(row.shard), str(row.song), str(row.stem), int(row.start))
        for j in range(per_row):
            distorted, d = distort(clean, SAMPLE_RATE, distortions, rng(seed, "distort", *key, j))
            prompt_rng = rng(seed, "prompt", *key, j)
            if both_prompts:
                template = int(prompt_rng.integers(len(REPAIR_TEMPLATES)))
                intent = INTENTS[int(prompt_rng.integers(len(INTENTS)))]
                prompt = intent_prompt(template, category, genre, intent, int(prompt_rng.integers(len(intent.phrases))))
                repair = repair_prompt(template, category, genre)
            else:
                prompt, intent = draw_prompt(prompt_rng, category, genre, intent_fraction)
                repair = prompt if intent is None else ""
            out.append(Example(key, category, genre, clean, distorted, d, prompt, intent, with_intent(d.fix, intent), repair))
    return out


def embed_audio(encoders: Sequence[tuple[Any, torch.nn.Module]], clips: Sequence[np.ndarray], batch_size: int, device: torch.device | str) -> list[np.ndarray]:
    """(N, dim) per encoder of (2, samples) clips, through each upstream task's `embed`."""
    out = []
    for task, net in encoders:
        rows = []
        with torch.inference_mode():
            for i in progress(range(0, len(clips), batch_size), desc=f"embed {task.job.model}", total=-(-len(clips) // batch_size)):
                x = torch.from_numpy(np.stack(clips[i : i + batch_size])).to(device)
                rows.append(task.embed(net, x).float().cpu().numpy())
        out.append(np.concatenate(rows) if rows else np.zeros((0, int(task.embedding_dim())), np.float32))
    return out


def context_embeddings(cache: Any, examples: Sequence[Example], table: pd.DataFrame, window: str) -> np.ndarray:
    """(N, 2 dim): the cached embedding of the song's mix over the window and the mean of the other stems'."""
    by_span = {k: list(g["stem"]) for k, g in table.groupby(["song", "start"])}
    out = np.zeros((len(examples), 2 * cache.dim), np.float32)
    for i, ex in enumerate(examples):
        _, _, song, stem, start = ex.key
        out[i, : cache.dim] = cache.lookup(song, "mix", "mix", window, start)
        others = [s for s in by_span.get((song, start), []) if s != stem]
        if others:
            out[i, cache.dim :] = np.mean([cache.lookup(song, s, "wet", window, start) for s in others], axis=0)
    return out


def text_embeddings(encode: Callable[[Sequence[str]], np.ndarray], prompts: Sequence[str]) -> np.ndarray:
    """(N, dim) of the prompts, each distinct prompt encoded once."""
    unique = sorted(set(prompts))
    table = dict(zip(unique, encode(unique)))
    return np.stack([table[p] for p in prompts]).astype(np.float32)


def category_ids(categories: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(vocabulary)}
    return np.array([index.get(c, len(vocabulary)) for c in categories], dtype=np.int64)


def most_frequent_chain(chains: Sequence[Sequence[Call]]) -> list[Call]:
    """The most frequent set of tools among `chains` (ties: the first in sorted order), each call with the
    median of every argument over the chains that have that set."""
    sets: dict[tuple[str, ...], list[Sequence[Call]]] = {}
    for chain in chains:
        sets.setdefault(tuple(c.tool for c in chain), []).append(chain)
    if not sets:
        return []
    tools, members = max(sorted(sets.items()), key=lambda kv: len(kv[1]))
    return [Call.make(tool, **{name: float(np.median([m[k].as_dict()[name] for m in members])) for name in members[0][k].as_dict()})
            for k, tool in enumerate(tools)]  # fmt: skip
