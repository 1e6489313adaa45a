"""Load: S3 parts → the incoming table through COPY; then make it servable.

Two transfers share this module's creation of the incoming table, COPY options, row-count
checks and JSON parsing (`load_parts`): `stream` (here, `load_run`) and `ssh` (`stir.serving.ssh`,
which fetches each part on the PostgreSQL host and runs a server-side `COPY ... FROM '<file>'`).

- TSV path (default): each part streams from S3 into `COPY <incoming> FROM STDIN (FORMAT text,
  HEADER)`, straight into the typed table; CSV path: the same with `(FORMAT csv, HEADER,
  NULL '\\N')`.
- JSON path: each part streams into its connection's temporary one-`json`-column table (CSV
  with control characters as quote and delimiter, so every line is one value, untouched), then
  ONE `INSERT ... SELECT r.* FROM json_populate_record(NULL::<incoming>, doc)` per part casts
  every field to its column type; parts do this in parallel, as they arrive.

A part is never held in memory: chunks of the S3 object go to the server as they arrive. Each
part's byte count and MD5 are checked against S3's size and ETag, and its row count against the
manifest, as it loads.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import zstandard

from stir.domain.declaration import ServedTable
from stir.errors import connect_postgres, reaching_postgres
from stir.serving.export import compression_of
from stir.serving.gates import add_primary_key
from stir.serving.manifest import Manifest, PartInfo
from stir.serving.naming import (
    incoming_name,
    incoming_prefix,
    index_name,
    index_role,
    qualified,
    quote_ident,
    quote_literal,
)
from stir.serving.s3 import CheckpointError, head, stream
from stir.settings import S3Settings

log = logging.getLogger("stir.serving.load")


class LoadError(RuntimeError):
    """Loading a run into its incoming table failed; the live table is untouched."""


@dataclass(frozen=True)
class LoadResult:
    incoming: str
    rows: int
    bytes: int
    seconds: float


def describe_pg_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    for attr in ("detail", "context"):
        value = getattr(exc, attr, None)
        if value:
            text += f" ({attr}: {value})"
    return text


async def drop_stale_incoming(conn: asyncpg.Connection, schema: str, table: str) -> list[str]:
    """Drop every incoming table of `table` (left by a crashed or failed run); their names."""
    prefix = incoming_prefix(table)
    names = await conn.fetch(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND c.relkind = 'r' AND left(c.relname, $2) = $3""",
        schema, len(prefix), prefix,
    )  # fmt: skip
    dropped = [r["relname"] for r in names]
    for name in dropped:
        await conn.execute(f"DROP TABLE IF EXISTS {qualified(schema, name)}")
        log.info("dropped stale incoming table %s.%s", schema, name)
    return dropped


def column_ddl(manifest: Manifest) -> str:
    return ", ".join(
        f"{quote_ident(c.name)} {c.postgres_type}{'' if c.nullable else ' NOT NULL'}"
        for c in manifest.columns
    )


@dataclass(frozen=True)
class CopySpec:
    """How a part of a given format is COPYed: the target columns and COPY's options.

    One definition for both transfers: `stream` hands the options to asyncpg's
    `copy_to_table(..., **options)`, `ssh` renders them into `COPY ... FROM '<file>' WITH (...)`
    (`options_sql`), so the two paths can never read a format differently.
    """

    columns: tuple[str, ...]
    options: tuple[tuple[str, Any], ...]

    def options_sql(self) -> str:
        rendered = []
        for name, value in self.options:
            if value is True:
                rendered.append(name.upper())
            else:
                rendered.append(f"{name.upper()} {quote_literal(str(value))}")
        return ", ".join(rendered)


