"""In-process FluidSynth rendering of one part into a float32 numpy array (frames, 2).

Timing: FluidSynth starts a voice at the first 64-frame block rendered after the note-on arrives.
Every event is therefore sent exactly at the block boundary nearest its exact frame (tick -> frame
via Tempo.frame), so an onset lands at most 32 frames (0.73 ms at 44.1 kHz) from its MIDI time,
with no constant latency.

Determinism: a FluidSynth voice keeps state between notes (amplitude ramps, filter memory), so a
synth that has played something else renders the same notes slightly differently. Each part is
therefore rendered on a fresh synth. The soundfonts stay loaded for the whole worker in an anchor
synth; FluidSynth's sample cache hands their sample data to each fresh synth, which only re-reads
the preset headers (~0.2 MB instead of the 148 MB FluidR3_GM file).
"""

from __future__ import annotations

import ctypes
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stemlab.errors import StemlabError
from stemlab.sosfilt import sosfilt_inplace
from stemlab.synth.score import Part, Score

BLOCK = 64  # FluidSynth's internal block size (FLUID_BUFSIZE)
DC_CUTOFF_HZ = 5.0  # the dry stems' DC blocker: -3 dB at 5 Hz, -0.12 dB at 30 Hz, 32 ms time constant
SYNTH_GAIN = 0.35
SOUNDFONT_KEY = "synth.soundfonts"
DEBIAN_PACKAGE = "fluid-soundfont-gm"
# the Debian packages of the soundfonts the configs name (file name -> package)
DEBIAN_SOUNDFONTS = {
    "FluidR3_GM.sf2": DEBIAN_PACKAGE,
    "MuseScore_General_Full.sf3": "musescore-general-soundfont",
    "TimGM6mb.sf2": "timgm6mb-soundfont",
}


