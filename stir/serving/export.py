"""Export: a ClickHouse mart → S3 parts of one run, then the manifest (written last).

`INSERT INTO FUNCTION s3(...) SELECT ...` runs in ClickHouse, which writes each part straight to
S3; nothing passes through this process. A run whose manifest exists is complete: exporting it
again returns that manifest without querying ClickHouse.

The s3() call's credentials (`s3_function`): the server's named collection when
STIR_S3_NAMED_COLLECTION is set; else the configured keys, as query parameters; else none at
all, so that ClickHouse signs with its own server-side credentials (its environment, or the
instance role of its host). Never NOSIGN: that sends unsigned, anonymous requests.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from stir.clickhouse import ClickHouse
from stir.clickhouse import quote_identifier as ch_ident
from stir.domain.declaration import ServedTable
from stir.serving.manifest import MANIFEST_NAME, ColumnInfo, Manifest, PartInfo
from stir.serving.naming import s3_run_prefix
from stir.serving.s3 import get_json, head, object_url, put_json
from stir.serving.types import EXPORT_SETTINGS, export_expression, pg_type
from stir.settings import S3Settings

log = logging.getLogger("stir.serving.export")

EXTENSIONS = {
    "csv": ("csv", "CSVWithNames"),
    "tsv": ("tsv", "TSVWithNames"),
    "json": ("jsonl", "JSONEachRow"),
}


# Parts for the stream transfer are zstd-compressed by ClickHouse (chosen by the key's `.zst`
# suffix) and decompressed by the loader as they stream: 4-10x fewer bytes through S3 and the
# loader's HTTP client, for a cheap level-1 compression. The ssh transfer keeps plain parts,
# because PostgreSQL COPYs them from the file as they are.
COMPRESSION_SUFFIX = {"zstd": ".zst"}
COMPRESSION_SETTINGS: dict[str, object] = {"output_format_compression_level": 1}


class ExportError(RuntimeError):
    pass


def compression_of(manifest: Manifest) -> str | None:
    """How the run's parts are compressed (None: plain), as its export recorded."""
    value = manifest.extra.get("compression")
    return str(value) if value else None


def s3_function(s3: S3Settings) -> tuple[str, dict[str, str]]:
    """The `s3(...)` table function writing to `{url:String}` in `{fmt:String}`, and the query
    parameters it needs besides those two (the keys, when it carries them)."""
    if s3.named_collection:
        return (
            f"s3({ch_ident(s3.named_collection)}, url = {{url:String}}, format = {{fmt:String}})",
            {},
        )
    if s3.access_key_id is not None and s3.secret_access_key is not None:
        keys = {
            "key": s3.access_key_id.get_secret_value(),
            "secret": s3.secret_access_key.get_secret_value(),
        }
        return "s3({url:String}, {key:String}, {secret:String}, {fmt:String})", keys
    return "s3({url:String}, {fmt:String})", {}


@dataclass(frozen=True)
class ExportResult:
    manifest: Manifest
    reused: bool  # the run's export already existed in S3; ClickHouse was not queried
    seconds: float


def _source(model: str) -> str:
    database, _, table = model.rpartition(".")
    return f"{ch_ident(database)}.{ch_ident(table)}" if database else ch_ident(table)


async def describe(ch: ClickHouse, model: str) -> list[tuple[str, str]]:
    """(name, type) of every column of the mart, in order."""
    rows = await ch.fetch(f"DESCRIBE TABLE {_source(model)}")
    return [(r[0], r[1]) for r in rows if len(r) < 3 or r[2] in ("", "DEFAULT")]


def plan_columns(decl: ServedTable, described: list[tuple[str, str]]) -> list[ColumnInfo]:
    types = dict(described)
    names = list(decl.columns) or [n for n, _ in described]
    missing = [n for n in [*names, *decl.keys] if n not in types]
    if missing:
        raise ExportError(f"{decl.model}: columns {sorted(set(missing))} are not in the mart")
    infos = []
    for name in names:
        mapped = pg_type(types[name])
        infos.append(ColumnInfo(name, types[name], mapped.sql, mapped.nullable))
    return infos


# A part smaller than this is not worth its own ClickHouse query and COPY.
MIN_PART_ROWS = 100_000


