"""State objects in an S3 bucket (or an S3-compatible store: MinIO, R2, moto). The only
module that imports boto3.

Credentials come from the standard AWS chain (environment, shared config and its
profiles, instance or web-identity roles); releasekit never reads, prints or stores them.
Transient faults (5xx, throttling, dropped connections) are retried by botocore's
standard mode a bounded number of times; what is still failing then becomes a
`StateError` naming the bucket, the key and the operation.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn

import boto3  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

from releasekit.config.secrets import redact_urls
from releasekit.errors import StateError
from releasekit.state.objects import Stored

URL_PATTERN = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")
ATTEMPTS = 4  # botocore's standard mode: the first try and 3 retries with jittered backoff
_LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_ACCESS_HINT = (
    "give these credentials s3:ListBucket on the bucket and s3:GetObject, s3:PutObject and "
    "s3:DeleteObject on the prefix (README: Shared state on S3)"
)


def split_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of an `s3://bucket/prefix` URL; the prefix without edge slashes."""
    match = URL_PATTERN.match(url)
    if match is None:
        raise StateError(
            f"{url!r} is not an S3 state URL",
            hint="write it as s3://bucket or s3://bucket/prefix (bucket names: lowercase letters, "
            "digits, dots and hyphens)",
        )
    return match["bucket"], (match["prefix"] or "").strip("/")


class S3Objects:
    """`ObjectStore` over one prefix of one bucket. Thread-safe (reads run in parallel)."""

    def __init__(
        self,
        url: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
    ) -> None:
        self.bucket, self.prefix = split_url(url)
        self.endpoint_url = endpoint_url
        self._clock_offset = timedelta(0)
        self._clock_lock = threading.Lock()
        try:
            session = boto3.Session(profile_name=profile, region_name=region)
            self._client = session.client(
                "s3",
                endpoint_url=endpoint_url,
                config=Config(
                    retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
                    connect_timeout=5,
                    read_timeout=30,
                    max_pool_connections=16,
                ),
            )
        except botocore.exceptions.ProfileNotFound:
            raise StateError(
                f"the AWS profile {profile!r} named for {self.describe()} is not configured",
                hint="add it to ~/.aws/config, or fix `state.profile` in releasekit.yml",
            ) from None
        except (botocore.exceptions.BotoCoreError, ValueError) as exc:
            raise StateError(
                f"could not set up S3 access for {self.describe()}: {type(exc).__name__}",
                hint="check state.region and state.endpoint_url in releasekit.yml",
            ) from None

    def describe(self, key: str = "") -> str:
        return (
            f"s3://{self.bucket}/{self._key(key)}".rstrip("/")
            if key or self.prefix
            else f"s3://{self.bucket}"
        )

    def get(self, key: str) -> Stored | None:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            data = answer["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in _MISSING:
                self._saw(exc.response)
                return None
            self._fail(exc, "GetObject", key)
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            self._fail(exc, "GetObject", key)
        self._saw(answer)
        return Stored(data=data, etag=answer["ETag"], modified=answer["LastModified"])

    def exists(self, key: str) -> bool:
        try:
            answer = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            self._fail(exc, "HeadObject", key)
        except botocore.exceptions.BotoCoreError as exc:
            self._fail(exc, "HeadObject", key)
        self._saw(answer)
        return True

    def create(self, key: str, data: bytes) -> str | None:
        return self._put(key, data, {"IfNoneMatch": "*"})

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        return self._put(key, data, {"IfMatch": etag})

    def delete(self, key: str, etag: str | None = None) -> bool:
        condition = {} if etag is None else {"IfMatch": etag}
        try:
            answer = self._client.delete_object(Bucket=self.bucket, Key=self._key(key), **condition)
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            if code in _MISSING:
                return True
            if code in _LOST_RACE:
                return False
            self._fail(exc, "DeleteObject", key)
        except botocore.exceptions.BotoCoreError as exc:
            self._fail(exc, "DeleteObject", key)
        self._saw(answer)
        return True

    def keys(self, prefix: str) -> list[str]:
        full = self._key(prefix)
        cut = len(self._key(""))
        found: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            ):
                self._saw(page)
                found.extend(item["Key"][cut:] for item in page.get("Contents", ()))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self._fail(exc, "ListObjectsV2", prefix)
        return sorted(found)

    def now(self) -> datetime:
        with self._clock_lock:
            return datetime.now(UTC) + self._clock_offset

    # --- internals ---------------------------------------------------------------------

    def _put(self, key: str, data: bytes, condition: Mapping[str, str]) -> str | None:
        try:
            answer = self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ContentType="application/json" if data[:1] == b"{" else "application/octet-stream",
                **condition,
            )
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in _LOST_RACE or ("IfMatch" in condition and _code(exc) in _MISSING):
                self._saw(exc.response)
                return None
            self._fail(exc, "PutObject", key)
        except botocore.exceptions.BotoCoreError as exc:
            self._fail(exc, "PutObject", key)
        self._saw(answer)
        return str(answer["ETag"])

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _saw(self, answer: Mapping[str, Any]) -> None:
        """Keep the store's clock from the answer's Date header (second resolution)."""
        date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if not date:
            return
        try:
            server = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        with self._clock_lock:
            self._clock_offset = server - datetime.now(UTC)

    def _fail(self, exc: Exception, operation: str, key: str) -> NoReturn:
        where = self.describe(key)
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _code(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = exc.response.get("Error", {}).get("Message") or ""
            text = f"S3 {operation} of {where} failed: {status} {code}" + (f" ({message})" if message else "")
            raise StateError(text, hint=_hint_for(code, status, self.bucket)) from None
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            raise StateError(
                f"S3 {operation} of {where}: no AWS credentials found",
                hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where an "
                "instance or CI role provides them",
            ) from None
        if isinstance(
            exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError
        ):
            # The endpoint botocore resolved: state.endpoint_url, AWS_ENDPOINT_URL_S3 or AWS's own.
            raise StateError(
                f"S3 {operation} of {where}: could not reach {redact_urls(self._client.meta.endpoint_url)} "
                f"(tried {ATTEMPTS} times)",
                hint="check the network and state.endpoint_url; nothing was written",
            ) from None
        raise StateError(
            f"S3 {operation} of {where} failed after {ATTEMPTS} attempts: {type(exc).__name__}",
            hint="the store did not answer in time; rerun when it is reachable",
        ) from None


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _hint_for(code: str, status: object, bucket: str) -> str:
    if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}:
        return _ACCESS_HINT
    if code == "NoSuchBucket":
        return f"create the bucket {bucket!r}, or fix `state:` in releasekit.yml"
    if isinstance(status, int) and status >= 500:
        return f"the store kept failing (tried {ATTEMPTS} times); rerun when it is healthy"
    return "check `state:` in releasekit.yml and the bucket's settings"
