"""The synth rules hand their jobs one `--config` JSON: what the CLIs build from it (and from flags given by
hand), what the rules put in it, and one-line errors for a bad one."""

from __future__ import annotations

import argparse
import json
import shlex

import pytest

from stemlab.errors import StemlabError
from stemlab.synth import __main__ as synth_cli
from stemlab.synth import analysis_cli
from stemlab.synth.quality import QualityConfig
from stemlab.synth.song import SynthSettings
from stemlab.synth.validity import Selection, ValidityParams
from tests.workflow_utils import snakemake_in

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def shell_commands(workdir, overlay: dict, *targets: str) -> list[list[str]]:
    """The shell commands (as argv lists) a dry run of `targets` plans on the smoke config plus `overlay`."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = snakemake_in(workdir, overlay, *targets, "-n", "-p", "--forceall")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    lines = [line.removeprefix("Shell command: ") for line in out.stdout.splitlines() if line.startswith("Shell command: ")]
    return [shlex.split(line.split(" > ", 1)[0]) for line in lines]


def command(commands: list[list[str]], *words: str) -> list[str]:
    found = [c for c in commands if all(w in c for w in words)]
    assert len(found) == 1, f"{len(found)} commands with {words}"
    return found[0]


def generate_args(argv: list[str]) -> argparse.Namespace:
    return synth_cli.build_parser().parse_args(["generate", "--out", "x", *argv])


def settings_of(argv: list[str]) -> SynthSettings:
    cfg = synth_cli.generate_config(generate_args(argv))
    seed = cfg.pop("seed", None)
    for key in ("songs", "shard_size"):
        cfg.pop(key, None)
    return SynthSettings.from_config(cfg, seed)


def validity_section(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser()
    analysis_cli.register(parser.add_subparsers(required=True))
    args = parser.parse_args(["validity", "--manifest", "m", "--out", "o", "--songs-out", "s", *argv])
    return analysis_cli.validity_config(args)


OVERLAY = {
    "seed": 7,
    "synth": {
        "genres": ["jazz", "pop"],
        "tail_s": 2,  # an int in YAML is still the float the flags gave
        "splits": {"test": 0.2, "valid": 0.2, "train": 0.6},
        "quality": {"max_span": 40},
        "validity": {"beat_trim_s": 2.0, "stem_audio": "wet", "max_songs_per_genre": 3},
    },
}


@pytest.fixture(scope="module")
def synth_commands(tmp_path_factory):
    return shell_commands(tmp_path_factory.mktemp("synth") / "run", OVERLAY, "synth")


def _word(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_the_shard_job_gets_the_settings_of_its_config(synth_commands):
    argv = command(synth_commands, "generate", "shard-00000")
    section = json.loads(_word(argv, "--config"))
    # only what can change a song: not the job's threads, not the validity job's section
    assert "workers" not in section and "validity" not in section
    assert section["seed"] == 7 and section["soundfonts"] == [SF2]
    args = synth_cli.build_parser().parse_args(argv[3:])
    cfg = synth_cli.generate_config(args)
    assert (cfg["songs"], cfg["shard_size"]) == (4, 2)
    settings = SynthSettings.from_config({k: v for k, v in cfg.items() if k != "seed"}, cfg["seed"])
    assert settings == SynthSettings(
        seed=7,
        genres=("jazz", "pop"),
        duration_s=(10.0, 15.0),
        tail_s=2.0,
        other_parts=(2, 4),
        soundfonts=(SF2,),
        splits=(("train", 0.6), ("valid", 0.2), ("test", 0.2)),  # in split order, whatever the config's
        quality=QualityConfig(max_span=40),
    )


def test_the_validity_job_gets_synth_validity(synth_commands):
    argv = command(synth_commands, "validity")
    section = json.loads(_word(argv, "--config"))
    assert section["beat_trim_s"] == 2.0 and section["splits"] == ["train", "valid", "test"]
    section = validity_section(["--config", _word(argv, "--config")])
    assert ValidityParams.from_config(section) == ValidityParams(beat_trim_s=2.0, stem_audio="wet")
    assert Selection.from_config(section) == Selection(("train", "valid", "test"), 3)


def test_edits_that_cannot_change_a_song_leave_the_shard_job_as_it_is(synth_commands, tmp_path):
    overlay = json.loads(json.dumps(OVERLAY))
    overlay["synth"]["workers"] = 3
    overlay["synth"]["validity"].update(beat_tracker="librosa", splits=["test"])
    other = shell_commands(tmp_path / "run", overlay, "synth")
    before = command(synth_commands, "generate", "shard-00000")
    after = command(other, "generate", "shard-00000")
    assert _word(after, "--config") == _word(before, "--config")
    assert _word(command(other, "validity"), "--config") != _word(command(synth_commands, "validity"), "--config")


def test_flags_override_the_config_only_when_given():
    config = json.dumps({"seed": 3, "tail_s": 3.0, "duration": {"min_s": 5.0, "max_s": 9.0}, "quality": {"max_span": 30}})
    s = settings_of(["--config", config, "--min-duration", "6", "--tail", "1", "--quality", "max_repeats=4"])
    assert (s.seed, s.duration_s, s.tail_s) == (3, (6.0, 9.0), 1.0)
    assert s.quality == QualityConfig(max_span=30, max_repeats=4)
    s = settings_of(["--config", config, "--seed", "9", "--splits", "train=0.5,test=0.5"])
    assert (s.seed, s.duration_s, s.splits) == (9, (5.0, 9.0), (("train", 0.5), ("test", 0.5)))


def test_without_config_or_flags_the_engine_defaults_apply():
    assert settings_of([]) == SynthSettings()
    assert ValidityParams.from_config(validity_section([])) == ValidityParams()
    assert Selection.from_config(validity_section([])) == Selection()
    section = validity_section(["--config", '{"beat_tracker": "librosa", "splits": ["valid"]}', "--splits", "test", "train"])
    assert ValidityParams.from_config(section).beat_tracker == "librosa"
    assert Selection.from_config(section).splits == ("test", "train")


def test_config_may_be_a_json_file(tmp_path):
    path = tmp_path / "synth.json"
    path.write_text(json.dumps({"seed": 5, "other_parts": {"min": 3, "max": 5}}))
    s = settings_of(["--config", str(path)])
    assert (s.seed, s.other_parts) == (5, (3, 5))


@pytest.mark.parametrize(
    "config, message",
    [
        ("{seed: 1}", r"^--config is not valid JSON \("),
        ("[1]", r"^--config must be a JSON object"),
        ("no/such/file.json", r"^--config: no/such/file.json is neither inline JSON nor an existing file"),
        ('{"workers": 2}', r"^synth.workers: unknown key; synth takes "),
        ('{"quality": {"max_spam": 3}}', r"^synth.quality.max_spam: unknown key"),
        ('{"duration": {"min_s": "long"}}', r"^synth: could not convert"),
        ('{"genres": ["polka"]}', r"^unknown genre polka"),
    ],
)
def test_a_bad_config_is_one_line(config, message):
    with pytest.raises(StemlabError, match=message) as err:
        settings_of(["--config", config])
    assert "\n" not in str(err.value)


def test_a_bad_validity_config_is_one_line(tmp_path):
    bad = tmp_path / "v.json"
    bad.write_text("{")
    with pytest.raises(StemlabError, match=r"^--config: .*v.json is not valid JSON"):
        validity_section(["--config", str(bad)])
    with pytest.raises(StemlabError, match=r"^synth.validity.beat_tracer: unknown key"):
        ValidityParams.from_config(validity_section(["--config", '{"beat_tracer": "x"}']))
    with pytest.raises(StemlabError, match=r"synth.validity.beat_tracker='x' is not one of"):
        ValidityParams.from_config(validity_section(["--beat-tracker", "x"]))
