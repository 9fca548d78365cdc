"""Result tables as the paper reads them, the paper's targets and whether each is met.

Every result table becomes one long frame `table, system, metric, cell, n, n_seeds, mean, ci95_low,
ci95_high, better`: a model's summary table (results/tables/<model>.csv, `cell` joins its extra key
columns such as `k=16 segment_s=0.5`), the synthetic-data validity table (one row per analysed group,
its accuracies as metrics, no CI) or the corpus table (one row per corpus).

A target (workflow/paper/targets.yaml) is met when the system's 95 % interval lies wholly on the better
side of the reference: a baseline's mean (`beats`; with `times: x`, x times that mean, the form of a
claim such as "R@10 at least 3x chance") or a threshold (`at_least`, `at_most`). `cell` restricts a
target to one grid cell of its table (e.g. `k=16 segment_s=0.5`). Without an interval (the validity
table) the value itself is compared.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from stemlab.errors import StemlabError

MODEL_COLUMNS = ("model", "system", "metric", "n", "mean", "ci95_low", "ci95_high")
# summary columns that are not keys of a row (stemlab.evaluate.summary)
SUMMARY_VALUE_COLUMNS = {*MODEL_COLUMNS, "n_seeds", "n_items", "median", "seed_sd", "better"}
LONG_COLUMNS = ("table", "system", "metric", "cell", "n", "n_seeds", "mean", "ci95_low", "ci95_high", "better")
TARGET_KINDS = ("beats", "at_least", "at_most")
VALIDITY = "synth_validity"
CORPORA = "corpora"


def table_name(path: str | os.PathLike[str]) -> str:
    return Path(path).stem


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Any result table the paper quotes, as the long frame (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise StemlabError(f"{path}: result table not found; run snakemake {path}")
    try:
        raw = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except Exception as exc:  # pandas raises many types for a corrupt file
        raise StemlabError(f"{path}: cannot read the table ({type(exc).__name__}); delete it and re-run its rule") from exc
    if raw.empty:
        raise StemlabError(f"{path}: the table has no rows; re-run the rule that makes it")
    name = table_name(path)
    if name == VALIDITY:
        return _wide(raw, path, name, key="group", n="n_songs")
    if name == CORPORA:
        return _wide(raw, path, name, key="corpus", n="songs")
    missing = [c for c in MODEL_COLUMNS if c not in raw.columns]
    if missing:
        raise StemlabError(f"{path}: not a model summary table (lacks {', '.join(missing)}); re-run summarize_model")
    keys = [c for c in raw.columns if c not in SUMMARY_VALUE_COLUMNS]
    cell = raw[keys].astype(str).apply(lambda r: " ".join(f"{k}={v}" for k, v in r.items()), axis=1) if keys else ""
    return pd.DataFrame({
        "table": name,
        "system": raw["system"].astype(str),
        "metric": raw["metric"].astype(str),
        "cell": cell,
        "n": raw["n"],
        "n_seeds": raw["n_seeds"] if "n_seeds" in raw else float("nan"),
        "mean": raw["mean"].astype(float),
        "ci95_low": raw["ci95_low"].astype(float),
        "ci95_high": raw["ci95_high"].astype(float),
        "better": raw["better"].fillna("") if "better" in raw else "",
    }, columns=list(LONG_COLUMNS))  # fmt: skip


def _wide(raw: pd.DataFrame, path: Path, name: str, key: str, n: str) -> pd.DataFrame:
    """A table with one row per `key` and one numeric column per metric, as the long frame."""
    if key not in raw.columns:
        raise StemlabError(f"{path}: lacks the column {key}; re-run the rule that makes it")
    metrics = [c for c in raw.columns if c != key and pd.api.types.is_numeric_dtype(raw[c])]
    long = raw.assign(_n=raw[n] if n in raw else float("nan")).melt(
        id_vars=[key, "_n"], value_vars=metrics, var_name="metric", value_name="mean"
    )
    long = long.dropna(subset=["mean"])
    return pd.DataFrame({
        "table": name,
        "system": long[key].astype(str),
        "metric": long["metric"],
        "cell": "",
        "n": long["_n"],
        "n_seeds": float("nan"),
        "mean": long["mean"].astype(float),
        "ci95_low": float("nan"),
        "ci95_high": float("nan"),
        "better": "higher" if name == VALIDITY else "",
    }, columns=list(LONG_COLUMNS)).reset_index(drop=True)  # fmt: skip


def load_targets(path: str | os.PathLike[str]) -> dict[str, list[dict]]:
    """workflow/paper/targets.yaml: table -> its targets (each with system, metric and one of TARGET_KINDS)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise StemlabError(f"{path}: cannot read the targets ({exc}); fix the YAML") from exc
    if not isinstance(data, Mapping):
        raise StemlabError(f"{path}: expected a mapping of table name -> list of targets")
    targets = {}
    for table, entries in data.items():
        if not isinstance(entries, list):
            raise StemlabError(f"{path}: {table} must be a list of targets")
        for i, t in enumerate(entries):
            kinds = [k for k in TARGET_KINDS if isinstance(t, Mapping) and k in t]
            if not isinstance(t, Mapping) or not {"system", "metric"} <= set(t) or len(kinds) != 1:
                raise StemlabError(f"{path}: {table}[{i}] needs system, metric and exactly one of {', '.join(TARGET_KINDS)}")
            if kinds[0] != "beats" and not isinstance(t[kinds[0]], (int, float)):
                raise StemlabError(f"{path}: {table}[{i}].{kinds[0]} must be a number")
            times = t.get("times")
            if times is not None and (kinds[0] != "beats" or not isinstance(times, (int, float)) or times <= 0):
                raise StemlabError(f"{path}: {table}[{i}].times must be a positive number and goes with beats")
        targets[str(table)] = [dict(t) for t in entries]
    return targets


