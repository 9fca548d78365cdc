"""Config validation with one-line errors that name the offending key."""

from __future__ import annotations

import os
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

