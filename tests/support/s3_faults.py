"""A real HTTP proxy in front of moto's S3 server that fails on demand, for the fault tests.

Point a client at `FaultProxy.url` (`endpoint_url=`, or AWS_ENDPOINT_URL_S3 for a child
process) and tell the proxy what to break: answer 500 or 503 to the requests whose method
and path match, a number of times or always, or drop the connection before the request
reaches the store or after the store has carried it out (its answer lost). Everything
else is forwarded byte for byte. `unreachable()` is an endpoint with nothing listening.

`atomic=True` forwards conditional writes (If-Match / If-None-Match) one at a time: moto
checks the condition and then writes without a lock, so two racing creates of one key can
both succeed there, which S3 never allows. The race tests need S3's guarantee, not moto's.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import unquote, urlsplit

Action = Literal["answer", "drop", "drop-after"]

# An S3 error document per status, as S3 words them (botocore reads the code from it).
ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade", "expect"}
)


@dataclass
class Rule:
    """Break requests whose method is `method` ("*": any) and whose unquoted path matches
    `pattern` (searched, so `ledger/dev/00000003\\.json` is enough). `times` None: always."""

    method: str
    pattern: re.Pattern[str]
    action: Action
    status: int = 503
    times: int | None = None
    hits: int = 0

    def takes(self, method: str, path: str) -> bool:
        if self.method not in ("*", method) or not self.pattern.search(path):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


class FaultProxy:
    """A threaded proxy to `upstream` (http://host:port) on a free loopback port."""

    def __init__(self, upstream: str, *, atomic: bool = False) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self._rules: list[Rule] = []
        self._guard = threading.Lock()
        self._writes = threading.Lock() if atomic else None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, status: int, method: str, pattern: str, *, times: int | None = None) -> Rule:
        """Answer `status` (500 or 503) instead of forwarding."""
        return self._add(Rule(method, re.compile(pattern), "answer", status, times))

    def drop(self, method: str, pattern: str, *, times: int | None = None, after: bool = False) -> Rule:
        """Close the connection without an answer; `after`: once the store has done it."""
        return self._add(Rule(method, re.compile(pattern), "drop-after" if after else "drop", 0, times))

    def heal(self) -> None:
        with self._guard:
            self._rules.clear()

    def requests(self, method: str, pattern: str) -> list[str]:
        """Paths of the requests seen so far with this method whose path matches."""
        with self._guard:
            return [path for m, path in self.seen if m == method and re.search(pattern, path)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # --- called by the handler threads ---------------------------------------------------

    def _add(self, rule: Rule) -> Rule:
        with self._guard:
            self._rules.append(rule)
        return rule

    def _rule_for(self, method: str, path: str) -> Rule | None:
        with self._guard:
            self.seen.append((method, path))
            return next((rule for rule in self._rules if rule.takes(method, path)), None)

    def _forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conditional = any(name.lower() in ("if-match", "if-none-match") for name in headers)
        serial = self._writes if conditional and method in ("PUT", "DELETE") else None
        with serial or nullcontext():
            connection = http.client.HTTPConnection(*self.upstream, timeout=60)
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            finally:
                connection.close()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects

        def do_any(self) -> None:
            body = self._body()
            path = unquote(urlsplit(self.path).path)
            rule = proxy._rule_for(self.command, path)
            if rule is not None and rule.action == "answer":
                self._send(rule.status, [], _error_document(rule.status, path))
                return
            if rule is not None and rule.action == "drop":
                self.close_connection = True
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body or "content-length" in {k.lower() for k in self.headers}:
                headers["Content-Length"] = str(len(body))
            status, answer_headers, answer = proxy._forward(self.command, self.path, headers, body)
            if rule is not None:  # drop-after: the store did it, the client never hears
                self.close_connection = True
                return
            self._send(status, answer_headers, answer)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_any

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response_only(status)
            names = {name.lower() for name, _ in headers}
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            if "date" not in names:  # the store's clock: releasekit reads lease ages by it
                self.send_header("Date", self.date_time_string())
            if "content-length" not in names and status not in (204, 304):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer carries the object's length, no body
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test's own assertions say what happened

    return Handler


def _error_document(status: int, path: str) -> bytes:
    code, message = ERRORS.get(status, ("InternalError", "Injected fault."))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>{path}</Resource>"
        "<RequestId>FAULTPROXY</RequestId></Error>"
    ).encode()


@contextmanager
def unreachable() -> Iterator[str]:
    """An endpoint on loopback where nothing listens: the port is bound (so nothing else
    takes it) but not listening, so every connection is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"
