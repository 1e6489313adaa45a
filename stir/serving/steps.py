"""The steps of a sync as whole operations: each opens the connections it needs from the settings.

`stir.serving.sync.sync_table` runs them in order; the Prefect layer (`stir.tasks.sync`) wraps each
one, unchanged, as a task so that a tier run shows them one by one and an alert can name the step
that failed. The CLI calls them directly (`rollback_table`).

"Incoming" is the PostgreSQL table a run loads into (`<table>__stir_<run>`) until it is swapped
in; the S3 "checkpoint" is the run's exported parts and manifest, which a retry re-reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

from stir.connections import clickhouse, postgres, quiet_teardown
from stir.domain.declaration import ServedTable
from stir.locks import table_lock
from stir.serving.cleanup import prune_runs
from stir.serving.diff import TableDiff, diff_tables
from stir.serving.enrich import enrich
from stir.serving.export import ExportResult, compression_of, export_table, load_manifest
from stir.serving.freshness import stamp
from stir.serving.gates import GateReport, check_changed_fraction, run_gates
from stir.serving.load import LoadResult, drop_stale_incoming, finalize, load_run
from stir.serving.manifest import Manifest, PartInfo
from stir.serving.naming import s3_run_prefix
from stir.serving.s3 import CheckpointError, delete_keys, head, list_keys, s3_client
from stir.serving.ssh import load_run_over_ssh
from stir.serving.swap import SwapResult, rollback, swap
from stir.settings import Settings

# The stream transfer's parts are compressed (`stir.serving.export.COMPRESSION_SUFFIX`).
STREAM_COMPRESSION = "zstd"


async def export_to_s3(
    decl: ServedTable, run_id: str, settings: Settings, parallel: int = 2
) -> ExportResult:
    """Export `decl.model` for run `run_id`; a run already exported is reused, not re-queried."""
    async with clickhouse(settings) as ch, s3_client(settings.s3) as client:
        return await export_table(ch, client, settings.s3, decl, run_id, parallel=parallel)


async def export_and_load(
    decl: ServedTable, run_id: str, settings: Settings, parallel: int = 2
) -> tuple[ExportResult, LoadResult | None]:
    """The stream transfer of a fresh export, overlapped: each part is loaded into the incoming
    table as soon as ClickHouse has written it to S3, while later parts are still exported.

    Returns `(export, None)` when the run's export already existed (a retry from S3): the caller
    loads it as usual. A failed load cancels the export; a failed export fails the step after the
    parts already in S3 are loaded (the caller drops the incoming table either way).
    """
    s3 = settings.s3
    parts: asyncio.Queue[PartInfo | None] = asyncio.Queue()
    planned: asyncio.Future[Manifest] = asyncio.get_running_loop().create_future()

    async def on_plan(manifest: Manifest) -> None:
        planned.set_result(manifest)

    async def arriving() -> AsyncIterator[PartInfo]:
        while (part := await parts.get()) is not None:
            yield part

    # Teardowns never raise (ClickHouse.close, quiet_teardown): when PostgreSQL is down, the
    # load's error must reach the alert, not a disconnect racing the cancelled export's thread.
    async with clickhouse(settings) as ch, quiet_teardown(s3_client(s3), "S3 client") as client:

        async def export() -> ExportResult:
            try:
                return await export_table(
                    ch, client, s3, decl, run_id, parallel=parallel, on_plan=on_plan,
                    on_part=parts.put, compression=STREAM_COMPRESSION,
                )  # fmt: skip
            finally:
                parts.put_nowait(None)  # no more parts: the load finishes what it has

        exporting = asyncio.create_task(export())
        await asyncio.wait([exporting, planned], return_when=asyncio.FIRST_COMPLETED)
        if not planned.done():  # reused (nothing to plan) or failed before planning
            return await exporting, None
        try:
            loaded = await load_run(
                settings.postgres.effective_dsn(), client, s3, decl, planned.result(),
                parallel=parallel, arriving=arriving(),
            )  # fmt: skip
        except BaseException:
            exporting.cancel()
            # Wait for the export to stop without letting its error (or its cancellation)
            # replace the load's; our own cancellation still propagates.
            await asyncio.wait([exporting])
            if not exporting.cancelled():
                exporting.exception()  # retrieved: the load's error is the one reported
            raise
        return await exporting, loaded


async def check_checkpoint(decl: ServedTable, run_id: str, settings: Settings) -> Manifest:
    """The run's S3 checkpoint is whole: its manifest exists and every part is there with the
    size the export recorded; so a broken checkpoint fails before anything is loaded."""
    s3 = settings.s3
    async with s3_client(s3) as client:
        manifest = await load_manifest(client, s3, decl.schema, decl.table, run_id)
        if manifest is None:
            prefix = s3_run_prefix(s3.prefix, decl.schema, decl.table, run_id)
            raise CheckpointError(
                f"run {run_id} of {decl.ref} has no manifest in s3://{s3.bucket}/{prefix}: "
                "its export did not finish; export again with a new run"
            )
        for part in manifest.parts:
            meta = await head(client, s3.bucket, part.key)
            if meta is None:
                raise CheckpointError(
                    f"run {run_id} of {decl.ref}: part {part.key} is missing; export the table "
                    "again with a new run"
                )
            if int(meta["ContentLength"]) != part.bytes:
                raise CheckpointError(
                    f"run {run_id} of {decl.ref}: part {part.key} has {meta['ContentLength']} "
                    f"bytes, the manifest says {part.bytes}"
                )
    return manifest


async def load_incoming(
    decl: ServedTable, manifest: Manifest, settings: Settings, parallel: int = 2
) -> LoadResult:
    """The stream transfer of an exported run: S3 → COPY FROM STDIN, part by part."""
    async with quiet_teardown(s3_client(settings.s3), "S3 client") as client:
        return await load_run(
            settings.postgres.effective_dsn(), client, settings.s3, decl, manifest,
            parallel=parallel,
        )  # fmt: skip


async def load_incoming_ssh(
    decl: ServedTable, manifest: Manifest, settings: Settings, parallel: int = 2
) -> LoadResult:
    """The ssh transfer: the PostgreSQL host fetches each part (presigned URL, over SSH) and
    PostgreSQL COPYs it from the file; the remote files are removed, also on failure."""
    if (compression := compression_of(manifest)) is not None:
        raise CheckpointError(
            f"run {manifest.run_id} of {decl.ref} was exported for the stream transfer "
            f"({compression}-compressed parts, which PostgreSQL cannot COPY from a file): "
            "retry it with transfer stream, or sync with a new run"
        )
    async with s3_client(settings.s3) as client:
        return await load_run_over_ssh(
            settings.postgres.effective_dsn(), client, settings.s3, settings.ssh, decl, manifest,
            parallel=parallel,
        )  # fmt: skip


async def enrich_incoming(
    decl: ServedTable, manifest: Manifest, incoming: str, rows: int, settings: Settings
) -> float:
    """LEFT JOIN the declared operational tables into the incoming table; returns the seconds."""
    async with postgres(settings) as conn:
        return await enrich(conn, decl, manifest, incoming, rows)


async def check_gates(
    decl: ServedTable,
    manifest: Manifest,
    incoming: str,
    settings: Settings,
    loaded_rows: int | None = None,
) -> GateReport:
    """The incoming table against the manifest and the live table (see `stir.serving.gates`);
    STIR_SYNC_ALLOW_RETYPE_COLUMNS opens the column-type gate of every table (an upgrade)."""
    if settings.sync.allow_retype_columns:
        decl = replace(decl, gates=replace(decl.gates, allow_retype_columns=True))
    async with postgres(settings) as conn:
        return await run_gates(conn, decl, manifest, incoming, loaded_rows)


async def finalize_incoming(
    decl: ServedTable, incoming: str, settings: Settings, manifest: Manifest | None = None
) -> float:
    """Primary key, declared indexes, ANALYZE (SET LOGGED first for an enriched table), and the
    run's stamp (for freshness); returns the seconds taken."""
    async with postgres(settings) as conn:
        seconds = await finalize(conn, decl, incoming)
        if manifest is not None:
            await stamp(conn, decl.schema, incoming, manifest)
        return seconds


