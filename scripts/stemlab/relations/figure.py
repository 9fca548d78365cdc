"""The relations figure (results/figures/relations.pdf and .png), like the paper's: box plots of the per-pair
TPP and LCP over the (K, segment length) grid, the model (free and constrained decoding) against the
random, unigram and copy-guide baselines, every seed pooled. Reads only the evaluation rows.

    python -m stemlab.relations.figure --items results/eval/relations/<cell>/seed-<s>/items.parquet ... --out F.pdf
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging
from stemlab.plotting import paper_style, save_pdf_and_png
from stemlab.relations.metrics import SYSTEMS

PANELS = (("tpp_mean", "TPP (% of target symbols)"), ("lcp_mean", "LCP (symbols)"))


def read_items(paths: Sequence[str]) -> pd.DataFrame:
    frames = []
    for path in paths:
        if not Path(path).is_file():
            raise StemlabError(f"{path}: evaluation rows not found; run its evaluate_model job")
        frames.append(pd.read_parquet(path))
    return pd.concat(frames, ignore_index=True)


def figure(items: pd.DataFrame, out: str | Path) -> None:
    plt, sns = paper_style()
    missing = [c for c in ("k", "segment_s", "system", "metric", "value") if c not in items.columns]
    if missing:
        raise StemlabError(f"evaluation rows lack {', '.join(missing)}; re-run the relations evaluate_model jobs")
    rows = items[items["metric"].isin([m for m, _ in PANELS])].copy()
    if rows.empty:
        raise StemlabError("no TPP/LCP rows in the relations evaluation; re-run its evaluate_model jobs")
    rows["cell"] = "K=" + rows["k"].astype(int).astype(str) + ", " + rows["segment_s"].map(lambda s: f"{s:g}") + " s"
    cells = list(dict.fromkeys(rows.sort_values(["k", "segment_s"])["cell"]))
    systems = [s for s in SYSTEMS if s in set(rows["system"])]
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(max(6.0, 1.6 * len(cells) + 2), 3.0 * len(PANELS)), squeeze=False)
    for ax, (metric, label) in zip(axes[:, 0], PANELS):
        part = rows[rows["metric"] == metric]
        sns.boxplot(data=part, x="cell", y="value", hue="system", order=cells, hue_order=systems, ax=ax,
                    fliersize=1.5, linewidth=0.8)  # fmt: skip
        ax.set_xlabel("")
        ax.set_ylabel(label)
        if ax is not axes[0, 0]:
            ax.get_legend().remove()
        else:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, title=None)
    fig.tight_layout()
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.relations.figure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--items", nargs="+", required=True, help="items.parquet of every cell and seed")
    parser.add_argument("--out", required=True, help="the PDF (the PNG is written beside it)")
    args = parser.parse_args(argv)
    setup_logging()
    figure(read_items(args.items), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
