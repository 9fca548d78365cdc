"""The schema (workflow/schemas/config.schema.yaml) holds every config default. Python code that keeps a
default of its own (an engine or CLI that runs without the workflow, in an env without jsonschema) must
hold the schema's, and its from_config must read every key of its section (pypsa-eur's
test/test_config_schema.py is the model). Each case below says which module keeps which defaults."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from stemlab.config import load_schema, schema_defaults
from stemlab.data import conform, features, medleydb, musdb
from stemlab.data.conform import AudioPolicy
from stemlab.data.corpora import CORPORA, SOURCE_KEYS, _split_cfg
from stemlab.data.features import FeatureSettings
from stemlab.data.segments import Activity
from stemlab.download import sources
from stemlab.synth import song, validity
from stemlab.synth.genres import GENRE_NAMES
from stemlab.synth.quality import QualityConfig
from stemlab.synth.song import SynthSettings
from stemlab.synth.sources.genrefile import SCHEMA_PATH as GENRE_SCHEMA
from stemlab.synth.validity import Selection, ValidityParams
from stemlab.taxonomy import STEMS

SCHEMA = load_schema()


def schema_node(*path: str) -> dict:
    node = SCHEMA
    for key in path:
        node = node["properties"][key]
    return node


def schema_keys(*path: str) -> set[str]:
    return set(schema_node(*path)["properties"])


def leaf_paths(value: dict, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out = set()
    for key, v in value.items():
        out |= leaf_paths(v, (*prefix, key)) if isinstance(v, dict) and v else {(*prefix, key)}
    return out


def with_value(section: dict, path: tuple[str, ...], value) -> dict:
    out = copy.deepcopy(section)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


# Each section read by a from_config: how it is read, a non-default value for every one of its keys (a
# new schema key fails test_every_key_has_a_changed_value until it gets one here), and the keys that are
# read elsewhere (with where).
# the shard plan, the job's threads, its own job, the download rules (the MIDI corpora of synth.sources)
SYNTH_ELSEWHERE = {"songs", "shard_size", "workers", "validity", "corpora"}


def _synth(section: dict):
    return SynthSettings.from_config({k: v for k, v in section.items() if k not in ("workers", "validity", "corpora")})


def _validity(section: dict):
    return ValidityParams.from_config(section), Selection.from_config(section)


CASES = {
    "synth": (
        ("synth",),
        _synth,
        {
            ("genres",): ["jazz", "pop"],
            ("duration", "min_s"): 160.0,
            ("duration", "max_s"): 200.0,
            ("tail_s",): 1.0,
            ("other_parts", "min"): 3,
            ("other_parts", "max"): 5,
            ("soundfonts",): ["/elsewhere/x.sf2"],
            ("soundfont_pools",): {"bass": ["/elsewhere/y.sf2"]},
            ("sources", "generated"): 0.5,
            ("sources", "groove"): 1.0,
            ("sources", "midi_song"): 1.0,
            ("sources", "midi_chords"): 1.0,
            ("samples", "path"): "/elsewhere/samples",
            ("samples", "table"): "/elsewhere/samples.csv",
            ("samples", "drums"): 0.5,
            ("samples", "loops"): 0.5,
            ("genre_files",): [str(Path(__file__).resolve().parents[1] / "config" / "genres" / "chamber.yaml")],
            ("outputs",): ["mix", "stems"],
            ("max_attempts",): 2,
            ("splits", "train"): 0.7,
            ("splits", "valid"): 0.2,
            ("splits", "test"): 0.3,
            ("quality", "max_pitch_share"): 0.6,
            ("quality", "max_repeats"): 4,
            ("quality", "max_span"): 30,
            ("quality", "silence_dbfs"): -70.0,
            ("quality", "max_dc"): 0.01,
            ("composer", "backend"): "learned",
            ("composer", "model"): "results/models/harmony_lm/seed-1/final.pt",
        },
    ),
    "synth.quality": (
        ("synth", "quality"),
        QualityConfig.from_config,
        {("max_pitch_share",): 0.6, ("max_repeats",): 4, ("max_span",): 30, ("silence_dbfs",): -70.0, ("max_dc",): 0.01},
    ),
    "synth.validity": (
        ("synth", "validity"),
        _validity,
        {
            ("splits",): ["valid", "test"],
            ("max_songs_per_genre",): 5,
            ("beat_tracker",): "librosa",
            ("tempo_prior",): "none",
            ("tempo_prior_margin",): 0.2,
            ("beat_window_s",): 0.05,
            ("beat_trim_s",): 2.0,
            ("stem_audio",): "wet",
            ("pitch_tolerance_semitones",): 0.25,
        },
    ),
    "data.audio": (
        ("data", "audio"),
        AudioPolicy.from_config,
        {
            ("channels",): "mono",
            ("sample_rate_mismatch",): "reject",
            ("length_mismatch",): "trim",
            ("bad_song",): "skip",
            ("flac_subtype",): "PCM_16",
        },
    ),
    "data.features": (
        ("data", "features"),
        FeatureSettings.from_config,
        {("rhythm_method",): "degara", ("key_profile",): "edma"},
    ),
    "data.activity": (
        ("data", "activity"),
        Activity.from_config,
        {("frame",): 1024, ("threshold_db",): -40.0, ("min_active_fraction",): 0.3},
    ),
}
ELSEWHERE = {"synth": SYNTH_ELSEWHERE}
PYTHON_DEFAULTS = {
    "synth": lambda: SynthSettings(),
    "synth.quality": lambda: QualityConfig(),
    "synth.validity": lambda: (ValidityParams(), Selection()),
    "data.audio": lambda: AudioPolicy(),
    "data.features": lambda: FeatureSettings(),
    "data.activity": lambda: Activity(),
}


@pytest.mark.parametrize("case", CASES)
def test_python_defaults_are_the_schema_defaults(case):
    path, build, _ = CASES[case]
    assert build(schema_defaults(*path)) == PYTHON_DEFAULTS[case]()
    assert build({}) == PYTHON_DEFAULTS[case]()


@pytest.mark.parametrize("case", CASES)
def test_every_key_has_a_changed_value(case):
    path, _, changed = CASES[case]
    defaults = schema_defaults(*path)
    expected = {p for p in leaf_paths(defaults) if p[0] not in ELSEWHERE.get(case, ())}
    expected |= {(k,) for k in schema_keys(*path) - ELSEWHERE.get(case, set()) if k not in defaults}
    assert set(changed) == expected


@pytest.mark.parametrize(
    "case, key", [pytest.param(c, k, id=f"{c}:{'.'.join(k)}") for c, (_, _, changed) in CASES.items() for k in changed]
)
def test_no_key_is_silently_ignored(case, key):
    path, build, changed = CASES[case]
    defaults = schema_defaults(*path)
    assert build(with_value(defaults, key, changed[key])) != build(defaults), f"{case}.{'.'.join(key)} is not read"


def test_the_synth_keys_read_elsewhere_exist_and_the_seed_default_agrees():
    assert SYNTH_ELSEWHERE <= schema_keys("synth")
    assert set(song.PLAN_KEYS) | set(song.NOT_SETTINGS) == SYNTH_ELSEWHERE
    assert SynthSettings().seed == schema_node("seed")["default"]


def test_python_fields_that_are_not_config_keys_are_the_documented_ones():
    quality_fields = {f for f in QualityConfig.__dataclass_fields__}
    assert quality_fields - schema_keys("synth", "quality") == {"clip_level"}
    assert set(validity.CONFIG_PARAMS) | set(Selection.KEYS) == schema_keys("synth", "validity")
    assert set(AudioPolicy.__dataclass_fields__) == schema_keys("data", "audio")
    assert set(FeatureSettings.__dataclass_fields__) == schema_keys("data", "features")
    assert set(Activity.__dataclass_fields__) == schema_keys("data", "activity")


def test_enums_are_the_schemas():
    def enum(*path: str) -> tuple:
        node = schema_node(*path)
        return tuple((node.get("items") or node)["enum"])

    assert tuple(schema_node("synth", "genres")["default"]) == GENRE_NAMES
    assert tuple(schema_node("synth", "soundfont_pools")["propertyNames"]["enum"]) == STEMS
    genre_schema = yaml.safe_load(GENRE_SCHEMA.read_text())
    assert tuple(genre_schema["properties"]["genres"]["additionalProperties"]["properties"]["base"]["enum"]) == GENRE_NAMES
    assert enum("synth", "outputs") == song.OUTPUTS
    assert tuple(schema_node("synth", "splits")["properties"]) == song.SPLITS
    assert enum("synth", "validity", "beat_tracker") == validity.BEAT_TRACKERS
    assert enum("synth", "validity", "tempo_prior") == validity.TEMPO_PRIORS
    assert enum("data", "audio", "channels") == conform.CHANNEL_POLICIES
    assert enum("data", "audio", "sample_rate_mismatch") == conform.RATE_POLICIES
    assert enum("data", "audio", "length_mismatch") == conform.LENGTH_POLICIES
    assert enum("data", "audio", "bad_song") == conform.BAD_SONG_POLICIES
    assert enum("data", "audio", "flac_subtype") == conform.FLAC_SUBTYPES
    assert enum("data", "features", "rhythm_method") == features.RHYTHM_METHODS
    assert enum("data", "features", "key_profile") == features.KEY_PROFILES


# --------------------------------------------------------------------------- corpora
# stemlab.download.sources is stdlib-only (parse time): it keeps SPLIT_DEFAULTS and the download
# defaults of each corpus; stemlab.data keeps musdb.VALID_SONGS and medleydb.COEFFICIENTS.


@pytest.mark.parametrize("corpus", list(CORPORA))
def test_each_corpus_reads_exactly_the_keys_of_its_section(corpus):
    keys = schema_keys("data", "corpora", corpus)
    assert set(SOURCE_KEYS) <= keys
    assert set(CORPORA[corpus].keys) == keys - set(SOURCE_KEYS)


@pytest.mark.parametrize("corpus", list(CORPORA))
def test_corpus_defaults_are_the_schemas(corpus):
    defaults = schema_defaults("data", "corpora", corpus)
    # what corpus_config fills in for a config that Snakemake has not filled
    filled = sources.corpus_config({}, corpus)
    assert {k: filled[k] for k in SOURCE_KEYS} == {k: defaults[k] for k in SOURCE_KEYS}
    if "split" in defaults:
        assert sources.SPLIT_DEFAULTS == defaults["split"] == _split_cfg({})
        assert _split_cfg({"split": {"seed": 1}}) == {**defaults["split"], "seed": 1}
    if corpus == "musdb18hq":
        assert list(musdb.VALID_SONGS) == defaults["valid_songs"]
    if corpus == "medleydb":
        assert medleydb.COEFFICIENTS == defaults["coefficients"]


def test_split_errors_use_the_split_defaults():
    # train 0.95 + the default valid 0.1 > 1
    assert sources.split_errors({"data": {"corpora": {"moisesdb": {"split": {"train": 0.95}}}}})
    assert not sources.split_errors({"data": {"corpora": {"moisesdb": {"split": {"train": 0.9}}}}})
