"""The test-only memory fault switch used by the SLURM end-to-end test (stemlab.faults)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stemlab.errors import StemlabError, run_cli
from stemlab.faults import (
    FAULT_ENV,
    STEP_DELAY_ENV,
    check_memory_fault,
    parse_fault_spec,
    parse_scontrol_job,
    rule_of_comment,
    training_step_delay,
)
from tests.workflow_utils import REPO

RECORD = (
    "JobId=7 JobName=3f2a UserId=root(0) Comment=rule_synth_shard_wildcards_shard=shard-00001 "
    "MinCPUsNode=1 MinMemoryNode=2000M TRES=cpu=1,mem=2000M,node=1,billing=1"
)


def fake_scontrol(record):
    return lambda job_id: record


def test_parse_spec_and_records():
    assert parse_fault_spec("synth_shard=3000, preprocess=500") == {"synth_shard": 3000, "preprocess": 500}
    for bad in ("synth_shard", "synth_shard=lots", "stemlab.synth=3000", "=5"):
        with pytest.raises(StemlabError, match="RULE=MB"):
            parse_fault_spec(bad)
    assert parse_scontrol_job(RECORD) == ("rule_synth_shard_wildcards_shard=shard-00001", 2000)
    assert parse_scontrol_job("Comment=rule_x TRES=cpu=1,mem=4G,node=1")[1] == 4096
    assert rule_of_comment("rule_synth_shard_wildcards_shard=shard-00001") == "synth_shard"
    assert rule_of_comment("rule_synth") == "synth"
    assert rule_of_comment("group_small") is None


def test_fault_only_for_the_named_rule_below_the_limit():
    env = {FAULT_ENV: "synth_shard=3000", "SLURM_JOB_ID": "7"}
    with pytest.raises(StemlabError, match="rule synth_shard got 2000 MB"):
        check_memory_fault(env, fake_scontrol(RECORD))
    check_memory_fault(env, fake_scontrol(RECORD.replace("2000M", "4000M")))  # the retry passes
    check_memory_fault({**env, FAULT_ENV: "synth=3000"}, fake_scontrol(RECORD))  # another rule: no fault
    check_memory_fault({"SLURM_JOB_ID": "7"}, fake_scontrol(RECORD))  # switch unset: no fault


def test_switch_does_nothing_outside_slurm_but_is_validated():
    check_memory_fault({FAULT_ENV: "synth_shard=3000"}, fake_scontrol(RECORD))  # a localrule on the submit host
    with pytest.raises(StemlabError, match="malformed"):
        check_memory_fault({FAULT_ENV: "synth_shard"}, fake_scontrol(RECORD))


def test_run_cli_reports_the_fault_as_one_line(monkeypatch, capsys):
    monkeypatch.setenv(FAULT_ENV, "synth_shard=3000")
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setattr("stemlab.faults._scontrol_job", fake_scontrol(RECORD))
    assert run_cli(lambda argv: 0, []) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_cli_process_unaffected_when_unset():
    out = subprocess.run(
        [sys.executable, "-c", "from stemlab.errors import run_cli; raise SystemExit(run_cli(lambda a: 0))"],
        capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO / "scripts"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr


def test_step_delay_switch():
    assert training_step_delay({}) == 0.0
    assert training_step_delay({STEP_DELAY_ENV: "2"}) == 2.0
    for bad in ("soon", "-1", "1e9"):
        with pytest.raises(StemlabError, match=STEP_DELAY_ENV):
            training_step_delay({STEP_DELAY_ENV: bad})
