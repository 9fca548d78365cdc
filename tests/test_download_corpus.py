"""Corpus sources from the config, the manual-step error, and the download rules run by Snakemake."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from stemlab.download import sources
from stemlab.download.corpus import prepare_corpus
from stemlab.download.extract import MANIFEST
from stemlab.errors import StemlabError
from tests.download_server import FileServer
from tests.test_download_extract import FILES, make_tar, make_zip
from tests.workflow_utils import PY, REPO, snakemake_in

MEDLEY = {
    "MedleyDB/Audio/Song_C/Song_C_METADATA.yaml": b"artist: x\n",
    "MedleyDB/Audio/Song_C/Song_C_STEMS/Song_C_STEM_01.wav": b"RIFF-stem" * 20,
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, bytes]:
    """Files of a corpus folder, without our provenance file and Snakemake's .snakemake_timestamp."""
    skip = {MANIFEST, ".snakemake_timestamp"}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name not in skip}


# ------------------------------------------------------------------ config -> sources


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://zenodo.org/records/3338373/files/musdb18hq.zip?download=1", "musdb18hq.zip"),
        ("https://zenodo.org/api/records/3338373/files/musdb18hq.zip/content", "musdb18hq.zip"),
        ("file:///data/My%20Corpus.tar.gz", "My_Corpus.tar.gz"),
        ("/data/medleydb.tar", "medleydb.tar"),
        ("https://example.org/", "fallback.bin"),
    ],
)
def test_download_name(url, name):
    assert sources.download_name(url, "fallback.bin") == name


def test_corpus_defaults_and_paths():
    config = {"data": {"corpora": {"musdb18hq": {"enabled": True}, "moisesdb": {"enabled": True}}}}
    assert sources.enabled_corpora(config) == ["moisesdb", "musdb18hq"]
    musdb = sources.corpus_source(config, "musdb18hq")
    assert musdb.kind == "url" and "3338373" in musdb.url and len(musdb.sha256) == 64
    assert sources.corpus_download_path(config, "musdb18hq") == "resources/downloads/musdb18hq/musdb18hq.zip"
    assert sources.corpus_source(config, "moisesdb").kind == "missing"
    assert sources.corpus_download_path(config, "moisesdb") is None
    config["data"]["corpora"]["moisesdb"]["path"] = "/data/moisesdb.zip"
    assert sources.corpus_source(config, "moisesdb").kind == "path"


def test_config_errors_name_the_key():
    bad = {"data": {"corpora": {"medleydb": {"url": "https://x/a.zip", "sha256": "abc"}}}}
    with pytest.raises(StemlabError, match=r"data\.corpora\.medleydb\.sha256"):
        sources.corpus_source(bad, "medleydb")
    with pytest.raises(StemlabError, match="unknown corpus"):
        sources.corpus_source(bad, "slakh")
    with pytest.raises(StemlabError, match=r"pretrained\.clap\.files\[0\]\.url"):
        sources.pretrained_files({"pretrained": {"clap": {"files": [{"path": "a.pt"}]}}}, "clap")
    for bad_path in ("../a.pt", "/etc/a.pt", "w/../../a.pt", ""):
        with pytest.raises(StemlabError, match=r"pretrained\.clap\.files\[0\]\.path"):
            sources.pretrained_files({"pretrained": {"clap": {"files": [{"path": bad_path, "url": "x"}]}}}, "clap")
    with pytest.raises(StemlabError, match="listed twice"):
        sources.pretrained_files({"pretrained": {"c": {"files": [{"path": "a", "url": "x"}, {"path": "./a", "url": "y"}]}}}, "c")
    with pytest.raises(StemlabError, match="no soundfont named 'gm'"):
        sources.soundfont_source({"soundfonts": []}, "gm")


