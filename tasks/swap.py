"""The atomic swap of a staged table into place, the rollback, and staging cleanup."""

from __future__ import annotations

from prefect import task

from stir.serving.declaration import ServedTable
from stir.serving.load import drop_stale_staging
from stir.serving.swap import SwapResult, rollback, swap
from stir.settings import Settings
from tasks._common import postgres, settings_or_default
from tasks.locks import table_lock


@task(name="swap-in", task_run_name="swap {decl.table}")
async def swap_in(
    decl: ServedTable,
    staging: str,
    settings: Settings | None = None,
    lock_timeout_ms: int = 2000,
    attempts: int = 5,
) -> SwapResult:
    async with postgres(settings_or_default(settings)) as conn:
        return await swap(
            conn, decl.schema, decl.table, staging,
            lock_timeout_ms=lock_timeout_ms, attempts=attempts,
        )  # fmt: skip


@task(name="rollback", task_run_name="rollback {table}")
async def rollback_table(
    table: str, schema: str = "public", settings: Settings | None = None,
    lock_timeout_ms: int = 2000, attempts: int = 5,
) -> SwapResult:  # fmt: skip
    """Swap `<table>_old_bkp` back in as `<table>` (after any sync of it in progress)."""
    settings = settings_or_default(settings)
    async with table_lock(f"{schema}.{table}", settings), postgres(settings) as conn:
        return await rollback(
            conn, schema, table, lock_timeout_ms=lock_timeout_ms, attempts=attempts
        )


@task(name="drop-staging", task_run_name="drop staging of {table}")
async def drop_staging(
    table: str, schema: str = "public", settings: Settings | None = None
) -> list[str]:
    async with postgres(settings_or_default(settings)) as conn:
        return await drop_stale_staging(conn, schema, table)
