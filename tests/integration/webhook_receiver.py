"""A real HTTP receiver on loopback for webhook tests: records every POST, fails the first N (and,
optionally, a random share of the rest)."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(
        self,
        fail_first: int = 0,
        status_when_failing: int = 503,
        fail_share: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.fail_first = fail_first
        self.fail_share = fail_share
        self.rng = rng or random.Random(0)
        self.status_when_failing = status_when_failing
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time()
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(({**dict(self.headers.items()), "X-Arrived": repr(arrived)}, body))
                    failing = len(receiver.requests) <= receiver.fail_first or (
                        receiver.fail_share > 0 and receiver.rng.random() < receiver.fail_share
                    )
                self.send_response(receiver.status_when_failing if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/afm-hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.requests]
