"""The FxProcessor evaluation figure (results/figures/fxprocessor_eval.pdf) from the per-window metrics
table results/eval/fxprocessor/metrics.parquet: each metric per system, split by stem category.
Run as `python -m stemlab.megami.figure`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging
from stemlab.plotting import paper_style, save_pdf

SYSTEM_ORDER = ("fxprocessor", "mean_fx", "loudness_matched", "identity")
METRICS = (
    ("mrstft", "MR-STFT distance (lower is better)"),
    ("si_sdr", "SI-SDR in dB (higher is better)"),
    ("abs_loudness_error", "|loudness error| in LU (lower is better)"),
)


def read_items(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"{path}: metrics table not found; run the evaluate_fxprocessor rule")
    frame = pd.read_parquet(path)
    missing = {"system", "category", "mrstft", "si_sdr", "loudness_error"} - set(frame.columns)
    if missing:
        raise StemlabError(f"{path}: lacks columns {', '.join(sorted(missing))}; re-run evaluate_fxprocessor")
    if frame.empty:
        raise StemlabError(f"{path}: no rows; the test split has no evaluable windows")
    return frame.assign(abs_loudness_error=frame["loudness_error"].abs())


def plot(frame: pd.DataFrame, out: str | Path) -> None:
    plt, sns = paper_style()
    systems = [s for s in SYSTEM_ORDER if s in set(frame["system"])]
    categories = sorted(frame["category"].unique())
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 0.35 * len(systems) * len(categories) + 2.5))
    for ax, (metric, label) in zip(axes, METRICS):
        sns.boxplot(
            data=frame, x=metric, y="system", hue="category", order=systems, hue_order=categories,
            ax=ax, fliersize=1.5, linewidth=0.8,
        )  # fmt: skip
        means = frame.groupby("system")[metric].mean()
        for i, system in enumerate(systems):
            ax.plot(means[system], i, marker="D", color="black", markersize=4, zorder=5)
        ax.set_xlabel(label)
        ax.set_ylabel("")
        if ax is not axes[-1]:
            ax.get_legend().remove()
        else:
            ax.legend(title="stem category", fontsize=7, title_fontsize=8, loc="best")
    n = frame.groupby("system").size().min()
    fig.suptitle(f"FxProcessor vs baselines on the test split ({n} windows per system; diamonds: means)", fontsize=10)
    fig.tight_layout()
    save_pdf(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.megami.figure", description=__doc__)
    parser.add_argument("--items", required=True, help="results/eval/fxprocessor/metrics.parquet")
    parser.add_argument("--out", required=True, help="PDF to write")
    args = parser.parse_args(argv)
    setup_logging()  # stderr: the rule redirects it to its log
    plot(read_items(args.items), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
