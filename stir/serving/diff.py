"""The data diff of a sync: the incoming table against the live one, row by row on the keys.

One query in PostgreSQL: a FULL OUTER JOIN of the live and the incoming table on the declared
keys counts the rows added (only in the incoming table), removed (only in the live one),
changed (any served column `IS DISTINCT FROM` its live value) and unchanged; per column, how
many rows changed and, for a numeric column, the largest shift |new - old|. Each column is
compared once per joined row, in a subquery the planner may not merge (`OFFSET 0`); the outer
aggregates only count its booleans. The row of each largest shift is found in the same pass:
the aggregate is `max(ARRAY[shift, row number])` with the incoming row's physical address (ctid)
as its number, so one TID lookup per column afterwards reads its key, old and new value; no
second join.

Run after finalize (`stir.serving.sync`), so the incoming keys are known unique and not NULL
(the primary key) and the table is analyzed; the live table is only read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from stir.domain.declaration import ServedTable
from stir.serving.gates import table_columns
from stir.serving.naming import qualified, quote_ident

log = logging.getLogger("stir.serving.diff")

# Columns whose values the diff measures as shifts (`format_type` names; numeric(p,s) too).
NUMERIC_TYPES = frozenset({"smallint", "integer", "bigint", "real", "double precision", "numeric"})
# Types without an equality operator: compared by their text form.
NO_EQUALITY = frozenset(
    {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}
)
# A tid (block, offset) as one float8 that sorts and decodes exactly: offsets are < 2^16 and
# blocks < 2^32, so the number stays below 2^53.
_OFFSETS = 65536


def _base_type(formatted: str) -> str:
    return formatted.split("(", 1)[0].strip()


def _is_numeric(formatted: str) -> bool:
    return _base_type(formatted) in NUMERIC_TYPES


def _shift(new: str, old: str, live_type: str) -> str:
    """new - old of a numeric column: in float8 for floating point (infinities), else in
    numeric, where no integer difference overflows (32767 - -32768 does in smallint)."""
    kind = "float8" if _base_type(live_type) in ("real", "double precision") else "numeric"
    return f"({new}::{kind} - {old}::{kind})"


@dataclass(frozen=True)
class Shift:
    """The largest change of a numeric column: where (the row's key) and from what to what."""

    key: dict[str, str]  # key column → its value, as text
    old: str
    new: str
    amount: float  # new - old

    @property
    def key_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.key.items())

    @property
    def text(self) -> str:
        return f"{self.amount:+,.6g} at {self.key_text} ({self.old} → {self.new})"


@dataclass(frozen=True)
class ColumnDiff:
    name: str
    changed: int  # rows present on both sides whose value of this column differs
    largest_shift: Shift | None = None  # numeric columns with a change between two numbers


