"""stemlab.download.fetch against a local HTTP server: resume, Range-ignoring servers, checksums, retries."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from stemlab.download.fetch import fetch, part_path
from stemlab.errors import StemlabError
from tests.download_server import FileServer

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()
FAST = {"backoff": 0.0, "timeout": 5.0, "show_progress": False, "chunk_size": 8192}


@pytest.fixture
def server():
    with FileServer() as srv:
        srv.state.files["/corpus.zip"] = DATA
        yield srv


def _stale_part(dest, data: bytes, meta: dict) -> None:
    """A .part (and its sidecar) as an earlier, interrupted run leaves it."""
    part = part_path(dest)
    part.write_bytes(data)
    part.with_name(part.name + ".json").write_text(json.dumps(meta))


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_plain_download_is_verified_and_renamed(server, tmp_path):
    dest = tmp_path / "corpus.zip"
    assert fetch(server.url("/corpus.zip"), dest, SHA, **FAST) == SHA
    assert dest.read_bytes() == DATA
    assert _leftovers(tmp_path) == ["corpus.zip"]


def test_interrupted_transfer_resumes_with_range(server, tmp_path):
    server.state.drop_after, server.state.drop_times = 100_000, 2
    dest = tmp_path / "corpus.zip"
    fetch(server.url("/corpus.zip"), dest, SHA, retries=2, **FAST)
    assert dest.read_bytes() == DATA
    ranges = [r["range"] for r in server.state.requests]
    assert ranges == [None, "bytes=100000-", "bytes=200000-"]
    assert all(r["if_range"] == '"v1"' for r in server.state.requests[1:])
    assert _leftovers(tmp_path) == ["corpus.zip"]


def test_killed_run_leaves_part_that_next_run_resumes(server, tmp_path):
    """The first run's connection is cut and the server then goes down: the .part stays for the next run."""
    server.state.drop_after, server.state.drop_times = 120_000, 1
    server.state.fail_status, server.state.fail_times, server.state.fail_from = 503, -1, 1
    dest = tmp_path / "corpus.zip"
    with pytest.raises(StemlabError, match="is kept and the next run resumes it"):
        fetch(server.url("/corpus.zip"), dest, SHA, retries=1, **FAST)
    assert not dest.exists()
    assert part_path(dest).stat().st_size == 120_000
    server.state.fail_times = 0
    fetch(server.url("/corpus.zip"), dest, SHA, **FAST)
    assert dest.read_bytes() == DATA
    assert server.state.requests[-1]["range"] == "bytes=120000-"
    assert _leftovers(tmp_path) == ["corpus.zip"]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    dest = tmp_path / "corpus.zip"
    _stale_part(dest, DATA[:50_000], {"url": server.url("/corpus.zip"), "etag": '"v1"'})
    server.state.ignore_range = True
    fetch(server.url("/corpus.zip"), dest, SHA, **FAST)
    assert dest.read_bytes() == DATA
    assert server.state.requests[0]["range"] == "bytes=50000-"
    assert _leftovers(tmp_path) == ["corpus.zip"]


def test_changed_file_on_server_is_not_spliced(server, tmp_path):
    """If-Range with the old ETag: the server sends the whole new file instead of a range."""
    dest = tmp_path / "corpus.zip"
    _stale_part(dest, b"old version of the file" * 100, {"url": server.url("/corpus.zip"), "etag": '"v0"'})
    fetch(server.url("/corpus.zip"), dest, SHA, **FAST)
    assert dest.read_bytes() == DATA
    assert server.state.requests[0]["if_range"] == '"v0"'


def test_partial_file_from_another_url_is_discarded(server, tmp_path):
    dest = tmp_path / "corpus.zip"
    _stale_part(dest, b"x" * 1000, {"url": "http://elsewhere/a.zip"})
    fetch(server.url("/corpus.zip"), dest, SHA, **FAST)
    assert dest.read_bytes() == DATA
    assert server.state.requests[0]["range"] is None


def test_complete_part_is_verified_after_416(server, tmp_path):
    """Killed after the last byte but before the rename: the next run gets 416 and just verifies."""
    dest = tmp_path / "corpus.zip"
    _stale_part(dest, DATA, {"url": server.url("/corpus.zip"), "etag": '"v1"'})
    fetch(server.url("/corpus.zip"), dest, SHA, **FAST)
    assert dest.read_bytes() == DATA
    assert len(server.state.requests) == 1


