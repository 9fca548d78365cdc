"""Pack trained weights and result tables into one deterministic tar (rule bundle).

Members are sorted after manifest.json, with fixed mtimes, owners and modes, so the same files always
give the same bytes (and the same sha256 to publish). The tar is not compressed: weights barely
compress, and an uncompressed tar lets a restore job read its own members without a full pass.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from stemlab.atomic import atomic_path, write_text
from stemlab.bundle.manifest import NAME, FileEntry, Manifest, check_member_path, model_entry
from stemlab.download.fetch import CHUNK, sha256_file
from stemlab.errors import StemlabError
from stemlab.logs import log, progress


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_manifest(files: Iterable[str], config_digest: str) -> Manifest:
    """The manifest of `files` (paths relative to the working directory, as the rule lists them)."""
    entries: dict[str, FileEntry] = {}
    for path in sorted(set(files)):
        check_member_path(path, "rule bundle")
        if not Path(path).is_file():
            raise StemlabError(f"{path} does not exist; run the workflow (snakemake all) before `snakemake bundle`")
    for path in progress(sorted(set(files)), "sha256"):
        entries[path] = FileEntry(path=path, size=Path(path).stat().st_size, sha256=sha256_file(path))
    models = []
    for path in sorted(p for p in entries if p.endswith("/meta.json")):
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
        models.append(model_entry(str(Path(path).parent.as_posix()), meta))
    tables = sorted(p for p in entries if p.endswith(".csv") and "/models/" not in p)
    return Manifest(files=entries, models=models, tables=tables, config_digest=config_digest)


def pack(files: Iterable[str], out: str | os.PathLike[str], config_digest: str) -> str:
    """Write the bundle of `files` to `out` (atomically) and `<out>.sha256`; return its sha256."""
    manifest = build_manifest(files, config_digest)
    out = Path(out)
    head = manifest.to_json().encode("utf-8")
    with atomic_path(out) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
            tf.addfile(_info(NAME, len(head)), io.BytesIO(head))
            for path in progress(sorted(manifest.files), "pack"):
                entry = manifest.files[path]
                with open(path, "rb") as fh:
                    tf.addfile(_info(path, entry.size), _Verified(fh, entry))
        digest = sha256_file(tmp)
    write_text(f"{out}.sha256", f"{digest}  {out.name}\n")
    log.info("bundle %s: %d files (%d models, %d tables), sha256 %s", out, len(manifest.files),
             len(manifest.models), len(manifest.tables), digest)
    log.info("restore from it with config  restore: {url: <where you publish %s>, sha256: %s}", out.name, digest)
    return digest


class _Verified:
    """A file reader that checks, at its end, that the bytes packed are those the manifest lists (a file
    changed while the bundle was written would otherwise ship with a wrong sha256)."""

    def __init__(self, fh, entry: FileEntry) -> None:
        self.fh, self.entry, self.h, self.n = fh, entry, hashlib.sha256(), 0

    def read(self, n: int = CHUNK) -> bytes:
        data = self.fh.read(n)
        self.h.update(data)
        self.n += len(data)
        if self.n >= self.entry.size and self.h.hexdigest() != self.entry.sha256:
            raise StemlabError(f"{self.entry.path} changed while the bundle was written; run `snakemake bundle` again")
        return data
