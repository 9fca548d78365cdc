"""Shared fixtures: one local run of the smoke DAG per test session, reused by every test that needs it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.workflow_utils import REPO, snakemake

SMOKE_TIMEOUT_S = 900


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """Run `snakemake all` on config/smoke.yaml in a fresh directory; return that directory."""
    workdir = tmp_path_factory.mktemp("smoke")
    out = snakemake(
        "all",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(REPO / "config" / "smoke.yaml"),
        "--cores", str(min(2, os.cpu_count() or 1)),
        "--show-failed-logs",
        timeout=SMOKE_TIMEOUT_S,
    )
    (workdir / "snakemake.out").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        pytest.fail(f"smoke DAG failed (see {workdir}/snakemake.out):\n{(out.stdout + out.stderr)[-6000:]}")
    return workdir


@pytest.fixture(scope="session")
def smoke_report(smoke_run) -> Path:
    """`snakemake --report results/report.zip` of the smoke run (what `make run` does after the DAG)."""
    report = smoke_run / "results" / "report.zip"
    out = snakemake(
        "--report", str(report), "--snakefile", str(REPO / "Snakefile"), "--directory", str(smoke_run),
        "--configfile", str(REPO / "config" / "smoke.yaml"),
    )
    if out.returncode != 0:
        pytest.fail(f"snakemake --report failed:\n{(out.stdout + out.stderr)[-4000:]}")
    return report
