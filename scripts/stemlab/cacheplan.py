"""The embedding cache as rows of the workflow (parse-time safe: stdlib only).

Each encoder of `cache.encoders` that is an enabled model with data (stemlab.modelplan) is cached for
every corpus of `cache.corpora` that the data stage builds, one job per (encoder, corpus, shard):
results/cache/<encoder>/<corpus>/<shard>.parquet (stemlab.encoders.cache). A job reads one final.pt of
the encoder (`cache.seed`, else its first seed), the corpus's segment tables of `cache.windows`, the
canonical stem shard folder, and whatever the encoder loads besides (upstream models, pretrained folders).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stemlab.errors import StemlabError
from stemlab.modelplan import CACHE_DIR, PRETRAINED_DIR, STEMS_ROOT, ModelPlan, cache_file, model_dir, upstream_seed  # noqa: F401
SOURCES = ("wet", "dry", "mix")


@dataclass(frozen=True)
class CachePlan:
    encoder: str
    seed: int  # the encoder's seed whose final.pt is embedded with
    corpora: tuple[str, ...]
    windows: tuple[str, ...]
    sources: tuple[str, ...]


def cache_plans(
    config: Mapping[str, Any], plans: Mapping[str, ModelPlan], data_corpora: Sequence[str]
) -> dict[str, CachePlan]:
    """The cached encoders, by name. Encoders that are not enabled models with data are left out (like
    models without data); a window that does not exist or a seed the encoder lacks is a one-line error."""
    cache = config.get("cache") or {}
    windows = tuple(cache.get("windows") or ())
    known = set((config.get("data") or {}).get("segments") or {})
    unknown = [w for w in windows if w not in known]
    if unknown:
        raise StemlabError(f"cache.windows: no segment window {unknown[0]!r} in data.segments; add it there or fix the name")
    wanted = cache.get("corpora")
    corpora = tuple(data_corpora) if wanted is None else tuple(c for c in data_corpora if c in wanted)
    sources = tuple(s for s in SOURCES if s in (cache.get("sources") or SOURCES))
    out: dict[str, CachePlan] = {}
    if not windows or not corpora:
        return out
    for name in cache.get("encoders") or ():
        plan = plans.get(name)
        if plan is None:
            continue
        seed = cache.get("seed")
        if seed is None:
            seed = plan.seeds[0]
        elif seed not in plan.seeds:
            seeds = ", ".join(map(str, plan.seeds))
            raise StemlabError(f"cache.seed: encoder {name} has no seed {seed} (its seeds: {seeds}); pick one of them or null")
        out[name] = CachePlan(encoder=name, seed=int(seed), corpora=corpora, windows=windows, sources=sources)
    return out


def cache_files(cplans: Mapping[str, CachePlan], shards: Callable[[str], Sequence[str]], encoder: str | None = None) -> list[str]:
    """Every cache file (of one encoder, or of all)."""
    names = [encoder] if encoder is not None else list(cplans)
    return [cache_file(n, c, s) for n in names for c in cplans[n].corpora for s in shards(c)]


def cache_inputs(cplans: Mapping[str, CachePlan], plans: Mapping[str, ModelPlan], encoder: str, corpus: str, shard: str) -> dict[str, Any]:
    """The input paths of one cache job, by kind (what its job config names)."""
    cplan = cplans[encoder]
    if corpus not in cplan.corpora:
        raise ValueError(f"corpus {corpus!r} is not cached for encoder {encoder!r}")
    plan = plans[encoder]
    return {
        "model": f"{model_dir(encoder, cplan.seed)}/final.pt",
        "segments": {w: f"results/data/segments/{corpus}/{w}.parquet" for w in cplan.windows},
        "stems": f"{STEMS_ROOT}/{corpus}/{shard}",
        "upstream": {up: f"{model_dir(up, upstream_seed(plans[up], cplan.seed))}/final.pt" for up in plan.upstream},
        "pretrained": {p: f"{PRETRAINED_DIR}/{p}" for p in plan.pretrained},
    }


def input_files(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The same paths as a rule's named inputs."""
    return {
        "model": inputs["model"],
        "segments": list(inputs["segments"].values()),
        "stems": inputs["stems"],
        "upstream": list(inputs["upstream"].values()),
        "pretrained": list(inputs["pretrained"].values()),
    }


def cache_job_config(config: Mapping[str, Any], cplan: CachePlan, corpus: str, shard: str, inputs: Mapping[str, Any]) -> str:
    """The JSON a cache job gets (stemlab.encoders.cache.CacheJob): only what can change its bytes."""
    job = {
        "encoder": cplan.encoder,
        "seed": cplan.seed,
        "corpus": corpus,
        "shard": shard,
        "model": inputs["model"],
        "segments": dict(inputs["segments"]),
        "stems": inputs["stems"],
        "inputs": {"upstream": dict(inputs["upstream"]), "pretrained": dict(inputs["pretrained"])},
        "sources": list(cplan.sources),
        "batch_size": int(config["cache"]["batch_size"]),
        "device": config["train"]["device"],
        "cpu_threads": config["train"]["cpu_threads"],
    }
    return json.dumps(job, sort_keys=True, separators=(",", ":"))
