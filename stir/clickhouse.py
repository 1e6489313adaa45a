"""The one place Stir's Python reaches ClickHouse: an async wrapper over clickhouse-driver.

Stir's own ClickHouse work (exports, checks, data generation) uses the native protocol, as a
self-hosted production ClickHouse on port 9000 is used; the embedded server speaks it too, so the
same code runs on a laptop, in tests and in production. dbt reaches ClickHouse on its own, over
HTTP, through dbt-clickhouse.

- Blocking driver calls run in worker threads, each on a connection of a small pool, so the event
  loop (Prefect's async tasks) never blocks and several statements can run at once.
- Values are always query parameters (`{name:Type}` placeholders, bound by the server), never
  formatted into the SQL text.
- Long statements report progress to the log; every statement has a time limit
  (`max_execution_time` on the server, a socket timeout on the client).
- Reads (`fetch`, `iter_rows`) are retried on connection errors; statements that change data are
  not, because a retry could apply them twice.
- Errors name the server and the statement; known secrets are masked in both. A server that
  cannot be reached is a `ClickHouseUnavailable` (both a `ClickHouseError` and the shared
  `stir.errors.ServiceUnavailable`), so alerts say which service is down, and where.
- Closing never raises: a disconnect that fails while an error propagates (a cancelled export's
  thread still using its connection) must not replace that error.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clickhouse_driver import Client
from clickhouse_driver import errors as driver_errors

from stir.errors import ServiceUnavailable, connection_failure_reason
from stir.settings import ClickHouseSettings

log = logging.getLogger("stir.clickhouse")

MASK = "******"
_ROWS_PER_HOP = 10_000
_CONNECTION_ERRORS = (
    driver_errors.NetworkError,
    driver_errors.SocketTimeoutError,
    EOFError,
    ConnectionError,
    OSError,
)
# Credentials that appear inside SQL text, e.g. s3('url', 'key id', 'secret', ...).
_S3_CREDENTIALS_RE = re.compile(
    r"(s3(?:Cluster)?\s*\(\s*'[^']*'\s*,\s*)'[^']*'\s*,\s*'[^']*'", re.I
)


class ClickHouseError(Exception):
    """A statement failed; the message names the server, the ClickHouse code and the statement."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


CLICKHOUSE_HINT = (
    "is it running? `stir stack status`; check STIR_CLICKHOUSE_HOST / STIR_CLICKHOUSE_NATIVE_PORT"
)


class ClickHouseUnavailable(ClickHouseError, ServiceUnavailable):
    """The server could not be reached, or dropped the connection; the message says which
    server, what happened, what to check, and the statement (secrets masked)."""

    def __init__(
        self, address: str, reason: str, *, cause_class: str = "", statement: str = ""
    ) -> None:
        ServiceUnavailable.__init__(
            self, "ClickHouse", address, reason, cause_class=cause_class, hint=CLICKHOUSE_HINT
        )
        self.code = None
        if statement:
            self.args = (f"{self.args[0]}\n  statement: {statement}",)


@dataclass(frozen=True)
class Progress:
    rows: int
    bytes: int
    total_rows: int
    elapsed: float


