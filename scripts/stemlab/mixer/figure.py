"""The mixer figure (results/figures/mixer.pdf and .png) from its summary table (results/tables/mixer.csv):
improvement (MR-STFT, effect encoder) and tool F1 per system, per-tool parameter error, and intent success
with and without the intent prompt; bars are means, whiskers the table's 95 % intervals over seeds and items.
Run as `python -m stemlab.mixer.figure --table results/tables/mixer.csv --out results/figures/mixer.pdf`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.logs import setup_logging
from stemlab.plotting import ci_bars as bars
from stemlab.plotting import paper_style, save_pdf_and_png

PANELS = (
    ("improvement_mrstft", "MR-STFT improvement over the distorted stem (%)"),
    ("improvement_fx", "effect-embedding improvement (%)"),
    ("tool_f1", "tool F1 against the target"),
)


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"{path}: the mixer table is missing; run snakemake {path}")
    table = pd.read_csv(path)
    missing = {"system", "metric", "mean", "ci95_low", "ci95_high"} - set(table.columns)
    if missing or table.empty:
        raise StemlabError(f"{path}: not a model table (lacks {', '.join(sorted(missing)) or 'rows'}); re-run summarize_model for mixer")
    return table


def plot(table: pd.DataFrame, out: str | Path) -> None:
    plt, _ = paper_style()
    systems = list(dict.fromkeys(table["system"]))  # the evaluation's order
    tools = sorted(m.removeprefix("param_mae_") for m in table["metric"].unique() if m.startswith("param_mae_"))
    fig, axes = plt.subplots(1, len(PANELS) + 2, figsize=(4.0 * (len(PANELS) + 2), 3.8))
    for ax, (metric, label) in zip(axes, PANELS):
        rows = table[table["metric"] == metric]
        if not rows.empty:
            bars(ax, rows, systems, label, color="#4c72b0")
        ax.set_xticks(range(len(systems)), systems, rotation=40, ha="right")
        ax.set_title(label, fontsize=9)
        ax.axhline(0, color="black", linewidth=0.6)
    ax = axes[len(PANELS)]
    shown = [s for s in ("mixer", "mixer_unconstrained", "most_frequent", "regressor") if s in systems]
    width = 0.8 / max(1, len(shown))
    for k, system in enumerate(shown):
        rows = table[(table["system"] == system) & table["metric"].str.startswith("param_mae_")].assign(system=lambda f: f["metric"].str.removeprefix("param_mae_"))
        bars(ax, rows, tools, system, offset=(k - (len(shown) - 1) / 2) * width, width=width)
    ax.set_xticks(range(len(tools)), [t.removeprefix("apply_") for t in tools], rotation=40, ha="right")
    ax.set_title("parameter error (% of range, where both have the tool)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[-1]
    for k, (metric, label) in enumerate((("intent_success", "intent prompt"), ("intent_success_repair_only", "repair prompt"))):
        rows = table[table["metric"] == metric]
        if not rows.empty:
            bars(ax, rows, systems, label, offset=(k - 0.5) * 0.4, width=0.4)
    ax.set_xticks(range(len(systems)), systems, rotation=40, ha="right")
    ax.set_title("intent moved the audio as asked (share)", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle("Instruction mixer on held-out stems (means, 95 % CIs over seeds and items)", fontsize=10)
    fig.tight_layout()
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.mixer.figure", description=__doc__)
    parser.add_argument("--table", required=True, help="results/tables/mixer.csv")
    parser.add_argument("--out", required=True, help="PDF to write (the PNG beside it)")
    args = parser.parse_args(argv)
    setup_logging()
    plot(read_table(args.table), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
