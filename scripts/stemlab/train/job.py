"""The one JSON config a train or evaluate rule hands its job: the model section plus its input paths.

    {"model": "fxprocessor", "task": "stemlab.megami.fxprocessor_task", "seed": 1,
     "loop": {...}, "settings": {...}, "eval": {...},            # models.<model> of the validated config
     "inputs": {"segments": {"megami": ["results/data/segments/synthetic/megami.parquet"]},
                "stems_root": "results/data/stems", "stems": ["results/data/stems/synthetic/shard-00000"],
                "upstream": {"clap": "results/models/clap/seed-1/final.pt"},
                "pretrained": {"clap_music": "resources/pretrained/clap_music"}},
     "device": "auto", "cpu_threads": 2, "bootstrap": 2000}

Every path in `inputs` is a declared input of the rule. The train job carries no `eval` section (an edit
of the evaluation settings does not retrain).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stemlab.config import schema_defaults
from stemlab.errors import StemlabError, json_config_arg


@dataclass(frozen=True)
class JobInputs:
    segments: dict[str, list[str]] = field(default_factory=dict)  # window -> segment tables (one per corpus)
    stems_root: str | None = None
    stems: list[str] = field(default_factory=list)  # canonical stem shard folders
    upstream: dict[str, str] = field(default_factory=dict)  # model -> its final.pt
    pretrained: dict[str, str] = field(default_factory=dict)  # pretrained download -> its folder
    cache: dict[str, list[str]] = field(default_factory=dict)  # encoder -> its embedding-cache files
    tokens: list[str] = field(default_factory=list)  # codec token shards (results/stage/tokens/<corpus>/<shard>.parquet)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> JobInputs:
        unknown = sorted(set(values) - {"segments", "stems_root", "stems", "upstream", "pretrained", "cache", "tokens"})
        if unknown:
            raise StemlabError(f"job config: unknown inputs key {unknown[0]!r}; regenerate the job config with the workflow")
        return cls(
            segments={str(k): [str(p) for p in v] for k, v in (values.get("segments") or {}).items()},
            stems_root=values.get("stems_root"),
            stems=[str(p) for p in values.get("stems") or []],
            upstream={str(k): str(v) for k, v in (values.get("upstream") or {}).items()},
            pretrained={str(k): str(v) for k, v in (values.get("pretrained") or {}).items()},
            cache={str(k): [str(p) for p in v] for k, v in (values.get("cache") or {}).items()},
            tokens=[str(p) for p in values.get("tokens") or []],
        )


@dataclass(frozen=True)
class Job:
    model: str
    task: str
    seed: int
    loop: dict[str, Any]
    settings: dict[str, Any]
    eval: dict[str, Any]
    inputs: JobInputs
    device: str = field(default_factory=lambda: schema_defaults("train")["device"])
    cpu_threads: int = field(default_factory=lambda: schema_defaults("train")["cpu_threads"])
    bootstrap: int = field(default_factory=lambda: schema_defaults("summary")["bootstrap"])

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Job:
        missing = [k for k in ("model", "task", "seed") if k not in values]
        if missing:
            raise StemlabError(f"job config lacks {missing[0]!r}; pass the JSON the workflow writes (see stemlab.train.job)")
        known = {"model", "task", "seed", "loop", "settings", "eval", "inputs", "device", "cpu_threads", "bootstrap"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise StemlabError(f"job config: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        train, summary = schema_defaults("train"), schema_defaults("summary")
        return cls(
            model=str(values["model"]),
            task=str(values["task"]),
            seed=int(values["seed"]),
            loop=dict(values.get("loop") or {}),
            settings=dict(values.get("settings") or {}),
            eval=dict(values.get("eval") or {}),
            inputs=JobInputs.from_dict(values.get("inputs") or {}),
            device=str(values.get("device", train["device"])),
            cpu_threads=int(values.get("cpu_threads", train["cpu_threads"])),
            bootstrap=int(values.get("bootstrap", summary["bootstrap"])),
        )


def read_job(text: str) -> Job:
    """A job from `--config`: inline JSON (what the rules pass) or the path of a JSON file."""
    values = json_config_arg(text, "--config", "pass the job config the workflow writes (stemlab.train.job)")
    if not values:
        raise StemlabError("--config is empty; pass the job config the workflow writes (stemlab.train.job)")
    return Job.from_dict(values)
