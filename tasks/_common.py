"""What the sync tasks share: settings, clients, and running a task in or outside a flow."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from prefect.context import FlowRunContext

from stir.clickhouse import ClickHouse
from stir.settings import Settings, get_settings

T = TypeVar("T")


def settings_or_default(settings: Settings | None) -> Settings:
    return settings if settings is not None else get_settings()


def clickhouse(settings: Settings) -> ClickHouse:
    """The ClickHouse client, told the S3 secret so that no error can show it."""
    return ClickHouse(
        settings.clickhouse, secrets=[settings.s3.secret_access_key.get_secret_value()]
    )


@contextlib.asynccontextmanager
async def postgres(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(settings.postgres.effective_dsn())
    try:
        yield conn
    finally:
        await conn.close()


async def run_step(step: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a Prefect task: as a task inside a flow run, as its plain function outside one.

    Outside a flow, calling a Prefect 3 task starts a temporary API server (seconds); tests and
    scripts get the plain coroutine instead, with identical behaviour.
    """
    if FlowRunContext.get() is not None:
        return await step(*args, **kwargs)
    fn: Callable[..., Awaitable[Any]] = step.fn
    return await fn(*args, **kwargs)
