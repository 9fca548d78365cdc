"""FluidSynth rendering: onset timing, state independence, soundfont loading, errors, encoding exactness."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from stemlab.errors import StemlabError
from stemlab.synth import instruments as gm
from stemlab.synth.instruments import DRUM_KITS, MELODIC
from stemlab.synth.midi import part_midi
from stemlab.synth.render import Renderer, check_soundfonts, remove_dc
from stemlab.synth.score import Note, Part, Score, SectionSpan
from stemlab.synth.song import quantize24
from stemlab.synth.timing import PPQ, Meter, Swing, Tempo
from tests.workflow_utils import REPO

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
pytestmark = pytest.mark.skipif(not Path(SF2).is_file(), reason="needs Debian fluid-soundfont-gm")
SR = 44_100


@pytest.fixture(scope="module")
def renderer():
    with Renderer([SF2]) as r:
        yield r


def _score(parts: list[Part], bars: int, bpm: float = 97.3) -> Score:
    meter = Meter(4, 4)
    end = bars * meter.bar_ticks
    return Score("pop", 0, "major", meter, Tempo.from_beat_bpm(bpm, meter), Swing(0.5, 0),
                 [SectionSpan(0, "verse", 0, 0, bars, 0, end, ("I",))], [], parts)


def _clicks(key: int, ticks: list[int]) -> Part:
    notes = [Note(t, t + 30, key, 110) for t in ticks]
    return Part("percussion", "percussion", DRUM_KITS[0], "aux", SF2, False, [0], notes)


def _onsets(audio: np.ndarray, n: int) -> list[int]:
    """First non-zero frame after each stretch of >= 2000 exactly silent frames."""
    loud = np.any(audio != 0, axis=1)
    out, quiet = [], 2000
    for i, v in enumerate(loud):
        if v and quiet >= 2000:
            out.append(i)
        quiet = 0 if v else quiet + 1
    assert len(out) == n, f"expected {n} separated clicks, found {len(out)}"
    return out


@pytest.mark.parametrize("key", [gm.KICK, gm.CLAP, gm.HI_BONGO, gm.CLAVES])  # voices that end before the next click
def test_onsets_match_midi_within_1ms(renderer, key, tmp_path):
    rng = np.random.default_rng(key)
    # clicks 0.6-0.9 s apart at ticks that are not multiples of anything convenient, the first at 0
    gaps = rng.integers(int(1.2 * PPQ), int(1.8 * PPQ), size=11)
    ticks = [0] + list(np.cumsum(gaps) + rng.integers(0, 7, size=11))
    part = _clicks(key, [int(t) for t in ticks])
    score = _score([part], bars=int(ticks[-1] // (4 * PPQ)) + 2)
    # the note-on times as the MIDI file states them, read back with mido
    path = tmp_path / "clicks.mid"
    path.write_bytes(part_midi(score, part, "clicks"))
    now, midi_times = 0.0, []
    for msg in mido.MidiFile(path):
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            midi_times.append(now)
    n_frames = int((midi_times[-1] + 1.0) * SR)
    audio = renderer.render(score, part, n_frames)
    onsets = np.array(_onsets(audio, len(midi_times))) / SR
    err_ms = np.abs(onsets - np.array(midi_times)) * 1000
    assert err_ms.max() <= 1.0, err_ms


def test_part_rendering_does_not_depend_on_what_was_rendered_before(renderer):
    piano = Part("piano", "harmony", MELODIC[0], "block", SF2, False, [0],
                 [Note(i * 240, i * 240 + 600, 60 + (i * 5) % 12, 90) for i in range(24)])
    strings = Part("bowed_strings", "harmony", MELODIC[48], "pad", SF2, False, [0],
                   [Note(0, 7000, p, 100) for p in (48, 55, 64, 67)])
    score = _score([piano, strings], bars=4)
    first = renderer.render(score, piano, 90_000)
    renderer.render(score, strings, 70_001)  # odd length: block phase must not leak either
    again = renderer.render(score, piano, 90_000)
    assert np.array_equal(first, again)
    assert np.any(first != 0)


RCHAR_SCRIPT = """
import sys
from pathlib import Path
from stemlab.synth.instruments import MELODIC
from stemlab.synth.render import Renderer
from stemlab.synth.score import Note, Part, Score, SectionSpan
from stemlab.synth.timing import Meter, Swing, Tempo

def rchar():
    return next(int(l.split()[1]) for l in Path("/proc/self/io").read_text().splitlines() if l.startswith("rchar"))

