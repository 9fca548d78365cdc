"""The shared summariser: long table, means over seeds, bootstrap intervals with known answers, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stemlab.errors import StemlabError
from stemlab.evaluate.summary import bootstrap_means, summarize


def _rows(values_by_seed: dict[int, list[float]], system: str = "a", metric: str = "m", **extra) -> list[dict]:
    return [
        {"model": "toy", "seed": seed, "system": system, "metric": metric, "value": v, "item": f"i{i}", **extra}
        for seed, values in values_by_seed.items()
        for i, v in enumerate(values)
    ]


def test_constant_values_give_a_degenerate_interval():
    table = summarize(pd.DataFrame(_rows({1: [2.5] * 7, 2: [2.5] * 7})))
    row = table.iloc[0]
    assert (row["mean"], row["ci95_low"], row["ci95_high"]) == (2.5, 2.5, 2.5)
    assert row["n"] == 14 and row["n_seeds"] == 2 and row["n_items"] == 7 and row["seed_sd"] == 0.0


def test_mean_is_the_mean_of_seed_means_and_seed_sd_is_their_spread():
    table = summarize(pd.DataFrame(_rows({1: [0.0, 2.0], 2: [10.0, 10.0, 10.0, 10.0]})))
    row = table.iloc[0]
    assert row["mean"] == pytest.approx((1.0 + 10.0) / 2)
    assert row["seed_sd"] == pytest.approx(np.std([1.0, 10.0], ddof=1))
    assert row["median"] == 10.0


def test_item_bootstrap_matches_the_normal_interval_of_a_large_sample():
    rng = np.random.default_rng(0)  # the test's data, not a stemlab RNG
    values = rng.normal(3.0, 2.0, size=4000)
    replicates = bootstrap_means([values], 4000, np.random.default_rng(1))
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    low, high = np.percentile(replicates, [2.5, 97.5])
    assert low == pytest.approx(values.mean() - half, abs=0.02) and high == pytest.approx(values.mean() + half, abs=0.02)


def test_seed_level_bootstrap_widens_the_interval_when_seeds_disagree():
    items = list(np.linspace(-0.1, 0.1, 50))
    agree = summarize(pd.DataFrame(_rows({s: items for s in (1, 2, 3)}))).iloc[0]
    spread = summarize(pd.DataFrame(_rows({1: [v - 1 for v in items], 2: items, 3: [v + 1 for v in items]}))).iloc[0]
    assert agree["mean"] == pytest.approx(spread["mean"])
    assert spread["ci95_high"] - spread["ci95_low"] > 5 * (agree["ci95_high"] - agree["ci95_low"])
    # a seed-level interval covers roughly the range of the seed means (-1, 0, 1)
    assert spread["ci95_low"] < -0.3 and spread["ci95_high"] > 0.3


def test_rows_are_long_one_per_system_and_metric_in_first_seen_order_with_keys():
    rows = (
        _rows({1: [1.0, 2.0]}, system="model", metric="err", k=16) + _rows({1: [5.0, 6.0]}, system="random", metric="err", k=16)
        + _rows({1: [0.5, 0.5]}, system="model", metric="err", k=64) + _rows({1: [0.9, 0.8]}, system="model", metric="acc", k=16)
    )  # fmt: skip
    table = summarize(pd.DataFrame(rows), keys=("k",), directions={"err": "lower"})
    assert list(table.columns[:7]) == ["model", "system", "metric", "n", "mean", "ci95_low", "ci95_high"]
    assert table[["k", "system", "metric"]].values.tolist() == [
        [16, "model", "err"], [16, "random", "err"], [64, "model", "err"], [16, "model", "acc"]
    ]  # fmt: skip
    assert table["better"].tolist() == ["lower", "lower", "lower", ""]
    assert table.loc[1, "mean"] == 5.5


def test_same_rows_same_table_and_non_finite_values_are_left_out():
    rng = np.random.default_rng(3)  # test data
    rows = _rows({1: list(rng.normal(size=30)), 2: list(rng.normal(size=30))}) + _rows({1: [np.nan]})
    a, b = summarize(pd.DataFrame(rows)), summarize(pd.DataFrame(rows[::-1]))
    pd.testing.assert_frame_equal(a, b)
    assert a.iloc[0]["n"] == 60


def test_missing_columns_are_one_line():
    with pytest.raises(StemlabError, match="lack columns item"):
        summarize(pd.DataFrame([{"model": "m", "seed": 1, "system": "s", "metric": "x", "value": 1.0}]))


def test_a_median_metric_is_the_mean_of_seed_medians_with_a_bootstrap_of_medians():
    values = [float(v) for v in range(11)] + [1000.0]
    rows = _rows({1: values, 2: [v + 1 for v in values]}, metric="tpp_median")
    table = summarize(pd.DataFrame(rows), statistics={"tpp_median": "median"}).iloc[0]
    assert table["mean"] == 6.0  # seed medians 5.5 and 6.5
    assert table["ci95_low"] <= 6.0 <= table["ci95_high"] < 100.0  # a bootstrap of means would reach past 80
    with pytest.raises(StemlabError, match="metric statistic"):
        summarize(pd.DataFrame(rows), statistics={"tpp_median": "mode"})
