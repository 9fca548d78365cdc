"""Where each downloadable thing comes from, read from the config: corpora, pretrained snapshots, soundfonts.

Parse-time safe (stdlib only): common.smk calls these to name rule inputs/outputs.

Config policy (documented in config/README.md):
- a corpus is taken from `path` (a local archive or an already extracted folder) when set, else from
  `url` (http(s):// or file://), else it cannot be obtained automatically and its rule fails with one
  line saying where to get it and which key to set;
- `sha256` is checked when given; when null the download is accepted and the log prints the hash it
  got, with the key to pin it.

Defaults: this module stays stdlib-only (it runs at parse time), so the defaults it applies to a config
that Snakemake has not filled (corpus_config, SPLIT_DEFAULTS) are kept here; tests/test_config_schema.py
checks that they equal the schema's.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from stemlab.errors import StemlabError

DOWNLOADS_DIR = "resources/downloads"
CORPORA_DIR = "resources/corpora"
PRETRAINED_DIR = "resources/pretrained"
SOUNDFONTS_DIR = "resources/soundfonts"
SKIP_TOP = frozenset({"__MACOSX"})  # macOS resource-fork junk: never part of a corpus


@dataclass(frozen=True)
class CorpusInfo:
    title: str
    obtain: str  # how a user gets it, for the manual-step message
    default_url: str | None = None
    default_sha256: str | None = None


CORPORA: dict[str, CorpusInfo] = {
    "moisesdb": CorpusInfo(
        title="MoisesDB",
        obtain="sign up at https://music.ai/research/ (MoisesDB) and download moisesdb.zip",
    ),
    "musdb18hq": CorpusInfo(
        title="MUSDB18-HQ",
        obtain="download musdb18hq.zip (22.7 GB) from https://zenodo.org/records/3338373",
        default_url="https://zenodo.org/records/3338373/files/musdb18hq.zip?download=1",
        # sha256 of the Zenodo file, as pinned by torchaudio's MUSDB_HQ dataset
        default_sha256="baac80d0483c61d74b2e5f3be75fa557eec52898339e6aa45c1fa48833c5d21d",
    ),
    "medleydb": CorpusInfo(
        title="MedleyDB 2.0",
        obtain="request access via https://medleydb.weebly.com (the audio is on Zenodo, access on request), "
        "download the audio archive (or unpack V1 and V2 into one folder)",
    ),
}

# MIDI corpora of the synthetic engine's composition sources (synth.sources), configured under
# synth.corpora.<corpus>; the same download_corpus / extract_corpus rules fetch them
SYNTH_CORPORA: dict[str, CorpusInfo] = {
    "groove": CorpusInfo(
        title="Groove MIDI Dataset",
        obtain="download groove-v1.0.0-midionly.zip from https://magenta.tensorflow.org/datasets/groove",
        default_url="https://storage.googleapis.com/magentadata/datasets/groove/groove-v1.0.0-midionly.zip",
    ),
    "lakh": CorpusInfo(
        title="Lakh MIDI Dataset",
        obtain="download lmd_full.tar.gz (or lmd_matched, clean_midi) from https://colinraffel.com/projects/lmd/",
        default_url="http://hog.ee.columbia.edu/craffel/lmd/lmd_full.tar.gz",
    ),
}
ALL_CORPORA: dict[str, CorpusInfo] = {**CORPORA, **SYNTH_CORPORA}


def corpus_key(name: str) -> str:
    """The config key of a corpus: data.corpora.<name>, or synth.corpora.<name> for a MIDI corpus."""
    return f"synth.corpora.{name}" if name in SYNTH_CORPORA else f"data.corpora.{name}"


# data.corpora.<corpus>.split defaults of the randomly split corpora (also read by stemlab.data.corpora)
SPLIT_DEFAULTS = {"seed": 42, "train": 0.8, "valid": 0.1}

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class Source:
    """One configured download: `key` is the config key that names it (for error messages)."""

    key: str
    path: str | None = None
    url: str | None = None
    sha256: str | None = None

    @property
    def kind(self) -> str:
        return "path" if self.path else "url" if self.url else "missing"


def check_sha256(value: Any, key: str) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if not _SHA256.match(text):
        raise StemlabError(f"{key}.sha256 is {value!r}, not a sha256 hex digest (64 hex digits); fix it or set null")
    return text


def corpus_config(config: dict, name: str) -> dict:
    """`data.corpora.<name>` (`synth.corpora.<name>` for a MIDI corpus) with defaults applied (works on a
    config that Snakemake has not filled)."""
    if name not in ALL_CORPORA:
        raise StemlabError(f"unknown corpus {name!r}: expected one of {', '.join(ALL_CORPORA)} (data.corpora, synth.corpora)")
    info = ALL_CORPORA[name]
    section = "synth" if name in SYNTH_CORPORA else "data"
    entry = dict(((config.get(section) or {}).get("corpora") or {}).get(name) or {})
    entry.setdefault("enabled", False)
    entry.setdefault("path", None)
    entry.setdefault("url", info.default_url)
    entry.setdefault("sha256", info.default_sha256)
    return entry


def corpus_source(config: dict, name: str) -> Source:
    entry = corpus_config(config, name)
    key = corpus_key(name)
    path = entry["path"] or None
    sha256 = check_sha256(entry["sha256"], key)
    if path and sha256 == ALL_CORPORA[name].default_sha256 and os.path.isdir(os.path.expanduser(path)):
        sha256 = None  # the default pins the default download, not a user's folder
    return Source(key=key, path=path, url=entry["url"] or None, sha256=sha256)


def enabled_corpora(config: dict) -> list[str]:
    return [name for name in CORPORA if corpus_config(config, name)["enabled"]]


def split_errors(config: dict) -> list[str]:
    """data.corpora.<c>.split entries whose train + valid fractions exceed 1, each as `key: problem` (values
    of the wrong type are left to the schema check)."""
    data = config.get("data")
    corpora = data.get("corpora") if isinstance(data, dict) else None
    if not isinstance(corpora, dict):
        return []
    errors = []
    for name, entry in corpora.items():
        split = entry.get("split") if isinstance(entry, dict) else None
        if not isinstance(split, dict):
            continue
        train, valid = split.get("train", SPLIT_DEFAULTS["train"]), split.get("valid", SPLIT_DEFAULTS["valid"])
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (train, valid)):
            continue
        if train + valid > 1 + 1e-9:
            errors.append(
                f"data.corpora.{name}.split: train {train} + valid {valid} = {train + valid:g} is more than 1 "
                "(test gets the rest); lower them"
            )
    return errors


def check_splits(config: dict) -> None:
    """Raise one line for the first split_errors entry (at parse time, before any job runs)."""
    errors = split_errors(config)
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise StemlabError(f"invalid config: {errors[0]}{more}; see config/README.md")


def manual_step_message(name: str) -> str:
    info = ALL_CORPORA[name]
    key = corpus_key(name)
    used = "is used by synth.sources" if name in SYNTH_CORPORA else f"is enabled ({key}.enabled)"
    return (
        f"corpus {info.title} {used} but has no source: {info.obtain}, then set {key}.path "
        f"to the archive or its extracted folder (or {key}.url and {key}.sha256)"
    )


def download_name(url: str, fallback: str) -> str:
    """File name for a download: the last segment of the URL path (query dropped), made filesystem-safe."""
    parts = urlsplit(url)
    segment = PurePosixPath(unquote(parts.path)).name if parts.scheme else PurePosixPath(url).name
    if segment in ("content", "download"):  # Zenodo API style .../files/<name>/content
        segment = PurePosixPath(unquote(parts.path)).parent.name
    name = _SAFE_NAME.sub("_", segment).strip("._")
    return name or fallback


def corpus_download_path(config: dict, name: str) -> str | None:
    """resources/downloads/<corpus>/<file> when the corpus comes from a URL, else None."""
    src = corpus_source(config, name)
    if src.kind != "url":
        return None
    return f"{DOWNLOADS_DIR}/{name}/{download_name(src.url, name + '.archive')}"


def walk_folder(src: Path, key: str) -> Iterator[tuple[Path, PurePosixPath, bool]]:
    """(path, path relative to `src`, is a folder) of everything under `src`, sorted, following folder links.

    SKIP_TOP folders at the top are left out. A folder link that leads back to a folder on its own path
    (a symlink loop) is refused with one line naming the link.
    """
    todo = [(src, PurePosixPath(), (os.path.realpath(src),))]
    while todo:
        folder, rel, chain = todo.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise StemlabError(f"{folder}: cannot list this folder ({exc.strerror}); fix its permissions or {key}.path") from None
        subfolders = []
        for entry in entries:
            if not rel.parts and entry.name in SKIP_TOP:
                continue
            path, entry_rel = Path(entry.path), rel / entry.name
            if not entry.is_dir():
                yield path, entry_rel, False
                continue
            real = os.path.realpath(path)
            if real in chain:
                raise StemlabError(
                    f"{path}: a folder link that loops back to {real}; remove the link or point {key}.path past it"
                )
            yield path, entry_rel, True
            subfolders.append((path, entry_rel, (*chain, real)))
        todo.extend(reversed(subfolders))


def folder_fingerprint(src: str | os.PathLike[str], key: str) -> str:
    """sha256 over the sorted (relative path, size, mtime) of a folder's files and its folders (cheap: stat only)."""
    h = hashlib.sha256()
    for path, rel, is_dir in walk_folder(Path(src), key):
        if is_dir:
            h.update(b"d\0" + os.fsencode(str(rel)) + b"\n")
            continue
        try:
            st = os.stat(path)
        except OSError:  # a dangling link: linked as it is
            st = os.lstat(path)
        h.update(b"f\0" + os.fsencode(str(rel)) + f"\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def corpus_fingerprint(config: dict, name: str) -> str:
    """What data.corpora.<name>.path holds, for a parse-time rule param: folder_fingerprint of a folder,
    size and mtime of a local archive, "" for any other source (a download is a rule input)."""
    src = corpus_source(config, name)
    path = Path(src.path).expanduser() if src.kind == "path" else None
    if path is not None and path.is_file():
        st = path.stat()
        return f"file {st.st_size} {st.st_mtime_ns}"
    if path is None or not path.is_dir():
        return ""
    try:
        return folder_fingerprint(path, src.key)
    except StemlabError as exc:  # extract_corpus fails on it with the same line; the DAG still builds
        return "unreadable: " + hashlib.sha256(str(exc).encode()).hexdigest()


@dataclass(frozen=True)
class PretrainedFile:
    """One file of a pretrained snapshot: where it goes inside resources/pretrained/<name>/ and its source."""

    path: str  # relative POSIX path inside the snapshot folder
    source: Source


def _snapshot_path(value: Any, key: str) -> str:
    """A relative path that stays inside the snapshot folder, else one line naming `key`."""
    text = str(value or "").replace("\\", "/")
    parts = PurePosixPath(text).parts
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text) or ".." in parts or "\x00" in text:
        raise StemlabError(f"{key} is {value!r}: give a relative path inside the snapshot folder (no '..', not absolute)")
    return PurePosixPath(*[p for p in parts if p != "."]).as_posix()


