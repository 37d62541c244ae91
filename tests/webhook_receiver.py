"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread of the test.

It verifies each delivery's signature the way a receiver should (HMAC-SHA256 of the raw body
with the webhook's secret, compared in constant time), drops deliveries whose id it has already
processed, and behaves per path:

    /ok         200
    /flaky      500 the first time a delivery id arrives, 200 after that
    /hang       answers only after `hang_seconds` (or when the server stops)
    /close      closes the connection without answering
    /redirect   302 to /ok (which must never be reached through it)
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    delivery_id: str
    event: str
    body: bytes
    signature_ok: bool
    duplicate: bool
    content_type: str
    host: str = ""


@dataclass
class Receiver:
    secrets: dict[str, str] = field(default_factory=dict)  # path -> the webhook's secret
    hang_seconds: float = 30.0
    received: list[Received] = field(default_factory=list)
    processed: set[str] = field(default_factory=set)  # delivery ids acted on (not repeated)
    seen: Counter[str] = field(default_factory=Counter)  # arrivals per delivery id
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]


def start(receiver: Receiver) -> Receiver:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path
            delivery = self.headers.get("X-Inventory-Delivery", "")
            secret = receiver.secrets.get(path, "")
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            signature_ok = hmac.compare_digest(expected, self.headers.get("X-Inventory-Signature", ""))
            with receiver.lock:
                receiver.seen[delivery] += 1
                arrivals = receiver.seen[delivery]
                duplicate = delivery in receiver.processed
                receiver.received.append(Received(path, delivery, self.headers.get("X-Inventory-Event", ""),
                                                  body, signature_ok, duplicate,
                                                  self.headers.get("Content-Type", ""),
                                                  self.headers.get("Host", "")))
            if path == "/close":
                self.close_connection = True
                self.connection.close()
                return
            if path == "/hang":
                receiver.stop.wait(receiver.hang_seconds)
                self._answer(200, b"late")
                return
            if path == "/redirect":
                self.send_response(302)
                self.send_header("Location", receiver.url("/ok"))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not signature_ok:
                self._answer(401, b"bad signature")
                return
            if path == "/flaky" and arrivals == 1:
                self._answer(500, b"receiver down for a moment " + b"x" * 1000)
                return
            if duplicate:
                self._answer(200, b"already processed")  # a repeat: acknowledged, not acted on
                return
            with receiver.lock:
                receiver.processed.add(delivery)
            self._answer(200, b"ok")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.server = server
    threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
    return receiver


def shut(receiver: Receiver) -> None:
    receiver.stop.set()
    if receiver.server is not None:
        receiver.server.shutdown()
        receiver.server.server_close()
