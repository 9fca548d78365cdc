"""The benchmark table: every model x its baselines x its metrics, mean and 95 % CI over seeds, the corpus
it was measured on, and, on the rows the paper states a target for, the target and whether it is met
(stemlab.paper.tables). The .tex holds the target rows, as the paper prints them.

    python -m stemlab.paper.benchmark --tables results/tables/clap.csv ... --targets workflow/paper/targets.yaml \
        --corpora '{"clap": "synthetic (test split)"}' --out results/tables/benchmark.csv --tex results/tables/benchmark.tex
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Mapping, Sequence

import pandas as pd

from stemlab.atomic import atomic_path, write_text
from stemlab.errors import StemlabError, json_object_arg, run_cli
from stemlab.logs import log, setup_logging
from stemlab.paper.tables import escape, evaluate_targets, fmt, load_targets, read_table

COLUMNS = ("model", "corpus", "system", "metric", "cell", "n_seeds", "n", "mean", "ci95_low", "ci95_high",
           "better", "target", "reference", "reference_mean", "meets_target")  # fmt: skip


def benchmark(tables: Sequence[pd.DataFrame], targets: Mapping[str, list], corpora: Mapping[str, str]) -> pd.DataFrame:
    """All rows of `tables` (long frames) in table order, with the target columns filled where a target
    applies (a row with two targets appears once per target)."""
    parts = []
    for table in tables:
        name = table["table"].iloc[0]
        met = evaluate_targets(table, targets.get(name, []))
        keys = ["system", "metric", "cell"]
        found = met[met["n"].notna()] if len(met) else met
        missing = met[met["n"].isna()] if len(met) else met
        for _, row in missing.iterrows():
            log.warning("%s: no row for the target %s %s (%s); left out of the benchmark", name, row["system"], row["metric"], row["target"])
        merged = table.merge(found[[*keys, "target", "reference", "reference_mean", "meets_target"]], on=keys, how="left")
        merged = merged.rename(columns={"table": "model"}).assign(corpus=corpora.get(name, ""))
        parts.append(merged)
    with warnings.catch_warnings():  # all-NA columns (the validity table has no CI): dtypes are set below
        warnings.simplefilter("ignore", FutureWarning)
        out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    for col in ("target", "reference", "meets_target"):
        out[col] = out[col].fillna("")
    return out[list(COLUMNS)]


def target_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["target"] != ""]


def to_tex(table: pd.DataFrame) -> str:
    """The target rows as a booktabs tabular (model, metric, corpus, value [CI], target, met)."""
    lines = [
        "% written by python -m stemlab.paper.benchmark from the model tables; do not edit",
        r"\begin{tabular}{lllllll}",
        r"\toprule",
        r"Model & System & Metric & Corpus & Mean [95\,\% CI] & Target & Met \\",
        r"\midrule",
    ]
    for _, r in target_rows(table).iterrows():
        ci = "" if pd.isna(r["ci95_low"]) else f" [{fmt(r['ci95_low'])}, {fmt(r['ci95_high'])}]"
        ref = f" ({fmt(r['reference_mean'])})" if r["target"].startswith("beats") and pd.notna(r["reference_mean"]) else ""
        metric = escape(r["metric"]) + (f" ({escape(r['cell'])})" if r["cell"] else "")
        met = {"yes": "yes", "no": r"\textbf{no}"}.get(r["meets_target"], "n/a")
        lines.append(" & ".join([escape(r["model"]), escape(r["system"]), metric, escape(r["corpus"]),
                                 fmt(r["mean"]) + ci, escape(r["target"]) + ref, met]) + r" \\")  # fmt: skip
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.paper.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--tables", nargs="+", required=True, help="model summary tables and synth_validity.csv")
    parser.add_argument("--targets", required=True, help="workflow/paper/targets.yaml")
    parser.add_argument("--corpora", default="{}", help="JSON: table name -> the corpus its rows were measured on")
    parser.add_argument("--out", required=True, help="results/tables/benchmark.csv")
    parser.add_argument("--tex", required=True, help="results/tables/benchmark.tex")
    args = parser.parse_args(argv)
    setup_logging()
    corpora = json_object_arg(args.corpora, "--corpora", "pass a JSON object of table -> corpus")
    targets = load_targets(args.targets)
    table = benchmark([read_table(p) for p in args.tables], targets, corpora)
    if table.empty:
        raise StemlabError(f"{', '.join(args.tables)}: no rows to benchmark; re-run the summaries")
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    write_text(args.tex, to_tex(table))
    rows = target_rows(table)
    for _, r in rows.iterrows():
        log.info("target %-18s %-22s %-26s %s %s: %s", r["model"], r["system"], r["metric"] + (f" [{r['cell']}]" if r["cell"] else ""),
                 r["target"], "" if pd.isna(r["reference_mean"]) else f"({r['reference_mean']:.4g})", r["meets_target"] or "n/a")  # fmt: skip
    log.info("wrote %s (%d rows; %d of %d target rows met) and %s", args.out, len(table),
             int((rows["meets_target"] == "yes").sum()), len(rows), args.tex)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
