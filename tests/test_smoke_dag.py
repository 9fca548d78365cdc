"""The whole smoke DAG end to end in a temporary directory, then the Snakemake report."""

from __future__ import annotations

import re
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
    # atomic_path/atomic_dir temporaries and partial downloads, anywhere Snakemake jobs write
    leftovers = [
        p for p in smoke_run.rglob("*") if p.name.endswith(".part") and ".snakemake" not in p.relative_to(smoke_run).parts
    ]
    assert leftovers == []


def test_every_rule_wrote_its_log(smoke_run):
    """Every job of the smoke DAG (as a forced dry run lists them) left a non-empty log file."""
    out = snakemake(
        "all", "-n", "--forceall", "--snakefile", str(REPO / "Snakefile"), "--directory", str(smoke_run),
        "--configfile", str(REPO / "config" / "smoke.yaml"),
    )
    assert out.returncode == 0, out.stderr
    jobs = re.findall(r"^\s*(?:local)?rule (\w+):", out.stdout + out.stderr, re.M)
    logs = re.findall(r"^\s+log: (.+)$", out.stdout + out.stderr, re.M)
    assert logs and len(jobs) > len({"all"}), out.stdout[-2000:]
    paths = [p for entry in logs for p in entry.split(", ")]
    empty = [p for p in paths if not (smoke_run / p).is_file() or (smoke_run / p).stat().st_size == 0]
    assert empty == [], f"jobs without a log: {empty}"


def test_report_builds(smoke_report):
    with zipfile.ZipFile(smoke_report) as zf:
        assert any(name.endswith(".html") for name in zf.namelist())


def test_smoke_validity_table_meets_the_paper_note_targets(smoke_run):
    """The paper's note-accuracy targets on the smoke songs, as the synth_validity rule's table and log print them."""
    import pandas as pd

    table = pd.read_csv(smoke_run / "results" / "tables" / "synth_validity.csv").set_index("group")
    assert table.loc["overall", "bass_note_accuracy"] >= 0.9
    assert table.loc["overall", "melody_note_accuracy"] >= 0.9
    log = (smoke_run / "logs" / "synth" / "synth_validity.log").read_text()
    assert "acceptance: beat F-measure" in log
    assert not [line for line in log.splitlines() if "BELOW TARGET" in line and "note accuracy" in line]


@pytest.mark.xfail(
    strict=True,
    reason="known finding: the smoke set's one test song is a 15 s classical piece, which has no drum stem since "
    "genres got a drum probability; the beat tracker follows its off-beats (F 0.00 at the annotated level, "
    "0.97 at the off-beat level), so 4/4 beat F is 0.75 over the 4 smoke songs; the demo's 30-60 s songs score "
    "1.00. Strict, so a fix shows up as XPASS",
)
def test_smoke_validity_table_meets_the_beat_target(smoke_run):
    import pandas as pd

    table = pd.read_csv(smoke_run / "results" / "tables" / "synth_validity.csv").set_index("group")
    assert table.loc["time_signature=4/4", "beat_f"] >= 0.95
