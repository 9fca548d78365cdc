"""The restored run's tables beside the bundled ones (rule check_restored_tables): each table the
bundle holds, regenerated here from the restored weights, compared cell by cell.

One row per table: `identical` (same bytes), `close` (same rows, numbers within `tolerance`, relative),
`differs` (the first differing cell named) or `not regenerated`. Evaluation on other hardware (CPU
against the GPUs the models were evaluated on) may move numbers slightly, so a difference is reported,
not an error.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stemlab.atomic import atomic_path
from stemlab.bundle.archive import copy_member, read_manifest
from stemlab.logs import log

COLUMNS = ["table", "status", "rows", "max_abs_diff", "first_difference"]


def _compare(bundled: pd.DataFrame, here: pd.DataFrame, tolerance: float) -> tuple[str, float, str]:
    if list(bundled.columns) != list(here.columns) or len(bundled) != len(here):
        return "differs", float("nan"), f"shape {bundled.shape} bundled, {here.shape} here"
    worst = 0.0
    for col in bundled.columns:
        a, b = bundled[col], here[col]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            x, y = a.to_numpy(float), b.to_numpy(float)
            both_nan = np.isnan(x) & np.isnan(y)
            diff = np.where(both_nan, 0.0, np.abs(x - y))
            worst = max(worst, float(np.nanmax(diff, initial=0.0)))
            bad = ~both_nan & ~(diff <= tolerance * np.maximum(np.abs(x), 1.0))
        else:
            bad = (a.astype(str) != b.astype(str)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            return "differs", worst, f"row {row} {col}: {a.iloc[row]} bundled, {b.iloc[row]} here"
    return "close", worst, ""


def compare_tables(bundle: str | os.PathLike[str], tables: Sequence[str], out: str | os.PathLike[str],
                   tolerance: float = 1e-6) -> pd.DataFrame:
    """Compare every table of the bundle with the file of the same path in `tables`; write `out`."""
    manifest = read_manifest(bundle)
    here = {Path(t).as_posix(): Path(t) for t in tables}
    rows = []
    with tarfile.open(bundle, "r:") as tf:
        for path in manifest.tables:
            entry = manifest.files[path]
            buf = io.BytesIO()
            src = tf.extractfile(tf.getmember(path))
            assert src is not None
            copy_member(src, buf, entry.size, entry.sha256, path, f"bundle {bundle}")
            if path not in here or not here[path].is_file():
                rows.append([path, "not regenerated", 0, float("nan"), "not a table of this run"])
                continue
            ours = here[path].read_bytes()
            if ours == buf.getvalue():
                rows.append([path, "identical", ours.count(b"\n") - 1, 0.0, ""])
                continue
            bundled, regenerated = pd.read_csv(io.BytesIO(buf.getvalue())), pd.read_csv(here[path])
            status, worst, first = _compare(bundled, regenerated, tolerance)
            rows.append([path, status, len(regenerated), worst, first])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    for row in frame.itertuples():
        log.info("%s: %s%s", row.table, row.status, f" ({row.first_difference})" if row.first_difference else "")
    return frame
