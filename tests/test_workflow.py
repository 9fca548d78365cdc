"""The workflow frame: lint, formatting, dry runs of every config, config rejection."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from stemlab.config import check_config, config_errors, deep_merge, fill_defaults
from stemlab.errors import StemlabError
from tests.workflow_utils import PY, REPO, snakemake

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CONFIGS = ["config.yaml", "demo.yaml", "smoke.yaml"]
TARGETS = ["synth", "data", "train", "evaluate", "figures", "all"]


def test_snakefile_is_small():
    assert len((REPO / "Snakefile").read_text().splitlines()) <= 80


def test_no_default_profile():
    assert not (REPO / "profiles" / "default").exists()


def test_lint_is_clean():
    out = snakemake("--lint", "--configfile", "config/smoke.yaml")
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert "Congratulations, your workflow is in a good condition!" in text, text


def test_snakefmt_check_is_clean():
    snakefmt = Path(PY).with_name("snakefmt")
    out = subprocess.run([str(snakefmt), "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _merged(configfile: str) -> dict:
    """config.yaml with `configfile` merged over it, as Snakemake merges --configfile (no defaults filled)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return deep_merge(config, yaml.safe_load((REPO / "config" / configfile).read_text()))


@pytest.mark.parametrize("configfile", CONFIGS)
def test_config_files_validate(configfile):
    assert config_errors(_merged(configfile), SCHEMA) == []


@pytest.mark.parametrize("configfile", ["demo.yaml", "smoke.yaml"])
def test_demo_and_smoke_hold_only_what_differs_from_the_paper_config(configfile):
    paper = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    overlay = yaml.safe_load((REPO / "config" / configfile).read_text())
    same = []

    def walk(a, b, path):
        for key, value in b.items():
            if isinstance(value, dict) and isinstance(a.get(key), dict):
                walk(a[key], value, f"{path}{key}.")
            elif key in a and a[key] == value:
                same.append(f"{path}{key}")

    walk(paper, overlay, "")
    assert same == [], f"{configfile} repeats values of config.yaml: {same}"


def test_our_default_filling_equals_snakemakes(tmp_path):
    """stemlab.config.fill_defaults (Python callers) and Snakemake's validate (the workflow) agree."""
    from snakemake.utils import validate

    for configfile in CONFIGS:
        config = _merged(configfile)
        ours = fill_defaults(config)
        validate(config, str(SCHEMA))
        assert ours == config, configfile


@pytest.mark.parametrize("configfile", CONFIGS)
def test_dry_run_each_config(configfile):
    out = snakemake("all", "-n", "--quiet", "rules", "--configfile", f"config/{configfile}")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_named_targets_exist(target):
    out = snakemake(target, "-n", "--quiet", "rules", "--configfile", "config/smoke.yaml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_readme_config_documents_every_key():
    readme = (REPO / "config" / "README.md").read_text()
    schema = yaml.safe_load(SCHEMA.read_text())
    missing = []

    def ref(node: dict) -> str | None:
        return node["$ref"].removeprefix("#/$defs/") if "$ref" in node else None

    def walk(node: dict, prefix: str) -> None:
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and ref(extra) == "model":  # any model: its keys once, as models.<model>.
            walk(schema["$defs"]["model"], f"{prefix}<model>.")
        for key, sub in node.get("properties", {}).items():
            path = f"{prefix}{key}"
            if f"`{path}`" not in readme:
                missing.append(path)
            if not isinstance(sub, dict):
                continue
            if ref(sub) and ref(sub) != "model":
                walk(schema["$defs"][ref(sub)], f"{path}.")
            if sub.get("type") == "object" or ref(sub) == "model":
                walk(sub, f"{path}.")

    walk(schema, "")
    assert missing == [], f"config/README.md does not document: {missing}"


def test_schema_forbids_unknown_keys_everywhere():
    schema = yaml.safe_load(SCHEMA.read_text())
    loose = []

    def is_open(node) -> bool:
        while node.get("additionalProperties") is not False and "$ref" in node:
            node = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
        # closed: no unknown keys at all, or every unknown key must match a strict schema (models.<model>)
        return node.get("additionalProperties") is not False and not isinstance(node.get("additionalProperties"), dict)

    def walk(node, path):
        if isinstance(node, dict):
            if "properties" in node and (node.get("type") == "object" or "$ref" in node) and is_open(node):
                loose.append(path or "<top>")
            for key, sub in node.items():
                walk(sub, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    walk(schema, "")
    assert loose == []


def _smoke() -> dict:
    return _merged("smoke.yaml")


def test_unknown_key_is_named_in_one_line():
    config = _smoke()
    config["synth"]["shard_sizee"] = 3
    with pytest.raises(StemlabError) as err:
        check_config(config, SCHEMA)
    message = str(err.value)
    assert "synth.shard_sizee" in message and "\n" not in message


def test_wrong_type_is_named_in_one_line():
    config = _smoke()
    config["seed"] = "forty-two"
    with pytest.raises(StemlabError) as err:
        check_config(config, SCHEMA)
    assert str(err.value).startswith("invalid config: seed:")


@pytest.mark.parametrize(
    ("override", "key"),
    [("not_a_key=1", "not_a_key"), ("seed=abc", "seed"), ("cluster={gpus_per_job: -1}", "cluster.gpus_per_job")],
)
def test_bad_config_fails_before_any_job(override, key):
    out = snakemake("all", "-n", "--configfile", "config/smoke.yaml", "--config", override)
    assert out.returncode != 0
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("invalid config:")]
    assert len(lines) == 1 and key in lines[0], out.stdout + out.stderr

