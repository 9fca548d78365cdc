"""The one summariser of every model: per-item evaluation rows of all seeds -> results/tables/<model>.csv.

Long format, one row per (summary keys..., system, metric):
    model, system, metric, n, mean, ci95_low, ci95_high, [keys], n_seeds, n_items, median, seed_sd, better
`mean` is the mean over seeds of each seed's item mean (of each seed's item median for a metric the task
summarises by its median, `Task.metric_statistics`); the 95 % interval is a percentile bootstrap that
resamples seeds, then items within each resampled seed (so it covers both sources of variation; with one
seed it is the item bootstrap). Resampling is seeded by the row's keys: the table is the same on every run.

    python -m stemlab.evaluate.summary --config JOB --out results/tables/<model>.csv ITEMS.parquet ...
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stemlab.atomic import atomic_path
from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging
from stemlab.seeding import rng

REQUIRED = ("model", "seed", "system", "metric", "value", "item")
SUMMARY_COLUMNS = ("model", "system", "metric", "n", "mean", "ci95_low", "ci95_high")
_CHUNK = 256  # bootstrap draws computed at once (memory: CHUNK x items)


STATISTICS = {"mean": np.mean, "median": np.median}


def bootstrap_means(
    per_seed: Sequence[np.ndarray], draws: int, generator: np.random.Generator, statistic: str = "mean"
) -> np.ndarray:
    """`draws` bootstrap replicates of the mean over seeds of per-seed item means (or medians; seeds, then
    items)."""
    reduce = STATISTICS[statistic]
    n_seeds = len(per_seed)
    item_means = np.empty((n_seeds, draws))
    for s, values in enumerate(per_seed):
        for lo in range(0, draws, _CHUNK):
            hi = min(draws, lo + _CHUNK)
            picks = generator.integers(0, len(values), size=(hi - lo, len(values)))
            item_means[s, lo:hi] = reduce(values[picks], axis=1)
    if n_seeds == 1:
        return item_means[0]
    chosen = generator.integers(0, n_seeds, size=(draws, n_seeds))
    # a seed drawn twice in one replicate takes two different item resamples
    columns = (np.arange(draws)[:, None] + np.arange(n_seeds)[None, :] * 7919) % draws
    return item_means[chosen, columns].mean(axis=1)


def summarize(
    items: pd.DataFrame,
    keys: Sequence[str] = (),
    *,
    draws: int = 2000,
    directions: Mapping[str, str] | None = None,
    statistics: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The summary table of one model's item rows (every seed), in the row order systems and metrics first
    appear in `items`; `statistics` names the metrics summarised per seed by their median, not their mean."""
    missing = [c for c in (*REQUIRED, *keys) if c not in items.columns]
    if missing:
        raise StemlabError(f"evaluation rows lack columns {', '.join(missing)}; re-run the evaluate_model jobs")
    directions = directions or {}
    statistics = statistics or {}
    unknown = sorted(set(statistics.values()) - set(STATISTICS))
    if unknown:
        raise StemlabError(f"metric statistic {unknown[0]!r} is not one of {', '.join(STATISTICS)}; fix the task's metric_statistics")
    frame = items[list(dict.fromkeys([*REQUIRED, *keys]))].copy()
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    frame = frame[np.isfinite(frame["value"].to_numpy(dtype=np.float64))]
    rows = []
    group_cols = [*keys, "system", "metric"]
    for group, part in frame.groupby(group_cols, sort=False, dropna=False):
        values = dict(zip(group_cols, group if isinstance(group, tuple) else (group,)))
        part = part.sort_values(["seed", "item"], kind="stable")  # row order must not change the resamples
        per_seed = [g["value"].to_numpy(dtype=np.float64) for _, g in part.groupby("seed", sort=True)]
        statistic = statistics.get(str(values["metric"]), "mean")
        seed_means = np.array([STATISTICS[statistic](v) for v in per_seed])
        generator = rng(0, "bootstrap", str(part["model"].iloc[0]), *(str(values[c]) for c in group_cols))
        replicates = bootstrap_means(per_seed, draws, generator, statistic)
        low, high = np.percentile(replicates, [2.5, 97.5])
        rows.append(
            {
                "model": part["model"].iloc[0], "system": values["system"], "metric": values["metric"],
                "n": len(part), "mean": float(seed_means.mean()), "ci95_low": float(low), "ci95_high": float(high),
                **{k: values[k] for k in keys},
                "n_seeds": len(per_seed), "n_items": int(part["item"].nunique()),
                "median": float(np.median(part["value"])),
                "seed_sd": float(seed_means.std(ddof=1)) if len(per_seed) > 1 else 0.0,
                "better": directions.get(str(values["metric"]), ""),
            }
        )  # fmt: skip
    if not rows:
        raise StemlabError("no finite evaluation values to summarise; check the evaluate_model logs")
    return pd.DataFrame(rows)


def read_items(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    frames = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise StemlabError(f"{path}: evaluation rows not found; run its evaluate_model job")
        frames.append(pd.read_parquet(path))
    if not frames:
        raise StemlabError("no evaluation tables given")
    return pd.concat(frames, ignore_index=True)


def write_summary(table: pd.DataFrame, out: str | os.PathLike[str]) -> None:
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.evaluate.summary", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--config", required=True, help="the model's evaluate job config (inline JSON or file)")
    parser.add_argument("--out", required=True, help="summary table (CSV)")
    parser.add_argument("items", nargs="+", help="items.parquet of every seed")
    args = parser.parse_args(argv)
    setup_logging()
    from stemlab.train.job import read_job
    from stemlab.train.registry import task_class

    job = read_job(args.config)
    task = task_class(job.model, job.task)
    table = summarize(read_items(args.items), task.summary_keys, draws=job.bootstrap, directions=task.metric_directions,
                      statistics=task.metric_statistics)  # fmt: skip
    write_summary(table, args.out)
    print(table.to_string(index=False), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
