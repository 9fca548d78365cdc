"""The FxProcessor evaluation figure (results/figures/fxprocessor_eval.pdf) from the per-window rows of
every seed (results/eval/fxprocessor/seed-<s>/items.parquet): each metric per system, split by stem
category, systems in the order the evaluation wrote them. Run as `python -m stemlab.megami.figure`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging
from stemlab.plotting import paper_style, save_pdf_and_png

METRICS = (
    ("mrstft", "MR-STFT distance (lower is better)"),
    ("si_sdr", "SI-SDR in dB (higher is better)"),
    ("abs_loudness_error", "|loudness error| in LU (lower is better)"),
)


def read_items(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Per-window rows of every seed, one column per metric (systems keep the evaluation's order)."""
    frames = []
    for path in map(Path, paths):
        if not path.is_file():
            raise StemlabError(f"{path}: evaluation rows not found; run the evaluate_model job of fxprocessor")
        frames.append(pd.read_parquet(path))
    if not frames:
        raise StemlabError("no evaluation rows given; pass results/eval/fxprocessor/seed-*/items.parquet")
    frame = pd.concat(frames, ignore_index=True)
    missing = {"seed", "system", "metric", "value", "item", "category"} - set(frame.columns)
    if missing:
        raise StemlabError(f"{paths[0]}: lacks columns {', '.join(sorted(missing))}; re-run evaluate_model for fxprocessor")
    if frame.empty:
        raise StemlabError(f"{paths[0]}: no rows; the test split has no evaluable windows")
    wide = frame.pivot_table(index=["seed", "item", "category", "system"], columns="metric", values="value", sort=False)
    lacking = {m for m, _ in METRICS} - set(wide.columns)
    if lacking:
        raise StemlabError(f"{paths[0]}: no {', '.join(sorted(lacking))} rows; re-run evaluate_model for fxprocessor")
    return wide.reset_index().assign(system=lambda f: pd.Categorical(f["system"], list(dict.fromkeys(frame["system"]))))


def plot(frame: pd.DataFrame, out: str | Path) -> None:
    plt, sns = paper_style()
    systems = list(frame["system"].cat.categories)
    categories = sorted(frame["category"].unique())
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 0.35 * len(systems) * len(categories) + 2.5))
    for ax, (metric, label) in zip(axes, METRICS):
        sns.boxplot(
            data=frame, x=metric, y="system", hue="category", order=systems, hue_order=categories,
            ax=ax, fliersize=1.5, linewidth=0.8,
        )  # fmt: skip
        means = frame.groupby("system", observed=True)[metric].mean()
        for i, system in enumerate(systems):
            ax.plot(means[system], i, marker="D", color="black", markersize=4, zorder=5)
        ax.set_xlabel(label)
        ax.set_ylabel("")
        if ax is not axes[-1]:
            ax.get_legend().remove()
        else:
            ax.legend(title="stem category", fontsize=7, title_fontsize=8, loc="best")
    n = frame.groupby("system", observed=True).size().min()
    seeds = frame["seed"].nunique()
    fig.suptitle(f"FxProcessor vs baselines on the test split ({n} windows per system over {seeds} seeds; diamonds: means)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.megami.figure", description=__doc__)
    parser.add_argument("--items", nargs="+", required=True, help="results/eval/fxprocessor/seed-*/items.parquet")
    parser.add_argument("--out", required=True, help="PDF to write")
    args = parser.parse_args(argv)
    setup_logging()  # stderr: the rule redirects it to its log
    plot(read_items(args.items), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
