"""A webhook receiver on loopback for the alert tests: it records every request and answers
with the statuses it is given, in order (the last one repeats), optionally after a pause."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    content_type: str
    body: bytes


@dataclass
class Script:
    statuses: list[int] = field(default_factory=lambda: [200])
    pause: float = 0.0  # seconds to wait before answering
    location: str = ""  # the Location header of a redirect


class Receiver:
    """The server, on a free port of 127.0.0.1 from construction until `close`."""

    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[Request] = []
        self.closing = threading.Event()  # ends every pause at once on close
        self._guard = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def answer(self, *statuses: int, pause: float = 0.0, location: str = "") -> None:
        self.script = Script(list(statuses), pause, location)

    def record(self, request: Request) -> int:
        """Keeps `request`; the status to answer it with."""
        with self._guard:
            self.requests.append(request)
            statuses = self.script.statuses
            return statuses.pop(0) if len(statuses) > 1 else statuses[0]

    def close(self) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            content_type = self.headers.get("Content-Type") or ""
            status = receiver.record(Request("POST", self.path, content_type, body))
            if receiver.closing.wait(receiver.script.pause):
                return
            self.send_response(status)
            if receiver.script.location:
                self.send_header("Location", receiver.script.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass  # the tests read `requests`, not the server's log

    return Handler
