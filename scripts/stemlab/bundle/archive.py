"""Download and verify a bundle (rule download_bundle): its sha256 against restore.sha256 (through the
download code: resumable, checked), then every member against the manifest. Only a bundle that passes
both reaches resources/bundle/; one that fails is removed, with one line naming the member and the fix.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tarfile
from pathlib import Path

from stemlab.bundle.manifest import FIX, MAX_BYTES, NAME, Manifest, check_member_path, parse_manifest
from stemlab.download.fetch import CHUNK, fetch
from stemlab.errors import StemlabError
from stemlab.logs import byte_progress, log


def _refuse(where: str, what: str) -> StemlabError:
    return StemlabError(f"{where}: {what}; the bundle is damaged or was altered: {FIX}")


def _read_head(tf: tarfile.TarFile, where: str) -> Manifest:
    try:
        first = tf.next()
    except tarfile.TarError as exc:
        raise _refuse(where, f"is not a tar archive ({exc})") from None
    if first is None or first.name != NAME or not first.isreg() or first.size > MAX_BYTES:
        raise _refuse(where, f"does not start with its {NAME}")
    fh = tf.extractfile(first)
    assert fh is not None  # a regular file
    return parse_manifest(fh.read(), where)


def read_manifest(path: str | os.PathLike[str], where: str | None = None) -> Manifest:
    """The manifest of a bundle (its first member), without reading the rest."""
    where = where or str(path)
    try:
        with tarfile.open(path, "r:") as tf:
            return _read_head(tf, where)
    except tarfile.TarError as exc:
        raise _refuse(where, f"is not an uncompressed tar archive ({exc})") from None


def copy_member(src, dest, size: int, sha256: str, path: str, where: str) -> None:
    """Stream one member from `src` to `dest` (a binary file, or None to only hash it), checking its size
    and sha256 against the manifest."""
    h, n = hashlib.sha256(), 0
    while chunk := src.read(CHUNK):
        h.update(chunk)
        n += len(chunk)
        if dest is not None:
            dest.write(chunk)
    if n != size or h.hexdigest() != sha256:
        raise _refuse(where, f"member {path} has {n} bytes of sha256 {h.hexdigest()[:16]}..., its manifest says {size} bytes of {sha256[:16]}...")


def verify_bundle(path: str | os.PathLike[str], where: str | None = None, show_progress: bool = True) -> Manifest:
    """Check every member of a bundle against its manifest in one pass: only regular files, each listed
    once, of the listed size and sha256, none missing; return the manifest."""
    path = Path(path)
    where = where or str(path)
    seen: set[str] = set()
    try:
        with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tf, \
                byte_progress(path.stat().st_size, f"verify {path.name}", show_progress) as bar:
            manifest = _read_head(tf, where)
            for member in itertools.islice(tf, 1, None):  # the iterator starts again at the manifest
                check_member_path(member.name, where)
                if not member.isreg():
                    raise _refuse(where, f"member {member.name} is not a regular file")
                entry = manifest.files.get(member.name)
                if entry is None:
                    raise _refuse(where, f"member {member.name} is not listed in its {NAME}")
                if member.name in seen:
                    raise _refuse(where, f"member {member.name} appears twice")
                seen.add(member.name)
                src = tf.extractfile(member)
                assert src is not None
                copy_member(src, None, entry.size, entry.sha256, member.name, where)
                bar.update(member.size + 512)
    except tarfile.TarError as exc:
        raise _refuse(where, f"is not an uncompressed tar archive, or it is truncated ({exc})") from None
    missing = sorted(set(manifest.files) - seen)
    if missing:
        raise _refuse(where, f"lacks {missing[0]}, which its {NAME} lists")
    log.info("%s: %d members match its manifest (%d models, %d tables)", where, len(seen), len(manifest.models), len(manifest.tables))
    return manifest


def fetch_bundle(url: str, sha256: str, out: str | os.PathLike[str], staging: str | os.PathLike[str],
                 show_progress: bool = True) -> Manifest:
    """Download `url` to `staging` (verified against `sha256`, resumable), check its members, then move
    it to `out`. A bundle that fails a check is deleted: nothing is left that looks restored."""
    staging = Path(staging)
    fetch(url, staging, sha256, key="restore", show_progress=show_progress)
    try:
        manifest = verify_bundle(staging, where=f"bundle {url}", show_progress=show_progress)
    except StemlabError:
        staging.unlink(missing_ok=True)
        raise
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, out)
    return manifest
