from __future__ import annotations

import json
import logging
import socket

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from releasekit.alerts.payload import alert_schema, payload
from releasekit.alerts.webhook import redact, send
from tests.support.alert_events import held_event
from tests.support.webhook import Receiver

DOCUMENT = payload(held_event())


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_the_document_arrives_as_json_valid_against_the_schema(receiver: Receiver) -> None:
    delivery = send(receiver.url, DOCUMENT)
    assert (delivery.sent, delivery.attempts, delivery.status, delivery.error) == (True, 1, 200, "")
    (request,) = receiver.requests
    assert (request.method, request.path, request.content_type) == ("POST", "/hook", "application/json")
    received = json.loads(request.body)
    Draft202012Validator(alert_schema()).validate(received)
    assert received == DOCUMENT


def test_a_failing_receiver_is_tried_again(receiver: Receiver) -> None:
    receiver.answer(500, 200)
    delivery = send(receiver.url, DOCUMENT, backoff=0.01)
    assert (delivery.sent, delivery.attempts, delivery.status) == (True, 2, 200)
    assert len(receiver.requests) == 2


def test_a_receiver_that_keeps_failing_is_given_up_after_the_retries(receiver: Receiver) -> None:
    receiver.answer(503)
    delivery = send(receiver.url, DOCUMENT, retries=2, backoff=0.01)
    assert (delivery.sent, delivery.attempts, delivery.status) == (False, 3, 503)
    assert delivery.error == (
        f"alert webhook {receiver.url}: the receiver failed: HTTP 503 Service Unavailable (after 3 attempts)"
    )


def test_a_4xx_is_not_retried_and_names_the_setting_to_fix(receiver: Receiver) -> None:
    receiver.answer(404)
    delivery = send(receiver.url, DOCUMENT, backoff=0.01)
    assert (delivery.sent, delivery.attempts, delivery.status) == (False, 1, 404)
    assert "HTTP 404 Not Found, not retried" in delivery.error
    assert "RELEASEKIT_ALERT_WEBHOOK" in delivery.error
    assert len(receiver.requests) == 1


def test_a_redirect_is_reported_not_followed(receiver: Receiver) -> None:
    receiver.answer(302, location=receiver.url + "/elsewhere")
    delivery = send(receiver.url, DOCUMENT)
    assert (delivery.sent, delivery.attempts, delivery.status) == (False, 1, 302)
    assert "a redirect, not followed" in delivery.error
    assert [request.path for request in receiver.requests] == ["/hook"]


def test_a_receiver_slower_than_the_timeout_is_given_up(receiver: Receiver) -> None:
    receiver.answer(200, pause=60)
    delivery = send(receiver.url, DOCUMENT, timeout=0.2, retries=1, backoff=0)
    assert (delivery.sent, delivery.attempts, delivery.status) == (False, 2, None)
    assert "no answer within 0.2 s (after 2 attempts)" in delivery.error
    assert len(receiver.requests) == 2


def test_a_closed_port_fails_with_the_url_redacted_in_the_error_and_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://alice:s3cret@127.0.0.1:{closed_port()}/hook?token=abc"
    with caplog.at_level(logging.INFO, logger="releasekit.alerts"):
        delivery = send(url, DOCUMENT, retries=1, backoff=0)
    assert (delivery.sent, delivery.attempts, delivery.status) == (False, 2, None)
    assert redact(url) in delivery.error and "could not connect" in delivery.error
    assert caplog.records and all(record.name == "releasekit.alerts" for record in caplog.records)
    for secret in ("alice", "s3cret", "abc"):
        assert secret not in delivery.error and secret not in caplog.text


@pytest.mark.parametrize(
    "url",
    ["ftp://alice:s3cret@example.com/hook", "file:///etc/passwd", "example.com/hook", "", "http:///hook"],
)
def test_only_http_urls_with_a_host_are_accepted(url: str) -> None:
    delivery = send(url, DOCUMENT)
    assert (delivery.sent, delivery.attempts, delivery.status) == (False, 0, None)
    assert "set alerts.webhook in releasekit.yml, or RELEASEKIT_ALERT_WEBHOOK" in delivery.error
    assert "s3cret" not in delivery.error


def test_an_ftp_url_is_refused_by_its_scheme() -> None:
    delivery = send("ftp://example.com/hook", DOCUMENT)
    assert delivery.error.startswith("alert webhook ftp://example.com/hook: ftp:// is not accepted")


def test_a_document_that_is_not_json_is_not_sent(receiver: Receiver) -> None:
    delivery = send(receiver.url, {"observed": float("nan")})
    assert (delivery.sent, delivery.attempts) == (False, 0)
    assert "not JSON" in delivery.error and receiver.requests == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://alice:s3cret@example.com/hook", "https://***@example.com/hook"),
        ("https://tok3n@example.com:8443/x", "https://***@example.com:8443/x"),
        ("https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/services/***/***/***"),
        (
            "https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/abcdefghijklmnopqrstuvwx",
            "https://hooks.slack.com/services/***/***/***",
        ),
        (
            "https://example.com/alerts?token=abc&channel=data",
            "https://example.com/alerts?token=***&channel=***",
        ),
        ("https://example.com/v1/a1b2c3d4e5f6/notify", "https://example.com/v1/***/***"),
        ("https://example.com/v1/alerts#key", "https://example.com/v1/alerts#***"),
        ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
        ("http://[::1", "***"),
    ],
)
def test_redact_hides_credentials_tokens_and_query_values(url: str, shown: str) -> None:
    assert redact(url) == shown
