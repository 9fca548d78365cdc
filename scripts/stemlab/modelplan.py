"""The models of the workflow as rows of a table derived from the config (parse-time safe: stdlib only).

Each enabled `models.<name>` section becomes a ModelPlan: its task module, seeds, and the inputs its
train and evaluate jobs declare (segment tables of its windows per corpus, canonical stem shards, the
final.pt of upstream models, pretrained folders, embedding-cache files of encoders). The generic rules (workflow/rules/train.smk,
evaluate.smk) read these rows through common.smk; a job gets the model section and its input paths as
one JSON config (stemlab.train.job).

A model with a `grid` (settings key -> values) is one row per cell of their product, in the Paramspace
wildcard format (`k~16/segment_s~0.25`): its jobs live under results/models/<name>/<cell>/seed-<s>, each
gets the cell's values as its settings, and its summary table is still one (the task's summary keys split
it). Such a row is addressed by its key `<name>/<cell>`; an upstream model with a grid is the cell of the
same values.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stemlab.errors import StemlabError

MODELS_DIR = "results/models"
EVAL_DIR = "results/eval"
TABLES_DIR = "results/tables"
STEMS_ROOT = "results/data/stems"
PRETRAINED_DIR = "resources/pretrained"
CACHE_DIR = "results/cache"
TOKENS_DIR = "results/stage/tokens"
TRAIN_OUTPUTS = ("final.pt", "train_log.csv", "meta.json")
EVAL_OUTPUTS = ("items.parquet", "meta.json")
# tables other rules write into results/tables: no model may be named like them
RESERVED_NAMES = frozenset({"corpora", "synth_validity", "synth_validity_songs", "benchmark"})


@dataclass(frozen=True)
class ModelPlan:
    name: str
    task: str
    seeds: tuple[int, ...]
    windows: tuple[str, ...]
    corpora: tuple[str, ...]  # those of inputs.corpora that the data stage builds
    upstream: tuple[str, ...]
    pretrained: tuple[str, ...]
    section: Mapping[str, Any]
    cache: tuple[str, ...] = ()  # encoders whose embedding cache (of these corpora) the model reads
    cells: tuple[str, ...] = ("",)  # grid cells (Paramspace patterns); "" for a model without a grid
    cell_settings: Mapping[str, Mapping[str, Any]] | None = None  # cell -> the settings it sets
    tokens: bool = False  # reads the codec token shards of its corpora (inputs.tokens)

    def keys(self) -> list[str]:
        """The rows of this model: its name, or <name>/<cell> for each grid cell."""
        return [model_key(self.name, cell) for cell in self.cells]


def model_key(name: str, cell: str = "") -> str:
    return f"{name}/{cell}" if cell else name


def grid_cells(name: str, grid: Mapping[str, Sequence[Any]] | None) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """The cells of models.<name>.grid (the product of its value lists, keys in config order)."""
    if not grid:
        return ("",), {"": {}}
    for key, values in grid.items():
        if not values:
            raise StemlabError(f"models.{name}.grid.{key} is empty; list at least one value")
        if len({str(v) for v in values}) != len(values):
            raise StemlabError(f"models.{name}.grid.{key} lists a value twice; remove the repeat")
    keys = list(grid)
    cells, settings = [], {}
    for combo in itertools.product(*(grid[k] for k in keys)):
        cell = "/".join(f"{k}~{v}" for k, v in zip(keys, combo))
        cells.append(cell)
        settings[cell] = dict(zip(keys, combo))
    return tuple(cells), settings


def model_plans(config: Mapping[str, Any], data_corpora: Sequence[str]) -> dict[str, ModelPlan]:
    """The enabled models that have data, by name. A model whose windows need corpora of which none is
    built is left out (as is everything downstream of it); a broken reference is a one-line error."""
    models = config.get("models") or {}
    windows_known = set((config.get("data") or {}).get("segments") or {})
    pretrained_known = set(config.get("pretrained") or {})
    plans: dict[str, ModelPlan] = {}
    for name in sorted(models):
        section = models[name]
        if not section.get("enabled", True):
            continue
        key = f"models.{name}"
        if name in RESERVED_NAMES:
            raise StemlabError(f"{key}: the name {name!r} is taken by another table of results/tables; rename the model")
        if not section.get("task"):
            raise StemlabError(f"{key}.task is missing; name the Python module that registers the model's task")
        inputs = section.get("inputs") or {}
        windows = tuple(inputs.get("windows") or ())
        unknown = [w for w in windows if w not in windows_known]
        if unknown:
            raise StemlabError(f"{key}.inputs.windows: no segment window {unknown[0]!r} in data.segments; add it there or fix the name")
        cached = tuple(inputs.get("cache") or ())
        not_cached = [e for e in cached if e not in ((config.get("cache") or {}).get("encoders") or ())]
        if not_cached:
            raise StemlabError(f"{key}.inputs.cache: encoder {not_cached[0]!r} is not in cache.encoders; add it there or fix the name")
        missing_pretrained = [p for p in inputs.get("pretrained") or () if p not in pretrained_known]
        if missing_pretrained:
            raise StemlabError(f"{key}.inputs.pretrained: no pretrained download {missing_pretrained[0]!r}; add it under pretrained:")
        corpora = tuple(c for c in inputs.get("corpora") or () if c in data_corpora)
        cache_corpora = (config.get("cache") or {}).get("corpora")
        uncached = [c for c in corpora if cached and cache_corpora is not None and c not in cache_corpora]
        if uncached:
            raise StemlabError(f"{key}.inputs.cache: corpus {uncached[0]} is not cached; add it to cache.corpora")
        tokens = bool(inputs.get("tokens", False))
        if (windows or tokens) and not corpora:
            continue
        seeds = tuple(section.get("seeds") or config.get("seeds") or ())
        if not seeds:
            raise StemlabError(f"{key}: no seeds; set the top-level seeds or {key}.seeds")
        cells, cell_settings = grid_cells(name, section.get("grid"))
        plans[name] = ModelPlan(
            name=name,
            task=str(section["task"]),
            seeds=seeds,
            windows=windows,
            corpora=corpora,
            upstream=tuple(inputs.get("upstream") or ()),
            pretrained=tuple(inputs.get("pretrained") or ()),
            section=section,
            cache=cached,
            cells=cells,
            cell_settings=cell_settings,
            tokens=tokens,
        )
    for plan in plans.values():
        for up in plan.upstream:
            if up not in plans:
                raise StemlabError(f"models.{plan.name}.inputs.upstream: model {up!r} is not enabled or has no data; enable it")
        for encoder in plan.cache:
            if encoder not in plans:
                raise StemlabError(f"models.{plan.name}.inputs.cache: encoder {encoder!r} is not enabled or has no data; enable it")
            if plans[encoder].cells != ("",):
                raise StemlabError(f"models.{plan.name}.inputs.cache: encoder {encoder!r} has a grid; a cached encoder has one model")
        for up in plan.upstream:
            extra = sorted(set(_grid_keys(plans[up])) - set(_grid_keys(plan)))
            if extra:
                raise StemlabError(f"models.{plan.name}: upstream {up!r} has grid key {extra[0]!r} that it lacks; add it to models.{plan.name}.grid")
    _check_acyclic(plans)
    return plans


def _check_acyclic(plans: Mapping[str, ModelPlan]) -> None:
    state: dict[str, int] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join((*path[path.index(name) :], name))
            raise StemlabError(
                f"models: upstream models form a cycle ({cycle}); break it in models.<model>.inputs.upstream or .inputs.cache"
            )
        state[name] = 1
        for up in dict.fromkeys((*plans[name].upstream, *plans[name].cache)):
            visit(up, (*path, name))
        state[name] = 2

    for name in plans:
        visit(name, ())


def _grid_keys(plan: ModelPlan) -> list[str]:
    return list((plan.cell_settings or {}).get(plan.cells[0]) or {})


def split_key(plans: Mapping[str, ModelPlan], key: str) -> tuple[ModelPlan, str]:
    """(plan, cell) of a model row's key (a model name, or <name>/<cell>)."""
    name, _, cell = key.partition("/")
    plan = plans.get(name)
    if plan is None or cell not in plan.cells:
        raise StemlabError(f"{key!r} is not a model of the config (nor a cell of one); check the target path")
    return plan, cell


