"""Locks that every entry point shares: PostgreSQL advisory locks, held on a dedicated session.

Stir runs a tier from a deployment on any worker, from `stir serve`, or from `stir run` on a
laptop; each may talk to a different Prefect API (or a temporary one), so a lock that must hold
across all of them cannot live in Prefect. The serving PostgreSQL is the one server every run
talks to. An advisory lock belongs to the session that took it: when the process holding it
dies (crash, `kill -9`, a lost host) the server ends the session and the lock is free at once,
with no lease to expire.

Two kinds are used:

- `tier:<name>`: a tier never runs beside itself; a second run skips (`try_lock`).
- `sync:<schema>.<table>`: one sync, retry or rollback of a served table at a time; the next one
  waits (`wait_lock`).

The lock's session is named after its holder (`application_name`), so the one who finds a lock
taken can say who holds it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from stir.errors import connect_postgres

log = logging.getLogger("stir.locks")

# The key of a lock is a 64-bit hash of its name, computed by the server.
_KEY = "hashtextextended($1, 0)"


class LockBusy(Exception):
    """The lock is held by someone else (and we did not, or could no longer, wait)."""


async def _session(dsn: str, holder: str) -> asyncpg.Connection:
    """A session of its own for the lock; a refused connection names PostgreSQL and where."""
    return await connect_postgres(dsn, server_settings={"application_name": f"stir: {holder}"[:63]})


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await conn.close()
    except Exception:  # the server ends the session, and with it the lock, anyway
        log.debug("could not close a lock session", exc_info=True)


@dataclass(frozen=True)
class LockHolder:
    """The session holding a lock, as PostgreSQL knows it."""

    label: str  # the holder's own name for itself ("flow run core-... (id)"), or "another session"
    pid: int
    # When the lock was taken: a lock's session runs nothing after taking it, so the moment it
    # went idle; None where PostgreSQL hides it (a session of another role, without
    # pg_read_all_stats).
    since: datetime | None


async def lock_holder(conn: asyncpg.Connection, name: str) -> LockHolder | None:
    """Who holds the lock `name` now, and since when; None when nobody does."""
    row = await conn.fetchrow(
        "SELECT a.pid, a.application_name, "
        "CASE WHEN a.state = 'idle' THEN a.state_change ELSE a.backend_start END AS since "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted "
        f"AND ((l.classid::bigint << 32) | l.objid::bigint) = {_KEY} LIMIT 1",
        name,
    )
    if row is None:
        return None
    application = str(row["application_name"] or "")
    label = application.removeprefix("stir: ") if application else "another session"
    return LockHolder(label, int(row["pid"]), row["since"])


async def _holder_of(conn: asyncpg.Connection, name: str) -> str:
    """Who holds the lock `name`: the application name of the session, or 'another session'."""
    holder = await lock_holder(conn, name)
    return holder.label if holder else "another session"


async def _release(conn: asyncpg.Connection, name: str) -> None:
    try:
        await conn.execute(f"SELECT pg_advisory_unlock({_KEY})", name)
    except Exception:  # closing the session below frees it as well
        log.debug("could not unlock %s before closing its session", name, exc_info=True)
    finally:
        await _close(conn)


async def _acquire(conn: asyncpg.Connection, name: str, wait_seconds: float | None) -> None:
    """Take the lock on `conn`: at once, or waiting up to `wait_seconds` (None: no wait)."""
    if await conn.fetchval(f"SELECT pg_try_advisory_lock({_KEY})", name):
        return
    current = await _holder_of(conn, name)
    if wait_seconds is None:
        raise LockBusy(f"{name} is held by {current}")
    log.info("waiting up to %.0f s for %s (held by %s)", wait_seconds, name, current)
    await conn.execute(f"SET lock_timeout = '{int(wait_seconds * 1000)}ms'")
    try:
        await conn.execute(f"SELECT pg_advisory_lock({_KEY})", name)
    except asyncpg.LockNotAvailableError:
        raise LockBusy(f"{name} is still held by {current} after {wait_seconds:.0f} s") from None
    await conn.execute("RESET lock_timeout")


@asynccontextmanager
async def _locked(
    dsn: str, name: str, holder: str, wait_seconds: float | None
) -> AsyncIterator[None]:
    conn = await _session(dsn, holder)
    try:
        await _acquire(conn, name, wait_seconds)
    except BaseException:
        await _close(conn)
        raise
    try:
        yield
    finally:
        await _release(conn, name)


def try_lock(dsn: str, name: str, holder: str) -> AbstractAsyncContextManager[None]:
    """Hold the lock `name` for the body, or raise `LockBusy` at once naming who holds it."""
    return _locked(dsn, name, holder, wait_seconds=None)


def wait_lock(
    dsn: str, name: str, holder: str, timeout_seconds: float
) -> AbstractAsyncContextManager[None]:
    """Hold the lock `name` for the body, waiting up to `timeout_seconds` for it."""
    return _locked(dsn, name, holder, wait_seconds=timeout_seconds)


# How long a sync or rollback waits for another one of the same table to finish.
TABLE_LOCK_WAIT_SECONDS = 900.0


def process_label() -> str:
    """A lock holder's name outside a flow run: this process on this host."""
    return f"process {os.getpid()} on {socket.gethostname()}"


def table_lock(dsn: str, table_ref: str, holder: str) -> AbstractAsyncContextManager[None]:
    """One sync, retry or rollback of the served table `table_ref` at a time, whatever started
    it; the next one waits."""
    return wait_lock(dsn, f"sync:{table_ref}", holder, TABLE_LOCK_WAIT_SECONDS)


def tier_lock_name(tier: str) -> str:
    """The lock a run of `tier` holds for as long as it runs."""
    return f"tier:{tier}"


def tier_lock(dsn: str, tier: str, holder: str) -> AbstractAsyncContextManager[None]:
    """One run of `tier` at a time, whatever started it; raises `LockBusy` at once when another
    run holds it."""
    return try_lock(dsn, tier_lock_name(tier), holder)
