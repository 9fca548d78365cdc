"""stemlab.bundle on small files the tests write: deterministic packing, manifest checks, verified
downloads from a local server, restoring one model, and comparing tables."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from stemlab.bundle.archive import fetch_bundle, read_manifest, verify_bundle
from stemlab.bundle.compare import compare_tables
from stemlab.bundle.pack import pack
from stemlab.bundle.restore import restore_model
from stemlab.bundle.source import restore_source
from stemlab.errors import StemlabError
from tests.download_server import FileServer
from tests.workflow_utils import REPO, SMOKE, load_rules

SETTINGS = {"width": 4, "model": {"depth": 2}}
LOOP = {"steps": 4, "lr": 0.001, "workers": 1, "checkpoint_every": 2}
TRAIN = {"steps": 4, "lr": 0.001, "cpu_threads": 2, "seed": 123, "deterministic": True}


def _model(root: Path, key: str, seed: int, weights: bytes) -> list[str]:
    d = root / "results" / "models" / key / f"seed-{seed}"
    d.mkdir(parents=True)
    (d / "final.pt").write_bytes(weights)
    (d / "train_log.csv").write_text("step,split,loss\n1,train,0.5\n")
    meta = {"model": key.split("/")[0], "seed": seed, "identity_hash": "abc",
            "identity": {"train": TRAIN, "run": {"model": key.split("/")[0], "task": "tests.toy", "settings": SETTINGS,
                                                 "code": "c0de", "inputs": {}, "task_identity": {"items": [1, 2]}}}}
    (d / "meta.json").write_text(json.dumps(meta))
    return [f"results/models/{key}/seed-{seed}/{n}" for n in ("final.pt", "train_log.csv", "meta.json")]


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """A finished run's models (one with a grid cell) and a table, with the run directory as cwd."""
    monkeypatch.chdir(tmp_path)
    files = _model(tmp_path, "toy", 1, b"weights-1" * 100) + _model(tmp_path, "grid/k~4", 1, b"w2" * 50)
    (tmp_path / "results" / "tables").mkdir(parents=True)
    (tmp_path / "results" / "tables" / "toy.csv").write_text("model,system,metric,mean\ntoy,toy,err,0.25\n")
    return files + ["results/tables/toy.csv"]


def _job(model: str = "toy", **changes) -> dict:
    job = {"model": model, "task": "tests.toy", "seed": 1, "settings": SETTINGS, "loop": LOOP, "cpu_threads": 2}
    return job | changes