def copy_spec(manifest: Manifest) -> CopySpec:
    if manifest.format == "tsv":  # PostgreSQL's text format: the same escapes, \N for NULL
        return CopySpec(
            tuple(c.name for c in manifest.columns), (("format", "text"), ("header", True))
        )
    if manifest.format == "csv":
        return CopySpec(
            tuple(c.name for c in manifest.columns),
            (("format", "csv"), ("header", True), ("null", "\\N")),
        )
    # JSON: each line, untouched, into the one jsonb column (control characters as quote and
    # delimiter, which never occur in JSON text, so no CSV escaping applies)
    return CopySpec(("doc",), (("format", "csv"), ("delimiter", "\x02"), ("quote", "\x01")))


# The JSON path's scratch table: a temporary table of each load connection (local buffers, no
# WAL, gone with the session, so a crashed run leaves nothing to clean up).
JSON_PART_TABLE = "stir_json_part"


class _Checked:
    """Streams one part and checks its size and MD5 against what S3 reported at export."""

    def __init__(
        self, client: Any, bucket: str, part: PartInfo, compression: str | None = None
    ) -> None:
        self.client, self.bucket, self.part = client, bucket, part
        # The checks are of the bytes in S3; COPY gets them decompressed.
        self.decompress = (
            zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
            if compression
            else None
        )
        self.size = 0
        # A multipart upload's ETag ("<md5 of the parts' md5s>-<n>") is no MD5 of the bytes:
        # only a single-PUT part's bytes are hashed (hashing costs CPU the COPY needs).
        self.md5 = None if "-" in part.etag else hashlib.md5(usedforsecurity=False)

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in stream(self.client, self.bucket, self.part.key):
            self.size += len(chunk)
            if self.md5 is not None:
                self.md5.update(chunk)
            if self.decompress is None:
                yield chunk
            elif data := self.decompress.decompress(chunk):
                yield data
        if self.size != self.part.bytes:
            raise CheckpointError(
                f"{self.part.key}: {self.size} bytes read, the manifest says {self.part.bytes}"
            )
        if self.md5 is not None and self.md5.hexdigest() != self.part.etag:
            raise CheckpointError(f"{self.part.key}: MD5 differs from the export's ETag")


def copied_rows(status: str) -> int:
    """The row count of a `COPY n` / `INSERT 0 n` status."""
    return int(status.split()[-1])


# One part into the COPY target: (connection, part, schema, target) -> rows COPY reported.
PartCopier = Callable[[asyncpg.Connection, PartInfo, str, str], Awaitable[int]]


async def check_parts_exist(
    client: Any, s3: S3Settings, decl: ServedTable, manifest: Manifest
) -> None:
    """Fail early, before any PostgreSQL work, when a part of the run is gone from S3."""
    for part in manifest.parts:
        if await head(client, s3.bucket, part.key) is None:
            raise LoadError(
                f"load {decl.ref}: part s3://{s3.bucket}/{part.key} of run {manifest.run_id} "
                "is missing; export the table again with a new run"
            )


# A served table is written once and then only read until the next version replaces it.
INCOMING_TABLE_OPTIONS = "WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)"


async def create_incoming(conn: asyncpg.Connection, decl: ServedTable, manifest: Manifest) -> str:
    """Drop stale incoming tables of the table, create this run's; its name.

    The incoming table is created logged: COPY writes its WAL as the rows arrive (overlapping
    the export), where an UNLOGGED table made durable by `SET LOGGED` afterwards was read and
    rewritten whole, on the critical path. It is a table of its own until the swap, so the live
    table is untouched either way."""
    schema = decl.schema
    incoming = incoming_name(decl.table, manifest.run_id)
    await drop_stale_incoming(conn, schema, decl.table)
    # A served table is written once and then only read until the next version replaces it:
    # autovacuum has nothing to reclaim, and a vacuum of a freshly loaded table running into the
    # swap would hold the swap's lock (and the readers behind it) until it gives way.
    await conn.execute(
        f"CREATE TABLE {qualified(schema, incoming)} ({column_ddl(manifest)}) "
        f"{INCOMING_TABLE_OPTIONS}"
    )
    return incoming


