"""Export a mart from ClickHouse to a run-scoped prefix in S3 (parts, then the manifest)."""

from __future__ import annotations

from prefect import task

from stir.serving.declaration import ServedTable
from stir.serving.export import ExportResult, export_table
from stir.serving.s3 import s3_client
from stir.settings import Settings
from tasks._common import clickhouse, settings_or_default


@task(name="export-to-s3", task_run_name="export {decl.table} ({run_id})")
async def export_to_s3(
    decl: ServedTable, run_id: str, settings: Settings | None = None, parallel: int = 2
) -> ExportResult:
    """Export `decl.model` for run `run_id`; a run already exported is reused, not re-queried."""
    settings = settings_or_default(settings)
    async with clickhouse(settings) as ch, s3_client(settings.s3) as client:
        return await export_table(ch, client, settings.s3, decl, run_id, parallel=parallel)
