"""The numbers the paper's text quotes, as LaTeX macros, one file per result table (so that editing a table
rebuilds only its numbers and the PDF), and the index numbers.tex that inputs them.

For every row of a table (stemlab.paper.tables; name = stemlab.paper.tables.macro_base):
    \\<name>      the mean            \\<name>Low, \\<name>High   its 95 % interval    \\<name>CI   "mean [low, high]"
and for every target the table has (workflow/paper/targets.yaml), on the system's row:
    \\<name>Meets "yes"/"no"   \\<name>Ref  the reference value (the baseline's mean or the threshold)
    \\<name>RefName  the baseline's name or the threshold
plus \\sl<Table>TargetsMet ("m of n") and \\sl<Table>Seeds (the number of seeds). The text uses them through
\\val{<name without sl>}, which numbers.tex defines: a number missing from this configuration prints n/a.

    python -m stemlab.paper.numbers table --table results/tables/clap.csv --targets workflow/paper/targets.yaml \
        --out results/paper/numbers/clap.tex
    python -m stemlab.paper.numbers index --names clap codec ... --out results/paper/numbers.tex
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

import pandas as pd

from stemlab.atomic import write_text
from stemlab.errors import StemlabError, run_cli
from stemlab.logs import log, setup_logging
from stemlab.paper.tables import camel, escape, evaluate_targets, fmt, load_targets, macro_base, read_table

HEADER = "% written by python -m stemlab.paper.numbers from {source}; do not edit\n"


def table_macros(table: pd.DataFrame, targets: Sequence[Mapping]) -> dict[str, str]:
    """Macro name (without the backslash) -> its LaTeX text, for one long table and its targets."""
    name = str(table["table"].iloc[0])
    macros: dict[str, str] = {}

    def put(key: str, value: str) -> None:
        if key in macros:
            raise StemlabError(f"{name}: two numbers map to the macro \\{key}; rename a system or metric")
        macros[key] = value

    for _, r in table.iterrows():
        base = macro_base(name, r["system"], r["metric"], r["cell"])
        put(base, fmt(r["mean"]))
        if pd.notna(r["ci95_low"]):
            put(base + "Low", fmt(r["ci95_low"]))
            put(base + "High", fmt(r["ci95_high"]))
            put(base + "CI", f"{fmt(r['mean'])} [{fmt(r['ci95_low'])}, {fmt(r['ci95_high'])}]")
    met = evaluate_targets(table, targets)
    met = met[met["n"].notna()]
    seen: dict[str, int] = {}
    for _, r in met.iterrows():
        base = macro_base(name, r["system"], r["metric"], r["cell"])
        k = seen[base] = seen.get(base, 0) + 1
        suffix = "" if k == 1 else camel(str(k))  # a second target on the same row
        put(base + "Meets" + suffix, r["meets_target"] or "n/a")
        put(base + "Ref" + suffix, fmt(r["reference_mean"]))
        put(base + "RefName" + suffix, escape(r["reference"]))
    if len(met):
        put("sl" + camel(name) + "TargetsMet", f"{int((met['meets_target'] == 'yes').sum())} of {len(met)}")
    seeds = table["n_seeds"].dropna()
    if len(seeds):
        put("sl" + camel(name) + "Seeds", str(int(seeds.max())))
    return macros


def render(macros: Mapping[str, str], source: str) -> str:
    lines = [HEADER.format(source=source).rstrip("\n")]
    lines += [f"\\newcommand{{\\{k}}}{{{v}}}" for k, v in macros.items()]
    return "\n".join(lines) + "\n"


def index(names: Sequence[str]) -> str:
    """numbers.tex: \\val and \\input of each table's numbers (numbers/<name>.tex)."""
    lines = [
        HEADER.format(source="the list of result tables").rstrip("\n"),
        r"\newcommand{\val}[1]{\ifcsname sl#1\endcsname\csname sl#1\endcsname\else\textbf{n/a}\fi}",
    ]
    lines += [f"\\input{{numbers/{n}.tex}}" for n in names]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemlab.paper.numbers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("table", help="the macros of one result table")
    one.add_argument("--table", required=True)
    one.add_argument("--targets", required=True, help="workflow/paper/targets.yaml")
    one.add_argument("--out", required=True)
    idx = sub.add_parser("index", help="numbers.tex, which inputs numbers/<name>.tex of each table")
    idx.add_argument("--names", nargs="*", default=[])
    idx.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    if args.command == "index":
        bad = [n for n in args.names if not n.replace("_", "").isalnum()]
        if bad:
            raise StemlabError(f"--names: {', '.join(bad)} are not table names (letters, digits, underscores)")
        write_text(args.out, index(args.names))
        log.info("wrote %s (%d tables)", args.out, len(args.names))
        return 0
    table = read_table(args.table)
    macros = table_macros(table, load_targets(args.targets).get(str(table["table"].iloc[0]), []))
    write_text(args.out, render(macros, args.table))
    log.info("wrote %s (%d macros)", args.out, len(macros))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
