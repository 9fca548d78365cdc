"""The effect-encoder probe (results/figures/fx_encoder_probe.pdf and .png) from its summary table: the R²
of a linear probe for each effect parameter from the effect embedding, from audio features and by chance,
and the embedding's triplet accuracy and same-chain retrieval; bars are means, whiskers 95 % intervals.

    python -m stemlab.paper.fx_probe_figure --table results/tables/fx_encoder.csv --out results/figures/fx_encoder_probe.pdf
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stemlab.errors import StemlabError, run_cli
from stemlab.paper.cli import figure_main
from stemlab.paper.tables import read_table
from stemlab.plotting import grouped_ci_bars, paper_style, save_pdf_and_png

PROBE = "probe_r2_"
RETRIEVAL = ("triplet_acc", "same_chain_top1")


def plot(table: str, out: str) -> None:
    rows = read_table(table)
    params = sorted(m for m in set(rows["metric"]) if m.startswith(PROBE))
    if not params:
        raise StemlabError(f"{table}: no probe rows ({PROBE}*); re-run summarize_model for fx_encoder")
    systems = list(dict.fromkeys(rows["system"]))
    plt, _ = paper_style()
    fig, (ax, ax_ret) = plt.subplots(1, 2, figsize=(10, 0.32 * len(params) * len(systems) / 2 + 2.5),
                                     gridspec_kw={"width_ratios": [2, 1]})  # fmt: skip
    grouped_ci_bars(ax, rows[rows["metric"].isin(params)], params, systems, horizontal=True)
    ax.set_yticks(range(len(params)), [p.removeprefix(PROBE) for p in params])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlim(max(-1.0, float(rows.loc[rows["metric"].isin(params), "mean"].min()) - 0.1), 1.0)
    ax.set(xlabel="probe R² (held-out folds)")
    ax.legend(fontsize=7)
    retrieval = [m for m in RETRIEVAL if m in set(rows["metric"])]
    grouped_ci_bars(ax_ret, rows[rows["metric"].isin(retrieval)], retrieval, systems)
    ax_ret.set_xticks(range(len(retrieval)), retrieval, rotation=20)
    ax_ret.set(ylim=(0, 1), ylabel="accuracy")
    fig.suptitle("Effect encoder: what a linear probe reads from the embedding (means, 95 % CIs)", fontsize=10)
    fig.tight_layout()
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    return figure_main(argv, prog="python -m stemlab.paper.fx_probe_figure", doc=__doc__,
                       inputs={"table": "results/tables/fx_encoder.csv"}, plot=plot)  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_cli(main))
