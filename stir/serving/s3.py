"""S3, where each run's checkpoint lives, through aiobotocore: objects are streamed, never read
whole."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from stir.settings import S3Settings

CHUNK = 1 << 20

# One botocore session per thread (sessions are not thread-safe; clients made from one are
# cheap): a fresh session re-reads the S3 service model for every client, ~50 ms of CPU each,
# and a sync makes several clients per table.
_sessions = threading.local()


def _session() -> Any:
    if getattr(_sessions, "session", None) is None:
        _sessions.session = get_session()
    return _sessions.session


class CheckpointError(RuntimeError):
    """The S3 checkpoint of a run is missing or incomplete."""


@contextlib.asynccontextmanager
async def s3_client(settings: S3Settings) -> AsyncIterator[Any]:
    """A client with the configured keys; without keys, botocore's default credential chain
    (environment, shared files, the EC2 instance role)."""
    config = AioConfig(
        s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}
    )
    keys: dict[str, str] = {}
    if settings.access_key_id is not None and settings.secret_access_key is not None:
        keys = {
            "aws_access_key_id": settings.access_key_id.get_secret_value(),
            "aws_secret_access_key": settings.secret_access_key.get_secret_value(),
        }
    async with _session().create_client(
        "s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=config, **keys
    ) as client:
        yield client


def object_url(settings: S3Settings, key: str) -> str:
    """The path-style URL ClickHouse's s3() function writes to."""
    return f"{settings.endpoint_url.rstrip('/')}/{settings.bucket}/{key}"


async def head(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return await client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


async def get_json(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        response = await client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.NoSuchKey:
        return None
    async with response["Body"] as body:
        return json.loads(await body.read())


async def put_json(client: Any, bucket: str, key: str, value: dict[str, Any]) -> None:
    data = json.dumps(value, indent=1, sort_keys=True).encode()
    await client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/json")


async def stream(client: Any, bucket: str, key: str) -> AsyncIterator[bytes]:
    """The bytes of an object, chunk by chunk."""
    try:
        response = await client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.NoSuchKey:
        raise CheckpointError(f"s3://{bucket}/{key} is missing") from None
    async with response["Body"] as body:
        async for chunk in body.iter_chunks(CHUNK):
            yield chunk


async def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


async def delete_keys(client: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[start : start + 1000]]
        await client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
