"""Load a run from S3 into its UNLOGGED staging table, then make the table servable."""

from __future__ import annotations

from prefect import task

from stir.serving.declaration import ServedTable
from stir.serving.enrich import enrich
from stir.serving.freshness import stamp
from stir.serving.load import LoadResult, finalize, load_run
from stir.serving.manifest import Manifest
from stir.serving.s3 import s3_client
from stir.settings import Settings
from tasks._common import postgres, settings_or_default


@task(name="load-staging", task_run_name="load {decl.table}")
async def load_staging(
    decl: ServedTable, manifest: Manifest, settings: Settings | None = None, parallel: int = 2
) -> LoadResult:
    settings = settings_or_default(settings)
    async with s3_client(settings.s3) as client:
        return await load_run(
            settings.postgres.effective_dsn(), client, settings.s3, decl, manifest,
            parallel=parallel,
        )  # fmt: skip


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