@dataclass(frozen=True)
class TableDiff:
    """The incoming version of a served table against the live one, by key."""

    ref: str  # schema.table
    keys: tuple[str, ...]
    live_rows: int  # 0 when there is no live table
    new_rows: int
    added: int
    removed: int
    changed: int
    unchanged: int
    columns: tuple[ColumnDiff, ...]  # every column compared (the served columns but the keys)
    new_columns: tuple[str, ...] = ()  # in the incoming table only: not compared
    dropped_columns: tuple[str, ...] = ()  # in the live table only: not compared
    has_live: bool = True  # False: no live table yet, every row is added
    seconds: float = 0.0

    @property
    def changed_fraction(self) -> float | None:
        """(added + removed + changed) / live rows; None without live rows to compare with."""
        if not self.live_rows:
            return None
        return (self.added + self.removed + self.changed) / self.live_rows

    @property
    def short(self) -> str:
        """One cell of a table: `+10 -5 ~30 of 1,000 (4.5%)` (added, removed, changed)."""
        if not self.has_live:
            return f"no live table: +{self.added:,}"
        fraction = self.changed_fraction
        share = f" ({fraction:.1%})" if fraction is not None else ""
        return f"+{self.added:,} -{self.removed:,} ~{self.changed:,} of {self.live_rows:,}{share}"

    @property
    def summary(self) -> str:
        """One line: the row counts and the share of the live rows they make."""
        if not self.has_live:
            return f"{self.ref}: no live table yet; all {self.new_rows:,} rows are new"
        fraction = self.changed_fraction
        share = f" = {fraction:.1%} of the live rows" if fraction is not None else ""
        return (
            f"{self.ref}: {self.live_rows:,} live rows → {self.new_rows:,}: {self.added:,} added, "
            f"{self.removed:,} removed, {self.changed:,} changed{share}; "
            f"{self.unchanged:,} unchanged"
        )

    @property
    def changed_columns(self) -> list[ColumnDiff]:
        """The columns with a change, most changed first."""
        return sorted((c for c in self.columns if c.changed), key=lambda c: -c.changed)

    def column_lines(self, limit: int | None = None) -> list[str]:
        """`score: 30 changed, largest shift +86.6 at id=42 (1 → 87.6)`, most changed first."""
        columns = self.changed_columns
        lines = []
        for column in columns[:limit]:
            shift = f", largest shift {column.largest_shift.text}" if column.largest_shift else ""
            lines.append(f"{column.name}: {column.changed:,} changed{shift}")
        if limit is not None and len(columns) > limit:
            lines.append(f"... and {len(columns) - limit} more changed columns")
        return lines + self.schema_lines

    @property
    def schema_lines(self) -> list[str]:
        """The columns on one side only, which the diff cannot compare."""
        lines = []
        if self.new_columns:
            lines.append(f"new columns (not compared): {', '.join(self.new_columns)}")
        if self.dropped_columns:
            lines.append(f"dropped columns (not compared): {', '.join(self.dropped_columns)}")
        return lines

    def markdown(self) -> str:
        lines = [f"## Diff of `{self.ref}` before the swap", "", self.summary, ""]
        if self.columns:
            lines += ["| column | rows changed | largest shift |", "|---|---|---|"]
            for column in self.columns:
                shift = column.largest_shift.text if column.largest_shift else ""
                lines.append(f"| {column.name} | {column.changed:,} | {shift} |")
        lines += ["", *self.schema_lines] if self.schema_lines else []
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the changed fraction."""
        return {**asdict(self), "changed_fraction": self.changed_fraction}


async def diff_tables(conn: asyncpg.Connection, decl: ServedTable, incoming: str) -> TableDiff:
    """`decl`'s live table against `incoming` (same schema), matched on `decl.keys`."""
    if not decl.keys:
        raise ValueError(f"{decl.ref} declares no keys: a diff matches rows by key")
    started = time.monotonic()
    schema, keys = decl.schema, decl.keys
    new_columns = await table_columns(conn, schema, incoming)
    live_columns = await table_columns(conn, schema, decl.table)  # {}: no live table
    if not live_columns or any(k not in live_columns for k in keys):
        # No live table, or one without the keys: no row can match, every row is new.
        count = "SELECT count(*) FROM {}"
        live_rows = (
            await conn.fetchval(count.format(qualified(schema, decl.table))) if live_columns else 0
        )
        rows = await conn.fetchval(count.format(qualified(schema, incoming)))
        return TableDiff(
            decl.ref, keys, live_rows, rows, rows, live_rows, 0, 0, (),
            new_columns=tuple(c for c in new_columns if live_columns and c not in live_columns),
            dropped_columns=tuple(c for c in live_columns if c not in new_columns),
            has_live=bool(live_columns), seconds=time.monotonic() - started,
        )  # fmt: skip
    compared = [c for c in new_columns if c in live_columns and c not in keys]

    def differs(column: str) -> str:
        live_type, new_type = live_columns[column], new_columns[column]
        name = quote_ident(column)
        if live_type != new_type or _base_type(new_type) in NO_EQUALITY:
            return f"l.{name}::text IS DISTINCT FROM n.{name}::text"
        return f"l.{name} IS DISTINCT FROM n.{name}"

    numeric = [c for c in compared if _is_numeric(live_columns[c]) and _is_numeric(new_columns[c])]
    # Per joined row (the inner query, kept apart by OFFSET 0 so that each comparison runs once
    # per row, not once per aggregate that reads it): which side it is on, whether each column
    # differs, and the old and new values of the numeric columns.
    per_row = [
        "l.ctid IS NULL AS added",
        "n.ctid IS NULL AS removed",
        "l.ctid IS NOT NULL AND n.ctid IS NOT NULL AS matched",
        "n.ctid AS tid",
    ]
    select = [
        "count(*) FILTER (WHERE added) AS added",
        "count(*) FILTER (WHERE removed) AS removed",
        "count(*) FILTER (WHERE matched) AS matched",
    ]
    if compared:
        any_differs = " OR ".join(f"d{i}" for i in range(len(compared)))
        select.append(f"count(*) FILTER (WHERE matched AND ({any_differs})) AS changed")
    # The incoming row's tid as one number; in an aggregate's argument, which is evaluated only
    # for the rows its FILTER lets through (the changed ones).
    row_number = f"((tid::text::point)[0] * {_OFFSETS} + (tid::text::point)[1])"
    for i, column in enumerate(compared):
        per_row.append(f"{differs(column)} AS d{i}")
        select.append(f"count(*) FILTER (WHERE matched AND d{i}) AS c{i}")
        if column in numeric:
            name = quote_ident(column)
            per_row += [f"l.{name} AS old{i}", f"n.{name} AS new{i}"]
            select.append(
                f"max(ARRAY[abs({_shift(f'new{i}', f'old{i}', live_columns[column])})::float8, "
                f"{row_number}]) FILTER (WHERE d{i} AND old{i} IS NOT NULL AND new{i} IS NOT NULL) "
                f"AS s{i}"
            )
    on = " AND ".join(
        f"l.{quote_ident(k)} = n.{quote_ident(k)}"
        if live_columns[k] == new_columns[k]
        else f"l.{quote_ident(k)}::text = n.{quote_ident(k)}::text"  # a retyped key
        for k in keys
    )
    counts = await conn.fetchrow(
        f"SELECT {', '.join(select)} FROM (SELECT {', '.join(per_row)} "
        f"FROM {qualified(schema, decl.table)} l FULL OUTER JOIN {qualified(schema, incoming)} n "
        f"ON {on} OFFSET 0) joined"
    )
    changed = counts["changed"] if compared else 0
    columns = []
    for i, column in enumerate(compared):
        found = counts.get(f"s{i}") if column in numeric else None
        shift = (
            await _shift_at(conn, decl, incoming, column, live_columns, found[1]) if found else None
        )
        columns.append(ColumnDiff(column, counts[f"c{i}"], shift))
    diff = TableDiff(
        ref=decl.ref,
        keys=keys,
        live_rows=counts["removed"] + counts["matched"],
        new_rows=counts["added"] + counts["matched"],
        added=counts["added"],
        removed=counts["removed"],
        changed=changed,
        unchanged=counts["matched"] - changed,
        columns=tuple(columns),
        new_columns=tuple(c for c in new_columns if c not in live_columns),
        dropped_columns=tuple(c for c in live_columns if c not in new_columns),
        seconds=time.monotonic() - started,
    )
    log.info("diff %s in %.2f s", diff.summary, diff.seconds)
    return diff


async def _shift_at(
    conn: asyncpg.Connection,
    decl: ServedTable,
    incoming: str,
    column: str,
    live_columns: dict[str, str],
    row: float,
) -> Shift:
    """The key, old and new value of `column` in the incoming row numbered `row`."""
    tid = f"({int(row) // _OFFSETS},{int(row) % _OFFSETS})"
    name = quote_ident(column)
    keys = [quote_ident(k) for k in decl.keys]
    on = " AND ".join(f"l.{k} = n.{k}" for k in keys)
    found = await conn.fetchrow(
        f"SELECT {', '.join(f'n.{k}::text' for k in keys)}, l.{name}::text, n.{name}::text, "
        f"{_shift(f'n.{name}', f'l.{name}', live_columns[column])}::float8 "
        f"FROM {qualified(decl.schema, incoming)} n JOIN {qualified(decl.schema, decl.table)} l "
        f"ON {on} WHERE n.ctid = $1::text::tid",
        tid,
    )
    width = len(keys)  # positions, not names: a key column may be called `old`
    key = {k: found[i] for i, k in enumerate(decl.keys)}
    return Shift(key, found[width], found[width + 1], found[width + 2])
