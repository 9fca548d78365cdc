"""Whole songs in process: FX re-application, stems -> mix, MIDI vs audio length, the quality gate,
the song.json contract."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from stemlab.errors import StemlabError
from stemlab.synth import mixing, quality
from stemlab.synth.render import Renderer
from stemlab.synth.song import GateRejected, SongMaker, SynthSettings, pcm24_words, quantize24, write_song
from stemlab.taxonomy import STEMS

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
pytestmark = pytest.mark.skipif(not Path(SF2).is_file(), reason="needs Debian fluid-soundfont-gm")
SETTINGS = SynthSettings(seed=11, duration_s=(5.0, 7.0), tail_s=1.5, other_parts=(2, 4), soundfonts=(SF2,))


@pytest.fixture(scope="module")
def maker():
    r = Renderer([SF2])
    yield SongMaker(SETTINGS, r)
    r.close()


@pytest.fixture(scope="module")
def songs(maker, tmp_path_factory):
    """Three songs written to disk: (song dir, song.json) each."""
    root = tmp_path_factory.mktemp("songs")
    out = []
    for index in (0, 4, 8):  # three different genres
        song = maker.make(index)
        write_song(song, root / song.meta["id"], SETTINGS.outputs)
        out.append((root / song.meta["id"], json.loads((root / song.meta["id"] / "song.json").read_text())))
    return out


def _read(path: Path) -> np.ndarray:
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == 44100
    return data


def test_reapplying_fx_from_song_json_reproduces_wet_stems_bit_for_bit(songs):
    for song_dir, meta in songs:
        for stem in meta["stems"]:
            dry = _read(song_dir / stem["files"]["dry"])
            wet = _read(song_dir / stem["files"]["wet"])
            again = quantize24(mixing.apply_stem_fx(dry, stem["fx"], meta["sample_rate"]))
            assert np.array_equal(again, wet), f"{meta['id']} {stem['name']}"
            assert not np.array_equal(dry, wet)  # the chain really processed something


def test_mix_is_the_master_bus_of_the_sum_of_the_saved_wet_stems(songs):
    """The reference generator saved stems before gain/pan (median -5.4 dB error against the mix)."""
    for song_dir, meta in songs:
        wet = [_read(song_dir / s["files"]["wet"]) for s in meta["stems"]]
        bus = mixing.sum_stems(wet)
        mix = _read(song_dir / meta["mix"])
        assert np.array_equal(quantize24(mixing.apply_master(bus, meta["master_fx"], 44100)), mix)
        # the faders carry the bus level as far as the hottest stem stays at -1 dBFS; the master trim
        # makes up only the rest
        trim = next(c["gain_db"] for c in meta["master_fx"]["chain"] if c["stage"] == "trim")
        hottest = 20 * np.log10(max(float(np.max(np.abs(w))) for w in wet))
        assert hottest <= -0.99
        assert abs(trim) < 0.01 or (trim > 0 and hottest > -1.01), (trim, hottest)
        # the dry stems (no gain, EQ, pan...) through the same master do not give the mix
        dry = mixing.sum_stems([_read(song_dir / s["files"]["dry"]) for s in meta["stems"]])
        assert not np.array_equal(quantize24(mixing.apply_master(dry, meta["master_fx"], 44100)), mix)
        assert all(len(w) == meta["n_frames"] for w in wet) and len(mix) == meta["n_frames"]


def test_dry_stems_have_no_dc_offset(songs):
    """The soundfont's sample offsets (up to 0.023 measured) are blocked before dry/<stem>.flac is written."""
    for song_dir, meta in songs:
        for stem in meta["stems"]:
            dry = _read(song_dir / stem["files"]["dry"])
            assert np.abs(dry.mean(axis=0, dtype=np.float64)).max() < 1e-4, (meta["id"], stem["name"])
            assert meta["quality"]["audio"]["stems"][stem["name"]]["dry_dc"] < 1e-4
        assert meta["render"]["dc_blocker_hz"] == 5.0


def test_midi_never_runs_past_the_audio(songs):
    for song_dir, meta in songs:
        audio_end = meta["n_frames"] / meta["sample_rate"]
        for stem in meta["stems"]:
            mid = mido.MidiFile(song_dir / stem["files"]["midi"])
            assert mid.ticks_per_beat == meta["midi"]["ticks_per_beat"]
            now, last_off, n_on = 0.0, 0.0, 0
            for msg in mid:
                now += msg.time
                if msg.type == "note_on" and msg.velocity > 0:
                    n_on += 1
                elif msg.type in ("note_off", "note_on"):
                    last_off = now
            assert n_on == stem["n_notes"]
            assert last_off <= meta["music_end_s"] + 1e-6 < audio_end
            assert mid.length <= audio_end
            assert abs(mid.length - meta["music_end_s"]) < 1e-6  # the file ends with the last bar