def automatic_parts(rows: int, rows_per_part: int, parallel: int, keyed: bool) -> int:
    """Parts of an export that does not declare `parts`: one per `rows_per_part` rows, and with
    keys at least two per export stream (of at least `MIN_PART_ROWS` each), so that the load
    COPYs the first parts while ClickHouse still writes the others (one part, or one per stream,
    would leave the load waiting for the whole export)."""
    parts = max(1, math.ceil(rows / rows_per_part))
    if keyed:
        parts = max(parts, min(2 * max(1, parallel), rows // MIN_PART_ROWS))
    return parts


@dataclass(frozen=True)
class PartSplit:
    """How an export divides the mart's rows among its parts: a WHERE clause whose query
    parameters `params(index)` select part `index`, and each part's row count."""

    where: str  # empty: one part, the whole mart
    counts: dict[int, int]
    bounds: tuple[int, ...] = ()  # key ranges: the row offset where each part starts, then total

    def params(self, index: int) -> dict[str, int]:
        if not self.where:
            return {}
        if not self.bounds:
            return {"part": index}
        return {"lo": self.bounds[index], "hi": self.bounds[index + 1], "total": self.bounds[-1]}


async def split_parts(
    ch: ClickHouse, decl: ServedTable, types: dict[str, str], parts: int, total: int
) -> PartSplit:
    """Key ranges when the mart is sorted by its first key column: each part reads only the
    granules of its range, so the export reads the mart once in all. The range bounds are the
    key's values at evenly spaced row offsets, looked up by ClickHouse itself (scalar
    subqueries, which its primary index then uses), so no value of any type passes through
    here. Otherwise (another sort order, a Nullable key) a hash of the keys, which reads the
    whole mart for every part."""
    source = _source(decl.model)
    if parts <= 1:
        return PartSplit("", {0: total})
    first = decl.keys[0]
    database, _, table = decl.model.rpartition(".")
    sorting_key = await ch.fetch_value(
        "SELECT sorting_key FROM system.tables WHERE database = "
        + ("{database:String}" if database else "currentDatabase()")
        + " AND name = {table:String}",
        {"database": database, "table": table},
    )
    leading = str(sorting_key or "").split(",")[0].strip().strip("`")
    if leading != first or types.get(first, "").startswith("Nullable"):
        hashed = f"cityHash64({', '.join(ch_ident(k) for k in decl.keys)}) % {parts}"
        counts = await ch.fetch(f"SELECT {hashed} AS part, count() FROM {source} GROUP BY part")
        return PartSplit(f"{hashed} = {{part:UInt64}}", {int(p): int(n) for p, n in counts})

    key = ch_ident(first)

    def at(offset: str) -> str:
        return f"(SELECT {key} FROM {source} ORDER BY {key} LIMIT 1 OFFSET {offset})"

    bounds = (*(total * i // parts for i in range(parts)), total)
    # The last part has no upper bound: a test of constants, which keeps the index usable.
    lower = f"{key} >= {at('{lo:UInt64}')}"
    upper = f"({{hi:UInt64}} >= {{total:UInt64}} OR {key} < {at('{hi:UInt64}')})"
    where = f"{lower} AND {upper}"
    starts = ", ".join(f"{key} < {at(str(offset))}, {i}" for i, offset in enumerate(bounds[1:-1]))
    counts = await ch.fetch(
        f"SELECT multiIf({starts}, {parts - 1}) AS part, count() FROM {source} GROUP BY part"
    )
    return PartSplit(where, {int(p): int(n) for p, n in counts}, bounds)


async def load_manifest(
    client: Any, s3: S3Settings, schema: str, table: str, run_id: str
) -> Manifest | None:
    """The manifest of run `run_id` of `schema.table`; None when its export did not finish."""
    key = s3_run_prefix(s3.prefix, schema, table, run_id) + MANIFEST_NAME
    data = await get_json(client, s3.bucket, key)
    return Manifest.from_dict(data) if data is not None else None


async def export_table(
    ch: ClickHouse,
    client: Any,
    s3: S3Settings,
    decl: ServedTable,
    run_id: str,
    *,
    parallel: int = 2,
    on_plan: Callable[[Manifest], Awaitable[None]] | None = None,
    on_part: Callable[[PartInfo], Awaitable[None]] | None = None,
    compression: str | None = None,
) -> ExportResult:
    """Export the mart in parts, then write the manifest. A fresh export first calls `on_plan`
    with the manifest as planned (columns and format, no parts yet), then `on_part` with each part
    as soon as it is in S3: the load can start on a part while later parts are still exported.
    `compression` ("zstd"): the parts are compressed (recorded in the manifest's `extra`); a
    reused export keeps however it was written."""
    started = time.monotonic()
    existing = await load_manifest(client, s3, decl.schema, decl.table, run_id)
    if existing is not None:
        log.info(
            "export %s run %s: reusing the export in S3 (%s rows, %s bytes)",
            decl.ref, run_id, f"{existing.rows:,}", f"{existing.bytes:,}",
        )  # fmt: skip
        return ExportResult(existing, True, time.monotonic() - started)

    described = await describe(ch, decl.model)
    columns = plan_columns(decl, described)
    source = _source(decl.model)
    total = int(await ch.fetch_value(f"SELECT count() FROM {source}"))
    parts = decl.parts or automatic_parts(total, decl.rows_per_part, parallel, bool(decl.keys))
    if parts > 1 and not decl.keys:
        raise ExportError(f"{decl.model}: splitting into {parts} parts needs keys")
    split = await split_parts(ch, decl, dict(described), parts, total)

    ext, ch_format = EXTENSIONS[decl.format]
    select = ", ".join(
        f"{export_expression(c.name, c.clickhouse_type, decl.format)} AS {ch_ident(c.name)}"
        for c in columns
    )
    query = f"SELECT {select} FROM {source}"
    if split.where:
        query += f" WHERE {split.where}"
    counts = split.counts
    prefix = s3_run_prefix(s3.prefix, decl.schema, decl.table, run_id)
    function, credentials = s3_function(s3)
    semaphore = asyncio.Semaphore(parallel)
    suffix = COMPRESSION_SUFFIX[compression] if compression else ""
    planned = Manifest(
        table=decl.table,
        model=decl.model,
        run_id=run_id,
        format=decl.format,
        columns=tuple(columns),
        parts=(),
        source_query=query,
        created_at=datetime.now(UTC).isoformat(),
        extra={"schema": decl.schema, "keys": list(decl.keys)}
        | ({"compression": compression} if compression else {}),
    )
    if on_plan is not None:
        await on_plan(planned)

    async def one(index: int) -> PartInfo:
        key = f"{prefix}part-{index:05d}.{ext}{suffix}"
        query_id = f"stir-{decl.table}-{run_id}-{index}"
        params = {
            "url": object_url(s3, key),
            "fmt": ch_format,
            **split.params(index),
            **credentials,
        }
        async with semaphore:
            await ch.execute(
                f"INSERT INTO FUNCTION {function} {query}",
                params,
                settings={**EXPORT_SETTINGS, **(COMPRESSION_SETTINGS if compression else {})},
                query_id=query_id,
            )
        meta = await head(client, s3.bucket, key)
        if meta is None:  # an empty result may write no object at all
            await client.put_object(Bucket=s3.bucket, Key=key, Body=b"")
            meta = {"ContentLength": 0, "ETag": '"d41d8cd98f00b204e9800998ecf8427e"'}
        info = PartInfo(
            key, int(counts.get(index, 0)), int(meta["ContentLength"]),
            str(meta["ETag"]).strip('"'), query_id,
        )  # fmt: skip
        if on_part is not None:
            await on_part(info)
        return info

    part_infos = await asyncio.gather(*(one(i) for i in range(parts)))
    manifest = replace(planned, parts=tuple(part_infos))
    await put_json(client, s3.bucket, prefix + MANIFEST_NAME, manifest.to_dict())
    seconds = time.monotonic() - started
    log.info(
        "export %s run %s: %s rows, %s bytes in %d parts, %.2f s",
        decl.ref, run_id, f"{manifest.rows:,}", f"{manifest.bytes:,}", parts, seconds,
    )  # fmt: skip
    return ExportResult(manifest, False, seconds)
