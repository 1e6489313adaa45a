"""When a served table was last synced, kept on the table itself.

Each sync stamps its incoming table with a COMMENT (JSON: run id, when ClickHouse was read, when
the table was loaded) before the swap; a comment belongs to the table, so the stamp goes live
with it and comes back with it on rollback. `stir freshness`, `stir status` and the monitoring
tier read it against each tier's SLA; a table without a stamp counts as never synced, apart from
the fresh and the stale ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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


NEVER_SYNCED = "never synced"
STALE = "STALE"


@dataclass(frozen=True)
class TableFreshness:
    ref: str  # the served table as schema.table
    tier: str
    sla: timedelta
    synced_at: datetime | None
    age: timedelta | None
    run_id: str | None = None  # the sync run that filled the live version

    @property
    def age_text(self) -> str:
        """The age to the second ("1:02:03"), "-" when never synced."""
        return str(self.age).split(".")[0] if self.age is not None else "-"

    @property
    def state(self) -> str:
        """ok, STALE (older than its tier's SLA), or never synced (no stamped table: the
        application finds no table, or one no sync filled)."""
        if self.age is None:
            return NEVER_SYNCED
        return "ok" if self.age <= self.sla else STALE


@dataclass(frozen=True)
class FreshnessCounts:
    """How many served tables are in each state: what a one-line summary must say."""

    total: int
    ok: int
    stale: int
    never_synced: int

    @classmethod
    def of(cls, report: Sequence[TableFreshness]) -> FreshnessCounts:
        states = [item.state for item in report]
        return cls(len(states), states.count("ok"), states.count(STALE), states.count(NEVER_SYNCED))

    @property
    def all_fresh(self) -> bool:
        return self.ok == self.total

    def text(self) -> str:
        """One line: `85 served tables: 12 within their SLA, 2 past their SLA, 71 never synced`.
        A table never synced is neither fresh nor past its SLA: it is counted on its own."""
        return (
            f"{self.total} served tables: {self.ok} within their SLA, "
            f"{self.stale} past their SLA, {self.never_synced} never synced"
        )


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
                run_id = stamp.run_id if stamp else None
                report.append(
                    TableFreshness(decl.ref, spec.name, spec.freshness_sla, synced_at, age, run_id)
                )
    return report
