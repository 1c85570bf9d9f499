"""S3 for the tests: moto's server mode on loopback, spoken to over real HTTP, one fresh
bucket per test. Fake credentials only; the AWS chain reads them from the environment,
which child processes (the CLI, racing workers) inherit."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped]
from moto.server import ThreadedMotoServer

from releasekit.state.remote import ObjectStateStore
from releasekit.state.s3 import S3Objects

REGION = "us-east-1"
# Recognisable, so a test can prove they never reach output, logs, ledger or errors.
ACCESS_KEY_ID = "AKIARKTESTKEY7QX4ZPL"
SECRET_ACCESS_KEY = "rk-secret-Zq8vW3nB6tY1uJ4kM7pL0xC5"
SESSION_TOKEN = "rk-session-token-H2gF9dS4aQ7wE1rT6yU3iO8p"


def aws_environment(endpoint: str) -> dict[str, str]:
    """What a process needs to reach the moto server, and nothing from the developer's AWS."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def start_server() -> tuple[ThreadedMotoServer, str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket on the moto server, and how to reach it."""

    endpoint: str
    name: str
    prefix: str = "team/state"

    @property
    def url(self) -> str:
        return f"s3://{self.name}/{self.prefix}"

    @property
    def environ(self) -> Mapping[str, str]:
        return aws_environment(self.endpoint)

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def objects(self, *, endpoint: str | None = None) -> S3Objects:
        return S3Objects(self.url, region=REGION, endpoint_url=endpoint or self.endpoint)

    def store(self, *, lock_ttl: float = 60.0, endpoint: str | None = None) -> ObjectStateStore:
        return ObjectStateStore(self.objects(endpoint=endpoint), lock_ttl=lock_ttl)

    def keys(self) -> list[str]:
        """Every key in the bucket, under the prefix or not."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def read(self, key: str) -> bytes:
        return bytes(self.client().get_object(Bucket=self.name, Key=f"{self.prefix}/{key}")["Body"].read())

    def write(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.name, Key=f"{self.prefix}/{key}", Body=data)


def new_bucket(endpoint: str) -> Bucket:
    bucket = Bucket(endpoint=endpoint, name=f"rk-{uuid.uuid4().hex[:16]}")
    bucket.client().create_bucket(Bucket=bucket.name)
    return bucket
