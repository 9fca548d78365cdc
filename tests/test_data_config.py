"""The data rules hand their jobs one `--config` JSON: what the rules put in it, what the data CLI and the
from_config constructors make of it, and one-line errors for a bad one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stemlab.config import load_config
from stemlab.data.conform import AudioPolicy
from stemlab.data.corpora import CORPORA
from stemlab.data.features import FeatureSettings
from stemlab.data.segments import Activity, Window, segments_config
from stemlab.errors import StemlabError, json_config_arg
from tests.test_synth_config import command, shell_commands
from tests.workflow_utils import REPO, SMOKE


def _config(argv: list[str]) -> dict:
    return json.loads(argv[argv.index("--config") + 1])


@pytest.fixture(scope="module")
def data_commands(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for name in ("moises", "medley"):
        (src / name).mkdir()
    overlay = {
        "data": {
            "corpora": {
                "moisesdb": {"enabled": True, "path": str(src / "moises"), "shards": 2, "split": {"seed": 7}},
                "medleydb": {"enabled": True, "path": str(src / "medley"), "shards": 1, "coefficients": "stft"},
            },
            "audio": {"bad_song": "skip", "flac_subtype": "PCM_16"},
            "features": {"key_profile": "edma"},
            "activity": {"threshold_db": -45.0},
        }
    }
    return shell_commands(tmp_path_factory.mktemp("data") / "run", overlay, "data")


def test_canonical_stems_gets_shards_corpus_and_audio(data_commands):
    cfg = _config(command(data_commands, "stems", "moisesdb", "shard-00001"))
    assert set(cfg) == {"shards", "corpus", "audio"} and cfg["shards"] == 2
    # where the corpus comes from is extract_corpus's business, not the job's
    assert cfg["corpus"] == {"shards": 2, "split": {"seed": 7, "train": 0.8, "valid": 0.1}}
    assert AudioPolicy.from_config(cfg["audio"]) == AudioPolicy(flac_subtype="PCM_16", bad_song="skip")
    medley = _config(command(data_commands, "stems", "medleydb"))["corpus"]
    assert medley["coefficients"] == "stft" and CORPORA["medleydb"].check_config(medley) == medley


def test_the_other_data_jobs_get_their_sections(data_commands):
    assert _config(command(data_commands, "synthetic", "shard-00000")) == {"bad_song": "skip"}
    features = _config(command(data_commands, "features", "results/data/stems/medleydb/shard-00000"))
    assert FeatureSettings.from_config(features) == FeatureSettings("degara", "edma")  # smoke: degara
    windows, activity = segments_config(_config(command(data_commands, "segments", "results/data/stems/synthetic/shard-00000")))
    assert activity == Activity(threshold_db=-45.0)
    segments = load_config(SMOKE)["data"]["segments"]
    assert windows == [Window(name, w["length"], w["hop"]) for name, w in sorted(segments.items())]


def test_from_config_fills_defaults_and_refuses_unknown_keys():
    assert AudioPolicy.from_config({}) == AudioPolicy() == AudioPolicy.from_config(None)
    assert FeatureSettings.from_config({"rhythm_method": "degara"}) == FeatureSettings(rhythm_method="degara")
    assert Activity.from_config({"frame": 1024.0}) == Activity(frame=1024)
    for make, section, message in [
        (AudioPolicy.from_config, {"chanels": "mono"}, r"^data.audio.chanels: unknown key; data.audio takes "),
        (AudioPolicy.from_config, {"flac_subtype": "FLOAT"}, r"^data.audio.flac_subtype is 'FLOAT'; use one of PCM_16, PCM_24"),
        (FeatureSettings.from_config, {"key_profile": "x"}, r"^data.features.key_profile is 'x'; use one of"),
        (Activity.from_config, {"frames": 1}, r"^data.activity.frames: unknown key"),
        (segments_config, {"activity": {}}, r"^--config has no segments"),
        (segments_config, {"segments": {"w": {"length": 4}}}, r"^data.segments.w: give both length and hop"),
        (CORPORA["musdb18hq"].check_config, {"split": {}}, r"^data.corpora.musdb18hq.split: unknown key"),
    ]:
        with pytest.raises(StemlabError, match=message):
            make(section)


def test_json_config_arg_reads_inline_json_or_a_file(tmp_path):
    assert json_config_arg(None) == {} == json_config_arg("  ")
    assert json_config_arg(' {"a": 1}') == {"a": 1}
    path = tmp_path / "job.json"
    path.write_text('{"b": [1]}')
    assert json_config_arg(str(path)) == {"b": [1]}
    path.write_text("[1]")
    with pytest.raises(StemlabError, match=r"^--config: .*job.json must hold a JSON object"):
        json_config_arg(str(path))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["features", "--stems", "s", "--config", "{rhythm_method: degara}", "--out", "o"], "error: --config is not valid JSON"),
        (["segments", "--stems", "s", "--config", '{"segments": {}, "x": 1}', "--out", "o"], "error: --config.x: unknown key"),
        (["stems", "--corpus", "moisesdb", "--root", "r", "--shard", "shard-00000", "--config", "{}", "--out", "o"],
         'error: --config needs "shards"'),
        (["synthetic", "--src", "s", "--shard", "shard-00000", "--config", '{"bad_song": "ignore"}', "--out", "o"],
         "error: data.audio.bad_song is 'ignore'; use one of fail, skip"),
    ],
)
def test_a_bad_config_fails_the_data_cli_in_one_line(argv, message, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    out = subprocess.run([sys.executable, "-m", "stemlab.data", *argv], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith(message), out.stderr
