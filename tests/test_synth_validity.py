"""Validity analysis of synthetic songs: beat matching, MIDI reading, pitch verdicts, one song end to end."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import mido
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from stemlab.errors import StemlabError
from stemlab.synth import validity
from stemlab.synth.midinotes import Note, is_monophonic, read_notes

SR = 44_100


# --------------------------------------------------------------------------- fixtures


def click_track(beats: np.ndarray, duration: float, sr: int = SR) -> np.ndarray:
    """Decaying 1.5 kHz blips at the given times (accents on every 4th)."""
    out = np.zeros(int(duration * sr), dtype=np.float32)
    n = int(0.03 * sr)
    blip = (np.sin(2 * np.pi * 1500 * np.arange(n) / sr) * np.exp(-np.arange(n) / (0.005 * sr))).astype(np.float32)
    for k, t in enumerate(beats):
        i = int(round(t * sr))
        out[i : i + n] += blip[: len(out) - i] * (1.0 if k % 4 == 0 else 0.6)
    return out


def tone(pitch: float, duration: float, sr: int = SR) -> np.ndarray:
    """A harmonic tone with attack/release ramps (a stand-in for a rendered monophonic note)."""
    t = np.arange(int(duration * sr)) / sr
    f = 440.0 * 2 ** ((pitch - 69) / 12)
    x = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 6))
    ramp = np.minimum(1.0, np.minimum(t / 0.01, (duration - t) / 0.02))
    return (0.2 * x * ramp).astype(np.float32)


def render_notes(notes: list[Note], duration: float, shift: dict[int, float] | None = None) -> np.ndarray:
    out = np.zeros(int(duration * SR), dtype=np.float32)
    for k, note in enumerate(notes):
        x = tone(note.pitch + (shift or {}).get(k, 0.0), note.end - note.start)
        i = int(round(note.start * SR))
        out[i : i + len(x)] += x[: len(out) - i]
    return out


def write_midi(path: Path, notes: list[Note], bpm: float = 120.0, tempo_change: tuple[float, float] | None = None) -> None:
    """Notes given in beats (start/end in quarter notes) are written with mido at `bpm`."""
    tpb = 480
    mid = mido.MidiFile(ticks_per_beat=tpb)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = [(0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))]
    if tempo_change:
        events.append((int(tempo_change[0] * tpb), mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_change[1]))))
    for n in notes:
        events.append((int(round(n.start * tpb)), mido.Message("note_on", note=n.pitch, velocity=n.velocity, channel=n.channel)))
        events.append((int(round(n.end * tpb)), mido.Message("note_off", note=n.pitch, velocity=0, channel=n.channel)))
    events.sort(key=lambda e: (e[0], e[1].type != "set_tempo", e[1].type == "note_on"))
    now = 0
    for tick, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.save(path)


MELODY = [72, 74, 76, 77, 79, 77, 76, 74, 72, 67, 69, 71, 72]  # C major, quarter notes
BASS = [36, 36, 43, 41, 36, 38, 43, 36]  # half notes


def make_song(root: Path, *, beat_offset: float = 0.0, genre: str = "pop", song_id: str = "song-0") -> Path:
    """A tiny canonical song directory: 120 bpm, 16 s, click mix, sine melody and bass with MIDI."""
    song = root / song_id
    for sub in ("dry", "wet", "midi"):
        (song / sub).mkdir(parents=True, exist_ok=True)
    duration, bpm = 16.0, 120.0
    beats = np.arange(0.5, duration - 0.5, 60 / bpm)
    stems = []
    for name, role, pitches, length in (("wind", "melody", MELODY, 1.0), ("bass", "bass", BASS, 2.0)):
        notes_beats = [Note(1 + k * length, 1 + (k + 0.9) * length, p, 90, 0) for k, p in enumerate(pitches)]
        write_midi(song / "midi" / f"{name}.mid", notes_beats, bpm)
        notes_s = read_notes(song / "midi" / f"{name}.mid")
        audio = render_notes(notes_s, duration)
        sf.write(song / "dry" / f"{name}.flac", np.stack([audio, audio], 1), SR)
        sf.write(song / "wet" / f"{name}.flac", np.stack([audio, audio], 1), SR)
        stems.append(
            {
                "name": name,
                "category": name,
                "role": role,
                "files": {"wet": f"wet/{name}.flac", "dry": f"dry/{name}.flac", "midi": f"midi/{name}.mid"},
            }
        )
    mix = click_track(beats + beat_offset, duration)
    sf.write(song / "mix.flac", np.stack([mix, mix], 1), SR)
    for kind in ("wet", "dry"):
        sf.write(song / kind / "drums.flac", np.stack([mix, mix], 1), SR)
    stems.append({"name": "drums", "category": "drums", "role": "drums", "files": {"wet": "wet/drums.flac", "dry": "dry/drums.flac", "midi": None}})
    meta = {
        "id": song_id,
        "genre": genre,
        "tempo_bpm": bpm,
        "time_signature": "4/4",
        "split": "test",
        "beats": beats.tolist(),
        "downbeats": beats[::4].tolist(),
        "stems": stems,
    }
    (song / "song.json").write_text(json.dumps(meta))
    return song


# --------------------------------------------------------------------------- beats


def _brute_force_matching(ref, est, window) -> int:
    pairs = [(i, j) for i, r in enumerate(ref) for j, e in enumerate(est) if abs(r - e) <= window]
    for size in range(min(len(ref), len(est)), 0, -1):
        for combo in itertools.combinations(pairs, size):
            if len({i for i, _ in combo}) == size and len({j for _, j in combo}) == size:
                return size
    return 0


def test_greedy_matching_is_maximum():
    gen = np.random.Generator(np.random.PCG64(3))
    for _ in range(150):
        ref = np.sort(gen.uniform(0, 1, gen.integers(0, 6)))
        est = np.sort(gen.uniform(0, 1, gen.integers(0, 6)))
        assert validity.match_events(ref, est, 0.12) == _brute_force_matching(ref, est, 0.12)


def test_beat_scores_window_and_trim():
    ref = np.arange(0.0, 20.0, 0.5)
    assert validity.beat_scores(ref, ref)["beat_f"] == 1.0
    assert validity.beat_scores(ref, ref + 0.069)["beat_f"] == 1.0
    assert validity.beat_scores(ref, ref + 0.071)["beat_f"] == 0.0
    # double-tempo estimate: every reference found, half of the estimates wrong
    s = validity.beat_scores(ref, np.arange(0.0, 20.0, 0.25))
    assert s["beat_recall"] == 1.0 and s["beat_precision"] == pytest.approx(0.5, abs=0.01)
    # errors before the trim time do not count
    est = np.concatenate([ref[ref < 5] + 0.3, ref[ref >= 5]])
    assert validity.beat_scores(ref, est, trim=5.0)["beat_f"] == 1.0
    assert validity.beat_scores(ref, est, trim=0.0)["beat_f"] < 0.8
    with pytest.raises(ValueError):
        validity.beat_scores([1.0, 2.0], [1.0], trim=5.0)
    # beats a tracker extrapolates into the tail after the last annotated beat are not scored
    tail = np.concatenate([ref, np.arange(20.0, 25.0, 0.5)])
    assert validity.beat_scores(ref, tail)["beat_f"] == 1.0


def test_metrical_level_diagnostic():
    ref = np.arange(0.0, 30.0, 0.5)
    assert validity.best_metrical_level(ref, (ref + 0.25)[:-1]) == ("offbeat", 1.0)
    assert validity.best_metrical_level(ref, np.arange(0.0, 29.6, 0.25)) == ("double", 1.0)
    assert validity.best_metrical_level(ref, ref[1::2])[0] == "half_even"
    assert validity.best_metrical_level(ref, np.arange(0.0, 29.6, 0.5 / 3)) == ("triple", 1.0)
    assert validity.best_metrical_level(ref, ref) == ("annotated", 1.0)
    assert validity.beat_scores(ref, ref + 0.25)["beat_f"] == 0.0  # the plain measure is not relaxed


@pytest.mark.parametrize("tracker", ["essentia", pytest.param("librosa", marks=pytest.mark.slow)])  # librosa: numba compiles
def test_trackers_find_click_beats(tracker):
    beats = np.arange(0.5, 19.5, 0.5)
    audio = click_track(beats, 20.0)
    est = validity.track_beats(audio, SR, tracker)
    assert validity.beat_scores(beats, est)["beat_f"] >= 0.95
    # the same clicks 150 ms late are outside the 70 ms window
    late = validity.track_beats(click_track(beats + 0.15, 20.0), SR, tracker)
    assert validity.beat_scores(beats, late)["beat_f"] < 0.2


@pytest.mark.parametrize("tracker", ["essentia", "librosa"])
def test_genre_tempo_prior_fixes_double_tempo(tracker):
    """80 bpm with half-loud off-beat clicks: unbounded, both trackers prefer 160 bpm (F ~0.67 on the
    annotated beats); told the reggae range they find the annotated 80 bpm beats."""
    beats = np.arange(0.5, 29.5, 0.75)
    audio = click_track(beats, 30.0) + 0.5 * click_track(beats[:-1] + 0.375, 30.0)
    free = validity.track_beats(audio, SR, tracker)
    assert validity.best_metrical_level(beats, free)[0] == "double"
    bounded = validity.track_beats(audio, SR, tracker, validity.genre_tempo_range("reggae", "4/4", 0.1))
    assert validity.beat_scores(beats, bounded)["beat_f"] >= 0.95


def test_genre_tempo_range():
    from stemlab.synth.genres import GENRES

    lo, hi = GENRES["reggae"].tempo
    assert validity.genre_tempo_range("reggae", "4/4", 0.1) == pytest.approx((lo * 0.9, hi * 1.1))
    c_lo, c_hi = GENRES["blues"].compound_tempo  # 12/8: the annotated beat is the dotted quarter
    assert validity.genre_tempo_range("blues", "12/8", 0.0) == pytest.approx((c_lo, c_hi))
    assert validity.genre_tempo_range("blues", "3/4", 0.0) == pytest.approx(GENRES["blues"].tempo)
    assert validity.genre_tempo_range("funk", "4/4", 0.1) is None  # real corpora: no preset, no bound
    with pytest.raises(StemlabError, match="tempo_prior"):
        validity.ValidityParams(tempo_prior="exact")
    with pytest.raises(StemlabError, match="tempo_prior_margin"):
        validity.ValidityParams(tempo_prior_margin=1.5)


# --------------------------------------------------------------------------- MIDI


def test_read_notes_follows_tempo_map(tmp_path):
    notes = [Note(0, 1, 60, 100, 0), Note(4, 5, 62, 100, 0), Note(8, 10, 64, 100, 3)]
    write_midi(tmp_path / "a.mid", notes, bpm=120, tempo_change=(4, 60))
    got = read_notes(tmp_path / "a.mid")
    assert [(n.pitch, n.channel) for n in got] == [(60, 0), (62, 0), (64, 3)]
    # 4 beats at 120 bpm = 2 s, then 1 s per beat
    np.testing.assert_allclose([(n.start, n.end) for n in got], [(0, 0.5), (2, 3), (6, 8)], atol=1e-6)


def test_monophony_check():
    assert is_monophonic([Note(0, 1, 60, 1, 0), Note(1.01, 2, 62, 1, 0)])
    assert is_monophonic([Note(0, 1.01, 60, 1, 0), Note(1.0, 2, 62, 1, 0)])  # 10 ms legato overlap
    assert not is_monophonic([Note(0, 2, 60, 1, 0), Note(1, 3, 64, 1, 0)])


def test_unreadable_midi_is_one_line_error(tmp_path):
    bad = tmp_path / "x.mid"
    bad.write_bytes(b"not a midi file at all")
    with pytest.raises(StemlabError, match="x.mid"):
        read_notes(bad)
    with pytest.raises(StemlabError, match="not found"):
        read_notes(tmp_path / "missing.mid")


# --------------------------------------------------------------------------- pitch


def test_note_verdicts_catch_wrong_and_missing_notes():
    params = validity.ValidityParams()
    notes = [Note(0.5 + 0.4 * k, 0.5 + 0.4 * k + 0.35, p, 90, 0) for k, p in enumerate(MELODY)]
    audio = render_notes(notes, 6.5, shift={3: 1.0, 7: -12.0})  # one semitone off, one octave off
    silent = 10
    audio[int(notes[silent].start * SR) : int(notes[silent].end * SR) + 1] = 0.0  # a note never played
    times, midi = validity.track_pitch(audio, SR, params.roles["melody"], params)
    verdicts = validity.note_results(times, midi, notes)
    expected = ["correct"] * len(notes)
    expected[3] = expected[7] = "wrong"
    expected[silent] = "unvoiced"
    assert verdicts == expected


def test_bass_register_is_tracked():
    params = validity.ValidityParams()
    notes = [Note(0.2 + 0.6 * k, 0.2 + 0.6 * k + 0.5, p, 90, 0) for k, p in enumerate(BASS)]
    times, midi = validity.track_pitch(render_notes(notes, 5.2), SR, params.roles["bass"], params)
    assert validity.note_results(times, midi, notes) == ["correct"] * len(notes)


# --------------------------------------------------------------------------- songs and table


def test_analyze_song_and_summary(tmp_path):
    params = validity.ValidityParams()
    good_out = validity.analyze_song(make_song(tmp_path, song_id="a"), params)
    good = good_out["song"]
    assert [(s["stem"], s["notes"], s["correct"]) for s in good_out["stems"]] == [("bass", len(BASS), len(BASS)), ("wind", len(MELODY), len(MELODY))]
    assert good["beat_f"] >= 0.95 and good["beat_f_drums"] >= 0.95 and good["tracked_level"] == "annotated"
    assert good["beat_pulse"] == "beat"  # a song.json without metrical levels or beat_unit
    assert good["melody_notes"] == len(MELODY) and good["melody_correct"] == len(MELODY)
    assert good["bass_notes"] == len(BASS) and good["bass_correct"] == len(BASS)
    # annotations 100 ms off the audio (the kind of bug this table exists to catch) fail the beat check
    shifted_dir = make_song(tmp_path, beat_offset=0.1, genre="jazz", song_id="b")
    meta = json.loads((shifted_dir / "song.json").read_text())
    (shifted_dir / "song.json").write_text(json.dumps({**meta, "composition_source": "groove"}))  # composed from a MIDI groove
    shifted_out = validity.analyze_song(shifted_dir, params)
    shifted = shifted_out["song"]
    assert shifted["beat_f"] < 0.3
    assert (good["source"], shifted["source"]) == ("generated", "groove")  # a song.json without one: generated

    stems = pd.DataFrame(good_out["stems"] + shifted_out["stems"])
    table = validity.summarize(pd.DataFrame([good, shifted]), params.roles, stems)
    rows = table.set_index("group")
    assert rows.loc["overall", "n_songs"] == 2
    assert rows.loc["genre=pop", "beat_f"] >= 0.95 and rows.loc["genre=jazz", "beat_f"] < 0.3
    assert rows.loc["overall", "melody_note_accuracy"] == 1.0
    assert rows.loc["time_signature=4/4", "n_songs"] == 2
    assert rows.loc["source=generated", "beat_f"] >= 0.95 and rows.loc["source=groove", "beat_f"] < 0.3
    assert rows.loc["source=groove", "n_songs"] == 1
    assert rows.loc["melody:category=wind", "melody_notes"] == 2 * len(MELODY)
    assert rows.loc["bass:category=bass", "bass_note_accuracy"] == 1.0


def test_song_without_beats_is_one_line_error(tmp_path):
    song = make_song(tmp_path)
    meta = json.loads((song / "song.json").read_text())
    meta["beats"] = []
    (song / "song.json").write_text(json.dumps(meta))
    with pytest.raises(StemlabError, match="beats"):
        validity.analyze_song(song, validity.ValidityParams())


def test_octave_jumps_over_release_tails():
    """A root/octave bass line whose notes ring on under the next one (as FluidSynth releases do):
    the mixture is periodic at the lower note's period, and the voice-tuned HMM stays an octave low."""
    params = validity.ValidityParams()
    notes = [Note(0.2 + 0.25 * k, 0.2 + 0.25 * k + 0.24, 36 if k % 2 == 0 else 48, 90, 0) for k in range(16)]
    audio = np.zeros(int(4.8 * SR), dtype=np.float32)
    for note in notes:
        x = tone(note.pitch, 0.8)
        x *= np.exp(-np.maximum(0.0, np.arange(len(x)) / SR - 0.24) / 0.06).astype(np.float32)  # release tail, about -20 dB mid next note
        i = int(note.start * SR)
        audio[i : i + len(x)] += x[: len(audio) - i]
    times, midi = validity.track_pitch(audio, SR, params.roles["bass"], params)
    assert validity.note_results(times, midi, notes).count("correct") >= 15
    voice = validity.PitchRole(30.0, 500.0, 2048, 35.92)
    times, midi = validity.track_pitch(audio, SR, voice, params)
    assert validity.note_results(times, midi, notes).count("wrong") >= 4


