"""The data stage through Snakemake: corpora from a local folder, a local archive and an HTTP download
(127.0.0.1), plus synthetic shards, to canonical stems, features, segment tables, song tables, the corpus
table and figure."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stemlab.plan import hash_shard
from tests.data_fixtures import make_medleydb, make_moisesdb, make_musdb, make_synth_shard
from tests.download_server import FileServer
from tests.workflow_utils import REPO, snakemake, snakemake_in

DATA_RULES = [
    "download_corpus", "extract_corpus", "canonical_stems", "canonical_stems_synthetic", "preprocess",
    "segments_shard", "segments", "splits", "corpora_table", "corpora_figure", "data",
]
WINDOWS = ["megami", "stage", "track_relationship"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _zip(src: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for f in sorted(src.rglob("*")):
            zf.write(f, f.relative_to(src).as_posix())
    return out


def _tar(src: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tf:
        for f in sorted(src.rglob("*")):
            tf.add(f, f.relative_to(src).as_posix(), recursive=False)
    return out


def _run(workdir: Path, overlay: dict, *args: str):
    # synthetic shards are given (made by the fixture, not by the synth rules); last: it takes a list
    return snakemake_in(workdir, overlay, *args, "--allowed-rules", *DATA_RULES, cores=2, timeout=600)


@pytest.mark.slow
def test_data_stage_end_to_end(tmp_path):
    corpora = tmp_path / "src"
    moises = make_moisesdb(corpora / "moisesdb", n_songs=3, seconds=3.0)
    musdb_zip = _zip(make_musdb(corpora / "musdb", ["Actions - One Minute Smile", "B - b"], ["C - c"], seconds=3.0),
                     tmp_path / "musdb18hq.zip")
    medley_tgz = _tar(make_medleydb(corpora / "medley", n_songs=2, seconds=3.0), tmp_path / "medleydb.tar.gz")
    workdir = tmp_path / "run"
    for i, shard in enumerate(("shard-00000", "shard-00001")):
        make_synth_shard(workdir / "results" / "synth" / "shards" / shard, n_songs=2, seconds=3.0, start=2 * i)

    with FileServer() as server:
        server.state.files["/files/musdb18hq.zip"] = musdb_zip.read_bytes()
        overlay = {
            "synth": {"songs": 4, "shard_size": 2},
            "data": {
                "synthetic": {"enabled": True},
                "corpora": {
                    "moisesdb": {"enabled": True, "path": str(moises), "shards": 2},
                    "musdb18hq": {"enabled": True, "url": server.url("/files/musdb18hq.zip"), "sha256": _sha(musdb_zip),
                                  "shards": 2},
                    "medleydb": {"enabled": True, "path": str(medley_tgz), "sha256": _sha(medley_tgz), "shards": 1},
                },
            },
        }
        out = _run(workdir, overlay, "data")
        text = out.stdout + out.stderr
        assert out.returncode == 0, text[-6000:]
        again = _run(workdir, overlay, "data", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr, (again.stdout + again.stderr)[-3000:]

    res = workdir / "results"
    expected = {"moisesdb": 3, "musdb18hq": 3, "medleydb": 2, "synthetic": 4}
    for corpus, n in expected.items():
        songs = pd.read_parquet(res / "data" / "splits" / f"{corpus}.parquet")
        assert len(songs) == n and set(songs["corpus"]) == {corpus}
        for row in songs.itertuples():
            song_dir = res / "data" / "stems" / corpus / row.shard / row.song
            meta = json.loads((song_dir / "song.json").read_text())
            assert meta["split"] == row.split and (song_dir / "mix.flac").is_file()
            if corpus != "synthetic":
                assert row.shard == f"shard-{hash_shard(row.song, 2 if corpus != 'medleydb' else 1):05d}"
        features = pd.concat(pd.read_parquet(p) for p in sorted((res / "data" / "features" / corpus).glob("*.parquet")))
        assert sorted(features["song"]) == sorted(songs["song"])
        for window in WINDOWS:
            seg = pd.read_parquet(res / "data" / "segments" / corpus / f"{window}.parquet")
            # 3 s songs are shorter than every smoke window: one whole-song segment per stem
            n_stems = songs["categories"].map(len).sum()
            assert len(seg) == n_stems and set(seg["length"]) == {3 * 44100} and set(seg["window"]) == {window}
    musdb = pd.read_parquet(res / "data" / "splits" / "musdb18hq.parquet").set_index("song")["split"].to_dict()
    assert musdb == {"Actions_-_One_Minute_Smile": "valid", "B_-_b": "train", "C_-_c": "test"}
    table = pd.read_csv(res / "tables" / "corpora.csv").set_index("corpus")
    assert table["songs"].to_dict() == expected
    assert table.loc["medleydb", "stem_guitar"] == 2 and table.loc["musdb18hq", "stem_other"] == 3
    assert (res / "figures" / "corpora.pdf").read_bytes()[:5] == b"%PDF-"
    # synthetic songs are hard links of the synth shards
    link = res / "data" / "stems" / "synthetic" / "shard-00001" / "synth-000002" / "mix.flac"
    assert os.stat(link).st_ino == os.stat(res / "synth" / "shards" / "shard-00001" / "synth-000002" / "mix.flac").st_ino
    # every rule logged to its own file
    assert (workdir / "logs" / "data" / "canonical_stems" / "medleydb" / "shard-00000.log").is_file()


@pytest.mark.parametrize("configfile", ["config.yaml", "demo.yaml", "smoke.yaml"])
def test_every_config_dry_runs_with_all_corpora_enabled(tmp_path, configfile):
    """No corpus source is configured: the DAG still builds; extract_corpus would fail at run time with
    one line (tested in test_download_corpus.py)."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"data": {"corpora": {c: {"enabled": True} for c in ("moisesdb", "musdb18hq", "medleydb")}}}))
    out = snakemake("data", "-n", "--quiet", "rules", "--configfile", f"config/{configfile}", str(overlay))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    for rule in ("canonical_stems", "preprocess", "segments_shard", "segments", "splits", "corpora_table", "corpora_figure"):
        assert rule in text, text[-3000:]
    shards = yaml.safe_load((REPO / "config" / configfile).read_text())["data"]["corpora"]
    n_stems = sum(shards[c]["shards"] for c in ("moisesdb", "musdb18hq", "medleydb"))
    assert f"canonical_stems {n_stems}" in " ".join(text.split()), text[-3000:]


