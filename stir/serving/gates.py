"""Gates: what a staged version must satisfy before it may replace the live table.

Each gate is configured per table (`Gates` in the declaration) and fails with a `GateError` that
names the table, the gate and the numbers. The live table is only read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import asyncpg

from stir.serving.declaration import ServedTable
from stir.serving.manifest import Manifest
from stir.serving.naming import qualified, quote_ident

log = logging.getLogger("stir.serving.gates")


class GateError(RuntimeError):
    def __init__(self, table: str, gate: str, message: str) -> None:
        super().__init__(f"gate {gate} failed for {table}: {message}")
        self.table, self.gate = table, gate


@dataclass(frozen=True)
class GateReport:
    rows: int
    live_rows: int | None
    passed: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


async def table_columns(conn: asyncpg.Connection, schema: str, name: str) -> dict[str, str]:
    """name → formatted type of a table's columns, in order ({} when there is no such table)."""
    rows = await conn.fetch(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
           FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0
           AND NOT a.attisdropped ORDER BY a.attnum""",
        qualified(schema, name),
    )
    return {r["attname"]: r["type"] for r in rows}


async def exists(conn: asyncpg.Connection, schema: str, name: str) -> bool:
    return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", qualified(schema, name))


async def run_gates(
    conn: asyncpg.Connection, decl: ServedTable, manifest: Manifest, staging: str
) -> GateReport:
    table, gates, schema = decl.ref, decl.gates, decl.schema
    passed: list[str] = []
    notes: list[str] = []
    rows = await conn.fetchval(f"SELECT count(*) FROM {qualified(schema, staging)}")

    if rows != manifest.rows:
        raise GateError(
            table, "manifest_count", f"{rows} rows loaded, the manifest of run "
            f"{manifest.run_id} says {manifest.rows}",
        )  # fmt: skip
    passed.append("manifest_count")

    if decl.keys and gates.check_keys:
        keys = ", ".join(quote_ident(k) for k in decl.keys)
        any_null = " OR ".join(f"{quote_ident(k)} IS NULL" for k in decl.keys)
        nulls = await conn.fetchval(
            f"SELECT count(*) FROM {qualified(schema, staging)} WHERE {any_null}"
        )
        if nulls:
            raise GateError(
                table, "keys_not_null", f"{nulls} of {rows} rows have a NULL key ({keys})"
            )
        dup = await conn.fetchrow(
            f"SELECT count(*) AS n, min(d.k::text) AS example FROM (SELECT ({keys}) AS k FROM "
            f"{qualified(schema, staging)} GROUP BY {keys} HAVING count(*) > 1) d"
        )
        if dup["n"]:
            raise GateError(
                table, "keys_unique", f"{dup['n']} key values ({keys}) occur more than once, "
                f"e.g. {dup['example']}",
            )  # fmt: skip
        passed.append("keys")

    live_rows: int | None = None
    if await exists(conn, schema, decl.table):
        live_rows = await conn.fetchval(f"SELECT count(*) FROM {qualified(schema, decl.table)}")
    if rows == 0 and not gates.allow_empty:
        raise GateError(
            table, "row_count", f"the new version is empty (live has {live_rows or 0} rows); "
            "set gates.allow_empty to allow it",
        )  # fmt: skip
    if live_rows:
        ratio = rows / live_rows
        if ratio < gates.min_ratio:
            raise GateError(
                table, "row_count", f"{rows} rows is {ratio:.1%} of the live {live_rows} "
                f"(minimum {gates.min_ratio:.0%})",
            )  # fmt: skip
        if gates.max_ratio is not None and ratio > gates.max_ratio:
            raise GateError(
                table, "row_count", f"{rows} rows is {ratio:.1%} of the live {live_rows} "
                f"(maximum {gates.max_ratio:.0%})",
            )  # fmt: skip
    passed.append("row_count")

    if live_rows is not None:
        live = await table_columns(conn, schema, decl.table)
        new = await table_columns(conn, schema, staging)
        dropped = [c for c in live if c not in new]
        retyped = [f"{c} {live[c]} -> {new[c]}" for c in live if c in new and new[c] != live[c]]
        if dropped and not gates.allow_drop_columns:
            raise GateError(
                table, "columns", f"columns {dropped} would be dropped; "
                "set gates.allow_drop_columns to allow it",
            )  # fmt: skip
        if retyped and not gates.allow_retype_columns:
            raise GateError(
                table, "columns", f"columns would change type: {', '.join(retyped)}; "
                "set gates.allow_retype_columns to allow it",
            )  # fmt: skip
        added = [c for c in new if c not in live]
        if added:
            notes.append(f"new columns: {added}")
        if dropped or retyped:
            notes.append(f"dropped {dropped}, retyped {retyped} (allowed)")
        passed.append("columns")
    log.info("gates %s: %s passed (%s rows, live %s)", table, ", ".join(passed), rows, live_rows)
    return GateReport(rows, live_rows, tuple(passed), tuple(notes))
