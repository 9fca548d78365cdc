"""Stage's token shards as rows of the workflow (parse-time safe: stdlib only).

When the codec model `stage_tokens.codec` is an enabled model with data (stemlab.modelplan), every corpus of
`stage_tokens.corpora` that the data stage builds is tokenised once, one tokenize_stage job per (corpus, shard):
results/stage/tokens/<corpus>/<shard>.parquet (stemlab.stage.tokenize). A job reads the codec's final.pt
(`stage_tokens.seed`, else its first seed), the pretrained folders the codec loads, the shard's segment table
(activity of the `stage_tokens.window` windows), its canonical stem folder and its features table (beats and
tempo of real corpora).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stemlab.errors import StemlabError
from stemlab.modelplan import PRETRAINED_DIR, STEMS_ROOT, ModelPlan, model_dir, token_file


@dataclass(frozen=True)
class TokenPlan:
    codec: str  # the codec model
    seed: int  # its seed whose final.pt tokenises
    corpora: tuple[str, ...]


def token_plan(config: Mapping[str, Any], plans: Mapping[str, ModelPlan], data_corpora: Sequence[str]) -> TokenPlan | None:
    """The token jobs' plan, or None when the codec model is not planned (no tokens)."""
    section = config["stage_tokens"]  # defaults filled in from the schema
    name = section["codec"]
    plan = plans.get(name)
    if plan is None:
        return None
    if plan.cells != ("",):
        raise StemlabError(f"stage_tokens.codec: model {name!r} has a grid; the tokenizer is one model")
    window = section["window"]
    if window not in ((config.get("data") or {}).get("segments") or {}):
        raise StemlabError(f"stage_tokens.window: no segment window {window!r} in data.segments; add it there or fix the name")
    wanted = section["corpora"]
    corpora = tuple(data_corpora) if wanted is None else tuple(c for c in data_corpora if c in wanted)
    seed = section["seed"]
    if seed is None:
        seed = plan.seeds[0]
    elif seed not in plan.seeds:
        seeds = ", ".join(map(str, plan.seeds))
        raise StemlabError(f"stage_tokens.seed: the {name} model has no seed {seed} (its seeds: {seeds}); pick one of them or null")
    return TokenPlan(codec=name, seed=int(seed), corpora=corpora)


def token_files(tplan: TokenPlan | None, shards: Callable[[str], Sequence[str]]) -> list[str]:
    if tplan is None:
        return []
    return [token_file(c, s) for c in tplan.corpora for s in shards(c)]


def token_inputs(tplan: TokenPlan, plans: Mapping[str, ModelPlan], corpus: str, shard: str) -> dict[str, Any]:
    """The input paths of one tokenize_stage job, by kind."""
    if corpus not in tplan.corpora:
        raise ValueError(f"corpus {corpus!r} is not tokenised (stage_tokens.corpora)")
    plan = plans[tplan.codec]
    return {
        "model": f"{model_dir(tplan.codec, tplan.seed)}/final.pt",
        "segments": f"results/data/segments/{corpus}/shards/{shard}.parquet",
        "stems": f"{STEMS_ROOT}/{corpus}/{shard}",
        "features": f"results/data/features/{corpus}/{shard}.parquet",
        "pretrained": {p: f"{PRETRAINED_DIR}/{p}" for p in plan.pretrained},
    }


def input_files(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The same paths as a rule's named inputs."""
    return {**{k: inputs[k] for k in ("model", "segments", "stems", "features")}, "pretrained": list(inputs["pretrained"].values())}


def token_job_config(config: Mapping[str, Any], tplan: TokenPlan, corpus: str, shard: str, inputs: Mapping[str, Any]) -> str:
    """The JSON a tokenize_stage job gets (stemlab.stage.tokenize.TokenJob): only what can change its bytes."""
    section = config["stage_tokens"]
    job = {
        "codec": tplan.codec,
        "seed": tplan.seed,
        "corpus": corpus,
        "shard": shard,
        **{k: inputs[k] for k in ("model", "segments", "stems", "features")},
        "pretrained": dict(inputs["pretrained"]),
        **{k: section[k] for k in ("window", "targets", "exclude", "max_seconds")},
        "device": config["train"]["device"],
        "cpu_threads": config["train"]["cpu_threads"],
    }
    return json.dumps(job, sort_keys=True, separators=(",", ":"))
