"""Every rule has a conda env and a log; envs pin exactly; every import of a rule's code is in its env."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from stemlab import envcheck
from stemlab.config import load_config
from tests.workflow_utils import REPO, load_rules

WORK_RULES = [r for r in load_rules() if r.does_work]
# every model of the paper config (its task modules are imported by name at run time)
TASKS = envcheck.task_modules(load_config())


def _problems(rules) -> list[str]:
    problems = []
    for rule in rules:
        if not rule.does_work:
            continue
        problems += envcheck.check_rule(
            rule.name,
            rule.conda_env,
            rule.has_log,
            envcheck.rule_entry_modules(rule.shellcmd, TASKS),
            REPO / "scripts",
        )
    return problems


def test_model_task_modules_are_checked_with_the_rules_that_load_them():
    assert "stemlab.megami.fxprocessor_task" in TASKS and len(TASKS) >= 2
    train = next(r for r in WORK_RULES if r.name == "train_model")
    assert set(TASKS) <= set(envcheck.rule_entry_modules(train.shellcmd, TASKS))
    synth = next(r for r in WORK_RULES if r.name == "synth_shard")
    assert not set(TASKS) & set(envcheck.rule_entry_modules(synth.shellcmd, TASKS))


def test_workflow_has_rules_that_do_work():
    assert WORK_RULES, "no rule with an action was found; the workflow did not parse as expected"


def test_every_rule_has_env_log_and_its_imports_in_env():
    assert _problems(load_rules()) == []


def test_every_rule_runs_stemlab_code():
    for rule in WORK_RULES:
        assert envcheck.rule_entry_modules(rule.shellcmd), f"rule {rule.name} runs no stemlab CLI"


@pytest.mark.parametrize("env_file", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_env_pins_every_package(env_file):
    spec = envcheck.read_env(env_file)
    assert spec.packages, f"{env_file} lists no packages"
    assert spec.unpinned == (), f"{env_file.name}: unpinned {spec.unpinned}"
    assert "python" in spec.packages


def test_pin_check_rejects_ranges(tmp_path):
    env = tmp_path / "e.yaml"
    env.write_text("dependencies:\n  - numpy>=1.26\n  - pandas\n  - scipy=1.17.1\n  - pip:\n      - mido\n")
    assert set(envcheck.read_env(env).unpinned) == {"numpy>=1.26", "pandas", "mido"}


@pytest.fixture
def workflow_copy(tmp_path) -> Path:
    for part in ("Snakefile", "workflow", "config", "envs", "scripts"):
        src = REPO / part
        dst = tmp_path / part
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return tmp_path


def _first_rule_file(root: Path) -> Path:
    for smk in sorted((root / "workflow" / "rules").glob("*.smk")):
        if re.search(r"^\s+conda:", smk.read_text(), flags=re.M):
            return smk
    pytest.fail("no rule file with a conda: directive")


def test_check_fails_when_a_rule_loses_its_env(workflow_copy):
    smk = _first_rule_file(workflow_copy)
    text = smk.read_text()
    stripped = re.sub(r"^(\s+)conda:\n\s+\"[^\"]+\",?\n", "", text, count=1, flags=re.M)
    assert stripped != text
    smk.write_text(stripped)
    problems = _problems(load_rules(workflow_copy / "Snakefile", workflow_copy / "config" / "smoke.yaml"))
    assert any("no conda: env" in p for p in problems), problems


def test_check_fails_when_env_lacks_an_import(workflow_copy):
    rules = [r for r in load_rules(workflow_copy / "Snakefile", workflow_copy / "config" / "smoke.yaml") if r.does_work]
    # drop numpy-family packages from every env: any rule whose code imports numpy must now fail
    for env_file in (workflow_copy / "envs").glob("*.yaml"):
        env_file.write_text(re.sub(r"^\s+- numpy=.*\n", "", env_file.read_text(), flags=re.M))
    problems = _problems(rules)
    assert any("lacks package 'numpy'" in p for p in problems), problems


def test_unknown_import_is_reported(tmp_path):
    pkg = tmp_path / "stemlab" / "fake"
    pkg.mkdir(parents=True)
    (tmp_path / "stemlab" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text("import numpy\nfrom . import helper\n")
    (pkg / "helper.py").write_text("def f():\n    import somethingobscure\n")
    env = tmp_path / "env.yaml"
    env.write_text("dependencies:\n  - python=3.11.10\n  - numpy=1.26.4\n")
    problems = envcheck.check_rule("fake", str(env), True, ["stemlab.fake"], tmp_path)
    assert len(problems) == 1 and "somethingobscure" in problems[0]
