"""Audio examples of the relations model: for a few test pairs of each grid cell, the guide window, the
target stem's true window, the memory (the target stem over its whole song) recombined along the guide by
the model (constrained decoding), and the guide mixed with it.

    python -m stemlab.relations examples --models M1 ... --codebooks C1 ... --stems-root results/data/stems \
        --pairs 3 --out DIR

Each M is a trained relations model folder (results/models/relations/<cell>/seed-<s>), each C the final.pt of
its cell's codebook. Output: DIR/<cell>/<song>_<start>_<guide>-<target>/
{guide,target,generated,mix}.flac and DIR/examples.csv.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from stemlab.atomic import atomic_dir, atomic_path
from stemlab.audio import SAMPLE_RATE, write_audio
from stemlab.data.segment_tables import song_dir, song_json, stem_entry, stem_files
from stemlab.errors import StemlabError
from stemlab.relations import data as reldata
from stemlab.relations.generate import load_generator
from stemlab.seeding import rng
from stemlab.train.task import read_final


def whole_stem(stems_root: str | os.PathLike[str], corpus: str, shard: str, song: str, stem: str) -> np.ndarray:
    """(channels, frames) of the stem's wet file times its average_scale."""
    directory = song_dir(stems_root, corpus, shard, song)
    entry = stem_entry(song_json(str(directory / "song.json")), stem, directory)
    _, wet = stem_files(directory, entry)
    audio, rate = sf.read(wet, dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise StemlabError(f"{wet}: sample rate {rate} Hz, expected {SAMPLE_RATE}; re-run the data stage")
    return audio.T * np.float32(entry.get("average_scale", 1.0))


def cell_examples(model_dir: Path, codebook: Path, stems_root: Path, n_pairs: int, out: Path,
                  encoder: str | None = None) -> list[dict]:  # fmt: skip
    gen = load_generator(model_dir, encoder)
    rows = pd.DataFrame(read_final(codebook)["export"]["rows"])
    test = reldata.pairs(rows, "test")
    if not len(test):
        raise StemlabError(f"{codebook}: no test pairs to make examples of")
    picks = test[np.sort(rng(0, "relations-examples").choice(len(test), min(n_pairs, len(test)), replace=False))]
    made = []
    for g, t in picks:
        gr, tr = rows.iloc[g], rows.iloc[t]
        name = f"{tr.song}_{int(tr.start)}_{gr.stem}-{tr.stem}"
        guide = reldata.track_audio(stems_root, gr.corpus, gr.shard, gr.song, gr.stem, gr.start, gr.length)
        target = reldata.track_audio(stems_root, tr.corpus, tr.shard, tr.song, tr.stem, tr.start, tr.length)
        memory = whole_stem(stems_root, tr.corpus, tr.shard, tr.song, tr.stem)
        generated = gen.realise(guide, memory.mean(axis=0), memory, SAMPLE_RATE, seed=0, constrained=True)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        stereo_guide = np.stack([guide, guide])
        for part, audio in (("guide", stereo_guide), ("target", np.stack([target, target])), ("generated", generated),
                            ("mix", stereo_guide + generated)):  # fmt: skip
            write_audio(folder / f"{part}.flac", np.clip(audio.T, -1.0, 1.0), SAMPLE_RATE)
        made.append({"example": name, "song": tr.song, "start": int(tr.start), "guide": gr.stem, "target": tr.stem})
    return made


def write_examples(models: Sequence[str | os.PathLike[str]], codebooks: Sequence[str | os.PathLike[str]],
                   stems_root: str | os.PathLike[str], n_pairs: int, out: str | os.PathLike[str],
                   encoder: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Examples of every (model folder, its codebook's final.pt) into `out` (replaced as a whole)."""
    if len(models) != len(codebooks):
        raise StemlabError(f"{len(models)} models but {len(codebooks)} codebooks; give one codebook per model")
    records = []
    with atomic_dir(out) as tmp:
        for model_dir, codebook in zip(models, codebooks):
            settings = read_final(Path(model_dir) / "final.pt", "relations")["settings"]
            cell = f"k~{settings['k']}/segment_s~{float(settings['segment_s']):g}"
            for record in cell_examples(Path(model_dir), Path(codebook), Path(stems_root), n_pairs, tmp / cell, encoder):
                records.append({"cell": cell, **record})
        with atomic_path(tmp / "examples.csv") as csv:
            pd.DataFrame(records).to_csv(csv, index=False)
    return pd.DataFrame(records)
