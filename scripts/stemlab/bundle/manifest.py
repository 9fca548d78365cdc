"""The bundle's manifest.json: every member's path, size and sha256, plus what each model was trained
with (from its meta.json), so a restore can tell a bundle of another config before extracting anything.

    {"format": "stemlab-bundle", "version": 1, "config_digest": "<sha256 of the run's config>",
     "files": [{"path": "results/models/clap/seed-1/final.pt", "size": 123, "sha256": "..."}, ...],
     "models": [{"model": "clap", "seed": 1, "dir": "results/models/clap/seed-1", "identity_hash": "...",
                 "task": "...", "settings": {...}, "train": {...}, "code": "..."}, ...],
     "tables": ["results/tables/clap.csv", ...]}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stemlab.errors import StemlabError
from stemlab.modelplan import MODELS_DIR, TABLES_DIR, TRAIN_OUTPUTS

FORMAT = "stemlab-bundle"
VERSION = 1
NAME = "manifest.json"  # the tar's first member
MAX_BYTES = 64 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")
_MODEL_FILE = re.compile(rf"^{MODELS_DIR}/(?P<model>[^/].*)/seed-(?P<seed>[0-9]+)/(?P<name>[^/]+)$")
_TABLE = re.compile(rf"^{TABLES_DIR}/[A-Za-z0-9][A-Za-z0-9_.-]*\.csv$")

FIX = "download it again from where it was published, or rebuild it with `snakemake bundle`"


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    files: dict[str, FileEntry]
    models: list[dict[str, Any]]
    tables: list[str]
    config_digest: str

    def model(self, key: str, seed: int) -> dict[str, Any] | None:
        return next((m for m in self.models if m["model"] == key and int(m["seed"]) == seed), None)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "config_digest": self.config_digest,
                "files": [vars(self.files[p]) for p in sorted(self.files)],
                "models": self.models,
                "tables": self.tables,
            },
            indent=2,
            sort_keys=True,
        ) + "\n"


def check_member_path(path: str, where: str) -> None:
    """A bundle holds only model files (results/models/<model>/seed-<s>/<train output>) and tables
    (results/tables/<name>.csv): anything else, `..` included, is refused with one line."""
    model_file = _MODEL_FILE.match(path)
    ok = bool(model_file and model_file["name"] in TRAIN_OUTPUTS or _TABLE.match(path))
    parts = path.split("/")
    if not ok or any(p in ("", ".", "..") for p in parts) or "\\" in path or "\x00" in path:
        raise StemlabError(
            f"{where}: member {path!r} is not a model file ({MODELS_DIR}/<model>/seed-<s>/{{{','.join(TRAIN_OUTPUTS)}}}) "
            f"or a table ({TABLES_DIR}/<name>.csv); the bundle is damaged or was altered: {FIX}"
        )


def model_entry(model_dir: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """What a model's meta.json says it was trained with (the bulky per-item task identity left out)."""
    match = _MODEL_FILE.match(f"{model_dir}/meta.json")
    identity = meta.get("identity") or {}
    run = identity.get("run") or {}
    if not match or not run:
        raise StemlabError(f"{model_dir}/meta.json holds no run identity; re-run its train_model job")
    return {
        "model": match["model"],
        "seed": int(match["seed"]),
        "dir": model_dir,
        "identity_hash": meta.get("identity_hash"),
        "task": run.get("task"),
        "settings": run.get("settings"),
        "train": identity.get("train"),
        "code": run.get("code"),
        "inputs": run.get("inputs"),
    }


def parse_manifest(data: bytes, where: str) -> Manifest:
    """The manifest of bundle `where` from its bytes; a malformed one is a one-line error."""

    def bad(why: str) -> StemlabError:
        return StemlabError(f"{where}: {NAME} {why}; the bundle is damaged or was altered: {FIX}")

    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise bad(f"is not a {FORMAT} manifest")
    if raw.get("version") != VERSION:
        raise bad(f"has version {raw.get('version')!r}, this code reads version {VERSION}")
    files: dict[str, FileEntry] = {}
    for item in raw.get("files") or []:
        try:
            entry = FileEntry(path=str(item["path"]), size=int(item["size"]), sha256=str(item["sha256"]))
        except (KeyError, TypeError, ValueError):
            raise bad(f"has a file entry without path, size and sha256 ({item!r:.80})") from None
        check_member_path(entry.path, where)
        if not _SHA.match(entry.sha256) or entry.size < 0:
            raise bad(f"lists {entry.path} with an invalid size or sha256")
        if entry.path in files:
            raise bad(f"lists {entry.path} twice")
        files[entry.path] = entry
    if not files:
        raise bad("lists no files")
    models = raw.get("models") or []
    for model in models:
        if not isinstance(model, dict) or any(k not in model for k in ("model", "seed", "dir")):
            raise bad("has a model entry without model, seed and dir")
        missing = [f"{model['dir']}/{n}" for n in TRAIN_OUTPUTS if f"{model['dir']}/{n}" not in files]
        if missing:
            raise bad(f"names model {model['model']} seed {model['seed']} but not its file {missing[0]}")
    tables = [str(t) for t in raw.get("tables") or []]
    unlisted = [t for t in tables if t not in files]
    if unlisted:
        raise bad(f"names table {unlisted[0]} but not its file")
    return Manifest(files=files, models=list(models), tables=tables, config_digest=str(raw.get("config_digest", "")))


def job_differences(entry: Mapping[str, Any], job: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(config key, bundled value, this config's value) wherever a bundled model's training and this
    config's train job disagree: task, every settings key, and every loop key that shapes the weights
    (those the model's identity records; the loop seed follows from model and seed, CPU threads are
    train.cpu_threads)."""
    name = job["model"]
    bundled = {"task": entry.get("task"), **_flat(entry.get("settings") or {}, "settings.")}
    here = {"task": job.get("task"), **_flat(job.get("settings") or {}, "settings.")}
    loop = dict(job.get("loop") or {})
    for key, value in (entry.get("train") or {}).items():
        if key in loop:
            bundled[f"loop.{key}"], here[f"loop.{key}"] = value, loop[key]
    diffs = [(f"models.{name}.{k}", bundled.get(k, "<missing>"), here.get(k, "<missing>"))
             for k in sorted(set(bundled) | set(here)) if bundled.get(k, "<missing>") != here.get(k, "<missing>")]
    threads = (entry.get("train") or {}).get("cpu_threads")
    if threads is not None and threads != job.get("cpu_threads"):
        diffs.append(("train.cpu_threads", threads, job.get("cpu_threads")))
    return diffs


def _flat(section: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """A nested mapping as dotted keys (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, Mapping) and value:
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out
