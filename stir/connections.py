"""Connections to the servers Stir integrates with, opened from its settings.

Teardowns never raise: a connection that breaks while the work fails (the server went away)
would otherwise replace the work's error with the close's, and the alert would name the wrong
thing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from stir.clickhouse import ClickHouse
from stir.errors import connect_postgres
from stir.settings import Settings

T = TypeVar("T")
log = logging.getLogger("stir.connections")


def clickhouse(settings: Settings) -> ClickHouse:
    """The ClickHouse client, told the S3 secret (if any) so that no error can show it."""
    secret = settings.s3.secret_access_key
    return ClickHouse(settings.clickhouse, secrets=[secret.get_secret_value()] if secret else [])


@contextlib.asynccontextmanager
async def postgres(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the serving PostgreSQL, closed after the body.

    Failing to connect raises `ServiceUnavailable` naming the server (never the DSN's password).
    Closing never raises: a connection that breaks while the body fails (the server went away)
    would otherwise replace the body's error with the close's, and the alert would name it.
    """
    conn = await connect_postgres(settings.postgres.effective_dsn())
    try:
        yield conn
    finally:
        await close_quietly(lambda: conn.close(timeout=10), "PostgreSQL connection")


async def close_quietly(close: Callable[[], Awaitable[Any]], what: str) -> None:
    """Await `close()`; an error is logged, not raised: a teardown must never mask the error
    that is already propagating, and once the work is done a failed close changes nothing."""
    try:
        await close()
    except Exception as exc:
        _log_close_error(what, exc)


@contextlib.asynccontextmanager
async def quiet_teardown(
    resource: contextlib.AbstractAsyncContextManager[T], what: str
) -> AsyncIterator[T]:
    """`async with resource`, its exit's errors logged instead of raised (see `close_quietly`).

    Only for resources whose exit releases (clients, sessions), never for one that commits."""
    value = await resource.__aenter__()
    try:
        yield value
    except BaseException as exc:
        try:
            await resource.__aexit__(type(exc), exc, exc.__traceback__)
        except Exception as cleanup:
            _log_close_error(what, cleanup)
        raise
    try:
        await resource.__aexit__(None, None, None)
    except Exception as cleanup:
        _log_close_error(what, cleanup)


def _log_close_error(what: str, exc: BaseException) -> None:
    log.warning("could not close the %s (%s: %s)", what, type(exc).__name__, exc)
