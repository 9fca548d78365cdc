"""The MEGAMI mix-level figure (results/figures/megami_mix.pdf and .png) from the summary table and the
evaluation rows of every seed; it only plots what the evaluation wrote.

Top: KAD per system in CLAP and effect-encoder space, mean and 95 % interval of results/tables/megami.csv.
Middle: distributions of the features of the loudness-normalised mixes (spectral centroid, stereo width,
crest factor) per system against the reference mixes, every song of every seed.
Bottom: the spectrogram panels of the first seed (one row per song, one column per system).

    python -m stemlab.megami.mix_figure --table results/tables/megami.csv --items ITEMS.parquet ... --out OUT.pdf
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stemlab.errors import StemlabError, run_cli
from stemlab.plotting import paper_style, save_pdf_and_png, strip_points, table_and_items_figure_main

KAD = (("kad_clap", "KAD, CLAP space"), ("kad_fx", "KAD, effect-encoder space"))
MIX_FEATURES = (("mix_centroid_hz", "spectral centroid (Hz)"), ("mix_stereo_width", "stereo width"), ("mix_crest_db", "crest factor (dB)"))
HINT = "re-run the evaluate_model and summarize_model jobs of megami"


def read_inputs(table_path: str | Path, item_paths: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    table_path = Path(table_path)
    if not table_path.is_file():
        raise StemlabError(f"{table_path}: summary table not found; {HINT}")
    table = pd.read_csv(table_path)
    frames = []
    for path in map(Path, item_paths):
        if not path.is_file():
            raise StemlabError(f"{path}: evaluation rows not found; {HINT}")
        frames.append(pd.read_parquet(path))
    if not frames:
        raise StemlabError("no evaluation rows given; pass results/eval/megami/seed-*/items.parquet")
    items = pd.concat(frames, ignore_index=True)
    for name, frame, needed in ((table_path, table, {m for m, _ in KAD}), (item_paths[0], items, {m for m, _ in MIX_FEATURES})):
        lacking = needed - set(frame["metric"]) if "metric" in frame.columns else needed
        if lacking:
            raise StemlabError(f"{name}: no {', '.join(sorted(lacking))} rows; {HINT}")
    return table, items


def plot(table: pd.DataFrame, items: pd.DataFrame, out: str | Path) -> None:
    plt, sns = paper_style()
    systems = [s for s in dict.fromkeys(items["system"]) if s != "reference"]
    spectra = items[items["metric"] == "spectrogram"] if "spectrogram" in items.columns else items.iloc[:0]
    spectra = spectra[spectra["seed"] == spectra["seed"].min()] if len(spectra) else spectra
    songs = list(dict.fromkeys(spectra["item"]))
    columns = [*systems, "reference"]
    n_cols = max(len(columns), 3)
    fig = plt.figure(figsize=(2.3 * n_cols, 6.0 + 1.8 * len(songs)))
    grid = fig.add_gridspec(2 + len(songs), n_cols, height_ratios=[1.4, 1.4] + [1.0] * len(songs))
    half = n_cols // 2
    for k, (metric, label) in enumerate(KAD):
        ax = fig.add_subplot(grid[0, k * half : (k + 1) * half if k == 0 else n_cols])
        rows = table[table["metric"] == metric].set_index("system").reindex(systems)
        y = np.arange(len(systems))
        ax.errorbar(rows["mean"], y, xerr=[rows["mean"] - rows["ci95_low"], rows["ci95_high"] - rows["mean"]],
                    fmt="o", color="black", ecolor="gray", capsize=3)  # fmt: skip
        ax.set_yticks(y, systems)
        ax.invert_yaxis()
        ax.axvline(0.0, color="gray", linewidth=0.6, linestyle=":")
        n_seeds = int(rows["n_seeds"].max()) if "n_seeds" in rows else 1
        ax.set_xlabel(f"{label} (lower is better; 95 % CI over songs and {n_seeds} seed(s))")
    per_col = max(1, n_cols // len(MIX_FEATURES))
    for k, (metric, label) in enumerate(MIX_FEATURES):
        ax = fig.add_subplot(grid[1, k * per_col : (k + 1) * per_col if k < len(MIX_FEATURES) - 1 else n_cols])
        data = items[items["metric"] == metric]
        sns.boxplot(data=data, x="value", y="system", order=columns, ax=ax, fliersize=0, linewidth=0.8, color="lightsteelblue")
        strip_points(ax, data, x="value", y="system", order=columns)
        ax.set_xlabel(label)
        ax.set_ylabel("")
        if metric == "mix_centroid_hz":
            ax.set_xscale("log")
    for r, song in enumerate(songs):
        panel = spectra[spectra["item"] == song].set_index("system")
        images = {s: np.asarray(panel.loc[s, "spectrogram"], dtype=np.float32).reshape(int(panel.loc[s, "spectrogram_bands"]), -1)
                  for s in columns if s in panel.index}  # fmt: skip
        top = max(float(im.max()) for im in images.values())
        for c, system in enumerate(columns):
            ax = fig.add_subplot(grid[2 + r, c])
            if system in images:
                ax.imshow(images[system], origin="lower", aspect="auto", cmap="magma", vmin=top - 80.0, vmax=top)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(system, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{song}\n40 Hz - 16 kHz", fontsize=7)
    fig.suptitle("MEGAMI mixes of held-out songs: KAD against the reference mixes, mix features, spectrograms (-14 LUFS)", fontsize=10)
    fig.tight_layout()
    save_pdf_and_png(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    return table_and_items_figure_main(argv, prog="python -m stemlab.megami.mix_figure", doc=__doc__, table_help="results/tables/megami.csv",
                                       items_help="results/eval/megami/seed-*/items.parquet", read_inputs=read_inputs, plot=plot)  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_cli(main))
