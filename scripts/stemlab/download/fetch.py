"""Streamed, resumable, verified downloads.

The bytes go to `<dest>.part`; an interrupted transfer is continued with an HTTP Range request (guarded
by If-Range with the validator the server gave first, so a file that changed on the server restarts
instead of being spliced); a server that ignores Range restarts cleanly from byte 0. The finished file
is checked against its sha256 and only then renamed onto `dest`. A checksum mismatch removes the
download and raises one line naming the file, both hashes and the config key to fix.
`file://` URLs and plain local paths are copied the same way (no resume needed).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, url2pathname, urlopen


from stemlab import __version__
from stemlab.errors import StemlabError
from stemlab.logs import byte_progress

log = logging.getLogger("stemlab.download")

CHUNK = 1 << 20
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_ATTEMPTS = 100  # hard cap on attempts, even when each one makes progress


class _Transient(Exception):
    """A failure worth retrying (connection dropped, timeout, 5xx)."""


@dataclass
class _State:
    """What survives between attempts of one fetch: a hash of the first `hashed` bytes of the .part."""

    hasher: Any = field(default_factory=hashlib.sha256)
    hashed: int = 0
    received: int = 0  # bytes received by the current attempt
    resumed: bool = False  # some bytes came from a Range request (a mismatch then earns one fresh retry)


def sha256_file(path: str | os.PathLike[str], show_progress: bool = False, desc: str | None = None) -> str:
    h = hashlib.sha256()
    path = Path(path)
    with open(path, "rb") as fh, byte_progress(path.stat().st_size, desc or f"sha256 {path.name}", show_progress) as bar:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def part_path(dest: str | os.PathLike[str]) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _local_source(url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(url2pathname(parts.path))
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme and len(parts.scheme) > 1:  # 'c:' is a Windows drive, anything longer a scheme
        raise StemlabError(f"unsupported URL scheme {parts.scheme!r} in {url}: use http(s)://, file:// or a local path")
    return Path(url).expanduser()


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 1000); 'bytes */1000' -> (None, 1000); junk -> (None, None)."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    try:
        total_n = int(total) if total.strip() not in ("", "*") else None
        start = int(span.split("-")[0]) if span.strip() != "*" else None
    except ValueError:
        return None, None
    return start, total_n


def fetch(
    url: str,
    dest: str | os.PathLike[str],
    sha256: str | None = None,
    *,
    key: str = "the config",
    source_field: str = "url",
    retries: int = 5,
    backoff: float = 2.0,
    timeout: float = 60.0,
    chunk_size: int = CHUNK,
    show_progress: bool = True,
) -> str:
    """Download `url` (http(s)://, file:// or a local path) to `dest`; return its sha256.

    `key` is the config entry the source came from (e.g. data.corpora.musdb18hq): errors tell the user
    to fix `<key>.<source_field>` or `<key>.sha256`. `retries` bounds the consecutive attempts that
    receive no new byte; the wait between them doubles from `backoff` seconds (capped at 60 s).
    """
    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    if expected and dest.exists() and sha256_file(dest) == expected:
        log.info("%s already present with the expected sha256", dest)
        return expected
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    local = _local_source(url)

    fresh_retry_done = False
    while True:
        state = _State()
        if local is not None:
            _copy_local(local, part, state, key=key, source_field=source_field, show_progress=show_progress)
        else:
            _fetch_http(url, part, state, key=key, source_field=source_field, retries=retries, backoff=backoff,
                        timeout=timeout, chunk_size=chunk_size, show_progress=show_progress)
        actual = state.hasher.hexdigest()
        if expected is None or actual == expected:
            break
        part.unlink(missing_ok=True)
        _meta_path(part).unlink(missing_ok=True)
        if state.resumed and not fresh_retry_done:
            log.warning("sha256 mismatch after a resumed download of %s; downloading it again from the start", url)
            fresh_retry_done = True
            continue
        raise StemlabError(
            f"checksum mismatch for {dest.name} (from {url}): expected sha256 {expected}, got {actual}; "
            f"the download was removed: fix {key}.{source_field} or set {key}.sha256 to the right hash"
        )
    os.replace(part, dest)
    _meta_path(part).unlink(missing_ok=True)
    if expected is None:
        log.warning("%s has no sha256 configured; got %s (set %s.sha256 to this to pin it)", dest, actual, key)
    log.info("downloaded %s (%d bytes, sha256 %s)", dest, dest.stat().st_size, actual)
    return actual


def _copy_local(src: Path, part: Path, state: _State, *, key: str, source_field: str, show_progress: bool) -> None:
    if not src.is_file():
        what = "is not a file" if src.exists() else "does not exist"
        raise StemlabError(f"{src} {what}: fix {key}.{source_field}")
    try:
        with open(src, "rb") as fin, open(part, "wb") as fout, byte_progress(src.stat().st_size, src.name, show_progress) as bar:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
                state.hasher.update(chunk)
                bar.update(len(chunk))
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise StemlabError(f"cannot copy {src} to {part}: {exc.strerror or exc}; check {key}.{source_field} and free disk space") from exc


def _fetch_http(
    url: str,
    part: Path,
    state: _State,
    *,
    key: str,
    source_field: str,
    retries: int,
    backoff: float,
    timeout: float,
    chunk_size: int,
    show_progress: bool,
) -> None:
    failures = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        state.received = 0
        try:
            _attempt(url, part, state, key=key, source_field=source_field, timeout=timeout, chunk_size=chunk_size,
                     show_progress=show_progress)
            return
        except _Transient as exc:
            failures = 0 if state.received else failures + 1
            if failures > retries:
                raise StemlabError(
                    f"download of {url} failed after {attempt} attempts ({exc}); {_what_is_kept(part)}: check the "
                    f"network or {key}.{source_field}"
                ) from None
            wait = min(backoff * 2 ** max(failures - 1, 0), 60.0)
            log.warning("attempt %d for %s failed (%s); %s in %.1f s", attempt, url, exc,
                        "resuming" if part.exists() else "retrying", wait)
            time.sleep(wait)
    raise StemlabError(f"download of {url} did not finish in {MAX_ATTEMPTS} attempts; check the network or {key}.{source_field}")


def _what_is_kept(part: Path) -> str:
    """Say whether a .part is left for the next run to resume; an empty one (and its sidecar) is removed."""
    size = part.stat().st_size if part.exists() else 0
    if size:
        return f"the partial file {part} ({size} bytes) is kept and the next run resumes it"
    part.unlink(missing_ok=True)
    _meta_path(part).unlink(missing_ok=True)
    return "no bytes arrived, so nothing is kept"


def _read_meta(part: Path) -> dict:
    try:
        return json.loads(_meta_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _attempt(
    url: str, part: Path, state: _State, *, key: str, source_field: str, timeout: float, chunk_size: int,
    show_progress: bool,
) -> None:
    offset = part.stat().st_size if part.exists() else 0
    meta = _read_meta(part) if offset else {}
    if offset and meta.get("url") != url:
        log.info("discarding %s: it was started from another URL", part)
        part.unlink()
        offset = 0
    headers = {"User-Agent": f"stemlab/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validator = meta.get("etag") if str(meta.get("etag", "")).startswith('"') else meta.get("last_modified")
        if validator:
            headers["If-Range"] = validator
    try:
        resp = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            _, total = _parse_content_range(exc.headers.get("Content-Range"))
            if total == offset:  # the .part is already complete
                _hash_prefix(part, state, offset)
                return
            part.unlink(missing_ok=True)
            raise _Transient(f"server refused the range of a {offset}-byte partial file; restarting") from None
        if exc.code in RETRY_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise StemlabError(f"download of {url} failed: HTTP {exc.code} {exc.reason}; fix {key}.{source_field}") from None
    except (URLError, OSError, http.client.HTTPException) as exc:
        raise _Transient(str(getattr(exc, "reason", exc)) or type(exc).__name__) from None

    with resp:
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if offset and resp.status == 206:
            start, total = _parse_content_range(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Transient(f"server answered range {start} for a request from byte {offset}; restarting")
            _hash_prefix(part, state, offset)
            state.resumed = True
            mode = "ab"
            log.info("resuming %s at byte %d", url, offset)
        else:
            if offset:
                log.info("server ignored the Range request (HTTP %d); restarting %s from byte 0", resp.status, url)
            offset = 0
            state.hasher, state.hashed = hashlib.sha256(), 0
            total = length
            mode = "wb"
            _meta_path(part).write_text(
                json.dumps({"url": url, "etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified")}),
                encoding="utf-8",
            )
        if total is None and length is not None:
            total = offset + length
        with open(part, mode) as fh, byte_progress(total, Path(urlsplit(url).path).name or "download", show_progress, initial=offset) as bar:
            while True:
                try:
                    chunk = resp.read(chunk_size)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(f"connection lost after {offset + state.received} bytes: {exc or type(exc).__name__}") from None
                if not chunk:
                    break
                fh.write(chunk)
                state.hasher.update(chunk)
                state.hashed += len(chunk)
                state.received += len(chunk)
                bar.update(len(chunk))
    got = offset + state.received
    if total is not None and got != total:
        raise _Transient(f"connection closed after {got} of {total} bytes")


def _hash_prefix(part: Path, state: _State, offset: int) -> None:
    """Make state.hasher cover the first `offset` bytes of `part` (reusing it when it already does)."""
    if state.hashed == offset:
        return
    h = hashlib.sha256()
    with open(part, "rb") as fh:
        remaining = offset
        while remaining:
            chunk = fh.read(min(CHUNK, remaining))
            if not chunk:
                break
            h.update(chunk)
            remaining -= len(chunk)
    state.hasher, state.hashed = h, offset


def verify_file(src: str | os.PathLike[str], sha256: str | None, *, key: str, show_progress: bool = True) -> str:
    """Check a user's local file against its sha256 without copying it (a mismatch leaves the file alone)."""
    src = Path(src)
    actual = sha256_file(src, show_progress=show_progress)
    if sha256 and actual != sha256.lower():
        raise StemlabError(
            f"checksum mismatch for {src}: expected sha256 {sha256.lower()}, got {actual}; "
            f"replace the file or set {key}.sha256 to the right hash"
        )
    return actual