def test_song_json_contract(songs):
    import jsonschema

    from stemlab.synth.schema import SONG_SCHEMA

    for song_dir, meta in songs:
        jsonschema.validate(meta, SONG_SCHEMA)
        broken = json.loads(json.dumps(meta))
        del broken["arrangement"][0]["chords"]
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SONG_SCHEMA)
        for key in ("id", "corpus", "split", "sample_rate", "n_frames", "genre", "tempo_bpm", "time_signature", "key",
                    "mode", "swing", "beats", "downbeats", "beat_positions", "tatums", "metrical_levels", "tap_pulse", "arrangement", "chords", "stems", "mix", "mix_loudness_lufs",
                    "master_fx", "quality", "attempt", "versions", "render"):
            assert key in meta, key
        assert meta["corpus"] == "synthetic" and meta["id"] == song_dir.name
        assert meta["split"] in ("train", "valid", "test")
        assert isinstance(meta["time_signature"], list) and len(meta["time_signature"]) == 2
        names = [s["name"] for s in meta["stems"]]
        assert names == sorted(names, key=STEMS.index) and "bass" in names
        assert ("drums" in names) == (meta["genre_preset"]["drums_prob"] > 0)  # classical has no drum kit
        for s in meta["stems"]:
            assert s["category"] in STEMS and s["role"] in ("drums", "bass", "harmony", "melody", "counter", "percussion")
            assert set(s["files"]) == {"wet", "dry", "midi"} and all((song_dir / f).is_file() for f in s["files"].values())
            assert math.isfinite(s["loudness_lufs"]) and math.isfinite(s["dry_loudness_lufs"])
            assert s["soundfont"] == Path(SF2).name and s["fx"]["chain"][0]["stage"] == "trim"
        assert -25 < meta["mix_loudness_lufs"] < -5
        assert meta["versions"]["soundfonts"][0]["sha256"]
        assert json.dumps(meta, allow_nan=False)