def _shorten(statement: str, limit: int = 300) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class ClickHouse:
    """An async ClickHouse client configured from `ClickHouseSettings`."""

    def __init__(
        self,
        settings: ClickHouseSettings,
        *,
        pool_size: int = 4,
        timeout_seconds: float = 600,
        connect_timeout: float = 10,
        read_retries: int = 3,
        progress_interval: float = 10,
        secrets: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        self.address = f"{settings.host}:{settings.native_port}"
        self.timeout_seconds = timeout_seconds
        self.read_retries = read_retries
        self.progress_interval = progress_interval
        self._connect_timeout = connect_timeout
        self._secrets = [s for s in (settings.password.get_secret_value(), *secrets) if s]
        self._idle: asyncio.Queue[Client] = asyncio.Queue()
        self._slots = asyncio.Semaphore(pool_size)
        self._clients: list[Client] = []

    # -- connections -------------------------------------------------------------------------

    def _new_client(self) -> Client:
        client = Client(
            host=self.settings.host,
            port=self.settings.native_port,
            user=self.settings.user,
            password=self.settings.password.get_secret_value(),
            database=self.settings.database,
            secure=self.settings.secure,
            connect_timeout=self._connect_timeout,
            send_receive_timeout=self.timeout_seconds,
            compression="lz4",
            client_name="stir",
            settings={"server_side_params": True},
        )
        self._clients.append(client)
        return client

    async def _borrow(self) -> Client:
        await self._slots.acquire()
        try:
            return self._idle.get_nowait()
        except asyncio.QueueEmpty:
            return self._new_client()

    def _give_back(self, client: Client, broken: bool) -> None:
        if broken:
            _disconnect_quietly(client, self.address)
        self._idle.put_nowait(client)
        self._slots.release()

    async def close(self) -> None:
        """Disconnect every client; never raises (see `_disconnect_quietly`)."""
        clients, self._clients = self._clients, []
        for client in clients:
            await asyncio.to_thread(_disconnect_quietly, client, self.address)

    async def __aenter__(self) -> ClickHouse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- errors ------------------------------------------------------------------------------

    def mask(self, text: str) -> str:
        """`text` with every known secret, and credentials inside s3(...) calls, masked."""
        text = _S3_CREDENTIALS_RE.sub(rf"\1'{MASK}', '{MASK}'", text)
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def _error(self, exc: BaseException, statement: str) -> ClickHouseError:
        if isinstance(exc, driver_errors.ServerException):
            detail = exc.message.split("Stack trace:")[0].strip()
            code: int | None = exc.code
            what = f"ClickHouse at {self.address} failed with code {exc.code}"
        else:
            return ClickHouseUnavailable(
                self.address,
                connection_failure_reason(exc),
                cause_class=type(exc).__name__,
                statement=self.mask(_shorten(statement)),
            )
        message = f"{what}: {detail}\n  statement: {_shorten(statement)}"
        return ClickHouseError(self.mask(message), code=code)

    # -- running statements --------------------------------------------------------------------

    def _query_settings(self, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        merged: dict[str, Any] = {"max_execution_time": int(self.timeout_seconds)}
        merged.update(settings or {})
        return merged

    def _run_with_progress(
        self, client: Client, statement: str, params: Mapping[str, Any] | None,
        settings: dict[str, Any], query_id: str | None,
    ) -> list[tuple]:  # fmt: skip
        """Run a statement, logging progress every `progress_interval` seconds while it runs."""
        started = last = time.monotonic()
        progress = client.execute_with_progress(
            statement, params=params, settings=settings, query_id=query_id
        )
        for rows, total_rows in progress:
            now = time.monotonic()
            if now - last >= self.progress_interval:
                last = now
                share = f" of {total_rows:,}" if total_rows else ""
                what = self.mask(_shorten(statement, 80))
                log.info(
                    "ClickHouse %s: %s rows%s read after %.0f s: %s",
                    self.address, f"{rows:,}", share, now - started, what,
                )  # fmt: skip
        return progress.get_result()

    async def _call(
        self,
        statement: str,
        params: Mapping[str, Any] | None,
        settings: Mapping[str, Any] | None,
        *,
        retry: bool,
        query_id: str | None = None,
    ) -> list[tuple]:
        attempts = self.read_retries + 1 if retry else 1
        for attempt in range(1, attempts + 1):
            client = await self._borrow()
            broken = False
            try:
                return await asyncio.to_thread(
                    self._run_with_progress, client, statement, params,
                    self._query_settings(settings), query_id,
                )  # fmt: skip
            except _CONNECTION_ERRORS as exc:
                broken = True
                if attempt == attempts:
                    raise self._error(exc, statement) from None
                log.warning(
                    "ClickHouse %s: connection lost (%s), retrying read %d/%d",
                    self.address, type(exc).__name__, attempt, self.read_retries,
                )  # fmt: skip
                await asyncio.sleep(min(0.2 * 2**attempt, 5))
            except driver_errors.Error as exc:
                raise self._error(exc, statement) from None
            finally:
                self._give_back(client, broken)
        raise AssertionError("unreachable")

    async def execute(
        self,
        statement: str,
        params: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
        query_id: str | None = None,
    ) -> list[tuple]:
        """Run a statement that may change data (DDL, INSERT ... SELECT); never retried."""
        return await self._call(statement, params, settings, retry=False, query_id=query_id)

    async def fetch(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> list[tuple]:
        """Rows of a read-only query; retried on connection errors."""
        return await self._call(query, params, settings, retry=True)

    async def fetch_value(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> Any:
        """The single value of a one-row, one-column query (None when there is no row)."""
        rows = await self.fetch(query, params, settings=settings)
        return rows[0][0] if rows else None

    async def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        *,
        database: str | None = None,
    ) -> int:
        """Insert Python rows through the native protocol's data blocks; returns the row count."""
        target = quote_identifier(table)
        if database:
            target = f"{quote_identifier(database)}.{target}"
        column_list = ", ".join(quote_identifier(c) for c in columns)
        statement = f"INSERT INTO {target} ({column_list}) VALUES"
        client = await self._borrow()
        broken = False
        try:
            return await asyncio.to_thread(client.execute, statement, list(rows))
        except _CONNECTION_ERRORS as exc:
            broken = True
            raise self._error(exc, statement) from None
        except driver_errors.Error as exc:
            raise self._error(exc, statement) from None
        finally:
            self._give_back(client, broken)

    async def iter_rows(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[tuple]:
        """Stream the rows of a large result block by block, without holding it in memory."""
        client = await self._borrow()
        broken = True  # a stream abandoned half-way leaves the connection unusable
        rows = client.execute_iter(query, params=params, settings=self._query_settings(settings))
        try:
            while True:
                # One thread hop per batch of rows, not per row.
                batch = await asyncio.to_thread(list, itertools.islice(rows, _ROWS_PER_HOP))
                if not batch:
                    broken = False
                    return
                for row in batch:
                    yield row
        except (driver_errors.Error, *_CONNECTION_ERRORS) as exc:
            raise self._error(exc, query) from None
        finally:
            self._give_back(client, broken)


def _disconnect_quietly(client: Client, address: str) -> None:
    """`client.disconnect()`, logging instead of raising.

    clickhouse-driver's disconnect raises when another thread is still using the connection
    (a cancelled `asyncio.to_thread` keeps running: `'NoneType' object has no attribute
    'close'`). It runs in teardowns, while the error that matters may be propagating."""
    try:
        client.disconnect()
    except Exception as exc:
        log.warning(
            "ClickHouse %s: could not disconnect cleanly (%s: %s)", address,
            type(exc).__name__, exc,
        )  # fmt: skip


def quote_identifier(name: str) -> str:
    """One ClickHouse identifier (a database, table or column name) in backquotes."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def split_type_arguments(text: str) -> list[str]:
    """The top-level comma-separated arguments of a ClickHouse type (`Map(String, Array(T))`,
    `Enum8('a, b' = 1)`), respecting parentheses and quoted strings."""
    args: list[str] = []
    depth, start, quote, i = 0, 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
        i += 1
    tail = text[start:].strip()
    if tail:
        args.append(tail)
    return args
