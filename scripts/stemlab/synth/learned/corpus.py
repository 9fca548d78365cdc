"""Chord and melody sequences of a generated corpus, read back from its song folders.

Chords: the progression of the first occurrence of each section type (`arrangement[].progression` of
song.json). Melody: the notes of the melody stem's MIDI file in the first occurrence of each section type
where it plays, each snapped to the nearest pitch of the song's scale (ties low), as steps between
successive scale indices (clipped to +-MAX_STEP) - the moves of the engine's scale walk.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stemlab.errors import StemlabError
from stemlab.synth.learned.vocab import MAX_STEP, step_token
from stemlab.synth.theory import scale_pitches


@dataclass(frozen=True)
class Sequence:
    kind: str  # "chords" | "melody"
    song: str
    split: str
    genre: str
    mode: str
    tonic: int
    section: str
    tokens: tuple[str, ...]  # content tokens (chords, or melody steps)
    start_index: int = 0  # melody: scale index (full MIDI range) of the first note


def scale_index(pitch: int, scale: list[int]) -> int:
    """Index of the scale pitch nearest `pitch` (the lower on a tie)."""
    return min(range(len(scale)), key=lambda i: (abs(scale[i] - pitch), scale[i]))


def melody_steps(pitches: Iterable[int], tonic: int, mode: str) -> tuple[int, list[int]]:
    """(first scale index, steps) of a pitch line, in the scale over the whole MIDI range."""
    scale = scale_pitches(tonic, mode, 0, 127)
    idx = [scale_index(p, scale) for p in pitches]
    steps = [max(-MAX_STEP, min(MAX_STEP, b - a)) for a, b in zip(idx, idx[1:])]
    return (idx[0] if idx else 0), steps


def song_sequences(song_dir: str | os.PathLike[str]) -> list[Sequence]:
    """The chord and melody sequences of one synthetic song folder (none for a song without chords)."""
    song_dir = Path(song_dir)
    path = song_dir / "song.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StemlabError(f"{path}: cannot read ({exc}); regenerate the song") from exc
    if not meta.get("arrangement") or not meta.get("mode"):
        return []
    common = dict(song=str(meta["id"]), split=str(meta.get("split", "train")), genre=str(meta["genre"]),
                  mode=str(meta["mode"]), tonic=int(meta["tonic_pc"]))  # fmt: skip
    out: list[Sequence] = []
    seen: set[str] = set()
    for sec in meta["arrangement"]:
        if sec["section"] not in seen:
            seen.add(sec["section"])
            out.append(Sequence("chords", section=sec["section"], tokens=tuple(sec["progression"]), **common))
    melody = [s for s in meta.get("stems", []) if s.get("role") == "melody" and (s.get("files") or {}).get("midi")]
    if melody:
        from stemlab.synth.midinotes import read_notes

        midi = (song_dir / melody[0]["files"]["midi"]).resolve()
        if song_dir.resolve() not in midi.parents:
            raise StemlabError(f"{path}: the melody MIDI path leaves the song folder; regenerate the song")
        notes = read_notes(midi)
        seen = set()
        for sec in meta["arrangement"]:
            if sec["section"] in seen:
                continue
            pitches = [n.pitch for n in notes if sec["start_s"] <= n.start < sec["end_s"]]
            if len(pitches) < 2:
                continue
            seen.add(sec["section"])
            start, steps = melody_steps(pitches, common["tonic"], common["mode"])
            out.append(Sequence("melody", section=sec["section"], tokens=tuple(step_token(s) for s in steps),
                                start_index=start, **common))  # fmt: skip
    return out


def song_dirs(shards: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Song folders (those with a song.json) of canonical stem shard folders, in sorted order."""
    out = []
    for shard in shards:
        shard = Path(shard)
        if not shard.is_dir():
            raise StemlabError(f"{shard}: stem shard folder not found; run the data stage (snakemake data) first")
        out += sorted(p for p in shard.iterdir() if (p / "song.json").is_file())
    return out


def corpus_sequences(shards: Iterable[str | os.PathLike[str]]) -> list[Sequence]:
    return [s for d in song_dirs(shards) for s in song_sequences(d)]


def digest(seqs: Iterable[Sequence]) -> str:
    """sha256 of the sequences (what the weights are trained on)."""
    h = hashlib.sha256()
    for s in seqs:
        h.update(json.dumps([s.kind, s.song, s.split, s.genre, s.mode, s.section, list(s.tokens)]).encode())
    return h.hexdigest()
