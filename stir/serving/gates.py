"""Gates: what an incoming table must satisfy before it may replace the live table.

Each gate is configured per table (`Gates` in the declaration) and fails with a `GateError` that
names the table, the gate and the numbers. The live table is only read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg

from stir.domain.declaration import ServedTable
from stir.errors import _rebuild
from stir.serving.freshness import read_stamp
from stir.serving.manifest import Manifest
from stir.serving.naming import index_name, qualified, quote_ident

if TYPE_CHECKING:
    from stir.serving.diff import TableDiff

log = logging.getLogger("stir.serving.gates")
# Per-column lines of the diff gate's message (a Slack alert shows ~1,500 characters of it).
ERROR_COLUMNS = 8


class GateError(RuntimeError):
    def __init__(self, ref: str, gate: str, message: str, diff: TableDiff | None = None) -> None:
        super().__init__(f"gate {gate} failed for {ref}: {message}")
        self.ref, self.gate = ref, gate  # ref: the served table as schema.table
        self.diff = diff  # the data diff the gate refused, for the run's artifact

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect may persist a failed task's exception: rebuild it with its fields
        # (BaseException's default would call GateError(message), which needs ref and gate).
        return _rebuild, (type(self), self.args, dict(self.__dict__))


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


async def live_row_count(conn: asyncpg.Connection, schema: str, table: str) -> int | None:
    """Rows of the live table (None: there is none): from its sync stamp, else counted."""
    if not await exists(conn, schema, table):
        return None
    stamped = await read_stamp(conn, schema, table)
    if stamped is not None and stamped.rows is not None:
        return stamped.rows
    return await conn.fetchval(f"SELECT count(*) FROM {qualified(schema, table)}")


async def run_gates(
    conn: asyncpg.Connection,
    decl: ServedTable,
    manifest: Manifest,
    incoming: str,
    loaded_rows: int | None = None,
) -> GateReport:
    """Manifest count, row count against the live table, columns. The keys gate is the primary
    key's creation (`add_primary_key`), which checks uniqueness and NOT NULL in the one pass
    that builds the index anyway. `loaded_rows` (what COPY reported) saves a count."""
    ref, gates, schema = decl.ref, decl.gates, decl.schema
    passed: list[str] = []
    notes: list[str] = []
    rows = loaded_rows
    if rows is None:
        rows = await conn.fetchval(f"SELECT count(*) FROM {qualified(schema, incoming)}")

    if rows != manifest.rows:
        raise GateError(
            ref, "manifest_count", f"{rows} rows loaded, the manifest of run "
            f"{manifest.run_id} says {manifest.rows}",
        )  # fmt: skip
    passed.append("manifest_count")

    live_rows = await live_row_count(conn, schema, decl.table)
    if rows == 0 and not gates.allow_empty:
        raise GateError(
            ref, "row_count", f"the new version is empty (live has {live_rows or 0} rows); "
            "set gates.allow_empty to allow it",
        )  # fmt: skip
    if live_rows:
        ratio = rows / live_rows
        if ratio < gates.min_ratio:
            raise GateError(
                ref, "row_count", f"{rows} rows is {ratio:.1%} of the live {live_rows} "
                f"(minimum {gates.min_ratio:.0%})",
            )  # fmt: skip
        if gates.max_ratio is not None and ratio > gates.max_ratio:
            raise GateError(
                ref, "row_count", f"{rows} rows is {ratio:.1%} of the live {live_rows} "
                f"(maximum {gates.max_ratio:.0%})",
            )  # fmt: skip
    passed.append("row_count")

    if live_rows is not None:
        live = await table_columns(conn, schema, decl.table)
        new = await table_columns(conn, schema, incoming)
        dropped = [c for c in live if c not in new]
        retyped = [f"{c} {live[c]} -> {new[c]}" for c in live if c in new and new[c] != live[c]]
        if dropped and not gates.allow_drop_columns:
            raise GateError(
                ref, "columns", f"columns {dropped} would be dropped; "
                "set gates.allow_drop_columns to allow it",
            )  # fmt: skip
        if retyped and not gates.allow_retype_columns:
            raise GateError(
                ref, "columns", f"columns would change type: {', '.join(retyped)}; "
                "set gates.allow_retype_columns to allow it",
            )  # fmt: skip
        added = [c for c in new if c not in live]
        if added:
            notes.append(f"new columns: {added}")
        if dropped or retyped:
            notes.append(f"dropped {dropped}, retyped {retyped} (allowed)")
        passed.append("columns")
    log.info("gates %s: %s passed (%s rows, live %s)", ref, ", ".join(passed), rows, live_rows)
    return GateReport(rows, live_rows, tuple(passed), tuple(notes))


async def add_primary_key(conn: asyncpg.Connection, decl: ServedTable, incoming: str) -> None:
    """The primary key on the declared keys, which is also the keys gate: a NULL or repeated key
    fails the build, and only then are they counted for the message."""
    target = qualified(decl.schema, incoming)
    keys = ", ".join(quote_ident(k) for k in decl.keys)
    pkey = quote_ident(index_name(incoming, "pkey"))
    try:
        await conn.execute(f"ALTER TABLE {target} ADD CONSTRAINT {pkey} PRIMARY KEY ({keys})")
    except asyncpg.NotNullViolationError:
        any_null = " OR ".join(f"{quote_ident(k)} IS NULL" for k in decl.keys)
        counts = await conn.fetchrow(
            f"SELECT count(*) FILTER (WHERE {any_null}) AS nulls, count(*) AS total FROM {target}"
        )
        raise GateError(
            decl.ref, "keys_not_null",
            f"{counts['nulls']} of {counts['total']} rows have a NULL key ({keys})",
        ) from None  # fmt: skip
    except asyncpg.UniqueViolationError:
        dup = await conn.fetchrow(
            f"SELECT count(*) AS n, min(d.k::text) AS example FROM (SELECT ({keys}) AS k FROM "
            f"{target} GROUP BY {keys} HAVING count(*) > 1) d"
        )
        raise GateError(
            decl.ref, "keys_unique", f"{dup['n']} key values ({keys}) occur more than once, "
            f"e.g. {dup['example']}",
        ) from None  # fmt: skip


def check_changed_fraction(decl: ServedTable, diff: TableDiff) -> bool:
    """The diff gate: added + removed + changed rows over the live rows at most
    `gates.max_changed_fraction`. False when not declared; True when it passed (also when there
    are no live rows to compare with). The error's first line has the numbers; the lines after
    it the most changed columns, so the Slack alert shows what changed."""
    bound = decl.gates.max_changed_fraction
    if bound is None:
        return False
    fraction = diff.changed_fraction
    if fraction is not None and fraction > bound:
        raise GateError(
            decl.ref, "max_changed_fraction",
            f"{fraction:.1%} of the {diff.live_rows:,} live rows would change (bound "
            f"{bound:.1%}): {diff.added:,} added, {diff.removed:,} removed, {diff.changed:,} "
            "changed"
            + "".join(f"\n{line}" for line in diff.column_lines(ERROR_COLUMNS)),
            diff=diff,
        )  # fmt: skip
    return True
