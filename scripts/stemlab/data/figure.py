"""The corpus figure (results/figures/corpora.pdf) from results/tables/corpora.csv: split shares of each
corpus's hours (labelled with its songs and hours), and the share of songs that have each stem category.
Run as `python -m stemlab.data.figure`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging
from stemlab.plotting import paper_style, save_pdf_and_png
from stemlab.taxonomy import STEMS

SPLIT_COLORS = {"train": "C0", "valid": "C1", "test": "C2"}


def plot(table: pd.DataFrame, out: str | Path) -> None:
    if table.empty:
        raise StemlabError(f"{out}: the corpus table has no rows; enable a corpus (data.corpora.*, data.synthetic)")
    plt, sns = paper_style()
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.6 * len(table) + 2.6), gridspec_kw={"width_ratios": [1, 1.6]})
    corpora = list(table["corpus"])
    # corpora differ by orders of magnitude in size (synthetic vs real): bars show each corpus's split
    # shares of its hours, the labels its absolute size
    total = table["hours"].clip(lower=1e-12).reset_index(drop=True)
    left = pd.Series(0.0, index=range(len(table)))
    for split, color in SPLIT_COLORS.items():
        share = table[f"hours_{split}"].reset_index(drop=True) / total
        axes[0].barh(corpora, share, left=left, color=color, label=split)
        left += share
    for i, (hours, songs) in enumerate(zip(table["hours"], table["songs"])):
        axes[0].text(1.02, i, f"{songs:,} songs\n{hours:,.1f} h", va="center", fontsize=8)
    axes[0].set_xlim(0, 1)
    axes[0].set_xlabel("share of hours per split")
    axes[0].legend(title="split", fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18 - 0.02 * len(table)))
    axes[0].invert_yaxis()
    share = pd.DataFrame(
        {c: table[f"stem_{c}"].to_numpy() / table["songs"].clip(lower=1).to_numpy() for c in STEMS}, index=corpora
    )
    sns.heatmap(share, ax=axes[1], vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", annot_kws={"fontsize": 7},
                cbar_kws={"label": "share of songs with the stem"})
    axes[1].set_xticklabels(axes[1].get_xticklabels(), rotation=40, ha="right")
    axes[1].set_ylabel("")
    fig.tight_layout()
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.data.figure", description=__doc__)
    parser.add_argument("--table", required=True, help="results/tables/corpora.csv")
    parser.add_argument("--out", required=True, help="PDF to write")
    args = parser.parse_args(argv)
    setup_logging()  # stderr: the rule redirects it to its log
    path = Path(args.table)
    if not path.is_file():
        raise StemlabError(f"{path}: missing; run the corpora_table rule")
    plot(pd.read_csv(path), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