def pretrained_files(config: dict, name: str) -> list[PretrainedFile]:
    """The files of `pretrained.<name>` (a model-hub snapshot), each with URL and sha256."""
    entries = config.get("pretrained") or {}
    key = f"pretrained.{name}"
    if name not in entries:
        raise StemlabError(f"no pretrained download named {name!r} in the config: add {key}.files")
    files = (entries[name] or {}).get("files") or []
    if not files:
        raise StemlabError(f"{key}.files is empty: list each file of the snapshot with path, url and sha256")
    out, seen = [], set()
    for i, entry in enumerate(files):
        fkey = f"{key}.files[{i}]"
        path = _snapshot_path(entry.get("path"), f"{fkey}.path")
        if path in seen:
            raise StemlabError(f"{fkey}.path {path!r} is listed twice in {key}.files; remove one")
        seen.add(path)
        if not entry.get("url"):
            raise StemlabError(f"{fkey}.url is not set: set it to the file's URL (http(s)://, file:// or a path)")
        out.append(PretrainedFile(path, Source(key=fkey, url=entry["url"], sha256=check_sha256(entry.get("sha256"), fkey))))
    return out


def pretrained_dir(name: str) -> str:
    """resources/pretrained/<name>/: the snapshot as the models read it."""
    return f"{PRETRAINED_DIR}/{name}"


def pretrained_cache(name: str, path: str) -> str:
    """resources/downloads/pretrained/<name>/<path>: where a snapshot file's bytes arrive (resumable)."""
    return f"{DOWNLOADS_DIR}/pretrained/{name}/{path}"


def pretrained_names(config: dict) -> list[str]:
    return sorted(config.get("pretrained") or {})


def soundfont_source(config: dict, name: str) -> Source:
    for i, entry in enumerate(config.get("soundfonts") or []):
        if entry.get("name") == name:
            key = f"soundfonts[{i}]"
            if not entry.get("url"):
                raise StemlabError(f"{key}.url is not set for soundfont {name!r}: set it to the SF2's URL")
            return Source(key=key, url=entry["url"], sha256=check_sha256(entry.get("sha256"), key))
    raise StemlabError(f"no soundfont named {name!r} in the config: add {{name, url, sha256}} to soundfonts")


def soundfont_names(config: dict) -> list[str]:
    return [entry["name"] for entry in config.get("soundfonts") or []]


def soundfont_path(name: str) -> str:
    return f"{SOUNDFONTS_DIR}/{name}.sf2"
