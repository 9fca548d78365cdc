"""Safe archive extraction (zip, tar, tar.gz/.bz2/.xz) and link trees for already extracted folders.

Everything is written into a temporary directory beside the target, which replaces the target only
when the whole archive went through: a refused or corrupt archive leaves nothing behind. Only regular
files and directories are accepted; a member with an absolute path, a `..` component, a NUL byte, or
that is a symlink, hard link, device or FIFO is refused with one line naming it and the archive.
"""

from __future__ import annotations

import json
import logging
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from stemlab.atomic import atomic_dir
from stemlab.download.fetch import CHUNK
from stemlab.download.sources import SKIP_TOP, walk_folder
from stemlab.errors import StemlabError
from stemlab.logs import byte_progress

log = logging.getLogger("stemlab.download")

MANIFEST = ".stemlab-source.json"
_DRIVE = re.compile(r"^[A-Za-z]:")
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError)


def archive_kind(path: str | os.PathLike[str]) -> str:
    """'zip' or 'tar' from the file's bytes (not its name); a one-line error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"archive {path} does not exist or is not a file")
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except _CORRUPT:
        pass
    raise StemlabError(f"{path} is not a zip or tar(.gz/.bz2/.xz) archive (or it is truncated): delete it and download it again")


def member_parts(name: str, archive: Path) -> list[str]:
    """Path components of an archive member, or a one-line error if it would escape the target."""
    def refuse(why: str) -> StemlabError:
        return StemlabError(f"refusing archive {archive}: member {name!r} {why}; obtain an intact copy of the archive")

    if "\x00" in name:
        raise refuse("contains a NUL byte")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise refuse("has an absolute path")
    parts = [p for p in re.split(r"[/\\]", name) if p not in ("", ".")]
    if ".." in parts:
        raise refuse("has a '..' component that escapes the target folder")
    return parts


def _refuse_type(name: str, archive: Path, what: str) -> StemlabError:
    return StemlabError(f"refusing archive {archive}: member {name!r} is a {what}, only regular files and folders are allowed; obtain an intact copy of the archive")


def _zip_type(info: zipfile.ZipInfo) -> str | None:
    """None for a regular file/folder, else what the member is."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind in (0, stat.S_IFREG, stat.S_IFDIR):
        return None
    if kind == stat.S_IFLNK:
        return "symbolic link"
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        return "device"
    if kind == stat.S_IFIFO:
        return "FIFO"
    return "special file"


def _tar_type(member: tarfile.TarInfo) -> str | None:
    if member.isreg() or member.isdir():
        return None
    if member.issym():
        return "symbolic link"
    if member.islnk():
        return "hard link"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "FIFO"
    return "special file"


class _CountingReader:
    """A read-only file wrapper that reports the bytes read (progress of a streamed tar)."""

    def __init__(self, raw: IO[bytes], bar: tqdm) -> None:
        self.raw, self.bar = raw, bar

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.bar.update(len(data))
        return data


def _mkdir(root: Path, parts: list[str], name: str, archive: Path) -> None:
    try:
        root.joinpath(*parts).mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError) as exc:
        raise StemlabError(f"refusing archive {archive}: member {name!r} collides with another member ({exc.strerror}); obtain an intact copy") from None


def _write_member(root: Path, parts: list[str], src: IO[bytes], name: str, archive: Path) -> None:
    dest = root.joinpath(*parts)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
    except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
        raise StemlabError(f"refusing archive {archive}: member {name!r} collides with another member ({exc.strerror}); obtain an intact copy") from None


def _extract_zip(archive: Path, root: Path, show: bool) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        planned = []
        for info in infos:  # check every member before writing any
            parts = member_parts(info.filename, archive)
            what = _zip_type(info)
            if what:
                raise _refuse_type(info.filename, archive, what)
            planned.append((info, parts))
        count = 0
        with byte_progress(sum(i.file_size for i in infos), archive.name, show) as bar:
            for info, parts in planned:
                if not parts or parts[0] in SKIP_TOP:
                    continue
                if info.is_dir():
                    _mkdir(root, parts, info.filename, archive)
                    continue
                with zf.open(info) as src:
                    _write_member(root, parts, src, info.filename, archive)
                bar.update(info.file_size)
                count += 1
    return count


def _extract_tar(archive: Path, root: Path, show: bool) -> int:
    """One streaming pass (a .tar.gz is decompressed once); a bad member aborts, and the temp dir goes."""
    count = 0
    with open(archive, "rb") as raw, byte_progress(archive.stat().st_size, archive.name, show) as bar:
        with tarfile.open(fileobj=_CountingReader(raw, bar), mode="r|*") as tf:  # type: ignore[arg-type]
            for member in tf:
                parts = member_parts(member.name, archive)
                what = _tar_type(member)
                if what:
                    raise _refuse_type(member.name, archive, what)
                if not parts or parts[0] in SKIP_TOP:
                    continue
                if member.isdir():
                    _mkdir(root, parts, member.name, archive)
                    continue
                src = tf.extractfile(member)
                assert src is not None  # regular file
                _write_member(root, parts, src, member.name, archive)
                count += 1
    return count


def _write_manifest(root: Path, manifest: dict[str, Any] | None, files: int) -> None:
    if manifest is not None:
        (root / MANIFEST).write_text(json.dumps({**manifest, "files": files}, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def extract(
    archive: str | os.PathLike[str],
    target_dir: str | os.PathLike[str],
    *,
    manifest: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> int:
    """Extract `archive` into `target_dir` (replaced atomically); return the number of files.

    The archive's own layout is kept (a wrapping top folder such as musdb18hq/ stays): readers locate
    their corpus by its marker files. `manifest` (provenance) is written to `<target_dir>/.stemlab-source.json`.
    """
    archive = Path(archive)
    kind = archive_kind(archive)
    with atomic_dir(target_dir) as tmp:
        try:
            files = _extract_zip(archive, tmp, show_progress) if kind == "zip" else _extract_tar(archive, tmp, show_progress)
        except _CORRUPT as exc:
            raise StemlabError(f"archive {archive} is corrupt or truncated ({exc}): delete it and download it again") from None
        if files == 0:
            raise StemlabError(f"archive {archive} holds no files: delete it and download it again")
        _write_manifest(tmp, manifest, files)
    log.info("extracted %d files from %s into %s", files, archive, target_dir)
    return files


def link_tree(
    src_dir: str | os.PathLike[str],
    target_dir: str | os.PathLike[str],
    *,
    key: str,
    manifest: dict[str, Any] | None = None,
) -> int:
    """Mirror an extracted corpus folder as real folders (empty ones too) of symlinks to its files (no
    copy); return the number of files.

    The corpus adapters then read `target_dir` the same way whether the corpus was downloaded or not.
    """
    src = Path(src_dir).expanduser().resolve()
    if not src.is_dir():
        raise StemlabError(f"{src_dir} is not a folder: fix {key}.path")
    files = 0
    with atomic_dir(target_dir) as tmp:
        for path, rel, is_dir in walk_folder(src, key):
            if is_dir:
                (tmp / rel).mkdir()
                continue
            os.symlink(path.resolve(), tmp / rel)
            files += 1
        if files == 0:
            raise StemlabError(f"folder {src} holds no files: fix {key}.path")
        _write_manifest(tmp, manifest, files)
    log.info("linked %d files of %s into %s", files, src, target_dir)
    return files
