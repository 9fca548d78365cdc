"""The restore path end to end on the smoke run: `snakemake bundle`, the bundle served on 127.0.0.1, a
fresh directory with config restore.url restores the models instead of training them and regenerates
from them an embedding cache and a model table equal to the original run's; a tampered bundle stops
the run with one line and leaves nothing behind."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from tests.download_server import FileServer
from tests.workflow_utils import REPO, SMOKE, snakemake, snakemake_in

pytestmark = pytest.mark.slow

BUNDLE = "results/bundle/stemlab-bundle.tar"
TABLE = "results/tables/fx_encoder.csv"
CACHE = "results/cache/fx_encoder/synthetic/shard-00001.parquet"
UPSTREAM = ("results/synth", "results/data")  # CPU stages a reviewer reruns anyway: copied to save time


@pytest.fixture(scope="module")
def bundle(smoke_run) -> Path:
    out = snakemake(
        "bundle", "--snakefile", str(REPO / "Snakefile"), "--directory", str(smoke_run),
        "--configfile", str(SMOKE), "--cores", "1",
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return smoke_run / BUNDLE


def _workdir(tmp_path: Path, smoke_run: Path, name: str, upstream: bool) -> Path:
    work = tmp_path / name
    work.mkdir()
    if upstream:
        for part in UPSTREAM:
            shutil.copytree(smoke_run / part, work / part, symlinks=True)
    return work


def _planned(text: str) -> dict[str, int]:
    table = text[text.index("Job stats:"):]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_bundle_lists_the_run_and_its_sha256(bundle, smoke_run):
    sha = (bundle.parent / "stemlab-bundle.tar.sha256").read_text().split()[0]
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == sha
    with tarfile.open(bundle) as tf:
        names = tf.getnames()
    models = sorted(str(p.relative_to(smoke_run)) for p in (smoke_run / "results" / "models").rglob("final.pt"))
    assert names[0] == "manifest.json" and len(models) >= 10
    assert set(models) <= set(names) and TABLE in names and "results/tables/synth_validity.csv" in names
    assert not any("checkpoints" in n for n in names)


def test_restore_replaces_training_and_regenerates_the_same_results(bundle, smoke_run, tmp_path):
    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    work = _workdir(tmp_path, smoke_run, "restored", upstream=True)
    with FileServer() as srv:
        srv.state.files["/stemlab-bundle.tar"] = bundle.read_bytes()
        overlay = {"restore": {"url": srv.url("/stemlab-bundle.tar"), "sha256": sha}}
        dry = snakemake_in(work, overlay, "all", "-n")
        assert dry.returncode == 0, (dry.stdout + dry.stderr)[-4000:]
        planned = _planned(dry.stdout + dry.stderr)
        n_models = len(list((smoke_run / "results" / "models").rglob("final.pt")))
        assert "train_model" not in planned and planned["restore_model"] == n_models, planned
        assert planned["download_bundle"] == 1 and planned["check_restored_tables"] == 1, planned
        run = snakemake_in(work, overlay, TABLE, CACHE, cores=2, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert (work / TABLE).read_bytes() == (smoke_run / TABLE).read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(work / CACHE), pd.read_parquet(smoke_run / CACHE))
    restored = work / "results" / "models" / "fx_encoder" / "seed-1"
    for name in ("final.pt", "train_log.csv", "meta.json"):
        assert (restored / name).read_bytes() == (smoke_run / "results/models/fx_encoder/seed-1" / name).read_bytes()
    assert not (work / "logs" / "train").exists()  # nothing was trained


def _tampered(bundle: Path, dest: Path, member: str) -> bytes:
    """The bundle with one byte of `member` flipped (its manifest left as it was)."""
    with tarfile.open(bundle) as tin, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read()
            if m.name == member:
                data = bytes([data[0] ^ 1]) + data[1:]
            tout.addfile(m, io.BytesIO(data))
    return dest.read_bytes()


def test_a_bundle_that_does_not_match_its_manifest_stops_with_one_line_and_writes_nothing(bundle, smoke_run, tmp_path):
    member = "results/models/fx_encoder/seed-1/final.pt"
    data = _tampered(bundle, tmp_path / "bad.tar", member)
    work = _workdir(tmp_path, smoke_run, "tampered", upstream=False)
    with FileServer() as srv:
        srv.state.files["/stemlab-bundle.tar"] = data
        overlay = {"restore": {"url": srv.url("/stemlab-bundle.tar"), "sha256": hashlib.sha256(data).hexdigest()}}
        out = snakemake_in(work, overlay, member)
    assert out.returncode != 0
    log = (work / "logs" / "restore" / "download_bundle.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and log.rstrip().endswith(errors[0]), log[-2000:]
    assert f"member {member} has" in errors[0] and "snakemake bundle" in errors[0]
    assert not (work / "results").exists()
    written = [p for p in (work / "resources").rglob("*") if p.is_file()] if (work / "resources").exists() else []
    assert written == []
