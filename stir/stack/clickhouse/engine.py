"""The chDB sessions of the embedded ClickHouse server, shared by the protocol front ends.

A session's calls block, so all of an engine's work runs on one dedicated worker thread and a
request holds `Engine.lock` for its whole life (including the time its result streams out). The
server keeps a second engine (a second session on the same data) only for the queries other
ClickHouse servers send it as a shard; chDB runs sessions side by side. Per-request state that a
real server keeps per query — the current database and settings — is applied before the
statement and reset after it, so one client's settings never leak into another's query.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import chdb.session

from stir.clickhouse import quote_identifier

_CODE_RE = re.compile(r"Code: (\d+)\. ")
_STREAM_PREFIX_RE = re.compile(r"^(Streaming query failed|Streaming insert \w+ failed): ")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")


class EngineError(Exception):
    """An error raised by the ClickHouse engine, with ClickHouse's own code and message."""

    def __init__(self, message: str, code: int | None = None) -> None:
        message = _STREAM_PREFIX_RE.sub("", message.strip())
        if code is None:
            match = _CODE_RE.search(message)
            code = int(match.group(1)) if match else 1000  # 1000 = POCO_EXCEPTION / unknown
        if not message.startswith("Code: "):
            message = f"Code: {code}. DB::Exception: {message}"
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class QueryResult:
    """A fully materialised result and the statistics a server reports in its summary."""

    data: bytes
    rows_read: int = 0
    bytes_read: int = 0
    rows_written: int = 0
    bytes_written: int = 0
    elapsed: float = 0.0
    result_rows: int = 0


@dataclass
class StatementContext:
    """What a client chose for one statement: database, settings and query parameters."""

    database: str = "default"
    settings: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)


def string_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def file_function(path: str, fmt: str) -> str:
    """`file(path, format)`: the table function that reads a spooled insert."""
    return f"file({string_literal(path)}, {string_literal(fmt)})"


def setting_literal(value: str) -> str:
    """A SET value: numbers as they are, everything else as a quoted string literal."""
    return value if _NUMBER_RE.match(value) else string_literal(value)


def write_engine_config(directory: Path, tcp_port: int, extra: Path | None = None) -> Path:
    """Write the ClickHouse configuration chDB starts with; returns the file to pass to Engine.

    `tcp_port` is the server's native port: ClickHouse treats a cluster replica at a loopback
    address and that port as itself and reads it in process instead of over the network (chDB
    would otherwise assume 9000). `extra` is the operator's own configuration (remote_servers,
    macros, ...); ClickHouse merges config.d/*.xml over the main file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.xml"
    config.write_text(f"<clickhouse>\n    <tcp_port>{int(tcp_port)}</tcp_port>\n</clickhouse>\n")
    if extra is not None:
        merged = directory / "config.d"
        merged.mkdir(exist_ok=True)
        shutil.copyfile(extra, merged / f"extra{extra.suffix or '.xml'}")
    return config


class Engine:
    """Runs statements on one chDB session, one at a time.

    The server has two: the clients' engine, and one for queries that other ClickHouse servers
    send as shards (`peer`), so that a server reading itself through remote(), or two servers
    reading each other, never wait for an engine their own query holds.
    """

    def __init__(self, data_dir: Path, config_file: Path | None = None) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        # chDB reads startup options from the connection string, split at '?' and '&'.
        if config_file is not None and {"?", "&"} & set(str(config_file)):
            raise ValueError(f"a config file path cannot contain '?' or '&': {config_file}")
        self.config_file = config_file
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chdb")
        self._session: chdb.session.Session | None = None
        self._session_lock = threading.Lock()
        self.lock = asyncio.Lock()
        self._current_database = "default"
        self._changed_settings: set[str] = set()
        self.version = ""
        self.timezone = "UTC"

    async def start(self) -> None:
        await self.call(self._open)

    def _open(self) -> None:
        target = str(self.data_dir)
        if self.config_file is not None:
            target += f"?config-file={self.config_file}"
        self._session = chdb.session.Session(target)
        row = self._session.query("SELECT version(), timezone()", "TabSeparated").bytes()
        self.version, self.timezone = row.decode().strip().split("\t")

    async def close(self) -> None:
        if self._session is not None:
            await self.call(self._session.close)
            self._session = None
        self._executor.shutdown(wait=True)

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run a blocking engine call on the engine thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- the work below runs on the engine thread only ------------------------------------

    @property
    def session(self) -> chdb.session.Session:
        if self._session is None:
            raise EngineError("the engine is not started", code=1000)
        return self._session

    def prepare(self, context: StatementContext) -> None:
        """Switch to the statement's database and apply its settings."""
        if context.database != self._current_database:
            self._run(f"USE {quote_identifier(context.database)}")
            self._current_database = context.database
        for name, value in context.settings.items():
            if not _IDENTIFIER_RE.match(name):
                raise EngineError(f"Unknown setting '{name}'. (UNKNOWN_SETTING)", code=115)
            self._run(f"SET {name} = {setting_literal(value)}")
            self._changed_settings.add(name)

    def reset(self) -> None:
        """Undo the settings of the last statement so that the next one starts clean."""
        for name in sorted(self._changed_settings):
            with contextlib.suppress(EngineError):
                self._run(f"SET {name} = DEFAULT")
        self._changed_settings.clear()

    def _run(self, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None):
        try:
            return self.session.query(sql, fmt, params=dict(params or {}))
        except Exception as exc:  # chDB raises ChdbError/RuntimeError with ClickHouse's text
            raise EngineError(str(exc)) from None

    def execute(self, sql: str, fmt: str, context: StatementContext) -> QueryResult:
        """Run one statement and return its whole result."""
        try:
            self.prepare(context)
            result = self._run(sql, fmt, context.params)
            return QueryResult(
                data=result.bytes(),
                rows_read=result.rows_read(),
                bytes_read=result.bytes_read(),
                rows_written=result.rows_written(),
                bytes_written=result.bytes_written(),
                elapsed=result.elapsed(),
            )
        finally:
            self.reset()

    def open_stream(self, sql: str, fmt: str, context: StatementContext) -> ResultStream:
        """Start a statement whose result is fetched chunk by chunk (close it when done)."""
        try:
            self.prepare(context)
            stream = self.session.send_query(sql, fmt, params=dict(context.params))
        except EngineError:
            self.reset()
            raise
        except Exception as exc:
            self.reset()
            raise EngineError(str(exc)) from None
        return ResultStream(self, stream)

    def set_progress_callback(self, callback: Callable[[Mapping[str, int]], None] | None) -> None:
        """Send chDB's progress reports for the statements that follow to `callback`; None stops.

        chDB calls it on the engine thread, about every 100 ms while a statement runs and once
        when it ends, with counters that grow within one statement: read_rows, read_bytes,
        total_rows_to_read, written_rows, written_bytes, elapsed_ns. Unlike a chunk's
        rows_read() (the rows of the result), read_rows counts what the statement scanned, which
        is what a server's Progress reports. Set and clear it while holding `lock`.
        """
        # chDB exposes the hook on its connection object, not on Session; without it (another
        # chDB build) there is simply no progress to report.
        connection = getattr(self.session, "_conn", None)
        setter = getattr(connection, "set_progress_callback", None)
        if setter is not None:
            setter(callback)