def upstream_cell(upstream: ModelPlan, plan: ModelPlan, cell: str) -> str:
    """The cell of `upstream` that the cell `cell` of `plan` reads: the one of the same values."""
    if upstream.cells == ("",):
        return ""
    values = (plan.cell_settings or {}).get(cell) or {}
    for candidate in upstream.cells:
        if all(str(values.get(k)) == str(v) for k, v in (upstream.cell_settings or {})[candidate].items()):
            return candidate
    raise StemlabError(f"models.{plan.name} cell {cell}: upstream {upstream.name!r} has no cell of these values; list them in its grid")


def model_dir(model: str, seed: int | str) -> str:
    return f"{MODELS_DIR}/{model}/seed-{seed}"


def eval_dir(model: str, seed: int | str) -> str:
    return f"{EVAL_DIR}/{model}/seed-{seed}"


def summary_table(model: str) -> str:
    return f"{TABLES_DIR}/{model}.csv"


def cache_file(encoder: str, corpus: str, shard: str) -> str:
    return f"{CACHE_DIR}/{encoder}/{corpus}/{shard}.parquet"


def token_file(corpus: str, shard: str) -> str:
    return f"{TOKENS_DIR}/{corpus}/{shard}.parquet"


def upstream_seed(plan: ModelPlan, seed: int) -> int:
    """The seed of an upstream model that a run of `seed` loads: the same one, else its first."""
    return seed if seed in plan.seeds else plan.seeds[0]


