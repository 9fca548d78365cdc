"""Test helpers that load the Snakemake workflow in process or run snakemake as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SMOKE = REPO / "config" / "smoke.yaml"


@dataclass(frozen=True)
class RuleInfo:
    name: str
    conda_env: str | None
    has_log: bool
    shellcmd: str | None
    does_work: bool
    resources: dict


def load_rules(snakefile: Path = REPO / "Snakefile", configfile: Path = SMOKE) -> list[RuleInfo]:
    """Parse the workflow with Snakemake's API and describe its rules."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        wf_api = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[configfile]),
            snakefile=snakefile,
            workdir=snakefile.parent,
        )
        workflow = wf_api._workflow  # the parsed workflow; the public API exposes no rule objects
        rules = []
        for rule in workflow.rules:
            env = rule.conda_env
            env_path = None
            if env is not None:
                env_path = str(getattr(env, "file", env)).removeprefix("file://")
                # conda: paths are relative to the .smk file that holds the rule
                env_path = str((Path(str(rule.basedir)) / env_path).resolve())
            rules.append(
                RuleInfo(
                    name=rule.name,
                    conda_env=env_path,
                    has_log=bool(rule.log),
                    shellcmd=rule.shellcmd,
                    does_work=not rule.norun,
                    resources={k: v for k, v in rule.resources.items()},
                )
            )
        return rules


WORKFLOW_PARTS = ("Snakefile", "workflow", "scripts", "config", "envs")


def copy_workflow(dest: Path) -> Path:
    """A copy of the repository's workflow (Snakefile, rules, scripts, configs, envs) in `dest`."""
    import shutil

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in WORKFLOW_PARTS:
        src = REPO / name
        (shutil.copytree(src, dest / name, ignore=ignore) if src.is_dir() else shutil.copy2(src, dest / name))
    return dest


def snakemake(*args: str, cwd: Path = REPO, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m snakemake ARGS` and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [PY, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def snakemake_in(workdir: Path, overlay: dict, *args: str, cores: int = 1, timeout: float = 300):
    """Run the repo's workflow in `workdir` on the smoke config plus `overlay` (written to overlay.yaml)."""
    import yaml

    (workdir / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    return snakemake(
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(SMOKE), str(workdir / "overlay.yaml"),
        "--cores", str(cores),
        *args,
        cwd=workdir, timeout=timeout,
    )
