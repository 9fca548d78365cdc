"""Annotation validity of the synthetic data (results/figures/synth_validity.pdf and .png) from the
synth_validity tables: beat F-measure of the annotated beats against a beat tracker per genre and time
signature (bars: the group's value; points: songs), and the bass and melody note accuracy against a pitch
tracker per genre; dashed lines are the targets of workflow/paper/targets.yaml.

    python -m stemlab.paper.validity_figure --table results/tables/synth_validity.csv \
        --songs results/tables/synth_validity_songs.csv --targets workflow/paper/targets.yaml \
        --out results/figures/synth_validity.pdf
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.paper.cli import figure_main
from stemlab.paper.tables import VALIDITY, load_targets
from stemlab.plotting import paper_style, save_pdf_and_png, strip_points


def _threshold(targets: list[dict], metric: str) -> float | None:
    for t in targets:
        if t["metric"] == metric and "at_least" in t:
            return float(t["at_least"])
    return None


def plot(table: str, songs: str, targets: str, out: str) -> None:
    groups = pd.read_csv(table)
    per_song = pd.read_csv(songs)
    if "group" not in groups or groups.empty or per_song.empty:
        raise StemlabError(f"{table}, {songs}: not validity tables (or empty); re-run synth_validity")
    wanted = load_targets(targets).get(VALIDITY, [])
    by = {g: groups.set_index("group").loc[[x for x in groups["group"] if x.startswith(g + "=")]] for g in ("genre", "time_signature")}
    plt, _ = paper_style()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, column in zip(axes[:2], ("genre", "time_signature")):
        rows = by[column]
        names = [g.split("=", 1)[1] for g in rows.index]
        ax.barh(np.arange(len(names)), rows["beat_f"], color="C0", alpha=0.5)
        strip_points(ax, per_song.assign(**{column: per_song[column].astype(str)}), "beat_f", column, names)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set(xlim=(0, 1.02), xlabel="beat F-measure", title=f"beats per {column.replace('_', ' ')}")
        line = _threshold(wanted, "beat_f")
        if line is not None:
            ax.axvline(line, color="C3", linestyle="--", linewidth=1)
    ax = axes[2]
    rows = by["genre"]
    names = [g.split("=", 1)[1] for g in rows.index]
    for k, metric in enumerate(("bass_note_accuracy", "melody_note_accuracy")):
        if metric in rows:
            ax.barh(np.arange(len(names)) + (k - 0.5) * 0.4, rows[metric], height=0.4, color=f"C{k + 1}",
                    label=metric.split("_")[0])  # fmt: skip
        line = _threshold(wanted, metric)
        if line is not None:
            ax.axvline(line, color="C3", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1.02), xlabel="note accuracy", title="notes per genre")
    ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Synthetic annotations against what the audio shows (dashed: targets)", fontsize=10)
    fig.tight_layout()
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    return figure_main(argv, prog="python -m stemlab.paper.validity_figure", doc=__doc__, plot=plot,
                       inputs={"table": "results/tables/synth_validity.csv", "songs": "results/tables/synth_validity_songs.csv",
                               "targets": "workflow/paper/targets.yaml"})  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_cli(main))
