"""Training curves of every model (results/figures/training_curves.pdf and .png) from the train_log.csv of
each (model, grid cell, seed): one panel per model (or grid cell), training loss against step (a rolling
mean over 5 % of the steps, seeds as colours) and validation loss as points.

    python -m stemlab.paper.training_figure --logs results/models/*/seed-*/train_log.csv \
        --out results/figures/training_curves.pdf
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.paper.cli import figure_main
from stemlab.plotting import paper_style, save_pdf_and_png


def run_of(path: str) -> tuple[str, int]:
    """(model key, seed) of results/models/<key>/seed-<s>/train_log.csv."""
    parts = Path(path).parts
    if len(parts) < 3 or not parts[-2].startswith("seed-") or "models" not in parts:
        raise StemlabError(f"{path}: not a results/models/<model>/seed-<s>/train_log.csv path")
    key = "/".join(parts[parts.index("models") + 1 : -2]).replace("~", "=")
    return key, int(parts[-2].removeprefix("seed-"))


def read_logs(paths: Sequence[str]) -> pd.DataFrame:
    frames = []
    for path in paths:
        key, seed = run_of(path)
        try:
            log = pd.read_csv(path)
        except Exception as exc:  # pandas raises many types for a corrupt file
            raise StemlabError(f"{path}: cannot read the training log ({type(exc).__name__}); re-run its training job") from exc
        if not {"step", "split", "loss"} <= set(log.columns):
            raise StemlabError(f"{path}: lacks step/split/loss; re-run its training job")
        frames.append(log[["step", "split", "loss"]].assign(model=key, seed=seed))
    if not frames:
        raise StemlabError("--logs: no training logs given")
    return pd.concat(frames, ignore_index=True)


def plot(logs: Sequence[str], out: str) -> None:
    data = read_logs(logs)
    models = list(dict.fromkeys(data["model"]))
    seeds = sorted(data["seed"].unique())
    cols = min(4, len(models))
    rows = math.ceil(len(models) / cols)
    plt, _ = paper_style()
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, model in zip(axes.flat, models):
        runs = data[data["model"] == model]
        for seed in seeds:
            run = runs[runs["seed"] == seed].sort_values("step")
            train, valid = run[run["split"] == "train"], run[run["split"] != "train"]
            color = f"C{seeds.index(seed)}"
            if len(train) == 1:  # an evaluation-only model's one no-op step
                ax.scatter(train["step"], train["loss"], color=color, marker="x", s=16, label=f"seed {seed} (one step)")
            elif len(train):
                window = max(1, len(train) // 20)
                ax.plot(train["step"], train["loss"].rolling(window, min_periods=1).mean(), color=color,
                        linewidth=1, label=f"seed {seed}")  # fmt: skip
            if len(valid):
                ax.scatter(valid["step"], valid["loss"], color=color, marker="o", s=12, zorder=3)
        if (runs["loss"] > 0).all() and runs["loss"].max() > 20 * runs["loss"].min():
            ax.set_yscale("log")
        ax.set_title(model, fontsize=8)
        ax.set(xlabel="step", ylabel="loss")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(models) :]:
        ax.set_visible(False)
    fig.suptitle("Training loss (lines: train, rolling mean; points: validation)", fontsize=10)
    fig.tight_layout()
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    return figure_main(argv, prog="python -m stemlab.paper.training_figure", doc=__doc__, plot=plot, many=("logs",),
                       inputs={"logs": "results/models/<model>/seed-<s>/train_log.csv of every run"})  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_cli(main))