def test_bad_splice_is_redownloaded_once_from_scratch(server, tmp_path):
    """A stale .part whose server validator still matches: the spliced file fails the hash, so one fresh try."""
    dest = tmp_path / "corpus.zip"
    _stale_part(dest, b"\0" * 1000, {"url": server.url("/corpus.zip"), "etag": '"v1"'})
    fetch(server.url("/corpus.zip"), dest, SHA, **FAST)
    assert dest.read_bytes() == DATA
    assert [r["range"] for r in server.state.requests] == ["bytes=1000-", None]


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.state.wrong_bytes = True
    dest = tmp_path / "corpus.zip"
    with pytest.raises(StemlabError) as err:
        fetch(server.url("/corpus.zip"), dest, SHA, key="data.corpora.musdb18hq", **FAST)
    message = str(err.value)
    actual = hashlib.sha256(bytes(b ^ 0xFF for b in DATA)).hexdigest()
    assert "\n" not in message
    assert "corpus.zip" in message and SHA in message and actual in message
    assert "data.corpora.musdb18hq.sha256" in message and "data.corpora.musdb18hq.url" in message
    assert _leftovers(tmp_path) == []


def test_retries_are_bounded(server, tmp_path):
    server.state.fail_status, server.state.fail_times = 503, -1
    dest = tmp_path / "corpus.zip"
    with pytest.raises(StemlabError) as err:
        fetch(server.url("/corpus.zip"), dest, SHA, retries=3, **FAST)
    assert len(server.state.requests) == 4  # the first try + 3 retries
    assert "after 4 attempts" in str(err.value)
    assert "nothing is kept" in str(err.value) and ".part" not in str(err.value)
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_gave_up_download_says_which_part_is_kept(server, tmp_path):
    server.state.drop_after, server.state.drop_times = 100_000, 1  # the first response is cut ...
    server.state.fail_status, server.state.fail_times, server.state.fail_from = 503, -1, 1  # ... then only 503s
    dest = tmp_path / "corpus.zip"
    with pytest.raises(StemlabError) as err:
        fetch(server.url("/corpus.zip"), dest, SHA, retries=1, **FAST)
    part = part_path(dest)
    assert part.is_file() and f"the partial file {part} ({part.stat().st_size} bytes) is kept" in str(err.value)


def test_transient_errors_are_retried(server, tmp_path):
    server.state.fail_status, server.state.fail_times = 503, 2
    dest = tmp_path / "corpus.zip"
    fetch(server.url("/corpus.zip"), dest, SHA, retries=2, **FAST)
    assert dest.read_bytes() == DATA
    assert len(server.state.requests) == 3


def test_not_found_fails_at_once_naming_the_key(server, tmp_path):
    with pytest.raises(StemlabError) as err:
        fetch(server.url("/missing.zip"), tmp_path / "m.zip", None, key="pretrained.clap", retries=5, **FAST)
    assert "HTTP 404" in str(err.value) and "pretrained.clap.url" in str(err.value)
    assert len(server.state.requests) == 1
    assert _leftovers(tmp_path) == []


def test_no_sha256_accepts_and_reports_hash(server, tmp_path, caplog):
    dest = tmp_path / "corpus.zip"
    with caplog.at_level("WARNING", logger="stemlab.download"):
        assert fetch(server.url("/corpus.zip"), dest, None, key="pretrained.x", **FAST) == SHA
    assert SHA in caplog.text and "pretrained.x.sha256" in caplog.text


def test_file_url_and_local_path(tmp_path):
    src = tmp_path / "src" / "font.sf2"
    src.parent.mkdir()
    src.write_bytes(DATA)
    out = tmp_path / "out"
    fetch(src.as_uri(), out / "a.sf2", SHA, **FAST)
    fetch(str(src), out / "b.sf2", SHA, **FAST)
    assert (out / "a.sf2").read_bytes() == DATA == (out / "b.sf2").read_bytes()
    with pytest.raises(StemlabError) as err:
        fetch(str(src), out / "c.sf2", "0" * 64, key="soundfonts[0]", **FAST)
    assert "soundfonts[0].sha256" in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["a.sf2", "b.sf2"]
    assert src.read_bytes() == DATA  # the source is never touched


def test_missing_local_source_names_the_key(tmp_path):
    with pytest.raises(StemlabError) as err:
        fetch(str(tmp_path / "nope.zip"), tmp_path / "out.zip", None, key="data.corpora.moisesdb", **FAST)
    assert "does not exist" in str(err.value) and "data.corpora.moisesdb.url" in str(err.value)
    with pytest.raises(StemlabError, match="unsupported URL scheme"):
        fetch("ftp://example.org/a.zip", tmp_path / "out.zip", None, **FAST)
