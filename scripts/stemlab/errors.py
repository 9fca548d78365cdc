"""One error type for bad input, reported as one line naming the file and the fix."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence

_BREAK = re.compile(r"\s*[^\S ]\s*")  # a run of whitespace holding a line break or tab


class StemlabError(Exception):
    """A user-facing error; its message is one line: what is wrong, where, and what to do.

    Line breaks and tabs (with the spaces around them) become one space; runs of plain spaces are kept,
    so a path with two spaces in a row is named as it is.
    """

    def __init__(self, message: str) -> None:
        super().__init__(_BREAK.sub(" ", message).strip())


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a CLI entry point; a StemlabError becomes `error: <message>` on stderr and exit code 1."""
    from stemlab.faults import check_memory_fault  # test-only switch, see stemlab/faults.py

    try:
        check_memory_fault()
        return int(main(argv) or 0)
    except StemlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def json_object_arg(text: str, flag: str, hint: str = "pass the config section as JSON") -> dict:
    """A CLI flag holding one config section as a JSON object (how rules hand sections to stemlab CLIs)."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StemlabError(f"{flag} is not valid JSON ({exc.msg}); {hint}") from exc
    if not isinstance(value, dict):
        raise StemlabError(f"{flag} must be a JSON object; {hint}")
    return value


def json_config_arg(text: str | None, flag: str = "--config", hint: str = "pass the config section as JSON") -> dict:
    """A `--config` value: an inline JSON object (what the rules pass, one shell word) or the path of a
    JSON file holding one; None or "" is an empty section (every value from its defaults)."""
    import json
    import os
    from pathlib import Path

    if text is None or not text.strip():
        return {}
    if text.lstrip()[:1] in ("{", "["):
        return json_object_arg(text, flag, hint)
    path = Path(text)
    if not path.is_file():
        raise StemlabError(f"{flag}: {path} is neither inline JSON nor an existing file; {hint}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
        raise StemlabError(f"{flag}: {os.fspath(path)} is not valid JSON ({reason}); {hint}") from exc
    if not isinstance(value, dict):
        raise StemlabError(f"{flag}: {os.fspath(path)} must hold a JSON object; {hint}")
    return value


def check_section_keys(section: object, known: Sequence[str] | frozenset[str], key: str) -> dict:
    """`section` as a dict, once it is a mapping whose keys are all in `known` (the `from_config`
    constructors: a key they do not read is an error, not silently ignored); `key` names the section."""
    from collections.abc import Mapping

    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise StemlabError(f"{key} must be a mapping, not {type(section).__name__}; fix the config")
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise StemlabError(f"{key}.{unknown[0]}: unknown key; {key} takes {', '.join(sorted(known))}")
    return dict(section)
