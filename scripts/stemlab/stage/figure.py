"""The Stage figure (results/figures/stage.pdf and .png) from the summary table and the evaluation rows; it
only plots what the evaluation wrote.

Top: beat F-measure and KAD (CLAP space) per system, mean and 95 % interval of results/tables/stage.csv,
one marker per target stem. Bottom: mel spectrograms of the first seed's first held-out crops: the context
the model heard, the mix- and metronome-conditioned generations and the real stem.

    python -m stemlab.stage.figure --table results/tables/stage.csv --items ITEMS.parquet ... --out OUT.pdf
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.plotting import paper_style, save_pdf_and_png, table_and_items_figure_main

METRICS = (("beat_f", "beat F-measure (±70 ms) vs the context's beats"), ("kad_clap", "KAD to real stems, CLAP space"))
PANELS = ("context", "stage", "stage_metronome", "ground_truth")
HINT = "re-run the evaluate_model and summarize_model jobs of stage"


def read_inputs(table_path: str | Path, item_paths: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    table_path = Path(table_path)
    if not table_path.is_file():
        raise StemlabError(f"{table_path}: summary table not found; {HINT}")
    table = pd.read_csv(table_path)
    lacking = {m for m, _ in METRICS} - set(table.get("metric", []))
    if lacking:
        raise StemlabError(f"{table_path}: no {', '.join(sorted(lacking))} rows; {HINT}")
    frames = []
    for path in map(Path, item_paths):
        if not path.is_file():
            raise StemlabError(f"{path}: evaluation rows not found; {HINT}")
        frames.append(pd.read_parquet(path))
    if not frames:
        raise StemlabError("no evaluation rows given; pass results/eval/stage/.../seed-*/items.parquet")
    return table, pd.concat(frames, ignore_index=True)


def plot(table: pd.DataFrame, items: pd.DataFrame, out: str | Path) -> None:
    plt, _ = paper_style()
    spectra = items[items["metric"] == "spectrogram"] if "spectrogram" in items.columns else items.iloc[:0]
    if len(spectra):
        first_seed = int(spectra["seed"].min())
        spectra = spectra[(spectra["seed"] == first_seed) & (spectra["target"] == spectra["target"].iloc[0])]
    crops = list(dict.fromkeys(spectra["item"]))
    fig = plt.figure(figsize=(11, 3.2 + 1.6 * len(crops)))
    grid = fig.add_gridspec(1 + len(crops), len(PANELS), height_ratios=[2.2] + [1.0] * len(crops), hspace=0.55)
    targets = list(dict.fromkeys(table["target"])) if "target" in table.columns else [""]
    systems = list(dict.fromkeys(table["system"]))
    for j, (metric, label) in enumerate(METRICS):
        ax = fig.add_subplot(grid[0, 2 * j : 2 * j + 2])
        rows = table[table["metric"] == metric]
        for k, target in enumerate(targets):
            part = rows[rows["target"] == target] if "target" in rows.columns else rows
            part = part.set_index("system").reindex(systems)
            y = np.arange(len(systems)) + (k - (len(targets) - 1) / 2) * 0.25
            mean = part["mean"].to_numpy(dtype=float)
            err = np.abs(np.stack([mean - part["ci95_low"].to_numpy(dtype=float), part["ci95_high"].to_numpy(dtype=float) - mean]))
            ax.errorbar(mean, y, xerr=err, fmt="o", capsize=3, markersize=4, label=str(target))
        ax.set_yticks(np.arange(len(systems)), systems)
        ax.invert_yaxis()
        ax.set_xlabel(label)
        if len(targets) > 1:
            ax.legend(fontsize=7, title="target")
    for r, crop in enumerate(crops):
        panel = spectra[spectra["item"] == crop].set_index("system")
        for c, system in enumerate(PANELS):
            ax = fig.add_subplot(grid[1 + r, c])
            if system in panel.index:
                row = panel.loc[system]
                image = np.asarray(row["spectrogram"], dtype=np.float32).reshape(int(row["spectrogram_bands"]), -1)
                ax.imshow(image, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                          extent=(0.0, float(row["spectrogram_seconds"]), 0, image.shape[0]))  # fmt: skip
            ax.set_yticks([])
            ax.set_title(f"{system}" if r else f"{system}\n{crop}", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.suptitle("Stage: generated stems of held-out contexts (95 % intervals over seeds and items)", fontsize=10)
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    return table_and_items_figure_main(argv, prog="python -m stemlab.stage.figure", doc=__doc__, table_help="results/tables/stage.csv",
                                       items_help="results/eval/stage/.../seed-*/items.parquet", read_inputs=read_inputs, plot=plot)  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_cli(main))
