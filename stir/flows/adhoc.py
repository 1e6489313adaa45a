"""Ad-hoc flows for an operator: sync one served table now, retry a failed sync from S3, roll a
table back. Each is a deployment without a schedule in `prefect.yaml`, run from the Prefect UI
or `prefect deployment run`, and each is also what the CLI's commands do."""

from __future__ import annotations

from typing import Any

from prefect import flow

from stir.dbt_project import parse_manifest
from stir.domain.declaration import ServedTable, served_tables
from stir.settings import Settings, get_settings
from stir.tasks.credentials import settings_with_blocks
from stir.tasks.locks import run_label
from stir.tasks.sync import rollback_table, sync_table


async def find_served_table(table: str, settings: Settings) -> ServedTable:
    """The declaration of the served table `table` (`name` or `schema.name`)."""
    declared = served_tables(await parse_manifest(settings))
    for decl in declared:
        if table in (decl.table, decl.ref):
            return decl
    known = ", ".join(decl.ref for decl in declared)
    raise ValueError(f"no served table called {table!r}; the served tables are: {known}")


@flow(name="sync-table")
async def sync_one_table(table: str, run_id: str | None = None) -> dict[str, Any]:
    """Sync one served table now. With `run_id`, retry that run from its S3 export: ClickHouse
    is not queried again."""
    settings = await settings_with_blocks(get_settings())
    decl = await find_served_table(table, settings)
    summary = await sync_table(decl, settings=settings, run_id=run_id)
    return {
        "table": summary.ref,
        "run_id": summary.run_id,
        "rows": summary.rows,
        "reused_export": summary.reused_export,
        "backup": summary.backup,
    }


@flow(name="rollback-table")
async def rollback_one_table(table: str) -> dict[str, Any]:
    """Put the previous version of a served table back (again: undo the rollback)."""
    schema, _, name = table.rpartition(".")
    settings = await settings_with_blocks(get_settings())
    result = await rollback_table(name, schema or "public", settings, run_label())
    return {"table": result.ref, "backup": result.backup, "seconds": result.seconds}
