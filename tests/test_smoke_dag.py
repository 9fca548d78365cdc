"""The whole smoke DAG end to end in a temporary directory, then the Snakemake report."""

from __future__ import annotations

import zipfile

import pytest

from tests.workflow_utils import REPO, snakemake

pytestmark = pytest.mark.slow


def test_smoke_dag_builds_every_target(smoke_run):
    out = snakemake(
        "all", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(smoke_run),
        "--configfile", str(REPO / "config" / "smoke.yaml"),
    )
    assert out.returncode == 0, out.stderr
    assert "Nothing to be done" in out.stdout + out.stderr, "a second run would redo work"


def test_smoke_dag_leaves_no_temporary_files(smoke_run):
    leftovers = [p for p in (smoke_run / "results").rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_every_rule_wrote_its_log(smoke_run):
    logs = list((smoke_run / "logs").rglob("*.log"))
    assert logs, "no rule logs under logs/"


def test_report_builds(smoke_run):
    report = smoke_run / "results" / "report.zip"
    out = snakemake(
        "--report", str(report), "--snakefile", str(REPO / "Snakefile"), "--directory", str(smoke_run),
        "--configfile", str(REPO / "config" / "smoke.yaml"),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    with zipfile.ZipFile(report) as zf:
        assert any(name.endswith(".html") for name in zf.namelist())
