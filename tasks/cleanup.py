"""Prune old runs of a table from the S3 staging area."""

from __future__ import annotations

from prefect import task

from stir.serving.cleanup import prune_runs
from stir.serving.s3 import s3_client
from stir.settings import Settings
from tasks._common import settings_or_default


@task(name="prune-s3", task_run_name="prune S3 runs of {table}")
async def prune_s3(
    table: str, keep: int = 3, current: str | None = None, settings: Settings | None = None
) -> list[str]:
    settings = settings_or_default(settings)
    async with s3_client(settings.s3) as client:
        return await prune_runs(client, settings.s3, table, keep=keep, current=current)