def _jobs(text: str) -> set[str]:
    """Rule names in the job-stats table of a dry run."""
    rules = {"extract_corpus", "canonical_stems", "splits"}
    return {line.split()[0] for line in text.splitlines() if line.split() and line.split()[0] in rules}


@pytest.mark.slow
def test_songs_added_to_a_corpus_folder_rebuild_the_corpus(tmp_path):
    src = make_musdb(tmp_path / "my musdb", ["A - a"], ["C - c"], seconds=0.2)
    workdir = tmp_path / "run"
    workdir.mkdir()
    overlay = {"data": {"corpora": {"musdb18hq": {"enabled": True, "path": str(src), "shards": 1}}}}
    target = "results/data/splits/musdb18hq.parquet"
    out = _run(workdir, overlay, target)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    assert len(pd.read_parquet(workdir / target)) == 2
    again = _run(workdir, overlay, target, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr, (again.stdout + again.stderr)[-3000:]

    make_musdb(tmp_path / "my musdb", ["B - b"], [], seconds=0.2)  # a new song folder in train/
    dry = _run(workdir, overlay, target, "-n")
    assert _jobs(dry.stdout) == {"extract_corpus", "canonical_stems", "splits"}, (dry.stdout + dry.stderr)[-3000:]
    out = _run(workdir, overlay, target)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    assert sorted(pd.read_parquet(workdir / target)["song"]) == ["A_-_a", "B_-_b", "C_-_c"]
    assert "Nothing to be done" in _run(workdir, overlay, target, "-n").stdout

    mix = src / "musdb18hq" / "test" / "C - c" / "mixture.wav"
    os.utime(mix, ns=(mix.stat().st_atime_ns, mix.stat().st_mtime_ns + 10**9))  # a file replaced in place
    assert "extract_corpus" in _jobs(_run(workdir, overlay, target, "-n").stdout)
