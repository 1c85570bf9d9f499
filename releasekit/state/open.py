"""Open the state store a project's config names: the local folder, or a shared bucket."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from releasekit.config.model import StateLocation
from releasekit.state.base import StateStore
from releasekit.state.local import LocalStore


def open_store(location: StateLocation, local_path: Path) -> StateStore:
    """`location.url`'s bucket, else the folder `local_path`. boto3 is imported only here,
    and only for a bucket: it costs a local run a sixth of a second."""
    if location.url is None:
        return LocalStore(local_path)
    from releasekit.state.remote import ObjectStateStore
    from releasekit.state.s3 import S3Objects

    objects = S3Objects(
        location.url, region=location.region, endpoint_url=location.endpoint_url, profile=location.profile
    )
    return ObjectStateStore(objects, lock_ttl=float(location.lock_ttl_seconds))


def open_store_at(where: str, location: StateLocation, base: Path) -> StateStore:
    """The store at `where`: an `s3://` URL (with `location`'s region, endpoint and
    profile), else a folder, relative to `base`."""
    if where.startswith("s3://"):
        return open_store(dataclasses.replace(location, url=where), base)
    return LocalStore((base / where).resolve())
