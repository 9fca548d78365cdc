"""Config validation with one-line errors that name the offending key."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from stemlab.errors import StemlabError


def _key_path(error: Any) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        # name the unexpected key itself, not only its parent
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        parts.append(extra[0] if extra else "?")
        return ".".join(parts) + " (unknown key)"
    return ".".join(parts) or "<top level>"


def config_errors(config: dict, schema_path: str | os.PathLike[str]) -> list[str]:
    """All schema violations of `config`, each as one line `key.path: problem`."""
    import jsonschema

    with open(schema_path, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        message = err.message.splitlines()[0]
        if len(message) > 160:
            message = message[:157] + "..."
        lines.append(f"{_key_path(err)}: {message}")
    return lines


def check_config(config: dict, schema_path: str | os.PathLike[str]) -> None:
    """Raise a one-line StemlabError for the first violation (and say how many more there are)."""
    errors = config_errors(config, schema_path)
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise StemlabError(f"invalid config: {errors[0]}{more}; see config/README.md for the allowed keys")



# --------------------------------------------------------------------------- schema defaults, merging

REPO_DIR = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_DIR / "workflow" / "schemas" / "config.schema.yaml"
PAPER_CONFIG = REPO_DIR / "config" / "config.yaml"


@lru_cache(maxsize=4)
def _schema(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_schema(path: str | os.PathLike[str] = SCHEMA_PATH) -> dict:
    """The config schema (a private copy: callers may not mutate the cached one)."""
    return copy.deepcopy(_schema(os.fspath(path)))


def _default_filling_validator(schema: dict):
    """A Draft 2020-12 validator that fills `default` values while it validates (as Snakemake's validate
    does), with each default deep-copied so that no two config entries share one object."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop and name not in instance:
                    instance[name] = copy.deepcopy(prop["default"])
        yield from validate_properties(validator, properties, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


def fill_defaults(config: Mapping[str, Any], schema_path: str | os.PathLike[str] = SCHEMA_PATH) -> dict:
    """A copy of `config` with every schema default filled in (what the workflow sees after validate)."""
    filled = copy.deepcopy(dict(config))
    errors = list(_default_filling_validator(_schema(os.fspath(schema_path))).iter_errors(filled))
    if errors:
        check_config(filled, schema_path)
    return filled


def _subschema(schema: dict, path: Sequence[str]) -> dict:
    """The schema of the config entry at `path` (following local $refs and merging sibling keywords)."""
    node = schema
    if path and path[0] == "$defs":  # a shared definition, e.g. ("$defs", "train_loop")
        node, path = schema["$defs"][path[1]], path[2:]
    for key in path:
        props, extra = _properties(schema, node)
        if key in props:
            node = props[key]
        elif isinstance(extra, dict):
            node = extra
        else:
            raise KeyError(f"no config key {'.'.join(path)} in the schema")
    return node


def _properties(schema: dict, node: dict) -> tuple[dict, Any]:
    """(properties, additionalProperties) of `node`, its own keywords winning over those of its $refs."""
    props: dict = {}
    extra: Any = None
    for part in reversed(_resolved(schema, node)):
        props.update(part.get("properties", {}))
        extra = part.get("additionalProperties", extra)
    return props, extra


def _resolved(schema: dict, node: dict) -> list[dict]:
    """`node` and the schemas its $ref chain points at (local refs only)."""
    parts = [node]
    while "$ref" in parts[-1]:
        ref = parts[-1]["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, not {ref}")
        target = schema
        for piece in ref[2:].split("/"):
            target = target[piece]
        parts.append(target)
    return parts


def schema_defaults(*path: str, schema_path: str | os.PathLike[str] = SCHEMA_PATH) -> dict:
    """The defaults of the config object at `path` (e.g. "models", "fxprocessor", "settings", "model"),
    nested objects filled too: what Python code uses when it is called without a config section."""
    schema = _schema(os.fspath(schema_path))
    wrapper = {**schema, "properties": {"value": _subschema(schema, path)}}
    holder: dict = {"value": {}}
    for _ in _default_filling_validator(wrapper).iter_errors(holder):
        pass
    return holder["value"]


def annotated_keys(*path: str, annotation: str, value: Any, schema_path: str | os.PathLike[str] = SCHEMA_PATH) -> frozenset[str]:
    """Keys of the config object at `path` whose schema carries `annotation: value` (e.g. x-identity: false)."""
    schema = _schema(os.fspath(schema_path))
    props, _ = _properties(schema, _subschema(schema, path) if path else schema)
    return frozenset(k for k, v in props.items() if v.get(annotation) == value)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict:
    """`override` merged into a copy of `base` key by key (nested mappings merged, anything else replaced),
    as Snakemake merges --configfile files over the Snakefile's configfile."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(*overlays: str | os.PathLike[str], base: str | os.PathLike[str] | None = PAPER_CONFIG) -> dict:
    """config/config.yaml with `overlays` merged over it and the schema defaults filled: the config a
    `snakemake --configfile OVERLAY ...` run works with."""
    config: dict = {}
    for path in ([base] if base else []) + list(overlays):
        with open(path, encoding="utf-8") as fh:
            config = deep_merge(config, yaml.safe_load(fh) or {})
    check_config(config, SCHEMA_PATH)
    return fill_defaults(config)


def settings_section(*path: str, section: Mapping[str, Any] | None) -> dict:
    """A model's config section at `path` (e.g. "models", "clap", "settings") over its schema defaults,
    nested objects merged; a key the schema does not list is refused in one line naming it."""
    values = deep_merge(schema_defaults(*path), section or {})
    props, extra = _properties(_schema(os.fspath(SCHEMA_PATH)), _subschema(_schema(os.fspath(SCHEMA_PATH)), path))
    if extra is not False:
        return values
    unknown = sorted(set(values) - set(props))
    if unknown:
        raise StemlabError(f"{'.'.join(path)}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(props))}")
    return values
