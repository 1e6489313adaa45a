"""Gates: the staged version is checked against the manifest and the live table."""

from __future__ import annotations

from prefect import task

from stir.serving.declaration import ServedTable
from stir.serving.gates import GateReport, run_gates
from stir.serving.manifest import Manifest
from stir.settings import Settings
from tasks._common import postgres, settings_or_default


@task(name="check-gates", task_run_name="gates {decl.table}")
async def check_gates(
    decl: ServedTable,
    manifest: Manifest,
    staging: str,
    settings: Settings | None = None,
    loaded_rows: int | None = None,
) -> GateReport:
    async with postgres(settings_or_default(settings)) as conn:
        return await run_gates(conn, decl, manifest, staging, loaded_rows)
