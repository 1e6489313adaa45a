"""Load a run from S3 into its UNLOGGED staging table, then make the table servable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from prefect import task

from stir.serving.declaration import ServedTable
from stir.serving.enrich import enrich
from stir.serving.export import ExportResult, export_table
from stir.serving.freshness import stamp
from stir.serving.load import LoadResult, finalize, load_run
from stir.serving.manifest import Manifest, PartInfo
from stir.serving.s3 import s3_client
from stir.settings import Settings
from tasks._common import clickhouse, postgres, quiet_teardown, settings_or_default


@task(name="load-staging", task_run_name="load {decl.table}")
async def load_staging(
    decl: ServedTable, manifest: Manifest, settings: Settings | None = None, parallel: int = 2
) -> LoadResult:
    settings = settings_or_default(settings)
    async with quiet_teardown(s3_client(settings.s3), "S3 client") as client:
        return await load_run(
            settings.postgres.effective_dsn(), client, settings.s3, decl, manifest,
            parallel=parallel,
        )  # fmt: skip


@task(name="export-and-load", task_run_name="export and load {decl.table} ({run_id})")
async def export_and_load(
    decl: ServedTable, run_id: str, settings: Settings | None = None, parallel: int = 2
) -> tuple[ExportResult, LoadResult | None]:
    """The stream transfer of a fresh export, overlapped: each part is loaded into the staging
    table as soon as ClickHouse has written it to S3, while later parts are still exported.

    Returns `(export, None)` when the run's export already existed (a retry from S3): the caller
    loads it as usual. A failed load cancels the export; a failed export fails the step after the
    parts already in S3 are loaded (the caller drops the staging table either way).
    """
    settings = settings_or_default(settings)
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
                    on_part=parts.put,
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


@task(name="finalize-staging", task_run_name="index {staging}")
async def finalize_staging(
    decl: ServedTable,
    staging: str,
    settings: Settings | None = None,
    manifest: Manifest | None = None,
) -> float:
    """SET LOGGED, primary key, declared indexes, ANALYZE, and the run's stamp (for freshness);
    returns the seconds taken."""
    async with postgres(settings_or_default(settings)) as conn:
        seconds = await finalize(conn, decl, staging)
        if manifest is not None:
            await stamp(conn, decl.schema, staging, manifest)
        return seconds


@task(name="enrich-staging", task_run_name="enrich {staging}")
async def enrich_staging(
    decl: ServedTable, manifest: Manifest, staging: str, rows: int, settings: Settings | None = None
) -> float:
    """LEFT JOIN the declared operational tables into the staged rows; returns the seconds."""
    async with postgres(settings_or_default(settings)) as conn:
        return await enrich(conn, decl, manifest, staging, rows)
