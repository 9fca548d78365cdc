"""Sample layers (synth.samples): tagging a library, one-shot drums instead of FluidSynth, tempo-matched loops
beside it, and the dry/wet/annotation contract of such stems."""

from __future__ import annotations

import io
from pathlib import Path

import jsonschema
import mido
import numpy as np
import pytest
import soundfile as sf

from stemlab.download.fetch import sha256_file
from stemlab.errors import StemlabError
from stemlab.synth import mixing
from stemlab.synth.render import Renderer
from stemlab.synth.schema import SONG_SCHEMA
from stemlab.synth.song import SongMaker, SynthSettings, quantize24
from stemlab.synth.sources.samples import SampleLayers, SampleSettings, scan_library, stretch, tag_from_name

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
needs_sf2 = pytest.mark.skipif(not Path(SF2).is_file(), reason="needs Debian fluid-soundfont-gm")
SR = 44100


def _shot(freq: float, seconds: float = 0.15, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (np.sin(2 * np.pi * freq * t) * np.exp(-t * 30)).astype(np.float32)


def _loop(bpm: float, beats: int, sr: int = SR) -> np.ndarray:
    """A click on every beat: where the clicks land shows the tempo match."""
    beat = int(round(60 / bpm * sr))
    out = np.zeros(beat * beats, dtype=np.float32)
    for b in range(beats):
        out[b * beat : b * beat + 200] = 0.8
    return out


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("samples")
    (root / "drums").mkdir()
    sf.write(root / "drums" / "Kick_01.wav", _shot(60), SR)
    sf.write(root / "drums" / "snare-tight.wav", _shot(200), SR)
    sf.write(root / "drums" / "hh_closed.flac", _shot(3000, 0.05, 48000), 48000)  # another rate
    sf.write(root / "perc_loop_90bpm.wav", np.stack([_loop(90, 4)] * 2, axis=1), SR)
    sf.write(root / "ambience.wav", _shot(100), SR)  # no tag: left out
    return root


def test_tags_from_file_names_and_a_table(library, tmp_path):
    assert tag_from_name("Loops/Guitar Loop 120BPM.wav", 4.0).__dict__ == {
        "path": "Loops/Guitar Loop 120BPM.wav", "kind": "loop", "tag": "guitar", "bpm": 120.0, "beats": 8}  # fmt: skip
    assert tag_from_name("x/BD_hard.wav", 0.2).tag == "kick" and tag_from_name("pad.wav", 1.0) is None
    found = {s.path: (s.kind, s.tag, s.beats) for s in scan_library(SampleSettings(str(library)))}
    assert found == {"drums/Kick_01.wav": ("one_shot", "kick", None), "drums/hh_closed.flac": ("one_shot", "hat", None),
                     "drums/snare-tight.wav": ("one_shot", "snare", None), "perc_loop_90bpm.wav": ("loop", "percussion", 4)}  # fmt: skip
    table = tmp_path / "lib.csv"
    table.write_text("file,kind,tag,bpm,beats\nambience.wav,loop,other,60,\ndrums/Kick_01.wav,one_shot,kick,,\n")
    found = {s.path: (s.kind, s.tag, s.bpm) for s in scan_library(SampleSettings(str(library), str(table)))}
    assert found == {"ambience.wav": ("loop", "other", 60.0), "drums/Kick_01.wav": ("one_shot", "kick", None)}
    table.write_text("file,kind,tag,bpm\n../outside.wav,one_shot,kick,\n")
    with pytest.raises(StemlabError, match="leaves synth.samples.path"):
        scan_library(SampleSettings(str(library), str(table)))
    table.write_text("file,kind,tag,bpm\nambience.wav,loop,strings,90\n")
    with pytest.raises(StemlabError, match="row 2"):
        scan_library(SampleSettings(str(library), str(table)))
    with pytest.raises(StemlabError, match="needs synth.samples.path"):
        SampleLayers(SampleSettings(None, None, 0.5))


def test_stretch_lands_the_loops_beats_on_the_songs():
    loop = np.stack([_loop(90, 4)] * 2, axis=1)
    frames = int(round(4 * 60 / 120 * SR))  # four beats at 120 bpm
    out = stretch(loop, frames)
    assert out.shape == (frames, 2)
    onsets = np.flatnonzero((np.abs(out[:, 0]) > 0.4) & (np.abs(np.roll(out[:, 0], 1)) <= 0.4))
    assert np.allclose(onsets[:4], np.arange(4) * frames / 4, atol=3)


def _maker(library: Path, renderer, drums: float, loops: float) -> SongMaker:
    settings = SynthSettings(seed=8, genres=("pop", "rock"), duration_s=(4.0, 5.0), tail_s=0.5, other_parts=(2, 2),
                             soundfonts=(SF2,), samples=SampleSettings(str(library), None, drums, loops))  # fmt: skip
    return SongMaker(settings, renderer)


@needs_sf2
def test_sample_stems_keep_the_dry_wet_annotation_contract(library):
    with Renderer([SF2]) as renderer:
        song = _maker(library, renderer, 1.0, 1.0).make(0)
    meta = song.meta
    jsonschema.validate(meta, SONG_SCHEMA)
    stems = {s["name"]: s for s in meta["stems"]}
    drums, perc = stems["drums"], stems["percussion"]
    assert drums["soundfont"] == "samples" and drums["soundfont_sha256"] is None
    classes = drums["samples"]["classes"]
    assert set(classes) == {"kick", "snare", "hat"}
    assert classes["kick"] == {"file": "drums/Kick_01.wav", "sha256": sha256_file(library / "drums" / "Kick_01.wav")}
    assert perc["samples"]["file"] == "perc_loop_90bpm.wav" and perc["samples"]["beats"] == 4 and perc["role"] == "percussion"
    assert all(s["samples"] is None and s["soundfont"] == "FluidR3_GM.sf2" for n, s in stems.items() if n not in ("drums", "percussion"))
    # the drum MIDI holds only what the library plays, and the dry stem has a kick at the first kick note
    notes = [m for m in mido.MidiFile(file=io.BytesIO(song.midi["drums"])).tracks[-1] if m.type == "note_on" and m.velocity]
    assert {m.note for m in notes} <= {35, 36, 37, 38, 40, 42, 44, 46}
    dry = song.dry["drums"]
    first = int(round(meta["beats"][0] * SR))
    assert np.abs(dry[first : first + 2000]).max() > 0.05 and np.abs(dry[: max(0, first - 10)]).max(initial=0) < 1e-6
    # the loop starts on beat one and repeats every 4 beats of the song
    loop_dry = song.dry["percussion"][:, 0]
    onsets = np.flatnonzero((np.abs(loop_dry) > 0.2) & (np.abs(np.roll(loop_dry, 1)) <= 0.2))
    assert np.allclose(onsets[: len(meta["beats"])] / SR, meta["beats"][: len(onsets)], atol=0.002)
    # wet = the recorded chain applied to dry, as for every stem
    for name in ("drums", "percussion"):
        assert np.array_equal(quantize24(mixing.apply_stem_fx(song.dry[name], stems[name]["fx"], SR)), song.wet[name])


@needs_sf2
def test_without_probability_nothing_changes(library):
    with Renderer([SF2]) as renderer:
        plain = SongMaker(SynthSettings(seed=8, genres=("pop", "rock"), duration_s=(4.0, 5.0), tail_s=0.5, other_parts=(2, 2),
                                        soundfonts=(SF2,)), renderer).make(0)  # fmt: skip
        off = _maker(library, renderer, 0.0, 0.0).make(0)
    assert plain.meta["stems"] == off.meta["stems"]
    assert all(np.array_equal(plain.wet[k], off.wet[k]) for k in plain.wet)