def _rewrite(src: Path, dest: Path, edit) -> Path:
    """A copy of the bundle `src` with edit(name, data) -> data | None (None drops the member)."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin.getmembers():
            data = edit(m.name, tin.extractfile(m).read())
            if data is not None:
                m.size = len(data)
                tout.addfile(m, io.BytesIO(data))
    return dest


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


def test_pack_is_deterministic_and_lists_every_file(run_dir, tmp_path):
    a = pack(run_dir, "a.tar", "cfg")
    (tmp_path / "a.tar").rename(tmp_path / "first.tar")
    b = pack(list(reversed(run_dir)), "a.tar", "cfg")
    assert a == b and (tmp_path / "first.tar").read_bytes() == (tmp_path / "a.tar").read_bytes()
    assert (tmp_path / "a.tar.sha256").read_text() == f"{a}  a.tar\n"
    assert hashlib.sha256((tmp_path / "a.tar").read_bytes()).hexdigest() == a
    with tarfile.open("a.tar") as tf:
        members = tf.getmembers()
    assert [m.name for m in members] == ["manifest.json", *sorted(run_dir)]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members} == {(0, 0, 0, "", 0o644)}
    manifest = verify_bundle("a.tar", show_progress=False)
    assert sorted(manifest.files) == sorted(run_dir) and manifest.tables == ["results/tables/toy.csv"]
    assert manifest.config_digest == "cfg"
    grid = manifest.model("grid/k~4", 1)
    assert grid["settings"] == SETTINGS and grid["train"] == TRAIN and "task_identity" not in json.dumps(grid)


def test_pack_refuses_files_that_are_not_models_or_tables(run_dir, tmp_path):
    Path("results/notes.txt").write_text("x")
    with pytest.raises(StemlabError, match="notes.txt.*is not a model file"):
        pack([*run_dir, "results/notes.txt"], "a.tar", "cfg")
    assert not (tmp_path / "a.tar").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda n, d: _flip(d) if n.endswith("toy/seed-1/final.pt") else d, r"member results/models/toy/seed-1/final.pt has"),
        (lambda n, d: None if n.endswith("toy.csv") else d, r"lacks results/tables/toy.csv"),
        (lambda n, d: d.replace(b'"size": 900', b'"size": 901') if n == "manifest.json" else d, r"final.pt has 900 bytes"),
        (lambda n, d: None if n == "manifest.json" else d, r"does not start with its manifest.json"),
        (lambda n, d: b"{not json" if n == "manifest.json" else d, r"manifest.json is not valid JSON"),
    ],
    ids=["member-bytes", "missing-member", "manifest-size", "no-manifest", "manifest-json"],
)
def test_a_bundle_that_does_not_match_its_manifest_is_refused_in_one_line(run_dir, tmp_path, edit, message):
    pack(run_dir, "a.tar", "cfg")
    bad = _rewrite(tmp_path / "a.tar", tmp_path / "bad.tar", edit)
    with pytest.raises(StemlabError, match=message) as exc:
        verify_bundle(bad, show_progress=False)
    assert "\n" not in str(exc.value) and "snakemake bundle" in str(exc.value)


@pytest.mark.parametrize("name", ["../../evil.csv", "results/tables/../../../evil.csv", "/etc/evil.csv",
                                  "results/models/toy/seed-1/extra.bin"])
def test_a_member_outside_the_bundle_layout_is_refused(run_dir, tmp_path, name):
    pack(run_dir, "a.tar", "cfg")
    bad = _rewrite(tmp_path / "a.tar", tmp_path / "bad.tar", lambda n, d: d)
    with tarfile.open(bad, "a") as tf:
        info = tarfile.TarInfo(name)
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(StemlabError, match="is not a model file"):
        verify_bundle(bad, show_progress=False)


def test_fetch_bundle_verifies_then_moves_and_a_tampered_one_leaves_nothing(run_dir, tmp_path):
    sha = pack(run_dir, "a.tar", "cfg")
    bad = _rewrite(tmp_path / "a.tar", tmp_path / "bad.tar", lambda n, d: _flip(d) if n.endswith(".csv") else d)
    bad_sha = hashlib.sha256(bad.read_bytes()).hexdigest()
    out, staging = tmp_path / "res" / "b.tar", tmp_path / "dl" / "b.tar"
    with FileServer() as srv:
        srv.state.files["/a.tar"] = (tmp_path / "a.tar").read_bytes()
        srv.state.files["/bad.tar"] = bad.read_bytes()
        with pytest.raises(StemlabError, match=r"bundle http://127.0.0.1:\d+/bad.tar: member results/.*\.csv has"):
            fetch_bundle(srv.url("/bad.tar"), bad_sha, out, staging, show_progress=False)
        assert not out.exists() and sorted(p.name for p in staging.parent.iterdir()) == []
        with pytest.raises(StemlabError, match="checksum mismatch.*restore.sha256"):
            fetch_bundle(srv.url("/a.tar"), bad_sha, out, staging, show_progress=False)
        assert not out.exists() and sorted(p.name for p in staging.parent.iterdir()) == []
        manifest = fetch_bundle(srv.url("/a.tar"), sha, out, staging, show_progress=False)
    assert out.read_bytes() == (tmp_path / "a.tar").read_bytes() and not staging.exists()
    assert len(manifest.models) == 2


def test_restore_model_writes_the_bundled_files(run_dir, tmp_path):
    pack(run_dir, "a.tar", "cfg")
    out = tmp_path / "restored" / "grid" / "seed-1"
    files = restore_model("a.tar", "grid/k~4", 1, _job("grid", loop=LOOP | {"workers": 8}), out)
    assert [f.name for f in files] == ["final.pt", "train_log.csv", "meta.json"]
    for f in files:
        assert f.read_bytes() == (tmp_path / "results/models/grid/k~4/seed-1" / f.name).read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["final.pt", "meta.json", "train_log.csv"]


@pytest.mark.parametrize(
    ("key", "job", "message"),
    [
        ("toy", _job(settings={"width": 8, "model": {"depth": 2}}), r"models.toy.settings.width = 4, this config has 8;"),
        ("toy", _job(loop=LOOP | {"lr": 0.01}), r"models.toy.loop.lr = 0.001, this config has 0.01;"),
        ("toy", _job(cpu_threads=4), r"train.cpu_threads = 2, this config has 4;"),
        ("toy", _job(task="tests.other"), r"models.toy.task"),
        ("other", _job("other"), r"holds no model other seed 1 \(it has: grid/k~4, toy\)"),
    ],
    ids=["settings", "loop", "threads", "task", "absent"],
)
def test_restore_refuses_a_model_of_another_config_and_writes_nothing(run_dir, tmp_path, key, job, message):
    pack(run_dir, "a.tar", "cfg")
    out = tmp_path / "restored"
    with pytest.raises(StemlabError, match=message) as exc:
        restore_model("a.tar", key, 1, job, out)
    assert "\n" not in str(exc.value) and "restore.url" in str(exc.value)
    assert not out.exists() or list(out.iterdir()) == []


def test_restore_checks_each_member_it_extracts(run_dir, tmp_path):
    pack(run_dir, "a.tar", "cfg")
    bad = _rewrite(tmp_path / "a.tar", tmp_path / "bad.tar", lambda n, d: _flip(d) if n.endswith("toy/seed-1/meta.json") else d)
    out = tmp_path / "restored"
    with pytest.raises(StemlabError, match="member results/models/toy/seed-1/meta.json has"):
        restore_model(bad, "toy", 1, _job(), out)
    assert list(out.iterdir()) == []


def test_compare_tables_names_the_first_difference(run_dir, tmp_path):
    pack(run_dir, "a.tar", "cfg")
    out = tmp_path / "check.csv"
    assert compare_tables("a.tar", ["results/tables/toy.csv"], out)["status"].tolist() == ["identical"]
    Path("results/tables/toy.csv").write_text("model,system,metric,mean\ntoy,toy,err,0.2500000001\n")
    assert compare_tables("a.tar", ["results/tables/toy.csv"], out)["status"].tolist() == ["close"]
    Path("results/tables/toy.csv").write_text("model,system,metric,mean\ntoy,toy,err,0.5\n")
    row = compare_tables("a.tar", ["results/tables/toy.csv"], out).iloc[0]
    assert row["status"] == "differs" and row["first_difference"] == "row 0 mean: 0.25 bundled, 0.5 here"
    assert compare_tables("a.tar", [], out)["status"].tolist() == ["not regenerated"]
    assert pd.read_csv(out)["status"].tolist() == ["not regenerated"]


def test_restore_source_needs_a_sha256_with_the_url():
    assert restore_source({"restore": {"url": None, "sha256": None}}) is None
    assert restore_source({}) is None
    src = restore_source({"restore": {"url": "http://x/b.tar", "sha256": "AB" * 32}})
    assert src.url == "http://x/b.tar" and src.sha256 == "ab" * 32
    with pytest.raises(StemlabError, match="restore.sha256 is not"):
        restore_source({"restore": {"url": "http://x/b.tar", "sha256": None}})


def test_read_manifest_reads_only_the_head(run_dir, tmp_path):
    pack(run_dir, "a.tar", "cfg")
    bad = _rewrite(tmp_path / "a.tar", tmp_path / "bad.tar", lambda n, d: _flip(d) if n.endswith(".pt") else d)
    assert sorted(read_manifest(bad).files) == sorted(run_dir)  # the members are checked when used


def test_restore_rules_have_envs_logs_and_their_imports(tmp_path):
    """test_envs checks the rules of the smoke config; these exist only with restore.url set."""
    import yaml

    from stemlab import envcheck

    config = yaml.safe_load(SMOKE.read_text()) | {"restore": {"url": "http://127.0.0.1:1/b.tar", "sha256": "0" * 64}}
    (tmp_path / "restore.yaml").write_text(yaml.safe_dump(config))
    rules = {r.name: r for r in load_rules(configfile=tmp_path / "restore.yaml")}
    assert "train_model" not in rules and {"download_bundle", "restore_model", "check_restored_tables"} <= set(rules)
    problems = []
    for name in ("download_bundle", "restore_model", "check_restored_tables", "bundle"):
        r = rules[name]
        problems += envcheck.check_rule(r.name, r.conda_env, r.has_log, envcheck.rule_entry_modules(r.shellcmd),
                                        REPO / "scripts")
    assert problems == []