async def diff_incoming(
    decl: ServedTable, incoming: str, settings: Settings, enforce: bool = True
) -> TableDiff:
    """The incoming table against the live one, by key (see `stir.serving.diff`); with
    `enforce`, the diff gate (`gates.max_changed_fraction`) refuses a change beyond its bound."""
    async with postgres(settings) as conn:
        diff = await diff_tables(conn, decl, incoming)
    if enforce:
        check_changed_fraction(decl, diff)
    return diff


async def swap_in(
    decl: ServedTable,
    incoming: str,
    settings: Settings,
    lock_timeout_ms: int = 2000,
    attempts: int = 5,
) -> SwapResult:
    """The atomic swap of the incoming table into place (see `stir.serving.swap`)."""
    async with postgres(settings) as conn:
        return await swap(
            conn, decl.schema, decl.table, incoming,
            lock_timeout_ms=lock_timeout_ms, attempts=attempts,
        )  # fmt: skip


async def drop_incoming(table: str, schema: str, settings: Settings) -> list[str]:
    """Drop every incoming table a run of `schema.table` left behind."""
    async with postgres(settings) as conn:
        return await drop_stale_incoming(conn, schema, table)


async def prune_s3(
    decl: ServedTable, keep: int, current: str | None, settings: Settings
) -> list[str]:
    """Remove all but the newest `keep` S3 checkpoints of the table (never `current`)."""
    async with s3_client(settings.s3) as client:
        return await prune_runs(
            client, settings.s3, decl.schema, decl.table, keep=keep, current=current
        )


async def delete_s3_run(decl: ServedTable, run_id: str, settings: Settings) -> int:
    """Delete one run's S3 checkpoint (a `stir diff` run, which nothing retries); the objects."""
    s3 = settings.s3
    async with s3_client(s3) as client:
        prefix = s3_run_prefix(s3.prefix, decl.schema, decl.table, run_id)
        keys = await list_keys(client, s3.bucket, prefix)
        await delete_keys(client, s3.bucket, keys)
        return len(keys)


async def rollback_table(
    table: str,
    schema: str,
    settings: Settings,
    holder: str,
    lock_timeout_ms: int = 2000,
    attempts: int = 5,
) -> SwapResult:
    """Swap `<table>_old_bkp` back in as `<table>`, after any sync of it in progress (the table's
    lock, named after `holder`)."""
    dsn = settings.postgres.effective_dsn()
    async with table_lock(dsn, f"{schema}.{table}", holder), postgres(settings) as conn:
        return await rollback(
            conn, schema, table, lock_timeout_ms=lock_timeout_ms, attempts=attempts
        )
