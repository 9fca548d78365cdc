"""User-defined genres (synth.genre_files): schema, what the engine checks beyond it, songs of such a genre,
and genres without drums (classical)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stemlab import seeding
from stemlab.errors import StemlabError
from stemlab.synth.compose import ComposeParams, compose
from stemlab.synth.genres import GENRES
from stemlab.synth.schema import SONG_SCHEMA
from stemlab.synth.song import SynthSettings
from stemlab.synth.sources.genrefile import load_genre_files
from stemlab.synth.validity import genre_tempo_range
from tests.workflow_utils import REPO

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
needs_sf2 = pytest.mark.skipif(not Path(SF2).is_file(), reason="needs Debian fluid-soundfont-gm")
EXAMPLE = REPO / "config" / "genres" / "chamber.yaml"

# a genre from scratch (no base): every required key, the schema's defaults for the rest
FOLK = {
    "tempo": [90, 110],
    "meters": {"3/4": 1.0},
    "modes": {"major": 1.0},
    "chords": {"major": {"first": {"I": {"IV": 1, "V": 2}, "IV": {"I": 1, "V": 1}, "V": {"I": 3}}, "tonic": "I", "starts": {"I": 1}}},
    "drums": 0.5,
    "grooves": {"3/4": [{"kick": "X...........", "snare": "....x...x...", "closed_hat": "x.x.x.x.x.x."}]},
    "bass_programs": [32],
    "bass_styles": {"root_fifth": 1},
    "comp_styles": {"strum": 1, "arpeggio": 1},
    "pool": [{"program": 25, "roles": ["harmony"]}, {"program": 73, "roles": ["melody"]}, {"program": 21, "roles": ["counter", "harmony"]}],
    "melody_rhythm": {"x...": 1, "x.x.": 2},
    "melody_steps": {"1": 3, "-1": 3, "2": 1, "-2": 1},
}


def _write(tmp_path: Path, genres: dict, name: str = "genres.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"genres": genres}))
    return path


def _song(genre, seed: int):
    return compose(genre, ComposeParams((8.0, 10.0), (2, 3)), [SF2], lambda *k: seeding.rng(seed, "t", *k))


def test_a_genre_from_scratch_takes_the_schema_defaults(tmp_path):
    folk = load_genre_files([_write(tmp_path, {"folk": FOLK})])["folk"]
    assert folk.tempo == (90.0, 110.0) and folk.meters == {"3/4": 1.0}
    assert folk.swing == (0.5, 0.5) and folk.swing_unit == "16th" and folk.tonics == (1.0,) * 12  # defaults
    assert folk.compound_tempo == (48.0, 72.0) and folk.velocity == (70, 110) and folk.drum_kits == (0,)
    assert folk.grooves["3/4"][0][36] == "X..........." and folk.melody_steps[-1] == 3.0
    assert folk.grammars["major"].first["V"] == {"I": 3.0}
    assert folk.mix == GENRES["pop"].mix.__class__()  # the engine's MixStyle
    for seed in range(3):
        score = _song(folk, seed)
        assert str(score.meter) == "3/4" and 90 <= score.tempo.beat_bpm(score.meter) <= 110
        assert {p.instrument.program for p in score.parts if not p.instrument.is_drum} <= {32, 25, 73, 21}


def test_a_genre_with_a_base_replaces_only_what_it_gives():
    chamber = load_genre_files([EXAMPLE])["chamber"]
    classical = GENRES["classical"]
    assert chamber.tempo == (56.0, 96.0) and chamber.drums_prob == 0.0
    assert chamber.grammars == classical.grammars and chamber.melody_rhythm == classical.melody_rhythm
    assert chamber.mix.reverb_wet == (0.25, 0.4) and chamber.mix.comp_ratio == classical.mix.comp_ratio


def test_drum_probability(tmp_path):
    folk = load_genre_files([_write(tmp_path, {"folk": FOLK})])["folk"]
    with_drums = [any(p.role == "drums" for p in _song(folk, seed).parts) for seed in range(12)]
    assert 0 < sum(with_drums) < 12  # drums: 0.5
    for seed in range(6):  # the classical preset and a genre file's `drums: 0` never have a drum stem
        assert not any(p.role == "drums" for p in _song("classical", seed).parts)
        assert not any(p.role == "drums" for p in _song(load_genre_files([EXAMPLE])["chamber"], seed).parts)
        assert any(p.role == "drums" for p in _song("pop", seed).parts)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tempo_bpm": [90, 100]}, "tempo_bpm (unknown key)"),
        ({"meters": {"7/8": 1}}, "meters"),
        ({"grooves": {"3/4": [{"kick": "X..............."}]}}, "16 steps, a 3/4 bar has 12"),
        ({"grooves": {"3/4": [{"gong": "X..........."}]}}, "unknown drum key 'gong'"),
        ({"bass_styles": {"slap": 1}}, "unknown style 'slap'"),
        ({"bass_programs": [0]}, "0 is not a bass program"),
        ({"pool": [{"program": 3, "roles": ["harmony"]}]}, "program 3 is not in"),
        ({"modes": {"minor": 1}}, "minor has no grammar"),
        ({"chords": {"major": {"first": {"I": {"Q": 1}}, "tonic": "I", "starts": {"I": 1}}}}, "bad roman numeral 'Q'"),
        ({"meters": {"3/4": 1, "4/4": 1}}, "meter 4/4 has no drum patterns"),
    ],
)
def test_a_bad_genre_fails_with_one_line_naming_the_file(tmp_path, change, message):
    path = _write(tmp_path, {"folk": {**FOLK, **change}})
    with pytest.raises(StemlabError) as err:
        load_genre_files([path])
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


def test_names_must_be_new_and_unique(tmp_path):
    with pytest.raises(StemlabError, match="built-in preset"):
        load_genre_files([_write(tmp_path, {"pop": {"base": "rock"}})])
    a, b = _write(tmp_path, {"folk": FOLK}, "a.yaml"), _write(tmp_path, {"folk": FOLK}, "b.yaml")
    with pytest.raises(StemlabError, match="defined twice"):
        load_genre_files([a, b])
    with pytest.raises(StemlabError, match="required"):
        load_genre_files([_write(tmp_path, {"folk": {"tempo": [1, 2]}})])
    with pytest.raises(StemlabError, match="unknown genre folk"):
        SynthSettings.from_config({"genres": ["folk"]})


def test_validity_tempo_prior_of_a_genre_file_comes_from_song_json():
    recorded = {"builtin": False, "tempo": [56.0, 96.0], "compound_tempo": [40.0, 60.0], "drums_prob": 0.0}
    assert genre_tempo_range("chamber", "3/4", 0.0, recorded) == (56.0, 96.0)
    assert genre_tempo_range("chamber", "6/8", 0.1, recorded) == pytest.approx((36.0, 66.0))
    assert genre_tempo_range("chamber", "3/4", 0.0) is None


@needs_sf2
def test_songs_of_a_genre_file_through_the_cli(tmp_path):
    import jsonschema
    import subprocess
    import sys

    path = _write(tmp_path, {"folk": {**FOLK, "drums": 0}})
    out = tmp_path / "shard"
    cmd = [sys.executable, "-m", "stemlab.synth", "generate", "--seed", "3", "--count", "2", "--out", str(out),
           "--genre", "folk", "classical", "--genre-file", str(path), "--min-duration", "3", "--max-duration", "4",
           "--tail", "0.5", "--min-parts", "2", "--max-parts", "2", "--outputs", "mix"]  # fmt: skip
    proc = subprocess.run(cmd, env={"PYTHONPATH": str(REPO / "scripts"), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metas = [json.loads(p.read_text()) for p in sorted(out.glob("syn-*/song.json"))]
    assert sorted(m["genre"] for m in metas) == ["classical", "folk"]
    for meta in metas:
        jsonschema.validate(meta, SONG_SCHEMA)
        assert meta["composition_source"] == "generated" and "drums" not in [s["role"] for s in meta["stems"]]
        assert meta["generator"]["genre_files"] == (["genres.yaml"])
        assert meta["genre_preset"]["builtin"] == (meta["genre"] == "classical")
    folk = next(m for m in metas if m["genre"] == "folk")
    assert folk["genre_preset"]["tempo"] == [90.0, 110.0] and folk["time_signature"] == [3, 4]
