"""MIDI corpora as composition sources (synth.sources): reading files, estimated chords, each source's songs
and their annotations, and the errors of a source without its corpus."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from stemlab.download.fetch import sha256_file
from stemlab.errors import StemlabError
from stemlab.synth.render import Renderer
from stemlab.synth.schema import SONG_SCHEMA
from stemlab.synth.song import SongMaker, SynthSettings
from stemlab.synth.sources import midifile
from stemlab.synth.sources.midisource import SourceSettings, category_of, source_for
from stemlab.synth.theory import parse_roman
from tests.midi_corpus_fixture import groove_corpus, lakh_corpus

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
needs_sf2 = pytest.mark.skipif(not Path(SF2).is_file(), reason="needs Debian fluid-soundfont-gm")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("midi")
    return {"groove": str(groove_corpus(root / "groove")), "lakh": str(lakh_corpus(root / "lakh"))}


def _settings(source: str, corpora: dict, seed: int = 3) -> SynthSettings:
    section = {"sources": {"generated": 0, source: 1}, "duration": {"min_s": 4.0, "max_s": 6.0}, "tail_s": 0.5,
               "other_parts": {"min": 2, "max": 3}, "soundfonts": [SF2], "outputs": ["midi"]}  # fmt: skip
    return SynthSettings.from_config(section, seed, corpora)


@pytest.fixture(scope="module")
def renderer():
    with Renderer([SF2]) as r:
        yield r


def test_reading_a_file_keeps_its_tempo_map_and_tracks(corpora):
    song = midifile.read_midi(Path(corpora["lakh"]) / "a" / "song_a.mid")
    assert song.us_per_quarter == 600_000 and str(song.meter) == "4/4" and song.bars == 8
    assert [(t.program, t.is_drum) for t in song.tracks] == [(0, False), (33, False), (73, False), (0, True)]
    with pytest.raises(midifile.MidiUnsupported, match="2 tempi"):
        midifile.read_midi(Path(corpora["lakh"]) / "b" / "song_b.mid")
    bad = Path(corpora["lakh"]).parent / "bad.mid"
    bad.write_bytes(b"MThd not really")
    with pytest.raises(midifile.MidiUnsupported, match="unreadable"):
        midifile.read_midi(bad)


def test_corpus_listing(corpora, tmp_path):
    # the Groove MIDI Dataset's info.csv: beats in the engine's meters, not fills
    assert midifile.corpus_files(corpora["groove"]) == (
        "drummer1/session1/1_funk_96_beat_4-4.mid", "drummer1/session1/2_rock_120_beat_4-4.mid",
        "drummer1/session1/3_jazz_100_beat_3-4.mid",
    )  # fmt: skip
    assert midifile.corpus_files(corpora["lakh"]) == ("a/song_a.mid", "b/song_b.mid", "c/song_c.mid")
    with pytest.raises(midifile.MidiUnsupported, match="leaves the corpus folder"):
        midifile.safe_join(corpora["groove"], "../lakh/a/song_a.mid")


def test_chords_and_key_estimated_from_the_notes(corpora):
    song = midifile.read_midi(Path(corpora["lakh"]) / "c" / "song_c.mid")  # I vi IV V in G major
    pitched = [n for t in song.tracks if not t.is_drum for n in t.notes]
    tonic, mode = midifile.estimate_key(midifile.pitch_class_weights(pitched, 0, song.end_tick))
    assert (tonic, mode) == (7, "major")
    assert midifile.chord_tokens(song, tonic, mode, song.meter.bar_ticks) == ["I", "vi", "IV", "V"] * 2
    for mode in ("major", "minor"):  # every root and quality survives the trip through a roman numeral
        for root in range(12):
            for quality in midifile.CHORD_QUALITIES:
                chord = parse_roman(midifile.roman_token((5 + root) % 12, quality, 5, mode), mode)
                assert (chord.root_pc(5), chord.quality) == ((5 + root) % 12, quality)


def test_gm_families():
    assert [category_of(p) for p in (0, 9, 19, 27, 33, 41, 48, 56, 66, 73, 81, 105, 115, 53)] == [
        "piano", "percussion", "other_keys", "guitar", "bass", "bowed_strings", "bowed_strings", "wind", "wind",
        "wind", "other_keys", "other_plucked", "percussion", "other"]  # fmt: skip


def test_source_weights_and_errors(corpora, tmp_path):
    sources = SourceSettings.from_config({"generated": 1, "groove": 1, "midi_song": 2})
    drawn = [source_for(4, sources, i) for i in range(400)]
    counts = {s: drawn.count(s) for s in ("generated", "groove", "midi_song", "midi_chords")}
    assert counts["midi_chords"] == 0 and 70 < counts["generated"] < 130 and 160 < counts["midi_song"] < 240
    assert drawn == [source_for(4, sources, i) for i in range(400)]
    with pytest.raises(StemlabError, match="unknown source 'lakh'"):
        SourceSettings.from_config({"lakh": 1})
    with pytest.raises(StemlabError, match="at least one above 0"):
        SourceSettings.from_config({"generated": 0})
    with pytest.raises(StemlabError, match="synth.corpora.groove.path"):
        SourceSettings.from_config({"groove": 1}).check()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StemlabError, match="no MIDI files"):
        SourceSettings.from_config({"midi_song": 1}, {"lakh": str(tmp_path / "empty")}).check()


def _beats_follow_the_tempo(meta: dict, us_per_quarter: int) -> None:
    beat_s = us_per_quarter / 1e6 * {"quarter": 1, "dotted_quarter": 1.5}[meta["beat_unit"]]
    assert meta["midi"]["us_per_quarter"] == us_per_quarter
    assert np.allclose(np.diff(meta["beats"]), beat_s, atol=2e-6)
    per_bar = meta["beats_per_bar"]
    assert meta["downbeats"] == meta["beats"][::per_bar]


@needs_sf2
def test_groove_songs_play_the_files_drums_in_its_meter_and_tempo(corpora, renderer):
    maker = SongMaker(_settings("groove", corpora), renderer)
    for index in range(3):
        song = maker.make(index)
        meta = song.meta
        jsonschema.validate(meta, SONG_SCHEMA)
        sf = meta["composition_file"]
        assert meta["composition_source"] == "groove" and sf["corpus"] == "groove" and sf["chords"] == "generated"
        assert sf["sha256"] == sha256_file(Path(corpora["groove"]) / sf["path"])
        bpm = int(Path(sf["path"]).name.split("_")[2])
        assert meta["tempo_bpm"] == pytest.approx(bpm, abs=1e-3) and meta["swing"]["ratio"] == 0.5
        assert meta["time_signature"] == ([3, 4] if "3-4" in sf["path"] else [4, 4])
        _beats_follow_the_tempo(meta, midifile.read_midi(Path(corpora["groove"]) / sf["path"]).us_per_quarter)
        drums = next(s for s in meta["stems"] if s["role"] == "drums")
        import mido

        pitches = {m.note for m in mido.MidiFile(file=__import__("io").BytesIO(song.midi["drums"])).tracks[-1] if m.type == "note_on"}
        assert pitches == {36, 38, 42}, pitches  # the TD-11's key 22 played as the GM closed hat
        assert drums["n_notes"] > 0


@needs_sf2
def test_midi_songs_are_the_files_score(corpora, renderer):
    maker = SongMaker(_settings("midi_song", corpora), renderer)
    seen = set()
    for index in range(4):
        meta = maker.make(index).meta
        jsonschema.validate(meta, SONG_SCHEMA)
        sf = meta["composition_file"]
        seen.add(sf["path"])
        assert sf["path"] != "b/song_b.mid" and all(s.startswith("b/song_b.mid: 2 tempi") for s in sf["skipped"])
        stems = {s["name"]: s for s in meta["stems"]}
        assert set(stems) == {"bass", "drums", "piano", "wind"}
        assert stems["wind"]["role"] == "melody" and stems["wind"]["program"] == 73 and stems["bass"]["program"] == 33
        assert sf["chords"] == "estimated" and [c["roman"] for c in meta["chords"]][:2] in (["I", "vi"], ["III", "i"])
        file = midifile.read_midi(Path(corpora["lakh"]) / sf["path"])
        _beats_follow_the_tempo(meta, file.us_per_quarter)
        assert 4.0 - 3 <= meta["music_end_s"] <= 6.0 + 3  # whole bars near the drawn length
    assert seen == {"a/song_a.mid", "c/song_c.mid"}


@needs_sf2
def test_midi_chords_songs_take_the_files_progression(corpora, renderer):
    maker = SongMaker(_settings("midi_chords", corpora), renderer)
    for index in range(3):
        meta = maker.make(index).meta
        jsonschema.validate(meta, SONG_SCHEMA)
        sf = meta["composition_file"]
        tonic = {"a/song_a.mid": "C", "c/song_c.mid": "G"}[sf["path"]]
        assert meta["composition_source"] == "midi_chords" and sf["chords"] == "estimated" and meta["key"] == tonic and meta["mode"] == "major"
        assert {c["roman"] for c in meta["chords"]} <= {"I", "vi", "IV", "V"}
        cycle = ["I", "vi", "IV", "V"]
        last = len(meta["arrangement"]) - 1
        for section in meta["arrangement"]:  # within a section the chords follow the file's bars (the song ends on I)
            prog = section["progression"][: -1 if section["index"] == last else None]
            assert all(b == cycle[(cycle.index(a) + 1) % 4] for a, b in zip(prog, prog[1:])), prog


@pytest.mark.slow
def test_the_workflow_fetches_a_corpus_only_for_a_source_with_weight(corpora, tmp_path):
    from tests.test_synth_config import command, shell_commands

    overlay = {"synth": {"sources": {"groove": 1.0}, "corpora": {"groove": {"path": corpora["groove"]}}}}
    commands = shell_commands(tmp_path / "run", overlay, "synth")
    argv = command(commands, "generate", "shard-00000")
    assert argv[argv.index("--corpus") + 1] == "groove=resources/corpora/groove"
    assert "corpora" not in json.loads(argv[argv.index("--config") + 1])
    extract = command(commands, "corpus", "--name", "groove")
    assert extract[extract.index("--path") + 1] == corpora["groove"]
    plain = shell_commands(tmp_path / "plain", {}, "synth")
    assert "--corpus" not in command(plain, "generate", "shard-00000")
    assert not [c for c in plain if "--name" in c and "groove" in c]
