"""Sample layers from a user's library (synth.samples): a folder of one-shots and loops, tagged by file name
or by a CSV table.

- drums from one-shots, instead of FluidSynth: the drum part's notes trigger the library's kick, snare,
  hat, clap, tom and cymbal samples (one sample per class per song) on the drum grid; notes of classes the
  library lacks are dropped from the part, so MIDI, annotations and audio stay one;
- a loop alongside the FluidSynth parts: a stem of its own (a category the song does not use yet), the
  loop resampled so that its beats last exactly the song's beats and triggered at every loop start.

A sample part stays a score part (its notes are the triggers), so the dry/wet/annotation contract, the
quality gate and the mix treat it as any other stem; song.json records each sample with its sha256.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stemlab.download.fetch import sha256_file
from stemlab.errors import StemlabError, check_section_keys
from stemlab.synth import instruments as gm
from stemlab.synth.score import Note, Part, Score
from stemlab.taxonomy import STEMS

SAMPLE_SOUNDFONT = "samples"  # Part.soundfont of a part rendered from the sample library
AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".ogg")
ONE_SHOT_WORDS = {
    "kick": "kick", "bd": "kick", "bassdrum": "kick", "snare": "snare", "sd": "snare", "rim": "snare",
    "hat": "hat", "hihat": "hat", "hh": "hat", "clap": "clap", "tom": "tom", "crash": "cymbal", "ride": "cymbal",
    "cymbal": "cymbal",
}  # fmt: skip
LOOP_WORDS = {
    "drum": "drums", "drums": "drums", "beat": "drums", "break": "drums", "perc": "percussion", "shaker": "percussion",
    "conga": "percussion", "bongo": "percussion", "bass": "bass", "guitar": "guitar", "gtr": "guitar", "piano": "piano",
    "keys": "piano", "synth": "other_keys", "pad": "other_keys", "organ": "other_keys", "strings": "bowed_strings",
    "violin": "bowed_strings", "cello": "bowed_strings", "brass": "wind", "sax": "wind", "horn": "wind", "flute": "wind",
}  # fmt: skip
# the GM drum keys each one-shot class plays
CLASS_KEYS = {
    "kick": (35, 36), "snare": (37, 38, 40), "hat": (42, 44, 46), "clap": (39,), "tom": (41, 43, 45, 47, 48, 50),
    "cymbal": (49, 51, 52, 53, 55, 57, 59),
}  # fmt: skip
KEY_CLASS = {k: c for c, keys in CLASS_KEYS.items() for k in keys}
PEAK = 0.3  # each sample's peak in the dry stem (before velocity), so that overlapping hits never clip
_BPM = re.compile(r"(?<![0-9])([4-9][0-9]|1[0-9]{2}|2[0-4][0-9])[ _-]?bpm", re.IGNORECASE)


@dataclass(frozen=True)
class Sample:
    path: str  # relative to the library folder (POSIX)
    kind: str  # one_shot | loop
    tag: str  # one-shot class (kick, snare, ...) or loop stem category
    bpm: float | None = None
    beats: int | None = None


@dataclass(frozen=True)
class SampleSettings:
    path: str | None = None
    table: str | None = None
    drums: float = 0.0  # probability that a song's drums are played from the one-shots
    loops: float = 0.0  # probability that a song gets a loop stem

    @classmethod
    def from_config(cls, section: Mapping | None) -> SampleSettings:
        s = check_section_keys(section, ("path", "table", "drums", "loops"), "synth.samples")
        d = cls()
        try:
            out = cls(s.get("path", d.path), s.get("table", d.table), float(s.get("drums", d.drums)), float(s.get("loops", d.loops)))
        except (TypeError, ValueError) as exc:
            raise StemlabError(f"synth.samples: {exc}; give probabilities in [0, 1]") from exc
        if not (0 <= out.drums <= 1 and 0 <= out.loops <= 1):
            raise StemlabError("synth.samples.drums and .loops are probabilities in [0, 1]")
        return out

    @property
    def active(self) -> bool:
        return bool(self.path) and (self.drums > 0 or self.loops > 0)


def tag_from_name(rel: str, duration_s: float) -> Sample | None:
    """A sample's tags from its file name: a bpm (`120bpm`) or the word `loop` makes a loop (its stem
    category from words such as drum, perc, bass, guitar, pad), else a one-shot class word (kick, snare,
    hat, clap, tom, crash, ride); None when nothing matches."""
    words = [w for w in re.split(r"[^a-z0-9]+", Path(rel).stem.lower()) if w]
    bpm = _BPM.search(Path(rel).stem)
    if bpm or "loop" in words:
        category = next((LOOP_WORDS[w] for w in words if w in LOOP_WORDS), "other")
        tempo = float(bpm.group(1)) if bpm else None
        beats = max(1, int(round(duration_s * tempo / 60))) if tempo else None
        return Sample(rel, "loop", category, tempo, beats)
    cls = next((ONE_SHOT_WORDS[w] for w in words if w in ONE_SHOT_WORDS), None)
    return Sample(rel, "one_shot", cls) if cls else None


def _duration(path: Path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate


def scan_library(settings: SampleSettings) -> tuple[Sample, ...]:
    """The tagged samples of the library, sorted by path; a table (file, kind, tag, bpm, beats) replaces
    the file-name tags and lists the only files used. Loops without a tempo are left out."""
    root = Path(settings.path or "")
    if not root.is_dir():
        raise StemlabError(f"{root}: synth.samples.path is not a folder; point it at a folder of one-shots and loops")
    out = []
    if settings.table:
        table = Path(settings.table)
        try:
            rows = list(csv.DictReader(table.open(newline="", encoding="utf-8")))
        except OSError as exc:
            raise StemlabError(f"{table}: cannot read synth.samples.table ({exc.strerror})") from exc
        for i, row in enumerate(rows):
            kind, tag = (row.get("kind") or "").strip(), (row.get("tag") or "").strip()
            ok = (kind == "one_shot" and tag in CLASS_KEYS) or (kind == "loop" and tag in STEMS)
            if not ok or not row.get("file"):
                raise StemlabError(
                    f"{table}: row {i + 2}: need file, kind one_shot (tag {'|'.join(CLASS_KEYS)}) or loop (tag a stem "
                    f"category), got {dict(row)}; fix the table"
                )
            path = _inside(root, row["file"].strip(), table)
            bpm = float(row["bpm"]) if (row.get("bpm") or "").strip() else None
            if kind == "loop" and not bpm:
                raise StemlabError(f"{table}: row {i + 2}: loop {row['file']} needs its bpm")
            beats = int(row["beats"]) if (row.get("beats") or "").strip() else None
            if kind == "loop" and beats is None:
                beats = max(1, int(round(_duration(path) * bpm / 60)))
            out.append(Sample(row["file"].strip(), kind, tag, bpm, beats))
    else:
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file():
                sample = tag_from_name(p.relative_to(root).as_posix(), _duration(p))
                if sample is not None and (sample.kind == "one_shot" or sample.bpm):
                    out.append(sample)
    return tuple(sorted(out, key=lambda s: s.path))


def _inside(root: Path, rel: str, where: Path) -> Path:
    path = (root / rel).resolve()
    if root.resolve() not in path.parents:
        raise StemlabError(f"{where}: {rel} leaves synth.samples.path; list files inside the library folder")
    if not path.is_file():
        raise StemlabError(f"{where}: {rel} is not a file in {root}; fix the table")
    return path


@dataclass
class SampleLayers:
    """The library of one worker: tags (scanned once) and audio (read once per file)."""

    settings: SampleSettings
    sample_rate: int = 44_100
    samples: tuple[Sample, ...] = ()
    _audio: dict[str, np.ndarray] = field(default_factory=dict)
    _digest: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.settings
        if (s.drums > 0 or s.loops > 0) and not s.path:
            raise StemlabError("synth.samples.drums or .loops > 0 needs synth.samples.path (a folder of one-shots and loops)")
        if s.active:
            self.samples = scan_library(s)

    def audio(self, rel: str) -> np.ndarray:
        """(frames, 2) float32 at the engine's rate, peak PEAK."""
        if rel not in self._audio:
            import soundfile as sf
            import soxr

            data, sr = sf.read(str(Path(self.settings.path) / rel), dtype="float32", always_2d=True)
            data = data[:, :2] if data.shape[1] >= 2 else np.repeat(data, 2, axis=1)
            if sr != self.sample_rate:
                data = soxr.resample(data, sr, self.sample_rate).astype(np.float32)
            peak = float(np.abs(data).max()) if data.size else 0.0
            if peak <= 0:
                raise StemlabError(f"{Path(self.settings.path) / rel}: a silent sample; remove it from the library")
            self._audio[rel] = np.ascontiguousarray(data * np.float32(PEAK / peak))
        return self._audio[rel]

    def digest(self, rel: str) -> str:
        if rel not in self._digest:
            self._digest[rel] = sha256_file(Path(self.settings.path) / rel)
        return self._digest[rel]

    # ------------------------------------------------------------------ planning (symbolic)
    def plan(self, score: Score, rng: Callable[..., np.random.Generator]) -> dict[str, dict]:
        """Turn parts of `score` into sample parts (in place); what each renders from, by stem name."""
        plans: dict[str, dict] = {}
        if not self.settings.active:
            return plans
        drums = next((p for p in score.parts if p.role == "drums"), None)
        shots: dict[str, list[Sample]] = {}
        for s in self.samples:
            if s.kind == "one_shot":
                shots.setdefault(s.tag, []).append(s)
        r = rng("samples", "drums")
        if drums is not None and {"kick", "snare"} <= set(shots) and r.random() < self.settings.drums:
            chosen = {c: shots[c][int(r.integers(len(shots[c])))].path for c in sorted(shots)}
            drums.notes = [n for n in drums.notes if KEY_CLASS.get(n.pitch) in chosen]
            drums.soundfont = SAMPLE_SOUNDFONT
            plans[drums.name] = {"kind": "one_shots", "classes": chosen}
        r = rng("samples", "loop")
        used = {p.name for p in score.parts}
        loops = [s for s in self.samples if s.kind == "loop" and s.tag not in used]
        if loops and r.random() < self.settings.loops:
            loop = loops[int(r.integers(len(loops)))]
            part = loop_part(score, loop)
            score.parts.append(part)
            score.parts.sort(key=lambda p: STEMS.index(p.name))
            plans[part.name] = {"kind": "loop", "file": loop.path, "bpm": loop.bpm, "beats": loop.beats}
        return plans

    # ------------------------------------------------------------------ rendering (audio)
    def render(self, score: Score, part: Part, plan: dict, n_frames: int) -> np.ndarray:
        """The dry stereo audio of a sample part, (n_frames, 2) float32."""
        out = np.zeros((n_frames, 2), dtype=np.float32)
        for note in part.notes:
            if plan["kind"] == "one_shots":
                audio = self.audio(plan["classes"][KEY_CLASS[note.pitch]])
                gain = np.float32((note.velocity / 127.0) ** 1.5)
            else:
                start, end = score.tempo.frame(note.start, self.sample_rate), score.tempo.frame(note.end, self.sample_rate)
                audio, gain = stretch(self.audio(plan["file"]), end - start), np.float32(note.velocity / 127.0)
            at = score.tempo.frame(note.start, self.sample_rate)
            take = min(len(audio), n_frames - at)
            if take > 0:
                out[at : at + take] += audio[:take] * gain
        return out

    def record(self, plan: dict) -> dict:
        """What song.json records of a sample part."""
        if plan["kind"] == "one_shots":
            files = {c: {"file": f, "sha256": self.digest(f)} for c, f in plan["classes"].items()}
            return {"kind": "one_shots", "classes": files}
        return {**plan, "sha256": self.digest(plan["file"])}


def loop_part(score: Score, loop: Sample) -> Part:
    """A stem for `loop`: one trigger note (pitch 60) per loop length from the first bar to the end."""
    assert loop.beats is not None
    length = loop.beats * score.meter.beat_ticks
    inst = gm.Instrument(0, f"sample loop {Path(loop.path).name}", loop.tag, 0, 127)
    role = "percussion" if loop.tag in ("drums", "percussion") else "harmony"
    part = Part(loop.tag, role, inst, "loop", SAMPLE_SOUNDFONT, True, [s.index for s in score.sections])
    part.notes = [Note(t, min(t + length, score.end_tick), 60, 100) for t in range(0, score.end_tick, length)]
    return part


def stretch(audio: np.ndarray, frames: int) -> np.ndarray:
    """`audio` resampled to exactly `frames` frames (the loop's tempo becomes the song's; its pitch moves
    with it, as a varispeed does)."""
    import soxr

    if frames <= 0:
        return audio[:0]
    if len(audio) == frames:
        return audio
    out = soxr.resample(audio, len(audio), frames).astype(np.float32)
    if len(out) < frames:
        out = np.concatenate([out, np.zeros((frames - len(out), 2), dtype=np.float32)])
    return np.ascontiguousarray(out[:frames])

