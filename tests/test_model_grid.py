"""A model's grid (models.<m>.grid): one model row per cell in the Paramspace format, cell values as settings,
upstream cells matched by value, one summary over every cell."""

from __future__ import annotations

import json

import pytest

from stemlab import modelplan
from stemlab.errors import StemlabError


def _config(**models):
    return {"data": {"segments": {"w": {}}}, "seeds": [1, 2], "train": {"device": "cpu", "cpu_threads": 1},
            "models": models}  # fmt: skip


def _plans():
    config = _config(
        book={"task": "m.book", "seeds": [1], "grid": {"k": [16, 64], "segment_s": [0.25, 0.5]},
              "inputs": {"windows": ["w"], "corpora": ["synthetic"]}, "settings": {"k": 8, "x": 1}},
        dec={"task": "m.dec", "grid": {"k": [16, 64], "segment_s": [0.25, 0.5]},
             "inputs": {"windows": ["w"], "corpora": ["synthetic"], "upstream": ["book"]}},
        plain={"task": "m.plain"},
    )  # fmt: skip
    return config, modelplan.model_plans(config, ["synthetic"])


def test_cells_are_the_product_in_paramspace_format():
    _, plans = _plans()
    assert plans["book"].keys() == [
        "book/k~16/segment_s~0.25", "book/k~16/segment_s~0.5", "book/k~64/segment_s~0.25", "book/k~64/segment_s~0.5"
    ]  # fmt: skip
    assert plans["plain"].keys() == ["plain"]
    assert modelplan.model_dir("book/k~16/segment_s~0.5", 1) == "results/models/book/k~16/segment_s~0.5/seed-1"


def test_cell_values_override_settings_and_upstream_is_the_same_cell():
    config, plans = _plans()
    inputs = modelplan.job_inputs(plans, "dec/k~64/segment_s~0.25", 2, lambda c: ["shard-00000"])
    # the codebook has one seed: seed 2 of the decision model reads its seed 1, of the same cell
    assert inputs["upstream"] == {"book": "results/models/book/k~64/segment_s~0.25/seed-1/final.pt"}
    plan, cell = modelplan.split_key(plans, "book/k~64/segment_s~0.25")
    job = json.loads(modelplan.job_config(config, plan, 1, {}, "train", cell))
    assert job["model"] == "book" and job["settings"] == {"k": 64, "segment_s": 0.25, "x": 1}


def test_bad_keys_and_grids_are_one_line_errors():
    _, plans = _plans()
    with pytest.raises(StemlabError, match="not a model"):
        modelplan.split_key(plans, "book/k~32/segment_s~0.25")
    with pytest.raises(StemlabError, match="lists a value twice"):
        modelplan.model_plans(_config(a={"task": "m.a", "grid": {"k": [1, 1]}}), ["synthetic"])
    config = _config(up={"task": "m.up", "grid": {"k": [1, 2]}}, down={"task": "m.down", "inputs": {"upstream": ["up"]}})
    with pytest.raises(StemlabError, match="grid key 'k'"):
        modelplan.model_plans(config, ["synthetic"])


def test_a_job_reserves_at_least_the_torch_threads_it_runs_with():
    res = {"train": {"threads": 1}, "eval": {"threads": 4}}
    config = _config(
        plain={"task": "m.plain", "resources": res},
        small={"task": "m.small", "resources": res, "settings": {"torch_threads": 1}},
    )
    config["train"]["cpu_threads"] = 2
    plans = modelplan.model_plans(config, ["synthetic"])
    # a 1-thread reservation of a job running 2 torch threads would put two such jobs on 2 cores at once
    assert modelplan.job_threads(config, plans["plain"], "train") == 2
    assert modelplan.job_threads(config, plans["plain"], "eval") == 4
    assert modelplan.job_threads(config, plans["small"], "train") == 1