def test_manual_step_message_says_what_where_and_which_key(tmp_path):
    with pytest.raises(StemlabError) as err:
        prepare_corpus("moisesdb", tmp_path / "out", show_progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert "MoisesDB" in message and "https://music.ai/research/" in message and "moisesdb.zip" in message
    assert "data.corpora.moisesdb.path" in message and "data.corpora.moisesdb.url" in message
    assert not (tmp_path / "out").exists()


def test_manual_step_from_the_cli_is_one_line(tmp_path):
    out = subprocess.run(
        [PY, "-m", "stemlab.download", "corpus", "--name", "medleydb", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "scripts")},
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: corpus MedleyDB 2.0 is enabled")
    assert "https://medleydb.weebly.com" in lines[0] and "data.corpora.medleydb.path" in lines[0]


def test_local_archive_path_is_verified_then_extracted(tmp_path):
    archive = make_zip(tmp_path / "musdb18hq.zip", FILES)
    out = tmp_path / "corpora" / "musdb18hq"
    with pytest.raises(StemlabError) as err:
        prepare_corpus("musdb18hq", out, path=str(archive), sha256="0" * 64, show_progress=False)
    assert "data.corpora.musdb18hq.sha256" in str(err.value) and _sha(archive) in str(err.value)
    assert archive.exists() and not out.exists()  # the user's own file is never deleted
    prepare_corpus("musdb18hq", out, path=str(archive), sha256=_sha(archive), show_progress=False)
    assert _tree(out) == FILES


def test_missing_local_path_names_the_key(tmp_path):
    with pytest.raises(StemlabError) as err:
        prepare_corpus("moisesdb", tmp_path / "out", path=str(tmp_path / "nope.zip"), show_progress=False)
    assert "data.corpora.moisesdb.path" in str(err.value) and "does not exist" in str(err.value)


# ------------------------------------------------------------------ the Snakemake rules


def _run(workdir: Path, overlay: dict, *targets: str) -> subprocess.CompletedProcess:
    return snakemake_in(workdir, overlay, *targets, cores=1, timeout=300)


@pytest.mark.slow  # a dozen snakemake runs against a local server
def test_download_rules_end_to_end(tmp_path):
    """download_corpus (interrupted once, resumed), extract_corpus from a URL, a local archive and no
    source at all, download_soundfont (file://) and download_checkpoint (http) in one Snakemake run."""
    musdb_zip = make_zip(tmp_path / "musdb18hq.zip", FILES)
    medley_tgz = make_tar(tmp_path / "medleydb.tar.gz", MEDLEY)
    font = tmp_path / "font.sf2"
    font.write_bytes(b"sfbk" * 1000)
    ckpt = os.urandom(20_000)
    workdir = tmp_path / "run"
    workdir.mkdir()
    with FileServer() as server:
        server.state.files["/records/1/files/musdb18hq.zip"] = musdb_zip.read_bytes()
        server.state.files["/models/clap.pt"] = ckpt
        server.state.files["/models/config.json"] = b'{"embed_dim": 512}\n'
        # the first response for the corpus is cut mid-body
        cut = musdb_zip.stat().st_size // 2
        server.state.drop_after, server.state.drop_times = cut, 1
        server.state.drop_path = "/records/1/files/musdb18hq.zip"
        overlay = {
            "data": {"corpora": {
                "musdb18hq": {"enabled": True, "url": server.url("/records/1/files/musdb18hq.zip?download=1"),
                              "sha256": _sha(musdb_zip)},
                "medleydb": {"enabled": True, "path": str(medley_tgz), "sha256": _sha(medley_tgz)},
                "moisesdb": {"enabled": True},
            }},
            "pretrained": {"clap": {"files": [
                {"path": "weights/clap.pt", "url": server.url("/models/clap.pt"), "sha256": hashlib.sha256(ckpt).hexdigest()},
                {"path": "config.json", "url": server.url("/models/config.json"), "sha256": None},
            ]}},
            "soundfonts": [{"name": "test", "url": font.as_uri(), "sha256": _sha(font)}],
        }
        dry = _run(workdir, overlay, "downloads", "-n")
        assert dry.returncode == 0, dry.stdout + dry.stderr  # a source-less corpus does not break the DAG
        # `downloads` fetches only the snapshots an enabled model reads (none in smoke), not every listed one
        assert "resources/pretrained/" not in dry.stdout + dry.stderr
        out = _run(workdir, overlay, "downloads", "resources/pretrained/clap", "--keep-going")
    text = out.stdout + out.stderr
    assert out.returncode != 0, text  # moisesdb has no source

    musdb = workdir / "resources/corpora/musdb18hq"
    assert _tree(musdb) == FILES, text
    assert (workdir / "resources/downloads/musdb18hq/musdb18hq.zip").read_bytes() == musdb_zip.read_bytes()
    assert not (workdir / "resources/downloads/musdb18hq/musdb18hq.zip.part").exists()
    assert [r["range"] for r in server.state.requests if "musdb" in r["path"]] == [None, f"bytes={cut}-"]
    assert _tree(workdir / "resources/corpora/medleydb") == MEDLEY
    assert (workdir / "resources/soundfonts/test.sf2").read_bytes() == font.read_bytes()
    snapshot = workdir / "resources/pretrained/clap"
    assert (snapshot / "weights/clap.pt").read_bytes() == ckpt
    assert (snapshot / "config.json").read_bytes() == b'{"embed_dim": 512}\n'
    from stemlab.download.pretrained import snapshot_digests

    assert snapshot_digests(snapshot) == {
        "weights/clap.pt": hashlib.sha256(ckpt).hexdigest(), "config.json": hashlib.sha256(b'{"embed_dim": 512}\n').hexdigest()
    }  # fmt: skip
    # the bytes arrived in the resumable cache; the snapshot holds hard links to them, not copies
    assert (snapshot / "weights/clap.pt").stat().st_ino == (workdir / "resources/downloads/pretrained/clap/weights/clap.pt").stat().st_ino

    assert not (workdir / "resources/corpora/moisesdb").exists()
    log = (workdir / "logs/download/extract_corpus/moisesdb.log").read_text().strip().splitlines()
    assert len(log) == 1 and log[0].startswith("error: corpus MoisesDB is enabled"), log
    assert "data.corpora.moisesdb.path" in log[0]


def test_folder_fingerprint_follows_names_sizes_and_mtimes(tmp_path):
    src = tmp_path / "corpus"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.wav").write_bytes(b"1234")
    config = {"data": {"corpora": {"moisesdb": {"enabled": True, "path": str(src)}}}}
    first = sources.corpus_fingerprint(config, "moisesdb")
    assert len(first) == 64 and sources.corpus_fingerprint(config, "moisesdb") == first
    (src / "b").mkdir()  # an empty folder is linked too
    second = sources.corpus_fingerprint(config, "moisesdb")
    assert second != first
    (src / "a" / "x.wav").write_bytes(b"12345")
    third = sources.corpus_fingerprint(config, "moisesdb")
    assert third != second
    st = (src / "a" / "x.wav").stat()
    os.utime(src / "a" / "x.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert sources.corpus_fingerprint(config, "moisesdb") != third
    (src / "b" / "loop").symlink_to(src)  # link_tree refuses it at run time; the DAG still builds
    assert sources.corpus_fingerprint(config, "moisesdb").startswith("unreadable: ")
    archive = make_zip(tmp_path / "c.zip", FILES)
    config["data"]["corpora"]["moisesdb"]["path"] = str(archive)
    assert sources.corpus_fingerprint(config, "moisesdb") == f"file {archive.stat().st_size} {archive.stat().st_mtime_ns}"
    assert sources.corpus_fingerprint({"data": {"corpora": {"moisesdb": {"enabled": True}}}}, "moisesdb") == ""


def test_sha256_for_a_folder_is_refused_naming_the_key(tmp_path):
    src = tmp_path / "my folder"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.wav").write_bytes(b"x")
    out = tmp_path / "corpora" / "musdb18hq"
    with pytest.raises(StemlabError) as err:
        prepare_corpus("musdb18hq", out, path=str(src), sha256="0" * 64, show_progress=False)
    assert "\n" not in str(err.value) and "data.corpora.musdb18hq.sha256" in str(err.value) and str(src) in str(err.value)
    assert not out.parent.exists() or not any(out.parent.iterdir())
    # the default sha256 pins the default download: a folder path does not inherit it, a user's own hash stays
    config = {"data": {"corpora": {"musdb18hq": {"enabled": True, "path": str(src)}}}}
    assert sources.corpus_source(config, "musdb18hq").sha256 is None
    config["data"]["corpora"]["musdb18hq"]["sha256"] = "1" * 64
    assert sources.corpus_source(config, "musdb18hq").sha256 == "1" * 64
    config["data"]["corpora"]["musdb18hq"] = {"enabled": True, "path": str(make_zip(tmp_path / "m.zip", FILES))}
    assert sources.corpus_source(config, "musdb18hq").sha256 == sources.CORPORA["musdb18hq"].default_sha256


def test_split_fractions_over_one_are_a_config_error_naming_the_key(tmp_path):
    config = {"data": {"corpora": {"moisesdb": {"split": {"train": 0.9, "valid": 0.2}},
                                   "medleydb": {"split": {"train": 0.9}}}}}
    assert sources.split_errors(config) == [
        "data.corpora.moisesdb.split: train 0.9 + valid 0.2 = 1.1 is more than 1 (test gets the rest); lower them"
    ]
    with pytest.raises(StemlabError, match=r"^invalid config: data\.corpora\.moisesdb\.split: "):
        sources.check_splits(config)
    config["data"]["corpora"]["moisesdb"]["split"] = {"train": 0.8, "valid": 0.2}  # exactly 1: no test songs, allowed
    config["data"]["corpora"]["medleydb"]["split"] = {"train": "most"}  # a wrong type is the schema's to report
    assert sources.split_errors(config) == [] and sources.split_errors({"data": None}) == []
    # the workflow refuses it before any job, in one line
    out = snakemake_in(tmp_path, {"data": {"corpora": {"medleydb": {"split": {"train": 0.95, "valid": 0.1}}}}}, "data", "-n")
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if "invalid config:" in line]
    assert out.returncode != 0 and len(lines) == 1 and "data.corpora.medleydb.split" in lines[0], out.stdout + out.stderr
