"""stemlab.download.extract: zip and tar variants, unsafe members refused, nothing left behind on failure."""

from __future__ import annotations

import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from stemlab.download.extract import MANIFEST, archive_kind, extract, link_tree
from stemlab.errors import StemlabError

FILES = {
    "musdb18hq/train/Song A/mixture.wav": b"RIFF-mix-a" * 50,
    "musdb18hq/train/Song A/drums.wav": b"RIFF-drums-a" * 40,
    "musdb18hq/test/Song B/mixture.wav": b"RIFF-mix-b" * 30,
}


def make_zip(path: Path, files: dict[str, bytes], extra=None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for info, data in extra or []:
            zf.writestr(info, data)
    return path


def make_tar(path: Path, files: dict[str, bytes], mode: str = "w:gz", extra=None) -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tf.addfile(info, io.BytesIO(b"x" * info.size) if info.size else None)
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


def _assert_nothing_left(parent: Path, target: Path) -> None:
    assert not target.exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{target.name}.")], "temp dir left behind"


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz", "tar.bz2", "tar.xz"])
def test_extracts_every_format(tmp_path, kind):
    archive = tmp_path / f"corpus.{kind}"
    if kind == "zip":
        make_zip(archive, FILES)
    else:
        make_tar(archive, FILES, mode="w" if kind == "tar" else f"w:{kind.split('.')[1]}")
    target = tmp_path / "corpora" / "musdb18hq"
    assert extract(archive, target, manifest={"corpus": "musdb18hq"}, show_progress=False) == 3
    assert _tree(target) == FILES  # the archive's own layout, top folder kept
    assert json.loads((target / MANIFEST).read_text()) == {"corpus": "musdb18hq", "files": 3}
    assert archive_kind(archive) == ("zip" if kind == "zip" else "tar")


def test_kind_is_read_from_bytes_not_name(tmp_path):
    archive = make_zip(tmp_path / "download", FILES)  # e.g. a URL without an extension
    extract(archive, tmp_path / "out", show_progress=False)
    assert _tree(tmp_path / "out") == FILES


def test_macos_junk_is_skipped(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {**FILES, "__MACOSX/musdb18hq/._x": b"junk"})
    extract(archive, tmp_path / "out", show_progress=False)
    assert _tree(tmp_path / "out") == FILES


def _symlink_zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _tar_info(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("builder", "member", "why"),
    [
        (lambda p: make_zip(p / "a.zip", {**FILES, "../evil.txt": b"x"}), "../evil.txt", "'..'"),
        (lambda p: make_zip(p / "a.zip", {**FILES, "musdb18hq/../../evil": b"x"}), "musdb18hq/../../evil", "'..'"),
        (lambda p: make_zip(p / "a.zip", FILES, extra=[(zipfile.ZipInfo("/etc/evil"), b"x")]), "/etc/evil", "absolute"),
        (lambda p: make_zip(p / "a.zip", {**FILES, "..\\..\\evil": b"x"}), "..\\..\\evil", "'..'"),
        (lambda p: make_zip(p / "a.zip", FILES, extra=[(_symlink_zip_info("musdb18hq/link"), b"/etc/passwd")]), "musdb18hq/link", "symbolic link"),
        (lambda p: make_tar(p / "a.tgz", {**FILES, "../evil.txt": b"x"}), "../evil.txt", "'..'"),
        (lambda p: make_tar(p / "a.tgz", {**FILES, "/tmp/evil.txt": b"x"}), "/tmp/evil.txt", "absolute"),
        (lambda p: make_tar(p / "a.tgz", FILES, extra=[_tar_info("musdb18hq/ln", tarfile.SYMTYPE, "/etc")]), "musdb18hq/ln", "symbolic link"),
        (lambda p: make_tar(p / "a.tgz", FILES, extra=[_tar_info("musdb18hq/hl", tarfile.LNKTYPE, "musdb18hq/test/Song B/mixture.wav")]), "musdb18hq/hl", "hard link"),
        (lambda p: make_tar(p / "a.tgz", FILES, extra=[_tar_info("musdb18hq/dev", tarfile.CHRTYPE)]), "musdb18hq/dev", "device"),
        (lambda p: make_tar(p / "a.tgz", FILES, extra=[_tar_info("musdb18hq/fifo", tarfile.FIFOTYPE)]), "musdb18hq/fifo", "FIFO"),
    ],
    ids=["zip-dotdot", "zip-nested-dotdot", "zip-absolute", "zip-backslash-dotdot", "zip-symlink", "tar-dotdot",
         "tar-absolute", "tar-symlink", "tar-hardlink", "tar-device", "tar-fifo"],
)
def test_unsafe_members_are_refused_and_nothing_is_left(tmp_path, builder, member, why):
    archive = builder(tmp_path)
    parent = tmp_path / "corpora"
    parent.mkdir()
    target = parent / "musdb18hq"
    with pytest.raises(StemlabError) as err:
        extract(archive, target, show_progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert repr(member) in message and str(archive) in message and why in message
    _assert_nothing_left(parent, target)
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()


def test_failed_extraction_keeps_a_previous_target(tmp_path):
    target = tmp_path / "out"
    extract(make_zip(tmp_path / "good.zip", FILES), target, show_progress=False)
    bad = make_tar(tmp_path / "bad.tgz", {**FILES, "../evil": b"x"})
    with pytest.raises(StemlabError):
        extract(bad, target, show_progress=False)
    assert _tree(target) == FILES


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_truncated_archive_is_one_line_and_leaves_nothing(tmp_path, kind):
    big = {f"c/{i}.wav": bytes(range(256)) * 400 for i in range(6)}
    archive = tmp_path / f"c.{kind}"
    make_zip(archive, big) if kind == "zip" else make_tar(archive, big)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) * 2 // 3])
    parent = tmp_path / "corpora"
    parent.mkdir()
    with pytest.raises(StemlabError) as err:
        extract(archive, parent / "c", show_progress=False)
    assert "\n" not in str(err.value) and str(archive) in str(err.value)
    assert "download it again" in str(err.value)
    _assert_nothing_left(parent, parent / "c")


def test_corrupt_zip_member_is_caught(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {"c/a.wav": b"A" * 5000})
    data = bytearray(archive.read_bytes())
    offset = data.index(b"c/a.wav") + len(b"c/a.wav") + 5  # inside the compressed body of the member
    data[offset] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(StemlabError, match="corrupt or truncated"):
        extract(archive, tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()


def test_not_an_archive(tmp_path):
    junk = tmp_path / "page.html"
    junk.write_text("<html>login required</html>")
    with pytest.raises(StemlabError, match="not a zip or tar"):
        extract(junk, tmp_path / "out", show_progress=False)


def test_link_tree_mirrors_a_folder_without_copying(tmp_path):
    src = tmp_path / "MedleyDB"
    for name, data in FILES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    (src / "__MACOSX").mkdir()
    (src / "__MACOSX" / "junk").write_bytes(b"x")
    target = tmp_path / "corpora" / "medleydb"
    assert link_tree(src, target, key="data.corpora.medleydb", manifest={"corpus": "medleydb"}) == 3
    assert _tree(target) == FILES
    link = target / "musdb18hq/train/Song A/mixture.wav"
    assert link.is_symlink() and link.resolve() == (src / "musdb18hq/train/Song A/mixture.wav").resolve()
    assert not (target / "musdb18hq/train").is_symlink()  # real folders, so the tree is ours


def test_link_tree_rejects_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StemlabError, match="data.corpora.medleydb.path"):
        link_tree(tmp_path / "empty", tmp_path / "out", key="data.corpora.medleydb")
    with pytest.raises(StemlabError, match="data.corpora.medleydb.path"):
        link_tree(tmp_path / "missing", tmp_path / "out", key="data.corpora.medleydb")
    assert not (tmp_path / "out").exists()


def test_link_tree_keeps_empty_folders_so_a_musdb_folder_reads_like_its_zip(tmp_path):
    from stemlab.data.musdb import discover
    from tests.data_fixtures import make_musdb

    src = make_musdb(tmp_path / "musdb", [], ["C - c"], seconds=0.1)  # train/ exists and is empty
    (src / "musdb18hq" / "extra" / "deeper").mkdir(parents=True)
    assert (src / "musdb18hq" / "train").is_dir() and not any((src / "musdb18hq" / "train").iterdir())
    target = tmp_path / "corpora" / "musdb18hq"
    assert link_tree(src, target, key="data.corpora.musdb18hq") == 5
    assert (target / "musdb18hq" / "train").is_dir() and (target / "musdb18hq" / "extra" / "deeper").is_dir()
    zipped = tmp_path / "zipped"
    with zipfile.ZipFile(tmp_path / "musdb.zip", "w") as zf:
        for f in sorted(src.rglob("*")):
            zf.write(f, f.relative_to(src).as_posix())
    extract(tmp_path / "musdb.zip", zipped, show_progress=False)
    assert sorted(discover(target, {})) == sorted(discover(zipped, {})) == ["C_-_c"]


def test_link_tree_refuses_a_symlink_loop_naming_the_link(tmp_path):
    src = tmp_path / "corpus"
    for name, data in FILES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    (src / "musdb18hq" / "train" / "again").symlink_to(src / "musdb18hq")
    (src / "shared").symlink_to(src / "musdb18hq" / "test")  # a second link to one folder is not a loop
    parent = tmp_path / "corpora"
    parent.mkdir()
    with pytest.raises(StemlabError) as err:
        link_tree(src, parent / "c", key="data.corpora.musdb18hq")
    message = str(err.value)
    assert "\n" not in message and str(src / "musdb18hq" / "train" / "again") in message and "loops" in message
    _assert_nothing_left(parent, parent / "c")
    (src / "musdb18hq" / "train" / "again").unlink()
    assert link_tree(src, parent / "c", key="data.corpora.musdb18hq") == 4
