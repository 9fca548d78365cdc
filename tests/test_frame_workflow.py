"""Adding a model is a local change: a throwaway task module plus a config overlay in a temporary copy of
the workflow (nothing else edited) is planned per seed by the generic rules, then trained and evaluated."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.workflow_utils import REPO, SMOKE, copy_workflow, snakemake

TOY = {
    "task": "stemlab.toymodel",
    "seeds": [1, 2],
    "inputs": {"windows": ["megami"], "corpora": ["synthetic"]},
    "loop": {"steps": 6, "batch_size": 4, "lr": 0.05, "checkpoint_every": 3, "checkpoint_seconds": 0},
    "resources": {"train": {"mem_mb": 1000, "runtime_min": 5}, "eval": {"mem_mb": 1000, "runtime_min": 5}},
}


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    """The repository's workflow copied, plus the toy task module; every other file as it is."""
    copy = copy_workflow(tmp_path_factory.mktemp("workflow-copy"))
    shutil.copy2(REPO / "tests" / "assets" / "toy_task.py", copy / "scripts" / "stemlab" / "toymodel.py")
    (copy / "toy.yaml").write_text(yaml.safe_dump({"models": {"toy": TOY}}))
    return copy


def _run(copy: Path, workdir: Path, *args: str, timeout: float = 600):
    return snakemake(
        *args, "--snakefile", str(copy / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(SMOKE), str(copy / "toy.yaml"), cwd=workdir, timeout=timeout,
    )  # fmt: skip


def _planned(text: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job of a dry run's printout."""
    jobs, rule = [], None
    for line in text.splitlines():
        m = re.match(r"^\s*(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
            jobs.append((rule, ""))
        m = re.match(r"^\s+wildcards: (.+)$", line)
        if m and jobs:
            jobs[-1] = (jobs[-1][0], m.group(1))
    return jobs


def test_dry_run_plans_the_new_model_for_every_seed(workflow_copy, tmp_path):
    out = _run(workflow_copy, tmp_path, "all", "-n")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    jobs = _planned(out.stdout + out.stderr)
    for seed in (1, 2):
        assert ("train_model", f"model=toy, seed={seed}") in jobs, jobs
        assert ("evaluate_model", f"model=toy, seed={seed}") in jobs
    assert ("summarize_model", "model=toy") in jobs
    # the existing model is planned as before, with the smoke config's one seed
    assert ("train_model", "model=fxprocessor, seed=1") in jobs
    assert not any(w == "model=fxprocessor, seed=2" for _, w in jobs)


def test_the_workflow_copy_differs_only_by_the_task_module(workflow_copy):
    new = sorted(
        p.relative_to(workflow_copy).as_posix() for p in workflow_copy.rglob("*")
        if p.is_file() and not (REPO / p.relative_to(workflow_copy)).is_file()
    )  # fmt: skip
    assert new == ["scripts/stemlab/toymodel.py", "toy.yaml"]


@pytest.mark.slow
def test_smoke_run_trains_and_evaluates_the_new_model(workflow_copy, smoke_run, tmp_path):
    # the smoke run's data stage, hard-linked: only the toy model's jobs are left to run
    shutil.copytree(smoke_run / "results", tmp_path / "results", copy_function=os.link)
    out = _run(workflow_copy, tmp_path, "results/tables/toy.csv", "--cores", "2", timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ran = {rule for rule, _ in _planned(out.stdout + out.stderr)}
    assert ran == {"train_model", "evaluate_model", "summarize_model"}, ran
    table = pd.read_csv(tmp_path / "results" / "tables" / "toy.csv")
    assert list(table.columns[:7]) == ["model", "system", "metric", "n", "mean", "ci95_low", "ci95_high"]
    assert table["system"].tolist() == ["toy", "mean_wet"] and set(table["n_seeds"]) == {2}
    for seed in (1, 2):
        assert (tmp_path / "results" / "models" / "toy" / f"seed-{seed}" / "final.pt").is_file()
        assert (tmp_path / "logs" / "train" / "train_model" / "toy" / f"seed-{seed}.log").stat().st_size > 0