sf2 = sys.argv[1]
before = rchar()
r = Renderer([sf2])
loaded = rchar() - before
m = Meter(4, 4)
parts = [Part("piano", "harmony", MELODIC[p], "block", sf2, False, [0], [Note(0, 480, 60, 90)]) for p in (0, 25, 40, 73)]
score = Score("pop", 0, "major", m, Tempo.from_beat_bpm(120, m), Swing(0.5, 0), [SectionSpan(0, "verse", 0, 0, 1, 0, 1920, ("I",))], [], parts)
before = rchar()
for p in parts:
    r.render(score, p, 30_000)
print(loaded, (rchar() - before) / len(parts), r.synths_created)
"""


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_soundfont_is_read_once_per_worker_not_per_part():
    """A fresh process reads the soundfont once; rendering parts afterwards re-reads < 2 % of it."""
    out = subprocess.run([sys.executable, "-c", RCHAR_SCRIPT, SF2], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "scripts"), "PATH": "/usr/bin:/bin"})
    loaded, per_part, synths = out.stdout.split()
    size = Path(SF2).stat().st_size
    assert int(loaded) >= size
    assert float(per_part) < 0.02 * size, f"each part re-read {float(per_part) / 1e6:.1f} MB of the soundfont"
    assert int(synths) == 4


def test_missing_soundfont_is_one_line_naming_key_and_package(tmp_path):
    with pytest.raises(StemlabError) as exc:
        check_soundfonts([SF2, str(tmp_path / "nope.sf2")])
    msg = str(exc.value)
    assert "synth.soundfonts" in msg and "fluid-soundfont-gm" in msg and "nope.sf2" in msg and "\n" not in msg
    proc = subprocess.run(
        [sys.executable, "-m", "stemlab.synth", "generate", "--count", "1", "--out", str(tmp_path / "out"),
         "--soundfont", str(tmp_path / "nope.sf2")],
        capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO / "scripts"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "synth.soundfonts" in lines[-1] and "fluid-soundfont-gm" in lines[-1]
    assert not (tmp_path / "out").exists()


def test_invalid_soundfont_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF....not a soundfont")
    with pytest.raises(StemlabError, match="synth.soundfonts"):
        Renderer([str(bad)])


def test_dc_blocker_removes_the_soundfonts_offset_and_keeps_the_music(renderer):
    """FluidR3's FX 5 (brightness) samples carry a DC offset (|mean| 0.024 in a rendered song's stem):
    the blocker takes it below 1e-4 and leaves a 40 Hz tone within 0.1 dB."""
    notes = [Note(i * 1920, i * 1920 + 1800, 60 + 4 * (i % 3), 100) for i in range(6)]
    pad = Part("other", "harmony", MELODIC[100], "pad", SF2, False, [0], notes)
    raw = renderer.render(_score([pad], bars=7), pad, 7 * SR)
    assert np.abs(raw.mean(axis=0, dtype=np.float64)).max() > 0.005
    clean = remove_dc(raw.copy(), SR)
    assert clean.dtype == np.float32 and clean.shape == raw.shape
    assert np.abs(clean.mean(axis=0, dtype=np.float64)).max() < 1e-4
    t = np.arange(4 * SR) / SR
    tone = np.stack([np.sin(2 * np.pi * 40 * t), 0.5 * np.sin(2 * np.pi * 40 * t)], 1).astype(np.float32)
    out = remove_dc(tone.copy(), SR)[SR:]  # after the blocker has settled
    ratio_db = 10 * np.log10(np.mean(out.astype(np.float64) ** 2, axis=0) / np.mean(tone[SR:].astype(np.float64) ** 2, axis=0))
    assert np.all(np.abs(ratio_db) < 0.1), ratio_db


def test_quantize24_is_exactly_what_flac_stores():
    x = (np.random.default_rng(3).standard_normal((50_000, 2)) * 0.5).astype(np.float32)
    x[:6, 0] = [1.0, -1.0, 1.7, -3.0, 0.5 / 2**23, 2.5 / 2**23]
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="FLAC", subtype="PCM_24")
    buf.seek(0)
    back, _ = sf.read(buf, dtype="float32")
    assert np.array_equal(quantize24(x), back)
    assert np.array_equal(quantize24(back), back)


def test_fast_loudness_matches_pyloudnorm():
    import pyloudnorm

    from stemlab.loudness import integrated_loudness

    rng = np.random.default_rng(0)
    for n in (30_000, 300_000):
        x = rng.standard_normal((n, 2)) * 0.1 * np.linspace(0, 1, n)[:, None] ** 2
        x[: n // 4] *= 1e-4  # quiet start: exercises both gates
        ref = pyloudnorm.Meter(SR).integrated_loudness(x)
        assert abs(integrated_loudness(x.astype(np.float32), SR) - ref) < 1e-4
    assert integrated_loudness(np.zeros((SR, 2), np.float32), SR) == float("-inf")
    # one block; edges ending a chunk of segments exactly (16 x 100 ms + the 400 ms block); long; mono
    for n in (17_641, 4410 * 16 + 17_640, 4410 * 16 * 3 + 1234, 2_000_000):
        x = rng.standard_normal((n, 2)) * 0.1 * (1.0 + np.sin(np.arange(n) / 5000.0))[:, None]
        x[:, 1] *= 0.3
        ref = pyloudnorm.Meter(SR).integrated_loudness(x)
        assert abs(integrated_loudness(x.astype(np.float32), SR) - ref) < 1e-4, n
        assert abs(integrated_loudness(x[:, 0].astype(np.float32), SR) - pyloudnorm.Meter(SR).integrated_loudness(x[:, 0])) < 1e-4
    # on the same samples (float64 in both) the meter is pyloudnorm to rounding: chunked complex
    # filtering in place changes no number that matters (song.json rounds to 1/1000 LU)
    for n in (17_641, 4410 * 16 + 17_640, 300_000):
        x = (rng.standard_normal((n, 2)) * 0.1 * (1.0 + np.sin(np.arange(n) / 5000.0))[:, None]).astype(np.float32)
        x[: n // 4] *= 1e-4
        ref = pyloudnorm.Meter(SR).integrated_loudness(x.astype(np.float64))
        assert abs(integrated_loudness(x, SR) - ref) < 1e-9, n


def _mido_reference(score: Score, part: Part, title: str) -> bytes:
    """The same file built message by message with mido (what stemlab.synth.midi must equal)."""
    from stemlab.synth.theory import midi_key_signature

    conductor = mido.MidiTrack()
    m = score.meter
    conductor.append(mido.MetaMessage("track_name", name=title, time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=score.tempo.us_per_quarter, time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=m.numerator, denominator=m.denominator, time=0))
    conductor.append(mido.MetaMessage("key_signature", key=midi_key_signature(score.tonic, score.mode), time=0))
    now = 0
    for s in score.sections:
        conductor.append(mido.MetaMessage("marker", text=f"{s.name} {s.occurrence + 1}", time=s.start - now))
        now = s.start
    conductor.append(mido.MetaMessage("end_of_track", time=score.end_tick - now))
    track = mido.MidiTrack()
    ch = part.channel
    track.append(mido.MetaMessage("track_name", name=f"{part.name}: {part.instrument.name}", time=0))
    track.append(mido.Message("program_change", channel=ch, program=part.instrument.program, time=0))
    events = sorted([(n.start, 1, n.pitch, n.velocity) for n in part.notes] + [(n.end, 0, n.pitch, 0) for n in part.notes])
    now = 0
    for tick, on, pitch, vel in events:
        track.append(mido.Message("note_on" if on else "note_off", channel=ch, note=pitch, velocity=vel, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=score.end_tick - now))
    mid = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    mid.tracks += [conductor, track]
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def test_part_midi_bytes_equal_mido():
    from stemlab import seeding
    from stemlab.synth.compose import ComposeParams, compose
    from stemlab.synth.genres import GENRE_NAMES

    n = 0
    for i, genre in enumerate(GENRE_NAMES):
        score = compose(genre, ComposeParams((20.0, 30.0), (2, 6)), [SF2], lambda *k, i=i: seeding.rng(5, "midi", i, *k))
        for part in score.parts:
            assert part_midi(score, part, f"syn {part.name}") == _mido_reference(score, part, f"syn {part.name}"), (genre, part.name)
            n += 1
    assert n >= 4 * len(GENRE_NAMES)
    # long deltas (multi-byte variable-length quantities) and a note on the last tick
    far = Part("piano", "harmony", MELODIC[0], "block", SF2, False, [0], [Note(0, 10, 60, 1), Note(200_000, 200_100, 127, 127)])
    score = _score([far], bars=105)
    assert part_midi(score, far, "far") == _mido_reference(score, far, "far")
    with pytest.raises(ValueError, match="pitch or velocity"):
        part_midi(score, Part("piano", "harmony", MELODIC[0], "block", SF2, False, [0], [Note(0, 10, 128, 1)]), "bad")