def job_inputs(
    plans: Mapping[str, ModelPlan], key: str, seed: int, shards: Callable[[str], Sequence[str]]
) -> dict[str, Any]:
    """The input paths of one (model row, seed) job, by kind (the `inputs` of its job config)."""
    plan, cell = split_key(plans, key)
    segments = {w: [f"results/data/segments/{c}/{w}.parquet" for c in plan.corpora] for w in plan.windows}
    stems = [f"{STEMS_ROOT}/{c}/{s}" for c in plan.corpora for s in shards(c)] if plan.windows else []
    upstream = {
        up: f"{model_dir(model_key(up, upstream_cell(plans[up], plan, cell)), upstream_seed(plans[up], seed))}/final.pt"
        for up in plan.upstream
    }
    pretrained = {p: f"{PRETRAINED_DIR}/{p}" for p in plan.pretrained}
    cache = {e: [cache_file(e, c, s) for c in plan.corpora for s in shards(c)] for e in plan.cache}
    tokens = [token_file(c, s) for c in plan.corpora for s in shards(c)] if plan.tokens else []
    return {
        "segments": segments,
        "stems_root": STEMS_ROOT if plan.windows else None,
        "stems": stems,
        "upstream": upstream,
        "pretrained": pretrained,
        "cache": cache,
        "tokens": tokens,
    }


def input_files(inputs: Mapping[str, Any]) -> dict[str, list[str]]:
    """The same paths flattened per kind, as a rule's named inputs."""
    return {
        "segments": [p for paths in inputs["segments"].values() for p in paths],
        "stems": list(inputs["stems"]),
        "upstream": list(inputs["upstream"].values()),
        "pretrained": list(inputs["pretrained"].values()),
        "cache": [p for paths in inputs.get("cache", {}).values() for p in paths],
        "tokens": list(inputs.get("tokens", [])),
    }


def job_threads(config: Mapping[str, Any], plan: ModelPlan, job: str) -> int:
    """The cores a model's `job` (train or eval) reserves: its resources' threads, and never fewer than the
    torch threads it runs with (the model's settings.torch_threads where it has one, else
    train.cpu_threads), so that jobs side by side do not oversubscribe the cores. The torch threads stay
    what the config says (CPU results depend on them); only the reservation follows."""
    reserved = int(plan.section["resources"][job]["threads"])
    torch_threads = (plan.section.get("settings") or {}).get("torch_threads") or config["train"]["cpu_threads"]
    return max(reserved, int(torch_threads))


def job_config(
    config: Mapping[str, Any], plan: ModelPlan, seed: int, inputs: Mapping[str, Any], kind: str, cell: str = ""
) -> str:
    """The JSON a job of `kind` (train, eval, summary) gets: only what can change its result, so that
    an edit of the evaluation settings does not retrain and a resources edit reruns nothing. A grid
    cell's values override the settings keys they name."""
    section = plan.section
    job: dict[str, Any] = {"model": plan.name, "task": plan.task, "seed": seed}
    if kind in ("train", "eval"):
        job |= {
            "loop": section.get("loop") or {},
            "settings": {**(section.get("settings") or {}), **((plan.cell_settings or {}).get(cell) or {})},
            "inputs": dict(inputs),
            "device": config["train"]["device"],
            "cpu_threads": config["train"]["cpu_threads"],
        }
    if kind == "eval":
        job["eval"] = section.get("eval") or {}
    if kind == "summary":
        job["bootstrap"] = config["summary"]["bootstrap"]
    if kind not in ("train", "eval", "summary"):
        raise ValueError(f"unknown job kind {kind!r}")
    return json.dumps(job, sort_keys=True, separators=(",", ":"))