class ResultStream:
    """Chunks of a running SELECT; `fetch` and `close` run on the engine thread."""

    def __init__(self, engine: Engine, stream: Any) -> None:
        self._engine = engine
        self._stream = stream
        self.rows = 0
        self.bytes_read = 0
        self.rows_read = 0
        self._closed = False

    def fetch(self) -> bytes | None:
        try:
            chunk = self._stream.fetch()
        except Exception as exc:
            self.close()
            raise EngineError(str(exc)) from None
        if chunk is None:
            self.close()
            return None
        self.rows_read += chunk.rows_read()
        self.bytes_read += chunk.bytes_read()
        return chunk.bytes()

    def close(self) -> None:
        """Finish or cancel the statement; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        # Cancelling a finished stream may complain; there is nothing to undo then.
        with contextlib.suppress(Exception):
            self._stream.cancel()
        self._engine.reset()

    def fetch_at_least(self, min_bytes: int) -> bytes | None:
        """Several engine chunks joined, so that one thread hop moves about `min_bytes`."""
        parts: list[bytes] = []
        size = 0
        while size < min_bytes:
            chunk = self.fetch()
            if chunk is None:
                break
            parts.append(chunk)
            size += len(chunk)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self, min_bytes: int = 1 << 20) -> AsyncIterator[bytes]:
        """Fetch on the engine thread, yield on the event loop; cancels on early exit.

        The next piece is fetched while the consumer sends the current one, so the engine and
        the network overlap. Each piece holds whole engine blocks, about `min_bytes` of them.
        """
        ahead = asyncio.ensure_future(self._engine.call(self.fetch_at_least, min_bytes))
        try:
            while True:
                chunk = await ahead
                if chunk is None:
                    return
                ahead = asyncio.ensure_future(self._engine.call(self.fetch_at_least, min_bytes))
                yield chunk
        finally:
            # Let an in-flight fetch finish (it runs on the engine thread) before closing.
            await asyncio.gather(ahead, return_exceptions=True)
            await self._engine.call(self.close)


class InsertSpool:
    """A temporary file holding an INSERT's data until one statement loads it.

    Every front end inserts client data this way — spool, then `INSERT ... SELECT ... FROM
    file(path, format)` as one statement — rather than through chDB's streaming insert, because
    that one loses every error raised after parsing (constraints, DEFAULT/MATERIALIZED
    expressions, materialized views): it reports success while rows are dropped or half applied.
    A side benefit: the engine is free for other clients while a slow client uploads.
    """

    def __init__(self) -> None:
        handle, self.path = tempfile.mkstemp(prefix="stir-insert-", suffix=".data")
        self._file: BinaryIO | None = os.fdopen(handle, "wb")

    async def write(self, data: bytes) -> None:
        assert self._file is not None
        await asyncio.to_thread(self._file.write, data)

    async def close(self) -> None:
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
            self._file = None

    def __enter__(self) -> InsertSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