def check_soundfonts(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The soundfont paths as strings; a missing or unreadable one is a one-line error."""
    if not paths:
        raise StemlabError(f"config key {SOUNDFONT_KEY} is empty; list at least one .sf2 file (Debian: apt-get install {DEBIAN_PACKAGE})")
    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            package = DEBIAN_SOUNDFONTS.get(path.name, DEBIAN_PACKAGE)
            raise StemlabError(
                f"{path}: soundfont not found (config key {SOUNDFONT_KEY}); install the Debian package "
                f"{package} (apt-get install {package}) or point {SOUNDFONT_KEY} at an existing .sf2 file"
            )
        out.append(str(p))
    return out


def _lib():
    import fluidsynth  # imported lazily: needs the libfluidsynth shared library

    lib = fluidsynth._fl
    lib.fluid_synth_write_float.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.fluid_synth_write_float.restype = ctypes.c_int
    return fluidsynth, lib


def fluidsynth_version() -> str:
    _, lib = _lib()
    lib.fluid_version_str.restype = ctypes.c_char_p
    return lib.fluid_version_str().decode()


class Renderer:
    """Holds the soundfonts of one worker and renders parts on fresh synths."""

    def __init__(self, soundfonts: Sequence[str], sample_rate: int = 44_100, gain: float = SYNTH_GAIN):
        self.soundfonts = check_soundfonts(soundfonts)
        self.sample_rate = int(sample_rate)
        self.gain = float(gain)
        self._fs, self._lib = _lib()
        self._anchor = self._new_synth()
        self._sfids: dict[str, int] = {}
        for sf in self.soundfonts:
            sfid = self._anchor.sfload(sf)
            if sfid < 0:
                raise StemlabError(
                    f"{sf}: FluidSynth cannot load this soundfont (config key {SOUNDFONT_KEY}); "
                    f"replace it with a valid .sf2 file, e.g. from the Debian package {DEBIAN_PACKAGE}"
                )
            self._sfids[sf] = sfid
        self.presets = {
            sf: frozenset(
                (bank, prog) for bank in (0, 128) for prog in range(128) if self._anchor.sfpreset_name(sfid, bank, prog)
            )
            for sf, sfid in self._sfids.items()
        }
        self.synths_created = 0

    def _new_synth(self):
        settings = {"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.cpu-cores": 1}
        return self._fs.Synth(gain=self.gain, samplerate=self.sample_rate, channels=16, **settings)

    def close(self) -> None:
        if self._anchor is not None:
            self._anchor.delete()
            self._anchor = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def render(self, score: Score, part: Part, n_frames: int) -> np.ndarray:
        """The dry stereo audio of `part`, (n_frames, 2) float32."""
        if part.soundfont not in self._sfids:
            raise ValueError(f"{part.soundfont} is not one of this renderer's soundfonts")
        synth = self._new_synth()
        self.synths_created += 1
        try:
            sfid = synth.sfload(part.soundfont)  # served from FluidSynth's sample cache
            inst = part.instrument
            ch = part.channel
            if synth.program_select(ch, sfid, inst.bank, inst.program) != 0:
                raise StemlabError(f"{part.soundfont}: no preset bank {inst.bank} program {inst.program}; use a GM soundfont")
            events = []
            for n in part.notes:
                on = self.block_frame(score, n.start)
                events.append((on, 1, n.pitch, n.velocity))
                # a note shorter than a block still gets its note-off after its note-on
                events.append((max(self.block_frame(score, n.end), on + BLOCK), 0, n.pitch, 0))
            events.sort()  # note-offs before note-ons in the same block
            total = -(-n_frames // BLOCK) * BLOCK
            out = np.zeros((total, 2), dtype=np.float32)
            base = out.ctypes.data
            pos = 0
            write = self._lib.fluid_synth_write_float
            for frame, on, pitch, vel in events:
                frame = min(frame, total)
                if frame > pos:
                    ptr = base + pos * 8
                    write(synth.synth, frame - pos, ptr, 0, 2, ptr, 1, 2)
                    pos = frame
                if on:
                    synth.noteon(ch, pitch, vel)
                else:
                    synth.noteoff(ch, pitch)
            if total > pos:
                ptr = base + pos * 8
                write(synth.synth, total - pos, ptr, 0, 2, ptr, 1, 2)
            return out[:n_frames]  # a C-contiguous view: no copy of the stem for the few padding frames
        finally:
            synth.delete()

    def block_frame(self, score: Score, tick: int) -> int:
        """The FluidSynth block boundary nearest the exact frame of `tick`."""
        frame = score.tempo.frame(tick, self.sample_rate)
        return (frame + BLOCK // 2) // BLOCK * BLOCK


DC_CHUNK = 1 << 16  # frames per filter call: the working set stays in cache


def check_stereo_f32(audio: np.ndarray, what: str) -> None:
    if audio.dtype != np.float32 or not audio.flags.c_contiguous or audio.ndim != 2 or audio.shape[1] != 2:
        raise ValueError(f"{what} takes C-contiguous (frames, 2) float32 audio")


class DCBlocker:
    """The dry stems' DC blocker, (1 + r) / 2 * (1 - z^-1) / (1 - r z^-1), r = exp(-2 pi cutoff / sr),
    in float32 over both channels at once (the complex signal L + iR: real coefficients keep them
    apart), applied in place to consecutive chunks of one signal with the state carried over (the
    same numbers however the signal is cut)."""

    def __init__(self, sample_rate: int, cutoff_hz: float = DC_CUTOFF_HZ):
        r = math.exp(-2.0 * math.pi * cutoff_hz / sample_rate)
        k = (1.0 + r) / 2.0  # unity gain at Nyquist
        # the float32 coefficients as complex64 (what scipy.signal.sosfilt would cast them to)
        self.sos = np.array([[k, -k, 0.0, 1.0, -r, 0.0]], dtype=np.float32).astype(np.complex64)
        self.zi = np.zeros((1, 1, 2), dtype=np.complex64)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        """The next C-contiguous (frames, 2) float32 chunk of the signal, filtered in place."""
        sosfilt_inplace(self.sos, chunk.view(np.complex64).reshape(1, -1), self.zi)
        return chunk


def remove_dc(audio: np.ndarray, sample_rate: int, cutoff_hz: float = DC_CUTOFF_HZ) -> np.ndarray:
    """`audio` (frames, 2) float32 without the DC offset of the soundfont's sample data, in place
    (DCBlocker, chunk by chunk: the working set stays in cache). A sample recorded with an offset adds
    a step at every note-on; the blocker settles within ~0.1 s and the stem's mean goes to 0."""
    check_stereo_f32(audio, "remove_dc")
    block = DCBlocker(sample_rate, cutoff_hz)
    for start in range(0, len(audio), DC_CHUNK):
        block(audio[start : start + DC_CHUNK])
    return audio