def check_part_rows(decl: ServedTable, part: PartInfo, rows: int) -> None:
    if rows != part.rows:
        raise LoadError(
            f"load {decl.ref}: part {part.key} loaded {rows} rows, the manifest says {part.rows}"
        )


async def load_json_part(
    conn: asyncpg.Connection,
    decl: ServedTable,
    manifest: Manifest,
    part: PartInfo,
    copy_part: PartCopier,
) -> int:
    """One part of the JSON path, on its own connection: its lines into the connection's
    temporary `json` table (validated, kept as text), then ONE `INSERT ... SELECT` through
    `json_populate_record`, casting every field to its column type, into the incoming table; the
    rows. Parts run this in parallel, each while later parts are still exported. (`json` rather
    than `jsonb`: building the binary jsonb value cost more than it saved, 8.3 s against 6.2 s
    for 250 000 rows of the benchmark's 20 columns.)"""
    scratch = qualified("pg_temp", JSON_PART_TABLE)
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {JSON_PART_TABLE} (doc json)")
    await conn.execute(f"TRUNCATE {scratch}")
    copied = await copy_part(conn, part, "pg_temp", JSON_PART_TABLE)
    check_part_rows(decl, part, copied)
    incoming = qualified(decl.schema, incoming_name(decl.table, manifest.run_id))
    names = ", ".join(quote_ident(c.name) for c in manifest.columns)
    casted = ", ".join(f"r.{quote_ident(c.name)}" for c in manifest.columns)
    status = await conn.execute(
        f"INSERT INTO {incoming} ({names}) SELECT {casted} FROM {scratch} j, "
        f"json_populate_record(NULL::{incoming}, j.doc) r"
    )
    await conn.execute(f"TRUNCATE {scratch}")  # its pages are not needed until the next part
    return copied_rows(status)


def _first(group: BaseExceptionGroup) -> BaseException:
    """The first real error of a task group's failure (the others are its consequences)."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


async def _close_quietly(closing: Awaitable[None], what: str) -> None:
    """Close a connection or pool in a teardown: a close that fails (the server went away
    mid-load) is logged, never raised over the load's own error, which the alert must name."""
    try:
        await closing
    except Exception as exc:
        log.warning("could not close the PostgreSQL %s (%s: %s)", what, type(exc).__name__, exc)


async def load_parts(
    dsn: str,
    decl: ServedTable,
    manifest: Manifest,
    copy_part: PartCopier,
    *,
    parallel: int = 2,
    transfer: str = "stream",
    arriving: AsyncIterator[PartInfo] | None = None,
) -> LoadResult:
    """What both transfers share: create the incoming table, COPY every part (`parallel` at a
    time, each on its own connection) with `copy_part`, check each part's row count, parse the
    JSON path's rows, log; the caller's `copy_part` decides how the bytes get to the server.

    With `arriving`, the parts are those it yields (as an export produces them) instead of
    `manifest.parts`: each is loaded as soon as it arrives."""
    started = time.monotonic()
    schema = decl.schema
    conn = await connect_postgres(dsn)  # PostgreSQL down: an error that names it and where
    try:
        incoming = await create_incoming(conn, decl, manifest)
    finally:
        await _close_quietly(conn.close(timeout=10), "connection")

    with reaching_postgres(dsn):
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max(1, parallel))
    semaphore = asyncio.Semaphore(max(1, parallel))

    async def one(part: PartInfo) -> int:
        async with semaphore, pool.acquire() as conn:
            try:
                if manifest.format == "json":
                    rows = await load_json_part(conn, decl, manifest, part, copy_part)
                else:
                    rows = await copy_part(conn, part, schema, incoming)
            except (asyncpg.PostgresError, CheckpointError) as exc:
                raise LoadError(
                    f"load {decl.ref}: part {part.key}: {describe_pg_error(exc)}"
                ) from None
        check_part_rows(decl, part, rows)
        log.info("load %s: part %s, %s rows", decl.ref, part.key.rpartition("/")[2], f"{rows:,}")
        return rows

    loaded: list[PartInfo] = []

    async def every_part() -> AsyncIterator[PartInfo]:
        if arriving is None:
            for part in manifest.parts:
                yield part
        else:
            async for part in arriving:
                yield part

    try:
        try:
            async with asyncio.TaskGroup() as group:  # one failing part cancels the others
                counts = []
                async for part in every_part():
                    loaded.append(part)
                    counts.append(group.create_task(one(part)))
        except BaseExceptionGroup as failed:
            raise _first(failed) from None
        rows = sum(count.result() for count in counts)
    finally:
        await _close_quietly(pool.close(), "connection pool")
    seconds = time.monotonic() - started
    size = sum(part.bytes for part in loaded)
    log.info(
        "load %s run %s (%s): %s rows, %s bytes into %s in %.2f s (%s rows/s)",
        decl.ref, manifest.run_id, transfer, f"{rows:,}", f"{size:,}", incoming,
        seconds, f"{rows / seconds:,.0f}" if seconds else "-",
    )  # fmt: skip
    return LoadResult(incoming, rows, size, seconds)


