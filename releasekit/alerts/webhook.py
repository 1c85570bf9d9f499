"""Delivering an alert document to a webhook: one POST of JSON, retried a few times.

An alert is a side message of a refresh or deploy: `send` never raises and never waits
long. Each attempt waits at most `timeout` seconds for each step of the exchange (connect,
the answer's status line and headers); connection errors, timeouts and 5xx answers are
retried after a short, doubling pause; a 4xx or a redirect is an answer to report, not to
retry. (Looking up the host's name is left to the system resolver and its own limits.)
The URL is a secret (Slack's carries its token in the path): errors and log lines
show it only through `redact`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPException, HTTPMessage
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from releasekit import __version__

log = logging.getLogger("releasekit.alerts")

_SCHEMES = ("http", "https")
_WHERE = "alerts.webhook in releasekit.yml, or RELEASEKIT_ALERT_WEBHOOK"
_HEADERS = {"Content-Type": "application/json", "User-Agent": f"releasekit/{__version__}"}
# Path segments after which webhook services put their secret (Slack /services/T/B/X,
# Discord /api/webhooks/ID/TOKEN, Mattermost /hooks/KEY).
_MARKERS = frozenset({"services", "hooks", "webhook", "webhooks"})
# A segment that looks like a token or an id: 8+ characters with a digit, or any 24+.
_TOKENISH = re.compile(r"(?=.*\d).{8,}|.{24,}")


@dataclass(frozen=True)
class Delivery:
    """How sending went."""

    sent: bool
    attempts: int
    status: int | None  # the HTTP status of the last attempt; None: no answer
    error: str  # "" when sent; else what went wrong, the URL redacted


def send(
    url: str, document: Mapping[str, Any], *, timeout: float = 5.0, retries: int = 2, backoff: float = 0.5
) -> Delivery:
    """POST `document` as JSON to `url`: at most 1 + `retries` attempts, with pauses of
    `backoff`, 2 x `backoff`, ... between them."""
    shown = redact(url)
    refused = _refusal(url, shown)
    if refused:
        return _failed(Delivery(False, 0, None, refused))
    try:
        body = json.dumps(dict(document), allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        return _failed(Delivery(False, 0, None, f"the alert for {shown} is not JSON: {exc}"))
    delivery = Delivery(False, 0, None, "")
    for attempt in range(1, max(retries, 0) + 2):
        if attempt > 1:
            time.sleep(backoff * 2 ** (attempt - 2))
        status, problem, again = _attempt(url, body, timeout)
        delivery = Delivery(not problem, attempt, status, _error(shown, problem, attempt).replace(url, shown))
        if delivery.sent:
            log.info("alert sent to %s (HTTP %s, attempt %d)", shown, status, attempt)
            return delivery
        log.warning("alert to %s, attempt %d: %s", shown, attempt, problem.replace(url, shown))
        if not again:
            break
    return _failed(delivery)


def redact(url: str) -> str:
    """`url` safe to print and log: user:password@, query values, the fragment and path
    segments that look like tokens (with every segment after them) become '***'."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "***"  # not a URL that can be taken apart: show none of it
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    path = "/".join(_segments(parts.path.split("/")))
    query = "&".join(_hide_value(item) for item in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, "***" if parts.fragment else ""))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib turns a redirected POST into a GET without the document, possibly to another
    # host: the redirect is reported instead (urllib then raises it as an HTTPError).
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def _attempt(url: str, body: bytes, timeout: float) -> tuple[int | None, str, bool]:
    """(status, problem, worth another attempt); problem "" when delivered."""
    request = urllib.request.Request(url, data=body, method="POST", headers=_HEADERS)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, "", False
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, _answer(exc.code, exc.reason), exc.code >= 500
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return None, f"no connection within {timeout:g} s", True
        return None, f"could not connect: {getattr(exc.reason, 'strerror', None) or exc.reason}", True
    except TimeoutError:
        return None, f"no answer within {timeout:g} s", True
    except (OSError, HTTPException) as exc:
        return None, f"the connection failed: {exc}", True
    except ValueError as exc:
        return None, f"not a URL urllib can send to: {exc}", False


def _answer(code: int, reason: str) -> str:
    if code >= 500:
        return f"the receiver failed: HTTP {code} {reason}"
    if 300 <= code < 400:
        return f"HTTP {code} {reason}, a redirect, not followed: set {_WHERE} to the URL it redirects to"
    return f"HTTP {code} {reason}, not retried: check {_WHERE} (the URL, its token)"


def _refusal(url: str, shown: str) -> str:
    if not url.strip():
        return f"no alert webhook URL: set {_WHERE}"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        return f"alert webhook {shown} is not a valid URL ({exc}): set {_WHERE} to an http(s) URL"
    if parts.scheme.lower() not in _SCHEMES:
        scheme = f"{parts.scheme}:// is not accepted" if parts.scheme else "names no scheme"
        return f"alert webhook {shown}: {scheme}: set {_WHERE} to an http:// or https:// URL"
    if not parts.hostname:
        return f"alert webhook {shown} names no host: set {_WHERE} to an http(s) URL with a host"
    return ""


def _error(shown: str, problem: str, attempts: int) -> str:
    if not problem:
        return ""
    after = f" (after {attempts} attempts)" if attempts > 1 else ""
    return f"alert webhook {shown}: {problem}{after}"


def _failed(delivery: Delivery) -> Delivery:
    log.warning("alert not sent: %s", delivery.error)
    return delivery


def _segments(segments: list[str]) -> Iterator[str]:
    hiding = False
    for segment in segments:
        secret = bool(segment) and (hiding or _TOKENISH.fullmatch(segment) is not None)
        yield "***" if secret else segment
        hiding = hiding or secret or segment.lower() in _MARKERS


def _hide_value(item: str) -> str:
    key, equals, _ = item.partition("=")
    return f"{key}=***" if equals else "***"
