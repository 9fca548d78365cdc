"""Where a restore bundle comes from (config `restore`), read at parse time: stdlib only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stemlab.errors import StemlabError

BUNDLE = "results/bundle/stemlab-bundle.tar"  # what rule bundle writes
BUNDLE_SHA256 = "results/bundle/stemlab-bundle.tar.sha256"  # its sha256, in sha256sum's format
RESTORED = "resources/bundle/stemlab-bundle.tar"  # the downloaded bundle, once verified
STAGING = "resources/downloads/bundle/stemlab-bundle.tar"  # where its bytes arrive (resumable)
TABLES_CHECK = "results/restore/tables_check.csv"  # the restored run's tables against the bundled ones


@dataclass(frozen=True)
class RestoreSource:
    url: str
    sha256: str


def restore_source(config: Mapping[str, Any]) -> RestoreSource | None:
    """The bundle to restore the models from, or None when the models are trained (restore.url unset)."""
    section = config.get("restore") or {}
    url = section.get("url")
    if not url:
        return None
    sha256 = section.get("sha256")
    if not sha256:
        raise StemlabError(
            "restore.url is set but restore.sha256 is not; set restore.sha256 to the bundle's sha256 "
            f"(the {BUNDLE_SHA256.rsplit('/', 1)[-1]} published with it)"
        )
    return RestoreSource(url=str(url), sha256=str(sha256).lower())