def test_beat_f_is_scored_at_the_tap_pulse_and_named():
    """Compound meters: beat F is scored at the level the song names as tapped (the dotted quarter of
    6/8), not at its eighths; the table and the log name the pulse per meter."""
    tatums = [0.25 * k for k in range(48)]  # 6/8: six sixteenths of 0.25 s a beat, two beats a bar
    levels = [{"level": "tatum", "unit": "sixteenth", "ticks": 120, "tatums": 1},
              {"level": "division", "unit": "eighth", "ticks": 240, "tatums": 2},
              {"level": "beat", "unit": "dotted_quarter", "ticks": 720, "tatums": 6},
              {"level": "bar", "unit": "bar", "ticks": 1440, "tatums": 12}]  # fmt: skip
    meta = {"beats": tatums[::6], "downbeats": tatums[::12], "tatums": tatums, "metrical_levels": levels, "tap_pulse": "beat"}
    assert validity.pulse_reference(meta) == (tatums[::6], "dotted_quarter")
    assert validity.pulse_reference({**meta, "tap_pulse": "division"}) == (tatums[::2], "eighth")
    assert validity.pulse_reference({**meta, "tap_pulse": "bar"}) == (tatums[::12], "bar")
    # songs without the hierarchy (older shards, real corpora): the beats, named by beat_unit if any
    assert validity.pulse_reference({"beats": [1.0, 2.0], "beat_unit": "quarter"}) == ([1.0, 2.0], "quarter")
    assert validity.pulse_reference({"beats": [1.0, 2.0]}) == ([1.0, 2.0], "beat")
    with pytest.raises(StemlabError, match="tap_pulse"):
        validity.pulse_reference({"beats": [1.0], "tap_pulse": "division"})

    row = {"genre": "blues", "tempo_bpm": 60.0, "beat_precision": 1.0, "beat_recall": 1.0, "beat_f_tracked_level": 1.0,
           "beat_f_drums": 1.0, "tracked_level": "annotated", "bass_notes": 0, "bass_correct": 0, "bass_unvoiced": 0}  # fmt: skip
    songs = pd.DataFrame([
        {**row, "song_id": "a", "time_signature": "12/8", "beat_f": 0.9, "beat_pulse": "dotted_quarter"},
        {**row, "song_id": "b", "time_signature": "4/4", "beat_f": 1.0, "beat_pulse": "quarter"},
    ])  # fmt: skip
    table = validity.summarize(songs, ["bass"]).set_index("group")
    assert table.loc["time_signature=12/8", "beat_pulse"] == "dotted_quarter"
    assert table.loc["time_signature=4/4", "beat_pulse"] == "quarter"
    assert table.loc["genre=blues", "beat_pulse"] == "dotted_quarter,quarter"
    lines = validity.acceptance(songs, ["bass"])
    assert "beat F-measure on 1 12/8 songs at the dotted_quarter pulse = 0.900" in " | ".join(lines)


def test_the_per_genre_cap_applies_per_composition_source():
    songs = pd.DataFrame({"song_id": [f"syn-{i:06d}" for i in range(8)], "genre": ["pop"] * 8, "split": ["test"] * 8,
                          "source": ["generated"] * 6 + ["midi_song"] * 2})  # fmt: skip
    chosen = validity.select_songs(songs, ["test"], 2)
    assert list(chosen["song_id"]) == ["syn-000000", "syn-000001", "syn-000006", "syn-000007"]
    assert len(validity.select_songs(songs.drop(columns="source"), ["test"], 2)) == 2  # manifests before sources
