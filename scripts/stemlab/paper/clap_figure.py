"""CLAP retrieval and zero-shot genre (results/figures/clap_retrieval.pdf and .png) from its summary table:
recall at 1 and 10 in both directions and zero-shot genre accuracy against chance, and the median rank of
the paired text; bars are means, whiskers the table's 95 % intervals over seeds and items.

    python -m stemlab.paper.clap_figure --table results/tables/clap.csv --out results/figures/clap_retrieval.pdf
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stemlab.errors import StemlabError, run_cli
from stemlab.paper.cli import figure_main
from stemlab.paper.tables import read_table
from stemlab.plotting import grouped_ci_bars, paper_style, save_pdf_and_png

RATES = ("a2t_r1", "a2t_r10", "t2a_r1", "t2a_r10", "zeroshot_genre_acc")
LABELS = {"a2t_r1": "audio→text R@1", "a2t_r10": "audio→text R@10", "t2a_r1": "text→audio R@1",
          "t2a_r10": "text→audio R@10", "zeroshot_genre_acc": "zero-shot genre"}  # fmt: skip


def plot(table: str, out: str) -> None:
    rows = read_table(table)
    rates = [m for m in RATES if m in set(rows["metric"])]
    if not rates:
        raise StemlabError(f"{table}: no retrieval rows ({', '.join(RATES)}); re-run summarize_model for clap")
    systems = list(dict.fromkeys(rows["system"]))
    plt, _ = paper_style()
    fig, (ax, ax_rank) = plt.subplots(1, 2, figsize=(9.5, 3.4), gridspec_kw={"width_ratios": [3, 1]})
    grouped_ci_bars(ax, rows[rows["metric"].isin(rates)], rates, systems)
    ax.set_xticks(range(len(rates)), [LABELS[m] for m in rates], rotation=25, ha="right")
    ax.set(ylabel="share of held-out clips", ylim=(0, 1))
    ax.legend(fontsize=7)
    rank = rows[rows["metric"] == "t2a_median_rank"]
    grouped_ci_bars(ax_rank, rank, ["t2a_median_rank"], systems)
    ax_rank.set_xticks([0], ["text→audio"])
    ax_rank.set(ylabel="median rank of the paired clip (lower is better)")
    fig.suptitle("CLAP retrieval on held-out clips (means, 95 % CIs)", fontsize=10)
    fig.tight_layout()
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    return figure_main(argv, prog="python -m stemlab.paper.clap_figure", doc=__doc__,
                       inputs={"table": "results/tables/clap.csv"}, plot=plot)  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_cli(main))
