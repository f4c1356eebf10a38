"""A W&B server stand-in on loopback (WANDB_BASE_URL=server.url) for `wandb.login(verify=True)`.

wandb authenticates with HTTP Basic auth ('api:<key>') on POST /graphql and asks for the viewer; this
answers the viewer for the one accepted key and 401 for any other. Everything else (wandb's own telemetry)
gets an empty 200. Requests are logged as (path, whether they carried the accepted key), and every key
presented is kept in `keys` (which job read which key).
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler

from support.http_server import Loopback

VIEWER = {
    "id": "VXNlcjox",
    "entity": "tester",
    "username": "tester",
    "email": "tester@example.com",
    "flags": "{}",
    "teams": {"edges": []},
    "defaultEntity": {"id": "RW50aXR5OjE=", "name": "tester"},
}


class WandbServer(Loopback):
    def __init__(self, accepted_key: str) -> None:
        self.accepted = "Basic " + base64.b64encode(f"api:{accepted_key}".encode()).decode()
        self.log: list[tuple[str, bool]] = []
        self.keys: set[str] = set()
        self.lock = threading.Lock()
        self._serve(_handler(self))


def _handler(server: WandbServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            authorization = self.headers.get("Authorization") or ""
            good = authorization == server.accepted
            with server.lock:
                server.log.append((self.path, good))
                if authorization.startswith("Basic "):
                    server.keys.add(base64.b64decode(authorization[6:]).decode(errors="replace").partition(":")[2])
            if self.path.startswith("/graphql"):
                if good:
                    return self._send(200, {"data": {"viewer": VIEWER}})
                return self._send(401, {"errors": [{"message": "user is not logged in"}]})
            return self._send(200, {})

        def _send(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
