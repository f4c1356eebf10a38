"""A loopback HTTP server for download tests (127.0.0.1, a free port, a thread).

Static files with HEAD, ETag, Range and If-Range, and the faults a downloader must survive: a connection
cut after N bytes, a server that ignores Range, an HTML page where a file should be. Routes answer
anything else (a fake API). Every request is logged as (method, path with query, Range header).
"""

import contextlib
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Loopback:
    """A threaded HTTP server on 127.0.0.1 (a free port) for the duration of a `with` block."""

    def _serve(self, handler) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Served:
    """One file: its bytes and how the server misbehaves with it."""

    body: bytes
    content_type: str = "application/zip"
    etag: str = '"v1"'
    cut_after: int | None = None  # announce the whole length, send this many bytes, drop the connection
    cuts: int = 1  # how many responses are cut (then it serves normally)
    ignore_range: bool = False
    rate: int | None = None  # bytes per second, to make a download slow enough to interrupt
    head_status: int | None = None  # answer HEAD with this status (signed CDN URLs refuse HEAD)


# A route gets (method, path, query, request headers, body) and returns (status, headers, body).
Route = Callable[[str, str, dict[str, str], dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


class LoopbackServer(Loopback):
    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.routes: dict[str, Route] = {}  # by path prefix
        self.log: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()
        self._serve(_handler(self))

    def add(self, path: str, body: bytes, **behaviour) -> str:
        self.files[path] = Served(body, **behaviour)
        return self.url + path

    def requests(self, method: str | None = None, path: str | None = None) -> list[tuple[str, str, str | None]]:
        with self.lock:
            return [e for e in self.log if (method is None or e[0] == method) and (path is None or e[1] == path)]


def _handler(server: LoopbackServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._answer("HEAD")

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def _answer(self, method: str) -> None:
            parts = urllib.parse.urlsplit(self.path)
            with server.lock:
                server.log.append((method, self.path, self.headers.get("Range")))
            served = server.files.get(parts.path)
            if served is not None:
                return self._file(method, served)
            for prefix, route in server.routes.items():
                if parts.path.startswith(prefix):
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                    query = dict(urllib.parse.parse_qsl(parts.query))
                    status, headers, payload = route(method, parts.path, query, dict(self.headers), body)
                    return self._send(method, status, headers, payload)
            return self._send(method, 404, {"Content-Type": "text/plain"}, b"not found")

        def _send(self, method: str, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

        def _file(self, method: str, served: Served) -> None:
            if method == "HEAD" and served.head_status is not None:
                return self._send(method, served.head_status, {}, b"")
            body, total = served.body, len(served.body)
            start = 0
            wanted = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if wanted and not served.ignore_range and (if_range is None or if_range == served.etag):
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                if start >= total:
                    return self._send(method, 416, {"Content-Range": f"bytes */{total}"}, b"")
            headers = {
                "Content-Type": served.content_type,
                "ETag": served.etag,
                "Accept-Ranges": "bytes",
                "Content-Length": str(total - start),
            }
            self.send_response(206 if start else 200)
            if start:
                headers["Content-Range"] = f"bytes {start}-{total - 1}/{total}"
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if method == "HEAD":
                return
            rest = body[start:]
            if served.cut_after is not None and served.cuts > 0 and method == "GET":
                served.cuts -= 1
                self.wfile.write(rest[: served.cut_after])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if served.rate is None:
                self.wfile.write(rest)
                return
            step = max(served.rate // 20, 1)
            with contextlib.suppress(OSError):  # the client may hang up: that is the point
                for at in range(0, len(rest), step):
                    self.wfile.write(rest[at : at + step])
                    self.wfile.flush()
                    time.sleep(0.05)

    return Handler
