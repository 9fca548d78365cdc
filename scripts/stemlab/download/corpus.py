"""resources/corpora/<corpus>/ from whatever the config points at: an archive, a folder, or nothing."""

from __future__ import annotations

import os
from pathlib import Path

from stemlab.download.extract import extract, link_tree
from stemlab.download.fetch import verify_file
from stemlab.download.sources import ALL_CORPORA, corpus_key, manual_step_message
from stemlab.errors import StemlabError


def prepare_corpus(
    name: str,
    out: str | os.PathLike[str],
    *,
    path: str | None = None,
    archive: str | None = None,
    url: str | None = None,
    sha256: str | None = None,
    show_progress: bool = True,
) -> int:
    """Fill `out` (atomically) from a local `path` (archive or extracted folder) or a downloaded `archive`.

    With neither, the corpus needs a manual step (sign-up, access request): one line says what to get
    from where and which key to set. Returns the number of files.
    """
    if name not in ALL_CORPORA:
        raise StemlabError(f"unknown corpus {name!r}: expected one of {', '.join(ALL_CORPORA)}")
    key = corpus_key(name)
    if path:
        src = Path(path).expanduser()
        if not src.exists():
            raise StemlabError(f"{key}.path is {path}, which does not exist: {ALL_CORPORA[name].obtain}, then fix {key}.path")
        if src.is_dir():
            if sha256:
                raise StemlabError(
                    f"{key}.sha256 is set but {key}.path ({path}) is a folder, which has no sha256 to check: set "
                    f"{key}.sha256 to null, or point {key}.path at the archive it was extracted from"
                )
            return link_tree(src, out, key=key, manifest={"corpus": name, "source": "folder", "path": str(src.resolve())})
        actual = verify_file(src, sha256, key=key, show_progress=show_progress)
        return extract(src, out, show_progress=show_progress,
                       manifest={"corpus": name, "source": "archive", "path": str(src.resolve()), "sha256": actual})
    if archive:
        return extract(archive, out, show_progress=show_progress,
                       manifest={"corpus": name, "source": "download", "url": url, "archive": os.fspath(archive), "sha256": sha256})
    raise StemlabError(manual_step_message(name))
