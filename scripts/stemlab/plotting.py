"""The plotting setup every paper figure shares: headless matplotlib, the seaborn paper theme, and PDFs
written atomically without creation dates (same tables -> same bytes)."""

from __future__ import annotations

import os
from types import ModuleType

from stemlab.atomic import atomic_path
from stemlab.logs import log


def paper_style() -> tuple[ModuleType, ModuleType]:
    """(matplotlib.pyplot, seaborn), with the Agg backend and the paper theme set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def save_pdf(fig, out: str | os.PathLike[str]) -> None:
    """Write `fig` to `out` (temp file, then rename), close it and log it."""
    import matplotlib.pyplot as plt

    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})
    plt.close(fig)
    log.info("wrote %s", out)


def save_pdf_and_png(fig, out: str | os.PathLike[str], dpi: int = 130) -> None:
    """Write `fig` to the PDF `out` and a PNG beside it (same name, .png), both atomically, then close it."""
    from pathlib import Path

    with atomic_path(Path(out).with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    save_pdf(fig, out)


def strip_points(ax, data, x: str, y: str, order: list[str], size: float = 2.5, spread: float = 0.2) -> None:
    """Points of `data[x]` per category `data[y]` (row i of `order` at y = i), jittered vertically by a
    fixed-seed generator so that the same table gives the same figure (seaborn's stripplot draws its
    jitter from numpy's global generator)."""
    import numpy as np

    from stemlab.seeding import rng

    for i, name in enumerate(order):
        values = np.asarray(data.loc[data[y] == name, x], dtype=float)
        jitter = rng(0, "strip_points", name).uniform(-spread, spread, len(values))
        ax.scatter(values, i + jitter, s=size**2, color="black", alpha=0.6,
                   linewidths=0, zorder=3)  # fmt: skip


def table_and_items_figure_main(argv, *, prog: str, doc: str | None, table_help: str, items_help: str,
                                read_inputs, plot) -> int:  # fmt: skip
    """The command line of a figure drawn from a summary table and evaluation rows:
    `--table CSV --items PARQUET... --out PDF`; `plot(*read_inputs(table, items), out)`."""
    import argparse

    from stemlab.logs import setup_logging

    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help=table_help)
    parser.add_argument("--items", nargs="+", required=True, help=items_help)
    parser.add_argument("--out", required=True, help="PDF to write (the PNG goes beside it)")
    args = parser.parse_args(argv)
    setup_logging()
    plot(*read_inputs(args.table, args.items), args.out)
    return 0


def ci_bars(ax, rows, categories: list[str], label: str, offset: float = 0.0, width: float = 0.8,
            key: str = "system", horizontal: bool = False, **style) -> None:  # fmt: skip
    """Bars of `rows["mean"]` at the positions of `categories` (matched on `rows[key]`), whiskers from the
    table's ci95_low/ci95_high (a missing category draws nothing; a missing interval no whisker)."""
    import numpy as np

    rows = rows.set_index(key).reindex(categories)
    pos = np.arange(len(categories)) + offset
    err = np.vstack([rows["mean"] - rows["ci95_low"], rows["ci95_high"] - rows["mean"]]).clip(min=0)
    err = np.nan_to_num(err, nan=0.0)
    if horizontal:
        ax.barh(pos, rows["mean"], height=width, xerr=err, capsize=2, label=label, **style)
    else:
        ax.bar(pos, rows["mean"], width=width, yerr=err, capsize=2, label=label, **style)


def grouped_ci_bars(ax, table, groups: list[str], hues: list[str], group_key: str = "metric", hue_key: str = "system",
                    horizontal: bool = False) -> None:  # fmt: skip
    """One bar per (group, hue) of a long table: groups along the axis, hues side by side, CI whiskers."""
    width = 0.8 / max(1, len(hues))
    for k, hue in enumerate(hues):
        rows = table[table[hue_key] == hue]
        ci_bars(ax, rows, groups, hue, offset=(k - (len(hues) - 1) / 2) * width, width=width, key=group_key,
                horizontal=horizontal, color=f"C{k}")  # fmt: skip
