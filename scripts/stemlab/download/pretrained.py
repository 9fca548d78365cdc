"""resources/pretrained/<name>/: a pretrained snapshot (a set of files, each with URL + sha256) in one folder.

Each file's bytes arrive in resources/downloads/pretrained/<name>/<path> (resumable, verified by fetch), so a
job cut off mid-way resumes; the snapshot folder is then assembled from hard links (no second copy) and
replaces the target only when complete. Its manifest, .stemlab-source.json, lists every file's sha256:
the run identity of a model that loads the snapshot is taken from it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stemlab.atomic import atomic_dir
from stemlab.download.fetch import fetch
from stemlab.errors import StemlabError
from stemlab.logs import log

MANIFEST = ".stemlab-source.json"


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:  # another filesystem
        shutil.copy2(src, dest)


def fetch_snapshot(
    name: str,
    files: Sequence[Mapping[str, Any]],
    out: str | os.PathLike[str],
    cache: str | os.PathLike[str],
    *,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Download every file of `files` ({path, url, sha256, key}) and assemble the folder `out`."""
    if not files:
        raise StemlabError(f"pretrained.{name}.files is empty: list each file of the snapshot")
    cache = Path(cache)
    entries = []
    for f in files:
        digest = fetch(f["url"], cache / f["path"], f.get("sha256") or None, key=f["key"], show_progress=show_progress)
        entries.append({"path": f["path"], "url": f["url"], "sha256": digest})
    with atomic_dir(out) as tmp:
        for f in files:
            _link_or_copy(cache / f["path"], tmp / f["path"])
        manifest = {"name": name, "files": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log.info("pretrained %s: %d files in %s", name, len(files), out)
    return manifest


def snapshot_digests(folder: str | os.PathLike[str]) -> dict[str, str]:
    """path -> sha256 of a snapshot folder, from its manifest (verified when it was downloaded)."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        return {e["path"]: e["sha256"] for e in manifest["files"]}
    except FileNotFoundError:
        raise StemlabError(f"{path}: missing; the folder was not made by the download_pretrained rule, re-run it") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise StemlabError(f"{path}: not a snapshot manifest ({type(exc).__name__}); delete the folder and re-run download_pretrained") from exc
