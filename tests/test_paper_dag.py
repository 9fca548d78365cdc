"""Single-target regeneration on the finished smoke run: a figure's file alone runs only its job, editing
its plotting script plans only that figure (and the paper that includes it), editing one model table plans
only its numbers, the benchmark and the paper; the run's paper, benchmark and numbers agree."""

from __future__ import annotations

import os
import re
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from tests.workflow_utils import REPO, SMOKE, copy_workflow, snakemake

pytestmark = pytest.mark.slow


def planned(workdir: Path, *args: str, repo: Path = REPO) -> Counter:
    """Rule -> jobs of a dry run of `repo`'s workflow (targets and options first: --configfile takes
    several values)."""
    out = snakemake(*args, "-n", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir),
                    "--configfile", str(SMOKE))  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return Counter()
    return Counter(re.findall(r"^\s*(?:local)?rule (\w+):", text, re.M))


@contextmanager
def edited(path: Path):
    """`path` edited (a blank line appended: Snakemake reruns on a newer file whose checksum changed, not on
    a touch); its own bytes and times back after."""
    st, original = path.stat(), path.read_bytes()
    path.write_bytes(original + b"\n")
    os.utime(path, (st.st_atime, st.st_mtime + 3600))
    try:
        yield
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_one_figure_runs_only_its_job(smoke_run):
    figure = "results/figures/clap_retrieval.pdf"
    assert planned(smoke_run, figure) == Counter()
    assert planned(smoke_run, figure, "--forcerun", "figure_clap_retrieval") == Counter({"figure_clap_retrieval": 1})


def test_editing_a_plotting_script_reruns_only_that_figure(smoke_run, tmp_path):
    # a copy of the workflow (files keep their times) whose plotting script is then edited; its rules'
    # inputs name the copy's files, so only modification times decide (--rerun-triggers mtime)
    repo = copy_workflow(tmp_path)
    mtime = ("--rerun-triggers", "mtime")
    assert planned(smoke_run, "all", *mtime, repo=repo) == Counter()
    with edited(repo / "scripts" / "stemlab" / "paper" / "clap_figure.py"):
        assert planned(smoke_run, "results/figures/clap_retrieval.pdf", *mtime, repo=repo) == Counter({"figure_clap_retrieval": 1})
        assert planned(smoke_run, "all", *mtime, repo=repo) == Counter({"figure_clap_retrieval": 1, "paper": 1, "all": 1})


def test_editing_a_model_table_rebuilds_only_its_numbers_and_the_paper(smoke_run):
    with edited(smoke_run / "results" / "tables" / "codec.csv"):  # no figure reads the codec table
        jobs = planned(smoke_run, "all")
        out = snakemake("all", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(smoke_run),
                        "--configfile", str(SMOKE))  # fmt: skip
    assert jobs == Counter({"paper_numbers": 1, "benchmark": 1, "paper": 1, "all": 1})
    assert "results/paper/numbers/codec.tex" in out.stdout


def test_smoke_paper_numbers_and_benchmark_agree(smoke_run):
    res = smoke_run / "results"
    assert (res / "paper" / "paper.pdf").read_bytes()[:5] == b"%PDF-"
    bench = pd.read_csv(res / "tables" / "benchmark.csv", keep_default_na=False)
    rows = bench[bench["target"] != ""]
    assert set(rows["meets_target"]) <= {"yes", "no", ""} and len(rows) > 10
    assert set(bench["model"]) >= {"synth_validity", "clap", "stage", "mixer"}
    codec = pd.read_csv(res / "tables" / "codec.csv")
    si = codec[(codec["system"] == "rvq") & (codec["metric"] == "si_sdr")].iloc[0]
    text = (res / "paper" / "numbers" / "codec.tex").read_text()
    value = re.search(r"\\newcommand\{\\slCodecRvqSiSdr\}\{\\ensuremath\{(-?[0-9.]+)\}\}", text)
    assert value and float(value.group(1)) == pytest.approx(si["mean"], rel=0.01, abs=0.01)
    met = rows[(rows["model"] == "codec") & (rows["metric"] == "si_sdr")]["meets_target"].iloc[0]
    assert f"\\newcommand{{\\slCodecRvqSiSdrMeets}}{{{met}}}" in text
    for name in ("synth_validity", "training_curves", "rulegraph", "clap_retrieval", "fx_encoder_probe"):
        assert (res / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