def test_outputs_subset_changes_no_other_byte(maker, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    write_song(maker.make(2), full, SETTINGS.outputs)
    few = SongMaker(dataclasses.replace(SETTINGS, outputs=("mix", "midi")), maker.renderer, maker.digests)
    write_song(few.make(2), part, few.settings.outputs)
    assert not (part / "wet").exists() and not (part / "dry").exists()
    assert (full / "mix.flac").read_bytes() == (part / "mix.flac").read_bytes()
    a, b = json.loads((full / "song.json").read_text()), json.loads((part / "song.json").read_text())
    for s in b["stems"]:
        assert s["files"]["wet"] is None and s["files"]["dry"] is None
        s["files"] = None
    for s in a["stems"]:
        s["files"] = None
    assert a == b


def test_quality_gate_rerolls_with_a_derived_seed(maker, monkeypatch):
    real = quality.symbolic
    calls = []

    def reject_first(score, cfg):
        calls.append(score)
        reasons, metrics = real(score, cfg)
        return (["forced rejection for the test"] if len(calls) == 1 else reasons), metrics

    monkeypatch.setattr(quality, "symbolic", reject_first)
    song = maker.make(3)
    assert song.meta["attempt"] == 1 and song.meta["quality"]["attempt"] == 1
    assert song.meta["quality"]["rejected"] == [{"attempt": 0, "stage": "symbolic", "reasons": ["forced rejection for the test"]}]
    monkeypatch.setattr(quality, "symbolic", real)
    direct = maker.attempt(3, 1)  # the re-roll is exactly attempt 1 of this song
    assert np.array_equal(direct.mix, song.mix)
    assert [p.notes for p in maker.compose(3, 0).parts] != [p.notes for p in maker.compose(3, 1).parts]


def test_audio_gate_rejects_clipping_and_silence(maker, monkeypatch):
    score = maker.compose(1, 0)
    loud = {p.name: {"dry": (1.2, 0.0), "wet": (0.5, 0.0)} for p in score.parts}
    wet = {p.name: np.full((44100 * 20, 2), 0.1, np.float32) for p in score.parts}
    wet["bass"][:] = 0.0
    mix = np.full((44100 * 20, 2), 0.0, np.float32)
    reasons, _ = quality.audio(score, 1.0, loud, wet, mix, quality.QualityConfig())
    text = " | ".join(reasons)
    assert "dry stem drums clips" in text and "wet stem bass is silent" in text and "mix is silent" in text


def test_a_song_failing_every_attempt_is_a_one_line_error(maker, monkeypatch):
    def always(index, attempt):
        raise GateRejected("audio", [f"mix clips (attempt {attempt})"])

    monkeypatch.setattr(maker, "attempt", always)
    with pytest.raises(StemlabError) as exc:
        maker.make(5)
    msg = str(exc.value)
    assert "syn-000005" in msg and "synth.max_attempts" in msg and "\n" not in msg


def test_master_bus_releases_are_timed_to_the_beat(songs):
    """Glue compressor recovers over 1-1.25 beats, the limiter over about half a beat (fixed 100-400 ms
    releases made loud electronic masters swell into the off-beats)."""
    for _, meta in songs:
        beat_ms = 60_000.0 / meta["tempo_bpm"]  # the annotated beat (a dotted quarter in 6/8)
        stages = {c["stage"]: c for c in meta["master_fx"]["chain"]}
        assert beat_ms - 0.01 <= stages["glue"]["release_ms"] <= 1.25 * beat_ms + 0.01
        assert 0.45 * beat_ms - 0.01 <= stages["limiter"]["release_ms"] <= 0.55 * beat_ms + 0.01


def test_pcm24_words_write_the_same_flac_as_floats(tmp_path):
    from stemlab.audio import read_audio, write_audio

    rng = np.random.Generator(np.random.PCG64(3))
    raw = rng.normal(0, 0.4, (44_100, 2)).astype(np.float32)
    raw[:2] = [[-1.0, 1.0], [1.5, -1.5]]  # full scale and beyond: quantize24 clips to [-1, 1 - 2^-23]
    q = quantize24(raw)
    write_audio(tmp_path / "f.flac", q, 44_100)
    write_audio(tmp_path / "i.flac", pcm24_words(q), 44_100)
    assert (tmp_path / "f.flac").read_bytes() == (tmp_path / "i.flac").read_bytes()
    assert np.array_equal(read_audio(tmp_path / "i.flac")[0], q)


def test_finish_stem_is_the_separate_passes_in_one():
    """finish_stem (DC blocker or fader/pan, statistics, quantize24, chunk by chunk) gives the bytes and
    statistics of the passes over the whole stem one after another, on a stem of several chunks
    with a DC offset, a clipping sample and an odd length."""
    from stemlab.synth.render import DCBlocker, remove_dc
    from stemlab.synth.song import STEM_CHUNK, finish_stem

    rng = np.random.default_rng(11)
    x = (rng.standard_normal((3 * STEM_CHUNK + 1001, 2)) * 0.3 + 0.02).astype(np.float32)
    x[STEM_CHUNK + 5, 1] = 1.4
    ref = remove_dc(x.copy(), 44_100)
    ref_stats = quality.signal_stats(ref)
    ours = x.copy()
    assert finish_stem(ours, dc=DCBlocker(44_100)) == ref_stats
    assert np.array_equal(ours, quantize24(ref))
    gains = mixing.stem_gains({"pan": -0.37, "fader_db": 2.5})
    ref = mixing.scale_channels(x, gains)
    ours = x.copy()
    assert finish_stem(ours, gains=gains) == quality.signal_stats(ref)
    assert np.array_equal(ours, quantize24(ref))
    assert finish_stem(np.zeros((0, 2), np.float32)) == (0.0, 0.0)
    with pytest.raises(ValueError, match="float32"):
        finish_stem(x.astype(np.float64))


def test_chains_run_on_the_stem_layout_give_the_samples_of_channels_first_processing():
    """_process hands pedalboard (frames, 2) stems as they are: every plugin type gives the samples of
    the channels-first call on a transposed copy; a 1-frame clip (shorter than its channel count) too."""
    import pedalboard

    chain = [
        {"stage": "trim", "type": "Gain", "gain_db": -2.0},
        {"stage": "eq", "type": "HighpassFilter", "cutoff_frequency_hz": 40.0},
        {"stage": "eq", "type": "LowShelfFilter", "cutoff_frequency_hz": 200.0, "gain_db": 1.5, "q": 0.7071},
        {"stage": "eq", "type": "PeakFilter", "cutoff_frequency_hz": 1000.0, "gain_db": -3.0, "q": 1.2},
        {"stage": "eq", "type": "HighShelfFilter", "cutoff_frequency_hz": 7000.0, "gain_db": 2.0, "q": 0.7071},
        {"stage": "compressor", "type": "Compressor", "threshold_db": -18.0, "ratio": 3.0, "attack_ms": 5.0, "release_ms": 80.0},
        {"stage": "saturation", "type": "Distortion", "drive_db": 6.0},
        {"stage": "chorus", "type": "Chorus", "rate_hz": 0.8, "depth": 0.3, "centre_delay_ms": 7.0, "feedback": 0.1, "mix": 0.4},
        {"stage": "delay", "type": "Delay", "delay_seconds": 0.125, "feedback": 0.3, "mix": 0.25},
        {"stage": "reverb", "type": "Reverb", "room_size": 0.6, "damping": 0.5, "wet_level": 0.2, "dry_level": 0.5, "width": 0.7, "freeze_mode": 0.0},
        {"stage": "limiter", "type": "BrickwallLimiter", "ceiling_db": -1.0, "release_ms": 100.0, "lookahead_ms": 5.0, "true_peak": False},
    ]
    assert {c["type"] for c in chain} == set(mixing.PLUGINS)
    x = (np.random.default_rng(4).standard_normal((44_100, 2)) * 0.2).astype(np.float32)
    x[:, 1] *= 0.5  # the channels differ
    for clip in (x, x[:1]):
        ours = mixing.process_chain(clip, {"chain": chain, "buffer_size": 8192}, 44_100)
        ref = mixing.build_board(chain)(np.ascontiguousarray(clip.T), 44_100, buffer_size=8192, reset=True).T
        assert ours.shape == clip.shape and ours.dtype == np.float32 and ours.flags.c_contiguous
        assert np.array_equal(ours, ref)
    assert isinstance(mixing.build_board(chain), pedalboard.Pedalboard)