def target_text(target: Mapping) -> str:
    if "beats" in target:
        times = target.get("times")
        return f"beats {times:g}x {target['beats']}" if times is not None else f"beats {target['beats']}"
    kind = "at_least" if "at_least" in target else "at_most"
    return f"{'>=' if kind == 'at_least' else '<='} {target[kind]:g}"


def _direction(target: Mapping, row: pd.Series) -> str:
    if "at_least" in target:
        return "higher"
    if "at_most" in target:
        return "lower"
    if row["better"] not in ("higher", "lower"):
        raise StemlabError(f"target {target['system']} {target['metric']}: the metric has no better direction; use at_least/at_most")
    return str(row["better"])


def meets(direction: str, mean: float, low: float, high: float, reference: float) -> bool:
    """The CI rule of the module docstring (an interval that is NaN falls back to the mean)."""
    low = mean if math.isnan(low) else low
    high = mean if math.isnan(high) else high
    return bool(low > reference) if direction == "higher" else bool(high < reference)


def evaluate_targets(table: pd.DataFrame, targets: Sequence[Mapping]) -> pd.DataFrame:
    """One row per (target, cell): the system's row with `target` (its text), `reference`, `reference_mean`,
    `meets_target` ("yes"/"no"; "" where the system or the baseline has no row) and `why`."""
    rows = []
    for t in targets:
        own = table[(table["system"] == str(t["system"])) & (table["metric"] == str(t["metric"]))]
        if "cell" in t:
            own = own[own["cell"] == str(t["cell"])]
        if own.empty:
            rows.append({"table": table["table"].iloc[0] if len(table) else "", "system": str(t["system"]),
                         "metric": str(t["metric"]), "cell": "", "target": target_text(t), "reference": "",
                         "reference_mean": float("nan"), "meets_target": "", "why": t.get("why", "")})  # fmt: skip
            continue
        for _, row in own.iterrows():
            if "beats" in t:
                base = table[(table["system"] == str(t["beats"])) & (table["metric"] == row["metric"]) & (table["cell"] == row["cell"])]
                times = float(t.get("times", 1.0))
                reference = str(t["beats"]) if "times" not in t else f"{times:g}x {t['beats']}"
                ref = times * float(base["mean"].iloc[0]) if len(base) else float("nan")
            else:
                ref = float(t["at_least"] if "at_least" in t else t["at_most"])
                reference = f"{ref:g}"
            ok = "" if math.isnan(ref) else ("yes" if meets(_direction(t, row), row["mean"], row["ci95_low"], row["ci95_high"], ref) else "no")
            rows.append({**row.to_dict(), "target": target_text(t), "reference": reference,
                         "reference_mean": ref, "meets_target": ok, "why": t.get("why", "")})  # fmt: skip
    return pd.DataFrame(rows, columns=[*LONG_COLUMNS, "target", "reference", "reference_mean", "meets_target", "why"])


# ---- LaTeX
_DIGITS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


def camel(text: str) -> str:
    """`text` as letters only: words capitalised, digits spelled, '.' as Point and '-' as Minus
    (`t2a_r10` -> `TTwoAROneZero`, `segment_s=0.5` -> `SegmentSZeroPointFive`)."""
    out, start = [], True
    for ch in str(text):
        if "a" <= ch.lower() <= "z":
            out.append(ch.upper() if start else ch)
            start = False
        elif ch.isdigit() and ch.isascii():
            out.append(_DIGITS[int(ch)])
            start = True
        elif ch in ".-":
            out.append("Point" if ch == "." else "Minus")
            start = True
        else:
            start = True
    return "".join(out)


def macro_base(table: str, system: str, metric: str, cell: str = "") -> str:
    """The name (without the backslash) of a row's macro: sl + table + system + metric + cell."""
    return "sl" + camel(table) + camel(system) + camel(metric) + camel(cell)


def fmt(value: float) -> str:
    """A number for the text: three significant figures, no exponent above 1e-3, a math minus."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    value = float(value)
    if value == 0:
        return "0"
    mag = abs(value)
    if mag == int(mag) and mag < 1e6:  # counts (songs, seeds) and exact values print as integers
        text = f"{int(mag):,}".replace(",", "{,}")
    elif mag >= 1000:
        text = f"{mag:,.0f}".replace(",", "{,}")
    elif mag >= 1e-3:
        text = f"{mag:#.3g}".rstrip(".")
        if "e" in text:
            text = f"{mag:.0f}"
    else:
        mant, exp = f"{mag:.1e}".split("e")
        text = f"{mant}\\times 10^{{{int(exp)}}}"
    return f"\\ensuremath{{{'-' if value < 0 else ''}{text}}}"


def escape(text: str) -> str:
    """Plain text for LaTeX (underscores, percent, ampersand, hash, braces, tildes, carets)."""
    repl = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "$": r"\$", ">=": r"$\geq$", "<=": r"$\leq$"}  # fmt: skip
    out, i = [], 0
    text = str(text)
    while i < len(text):
        two = text[i : i + 2]
        if two in repl:
            out.append(repl[two])
            i += 2
            continue
        out.append(repl.get(text[i], text[i]))
        i += 1
    return "".join(out)
