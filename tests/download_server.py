"""A local HTTP file server for the download tests, with switches for the failures a download must survive."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # bytes of body sent before the connection is cut ...
    drop_times: int = 0  # ... for this many responses
    drop_path: str | None = None  # ... of this path only (None: any path)
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    wrong_bytes: bool = False  # flip the bytes of every body (a corrupt mirror)
    fail_status: int | None = None  # answer this status ...
    fail_times: int = 0  # ... this many times (-1: always)
    fail_from: int = 0  # ... starting with the request of this index (0: the first)
    requests: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        with state.lock:
            state.requests.append({"path": path, "range": self.headers.get("Range"), "if_range": self.headers.get("If-Range")})
            started = len(state.requests) - 1 >= state.fail_from
            fail = state.fail_status if state.fail_times != 0 and started else None
            if fail and state.fail_times > 0:
                state.fail_times -= 1
            drop_here = state.drop_path in (None, path)
            drop = state.drop_after if state.drop_times > 0 and drop_here else None
            if drop is not None:
                state.drop_times -= 1
        if fail:
            self._send_empty(fail)
            return
        if path not in state.files:
            self._send_empty(404)
            return
        body = state.files[path]
        if state.wrong_bytes:
            body = bytes(b ^ 0xFF for b in body)
        etag = state.etags.get(path, '"v1"')
        start = 0
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and not state.ignore_range and (if_range is None or if_range == etag):
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        payload = body[start:]
        if drop is not None:
            self.wfile.write(payload[:drop])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # cut mid-body: the client sees fewer bytes than announced
            return
        self.wfile.write(payload)

    def _send_empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class FileServer:
    """`with FileServer() as srv: srv.state.files['/a.zip'] = data; fetch(srv.url('/a.zip'), ...)`."""

    def __init__(self) -> None:
        self.state = ServerState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.state = self.state  # type: ignore[attr-defined]
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> "FileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
