"""Reading a generated canonical song directory's annotation (shared by validity, stats, export)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from stemlab.errors import StemlabError


def load_song(song_dir: str | os.PathLike[str]) -> dict:
    """song.json of `song_dir` as a dict; missing or broken files are one-line errors."""
    path = Path(song_dir) / "song.json"
    if not path.is_file():
        raise StemlabError(f"{path}: song.json not found; re-run the synth_shard rule for this shard or fix the manifest")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StemlabError(f"{path}: invalid JSON ({exc}); regenerate the shard") from exc


def time_signature_text(value: object) -> str:
    """[4, 4] (as song.json stores it) -> '4/4'; strings pass through."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[0]}/{value[1]}"
    return str(value or "")
