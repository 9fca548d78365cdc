"""Extract one (model, seed) of a verified bundle into results/models/<model>/seed-<s>/ (rule
restore_model, which stands in for train_model when restore.url is set).

The bundled model must have been trained with this config's task, settings and loop (its manifest
records them from the model's meta.json): a mismatch stops with one line naming the first key. Each file
is written to a temporary folder and checked against the manifest; only when all are there and match are
they renamed into place (meta.json last), so a failure leaves nothing that looks restored.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from stemlab.bundle.archive import copy_member, read_manifest
from stemlab.bundle.manifest import FIX, job_differences
from stemlab.errors import StemlabError
from stemlab.logs import log
from stemlab.modelplan import TRAIN_OUTPUTS, model_dir

TRAIN_FIX = "set restore.url to a bundle made with this config, or to null to train the models"


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)[:60]


def restore_model(bundle: str | os.PathLike[str], key: str, seed: int, job: dict[str, Any],
                  out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the bundled final.pt, train_log.csv and meta.json of model row `key`, seed `seed`, into
    `out_dir`, once the bundle's model matches `job` (this config's train job); return the files."""
    manifest = read_manifest(bundle)
    entry = manifest.model(key, seed)
    where = f"bundle {bundle}"
    if entry is None:
        have = ", ".join(sorted({m["model"] for m in manifest.models})) or "none"
        raise StemlabError(f"{where} holds no model {key} seed {seed} (it has: {have}); {TRAIN_FIX}")
    diffs = job_differences(entry, job)
    if diffs:
        name, bundled, here = diffs[0]
        more = f" (and {len(diffs) - 1} more keys)" if len(diffs) > 1 else ""
        raise StemlabError(
            f"{where}: model {key} seed {seed} was trained with {name} = {_show(bundled)}, this config has "
            f"{_show(here)}{more}; {TRAIN_FIX}"
        )
    paths = [f"{model_dir(key, seed)}/{name}" for name in TRAIN_OUTPUTS]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".restore.", suffix=".part", dir=out_dir))
    try:
        with tarfile.open(bundle, "r:") as tf:
            for path, name in zip(paths, TRAIN_OUTPUTS):
                file = manifest.files.get(path)
                try:
                    member = tf.getmember(path)
                except KeyError:
                    member = None
                if file is None or member is None or not member.isreg():
                    raise StemlabError(f"{where} lacks {path}; the bundle is damaged or was altered: {FIX}")
                src = tf.extractfile(member)
                assert src is not None
                with open(tmp / name, "wb") as dest:
                    copy_member(src, dest, file.size, file.sha256, path, where)
        order = sorted(TRAIN_OUTPUTS, key=lambda n: n == "meta.json")  # meta.json last: it means complete
        for name in order:
            os.replace(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("restored %s seed %d from %s (identity %s)", key, seed, bundle, entry.get("identity_hash"))
    return [out_dir / name for name in TRAIN_OUTPUTS]
