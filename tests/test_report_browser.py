"""The smoke run's Snakemake report in headless Chromium: every figure, table and training log is listed,
its caption page and its view show no error, and each figure's file is served and rendered."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report_browser import browse_report, chromium_binary

pytestmark = pytest.mark.slow

STAGE_CATEGORIES = {"Synthetic data", "Data", "Training", "Evaluation"}


def _chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.fail("chromium is not installed: `make setup-test` installs it (Makefile APT_TEST)")
    return binary


def _expected(run: Path) -> set[str]:
    """What the report must show: every figure PDF, every table of results/tables the workflow flags
    (all but the per-song validity rows) and every model's training log."""
    figures = {p for p in (run / "results" / "figures").glob("*.pdf")}
    tables = {p for p in (run / "results" / "tables").glob("*.csv") if p.name != "synth_validity_songs.csv"}
    logs = set((run / "results" / "models").rglob("train_log.csv"))
    return {str(p.relative_to(run)) for p in figures | tables | logs}


def test_every_result_opens_in_the_browser_without_error(smoke_run, smoke_report, tmp_path):
    record = browse_report(smoke_report, tmp_path / "report", _chromium())
    assert "fatal" not in record, record.get("fatal")
    assert record["loaded"] and record["errors"] == [], record["errors"]
    assert STAGE_CATEGORIES <= set(record["categories"]), record["categories"].keys()
    rows = {row.get("path"): row for row in record["rows"]}
    assert len(rows) == len(record["rows"]), "a results list showed another subcategory's rows"
    expected = _expected(smoke_run)
    assert len([p for p in expected if p.endswith(".pdf")]) >= 7
    assert sorted(expected - set(rows)) == []
    for path, row in rows.items():
        file = smoke_run / path
        assert row["page_errors"] == [], (path, row["page_errors"])
        assert "DESCRIPTION" in row["info"] and path.rsplit("/", 1)[-1] in row["info"], (path, row["info"][:300])
        assert row["served"] == {"status": 200, "head": row["served"]["head"], "size": file.stat().st_size}, path
        assert row["served"]["head"] == file.read_bytes()[:4].decode("latin-1"), path
        if path.endswith(".pdf"):
            assert (row["view"], row["element"], row["rendered"]) == ("pdf", True, "application/pdf"), (path, row)
        else:
            assert row["view"] == "download", (path, row)


def test_the_browser_check_sees_a_figure_that_does_not_load(smoke_report, tmp_path):
    record = browse_report(smoke_report, tmp_path / "report", _chromium(), leave_out=("/corpora.pdf",))
    row = next(r for r in record["rows"] if r.get("path") == "results/figures/corpora.pdf")
    assert row["served"]["status"] == 404 and row["rendered"] != "application/pdf"
