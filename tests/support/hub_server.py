"""A Hugging Face Hub stand-in on loopback for huggingface_hub itself (HF_ENDPOINT=server.url).

It serves one gated model repository the way the Hub does, with the headers huggingface_hub reads:
- GET  /api/whoami-v2: the token's owner, or 401.
- GET  /api/models/<repo>/revision/<rev>[?blobs=true]: sha, gated, siblings with size, blobId and lfs.sha256.
- HEAD/GET /<repo>/resolve/<rev>/<file>: X-Repo-Commit, ETag (the git blob sha1 of a small file, the
  sha256 of an LFS file, which also goes in X-Linked-Etag with X-Linked-Size), Content-Length,
  Accept-Ranges, and Range (206 with Content-Range).
Access: no token is a 401 with X-Error-Code GatedRepo; an unknown token a 401 'Invalid credentials in
Authorization header'; a known token not granted access a 403 GatedRepo; a granted one gets the files.
Faults: cut the connection after N bytes of a file (huggingface_hub resumes with Range in the same run),
refuse the next requests for a file with a 503, or send a file slowly (to kill the downloader mid-way).
Every request is logged as (method, path, Range header).
"""

import hashlib
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from support.http_server import Loopback

INVALID = "Invalid credentials in Authorization header"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class RepoFile:
    body: bytes
    lfs: bool
    cut_after: int | None = None  # bytes sent before the connection drops
    cuts: int = 0  # how many GETs are cut
    fail_gets: int = 0  # how many GETs (after the cuts) answer 503
    rate: int | None = None  # bytes per second
    sent: int = 0  # body bytes written by slow (rate-limited) responses

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else git_blob_sha1(self.body)


@dataclass
class HubServer(Loopback):
    repo_id: str = "facebook/sam3"
    commit: str = "a" * 40
    granted: set[str] = field(default_factory=set)  # tokens with access to the gated repo
    known: set[str] = field(default_factory=set)  # valid tokens without access
    files: dict[str, RepoFile] = field(default_factory=dict)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._serve(_handler(self))

    def add(self, name: str, body: bytes, lfs: bool = True) -> RepoFile:
        self.files[name] = RepoFile(body, lfs)
        return self.files[name]

    def requests(self, method: str | None = None, contains: str = "") -> list[tuple[str, str, str | None]]:
        with self.lock:
            return [e for e in self.log if (method is None or e[0] == method) and contains in e[1]]

    def downloads(self) -> list[tuple[str, str, str | None]]:
        """File GETs (not metadata)."""
        return self.requests("GET", "/resolve/")


def _handler(hub: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer("HEAD")

        def do_GET(self) -> None:
            self._answer("GET")

        def _answer(self, method: str) -> None:
            parts = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(parts.path)
            with hub.lock:
                hub.log.append((method, self.path, self.headers.get("Range")))
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
            if path == "/api/whoami-v2":
                if token in hub.granted | hub.known:
                    return self._json(200, {"type": "user", "name": "tester", "auth": {"type": "access_token"}})
                return self._error(401, None, INVALID)
            models = f"/api/models/{hub.repo_id}"
            if path == models or path.startswith(models + "/revision/"):
                if token is not None and token not in hub.granted | hub.known:
                    return self._error(401, None, INVALID)
                revision = path[len(models + "/revision/") :] if "/revision/" in path else "main"
                if revision not in ("main", hub.commit):
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return self._json(200, self._info("blobs=true" in parts.query.lower()))
            prefix = f"/{hub.repo_id}/resolve/"
            if path.startswith(prefix):
                revision, _, name = path[len(prefix) :].partition("/")
                return self._file(method, token, revision, name)
            return self._error(404, "RepoNotFound", "Repository not found")

        def _info(self, blobs: bool) -> dict:
            siblings = []
            for name, f in hub.files.items():
                entry = {"rfilename": name}
                if blobs:
                    entry.update(size=len(f.body), blobId=git_blob_sha1(f.body))
                    if f.lfs:
                        entry["lfs"] = {"sha256": f.sha256, "size": len(f.body), "pointerSize": 134}
                siblings.append(entry)
            return {
                "id": hub.repo_id,
                "modelId": hub.repo_id,
                "sha": hub.commit,
                "private": False,
                "gated": "manual",
                "disabled": False,
                "siblings": siblings,
            }

        def _file(self, method: str, token: str | None, revision: str, name: str) -> None:
            if token is None:
                message = (
                    f"Access to model {hub.repo_id} is restricted. You must have access to it and be authenticated."
                )
                return self._error(401, "GatedRepo", message)
            if token not in hub.granted | hub.known:
                return self._error(401, None, INVALID)
            if token not in hub.granted:
                message = f"Access to model {hub.repo_id} is restricted and you are not in the authorized list."
                return self._error(403, "GatedRepo", message)
            if revision not in ("main", hub.commit):
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            f = hub.files.get(name)
            if f is None:
                return self._error(404, "EntryNotFound", f"{name} does not exist")
            if method == "GET" and not f.cuts and f.fail_gets:
                f.fail_gets -= 1
                return self._error(503, None, "Service Unavailable")
            total, start = len(f.body), 0
            wanted = self.headers.get("Range")
            if wanted and method == "GET":
                start = int(wanted.removeprefix("bytes=").split("-")[0])
            headers = {
                "X-Repo-Commit": hub.commit,
                "ETag": f'"{f.etag}"',
                "Accept-Ranges": "bytes",
                "Content-Length": str(total - start),
                "Content-Type": "application/octet-stream",
            }
            if f.lfs:
                headers.update({"X-Linked-Etag": f'"{f.etag}"', "X-Linked-Size": str(total)})
            self.send_response(206 if start else 200)
            if start:
                headers["Content-Range"] = f"bytes {start}-{total - 1}/{total}"
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if method == "HEAD":
                return
            rest = f.body[start:]
            try:
                if f.cuts and f.cut_after is not None:
                    f.cuts -= 1
                    self.wfile.write(rest[: f.cut_after])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if f.rate is None:
                    self.wfile.write(rest)
                    return
                step = max(f.rate // 20, 1)
                for at in range(0, len(rest), step):
                    self.wfile.write(rest[at : at + step])
                    self.wfile.flush()
                    f.sent += len(rest[at : at + step])
                    time.sleep(0.05)
            except OSError:  # the client went away: that is what some tests do
                self.close_connection = True

        def _json(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 200:
                self.send_header("X-Repo-Commit", hub.commit)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str | None, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler
