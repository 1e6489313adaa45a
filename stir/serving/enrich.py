"""Enrichment: the loaded mart LEFT JOINed against operational PostgreSQL tables.

The incoming table's (typed) rows and the joined columns go into a new UNLOGGED table in one
`INSERT ... SELECT`, which then takes the incoming table's name. A join that matches more than one
row for a mart row would multiply rows; that fails as the `enrich` gate.
"""

from __future__ import annotations

import logging
import time

import asyncpg

from stir.domain.declaration import ServedTable
from stir.serving.gates import GateError
from stir.serving.load import LoadError, column_ddl, describe_pg_error
from stir.serving.manifest import Manifest
from stir.serving.naming import fit, qualified, quote_ident

log = logging.getLogger("stir.serving.enrich")


async def enrich(
    conn: asyncpg.Connection, decl: ServedTable, manifest: Manifest, incoming: str, rows: int
) -> float:
    """Add the declared joined columns to `incoming` (same name afterwards); seconds taken."""
    started = time.monotonic()
    schema = decl.schema
    enriched = fit(incoming + "_e")
    taken = {c.name for c in manifest.columns}
    ddl = [column_ddl(manifest)]
    selected = [f"s.{quote_ident(c.name)}" for c in manifest.columns]
    names = [quote_ident(c.name) for c in manifest.columns]
    joins = []
    for e in decl.enrich:
        join_schema, _, join_table = e.join.rpartition(".")
        source = qualified(join_schema or schema, join_table)
        types = dict(
            await conn.fetch(
                """SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
                   WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped""",
                source,
            )
        )
        if not types:
            raise LoadError(f"enrich {decl.ref}: the table {e.join} does not exist")
        for new, column in e.columns:
            if column not in types:
                raise LoadError(f"enrich {decl.ref}: {e.join} has no column {column!r}")
            if new in taken:
                raise LoadError(f"enrich {decl.ref}: column {new!r} exists already")
            taken.add(new)
            ddl.append(f"{quote_ident(new)} {types[column]}")
            selected.append(f"{source}.{quote_ident(column)}")
            names.append(quote_ident(new))
        joins.append(f"LEFT JOIN {source} ON ({e.on})")
    await conn.execute(f"CREATE UNLOGGED TABLE {qualified(schema, enriched)} ({', '.join(ddl)})")
    try:
        status = await conn.execute(
            f"INSERT INTO {qualified(schema, enriched)} ({', '.join(names)}) "
            f"SELECT {', '.join(selected)} FROM {qualified(schema, incoming)} AS s "
            + " ".join(joins)
        )
    except asyncpg.PostgresError as exc:
        raise LoadError(f"enrich {decl.ref}: {describe_pg_error(exc)}") from None
    enriched_rows = int(status.split()[-1])
    if enriched_rows != rows:
        raise GateError(
            decl.ref, "enrich", f"the joins turned {rows} rows into {enriched_rows}: "
            "a join matches more than one row for some mart rows",
        )  # fmt: skip
    async with conn.transaction():
        await conn.execute(f"DROP TABLE {qualified(schema, incoming)}")
        await conn.execute(
            f"ALTER TABLE {qualified(schema, enriched)} RENAME TO {quote_ident(incoming)}"
        )
    seconds = time.monotonic() - started
    log.info(
        "enrich %s: %s rows joined with %s in %.2f s",
        decl.ref, f"{rows:,}", ", ".join(e.join for e in decl.enrich), seconds,
    )  # fmt: skip
    return seconds
