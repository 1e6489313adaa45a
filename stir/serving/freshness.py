"""When a served table was last synced, kept on the table itself.

Each sync stamps its incoming table with a COMMENT (JSON: run id, when ClickHouse was read, when
the table was loaded) before the swap; a comment belongs to the table, so the stamp goes live
with it and comes back with it on rollback. `stir freshness` reads it against each tier's SLA.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from stir.connections import postgres
from stir.domain.tiers import TIERS
from stir.serving.manifest import Manifest
from stir.serving.naming import qualified, quote_literal
from stir.settings import Settings

STAMP_KEY = "stir"


@dataclass(frozen=True)
class SyncStamp:
    run_id: str
    exported_at: str
    synced_at: datetime
    rows: int | None = None  # rows of the version stamped (None: stamped before rows were kept)


async def stamp(conn: asyncpg.Connection, schema: str, table: str, manifest: Manifest) -> None:
    """Record on `schema.table` which run filled it, when, and how many rows it holds."""
    now = datetime.now(UTC).isoformat()
    payload = {
        "run_id": manifest.run_id, "exported_at": manifest.created_at, "synced_at": now,
        "rows": manifest.rows,
    }  # fmt: skip
    comment = json.dumps({STAMP_KEY: payload})
    await conn.execute(f"COMMENT ON TABLE {qualified(schema, table)} IS {quote_literal(comment)}")


async def read_stamp(conn: asyncpg.Connection, schema: str, table: str) -> SyncStamp | None:
    """The stamp of the live table, or None when it does not exist or was never synced."""
    comment = await conn.fetchval(
        "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
        schema,
        table,
    )
    try:
        payload = json.loads(comment)[STAMP_KEY]
        rows = payload.get("rows")
        return SyncStamp(
            payload["run_id"], payload["exported_at"], datetime.fromisoformat(payload["synced_at"]),
            int(rows) if isinstance(rows, int) else None,
        )  # fmt: skip
    except (TypeError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class TableFreshness:
    ref: str  # the served table as schema.table
    tier: str
    sla: timedelta
    synced_at: datetime | None
    age: timedelta | None

    @property
    def age_text(self) -> str:
        """The age to the second ("1:02:03"), "-" when never synced."""
        return str(self.age).split(".")[0] if self.age is not None else "-"

    @property
    def state(self) -> str:
        if self.age is None:
            return "never synced"
        return "ok" if self.age <= self.sla else "STALE"


async def freshness_report(manifest: dict[str, Any], settings: Settings) -> list[TableFreshness]:
    """Every served table of every tier: when it was last synced, against its tier's SLA."""
    now = datetime.now(UTC)
    report = []
    async with postgres(settings) as conn:
        for spec in TIERS:
            for decl in spec.served_tables(manifest):
                stamp = await read_stamp(conn, decl.schema, decl.table)
                synced_at = stamp.synced_at if stamp else None
                age = now - synced_at if synced_at else None
                report.append(
                    TableFreshness(decl.ref, spec.name, spec.freshness_sla, synced_at, age)
                )
    return report