async def load_run(
    dsn: str,
    client: Any,
    s3: S3Settings,
    decl: ServedTable,
    manifest: Manifest,
    *,
    parallel: int = 2,
    arriving: AsyncIterator[PartInfo] | None = None,
) -> LoadResult:
    """The `stream` transfer: each part streams from S3 into `COPY ... FROM STDIN` (with
    `arriving`: each part as the export yields it, see `load_parts`)."""
    await check_parts_exist(client, s3, decl, manifest)
    spec = copy_spec(manifest)

    async def copy_part(conn: asyncpg.Connection, part: PartInfo, schema: str, target: str) -> int:
        checked = _Checked(client, s3.bucket, part, compression_of(manifest))
        status = await conn.copy_to_table(
            target, schema_name=schema, source=checked.chunks(), columns=list(spec.columns),
            **dict(spec.options),
        )  # fmt: skip
        return copied_rows(status)

    return await load_parts(
        dsn, decl, manifest, copy_part, parallel=parallel, transfer="stream", arriving=arriving
    )


# Building the primary key sorts every key in memory up to this much (the default, 64 MB,
# spills a 10 M-row key to disk); per session, for the one statement that builds each index.
FINALIZE_MAINTENANCE_WORK_MEM = "256MB"


async def finalize(conn: asyncpg.Connection, decl: ServedTable, incoming: str) -> float:
    """The primary key on the keys (the keys gate), the declared indexes, ANALYZE, and SET
    LOGGED when the table is still UNLOGGED (an enriched table; `create_incoming`'s is logged
    from the start); seconds taken."""
    started = time.monotonic()
    target = qualified(decl.schema, incoming)
    persistence = await conn.fetchval(
        "SELECT relpersistence::text FROM pg_class WHERE oid = to_regclass($1)", target
    )
    if persistence == "u":
        await conn.execute(f"ALTER TABLE {target} SET LOGGED")
    await conn.execute(f"SET maintenance_work_mem = {quote_literal(FINALIZE_MAINTENANCE_WORK_MEM)}")
    if decl.keys:
        await add_primary_key(conn, decl, incoming)
    for spec in decl.indexes:
        role = index_role(list(spec.columns), unique=spec.unique, method=spec.using)
        name = index_name(incoming, role)
        cols = ", ".join(quote_ident(c) for c in spec.columns)
        unique = "UNIQUE " if spec.unique else ""
        await conn.execute(
            f"CREATE {unique}INDEX {quote_ident(name)} ON {target} USING {spec.using} ({cols})"
        )
    await conn.execute(f"ANALYZE {target}")
    await conn.execute("RESET maintenance_work_mem")
    seconds = time.monotonic() - started
    log.info(
        "finalize %s: %skeyed, %d indexes, analyzed in %.2f s",
        incoming, "set logged, " if persistence == "u" else "", len(decl.indexes), seconds,
    )  # fmt: skip
    return seconds
