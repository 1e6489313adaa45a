"""The atomic swap: the staged table becomes the live one in one short transaction.

Protocol (one transaction, `lock_timeout` short, retried a bounded number of times):

1. `LOCK TABLE <t> IN ACCESS EXCLUSIVE MODE` (readers wait at most `lock_timeout` behind us);
2. capture the views that depend on `<t>` (recursively), their definitions (`pg_get_viewdef`
   with an empty search path, so every name is schema-qualified), options, owners and grants,
   and `<t>`'s owner and grants; drop those views;
3. drop `<t>_old_bkp`; rename `<t>` → `<t>_old_bkp` and the staged table → `<t>`, renaming every
   index after its table (`<table>_pkey`, `<table>_<cols>_idx`: index names are unique per schema);
4. give the new `<t>` the old one's owner and grants; recreate the views (they bind to a table's
   identity, so they must be re-created against the new table) with their owners and grants.

`rollback` exchanges `<t>` and `<t>_old_bkp` the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass

import asyncpg

from stir.serving.naming import (
    backup_name,
    fit,
    index_name,
    index_role,
    qualified,
    quote_ident,
    staging_prefix,
)

log = logging.getLogger("stir.serving.swap")

_RETRYABLE = (asyncpg.exceptions.LockNotAvailableError, asyncpg.exceptions.DeadlockDetectedError)


class SwapError(RuntimeError):
    """The swap did not happen; the live table is unchanged."""


@dataclass(frozen=True)
class SwapResult:
    table: str
    backup: str | None
    attempts: int
    seconds: float
    views: tuple[str, ...]


@dataclass(frozen=True)
class _Grant:
    grantee: str | None  # None: PUBLIC
    privilege: str
    grantable: bool


@dataclass(frozen=True)
class _View:
    schema: str
    name: str
    definition: str
    options: list[str] | None
    owner: str
    grants: list[_Grant]


async def _owner_and_grants(conn: asyncpg.Connection, oid: int) -> tuple[str, list[_Grant]]:
    owner = await conn.fetchval(
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = $1", oid
    )
    rows = await conn.fetch(
        """SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee,
                  a.privilege_type, a.is_grantable
           FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1""",
        oid,
    )
    grants = [
        _Grant(r["grantee"], r["privilege_type"], r["is_grantable"])
        for r in rows
        if r["grantee"] != owner
    ]
    return owner, grants


async def _apply_owner_and_grants(
    conn: asyncpg.Connection, kind: str, target: str, owner: str, grants: list[_Grant]
) -> None:
    current = await conn.fetchval(
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass($1)", target
    )
    if current != owner:
        await conn.execute(f"ALTER {kind} {target} OWNER TO {quote_ident(owner)}")
    for g in grants:
        grantee = "PUBLIC" if g.grantee is None else quote_ident(g.grantee)
        option = " WITH GRANT OPTION" if g.grantable else ""
        await conn.execute(f"GRANT {g.privilege} ON {target} TO {grantee}{option}")


async def _dependent_views(conn: asyncpg.Connection, target: str) -> list[_View]:
    rows = await conn.fetch(
        """WITH RECURSIVE deps(oid, depth) AS (
             SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass($1)
               AND r.ev_class <> d.refobjid
             UNION
             SELECT r.ev_class, deps.depth + 1 FROM deps
             JOIN pg_depend d ON d.refobjid = deps.oid AND d.classid = 'pg_rewrite'::regclass
             JOIN pg_rewrite r ON r.oid = d.objid WHERE r.ev_class <> d.refobjid
           )
           SELECT c.oid, n.nspname, c.relname, c.relkind::text AS relkind, max(deps.depth) AS depth,
                  pg_get_viewdef(c.oid) AS def, c.reloptions
           FROM deps JOIN pg_class c ON c.oid = deps.oid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           GROUP BY c.oid, n.nspname, c.relname, c.relkind, c.reloptions
           ORDER BY depth, c.relname""",
        target,
    )
    views = []
    for r in rows:
        if r["relkind"] != "v":
            raise SwapError(
                f"{r['nspname']}.{r['relname']} (relkind {r['relkind']}) depends on {target}; "
                "only plain views are carried over by a swap"
            )
        owner, grants = await _owner_and_grants(conn, r["oid"])
        views.append(_View(r["nspname"], r["relname"], r["def"], r["reloptions"], owner, grants))
    return views


async def _index_roles(conn: asyncpg.Connection, target: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        """SELECT i.relname AS name, x.indisprimary AS is_primary, x.indisunique AS is_unique,
                  am.amname AS method,
                  ARRAY(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(num, n)
                        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num
                        ORDER BY k.n) AS columns,
                  coalesce(pg_get_expr(x.indexprs, x.indrelid), '') ||
                  coalesce(pg_get_expr(x.indpred, x.indrelid), '') AS expr
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_am am ON am.oid = i.relam
           WHERE x.indrelid = to_regclass($1) ORDER BY i.relname""",
        target,
    )
    roles: list[tuple[str, str]] = []
    seen: set[str] = set()
    for r in rows:
        columns = list(r["columns"])
        if r["expr"]:
            digest = hashlib.md5(r["expr"].encode(), usedforsecurity=False).hexdigest()
            columns.append(f"expr{digest[:8]}")
        role = index_role(
            columns, primary=r["is_primary"], unique=r["is_unique"], method=r["method"]
        )
        base, n = role, 2
        while role in seen:
            role, n = f"{base}{n}", n + 1
        seen.add(role)
        roles.append((r["name"], role))
    return roles


async def _rename_table(conn: asyncpg.Connection, schema: str, old: str, new: str) -> None:
    await conn.execute(f"ALTER TABLE {qualified(schema, old)} RENAME TO {quote_ident(new)}")
    for name, role in await _index_roles(conn, qualified(schema, new)):
        target = index_name(new, role)
        if target != name:
            await conn.execute(
                f"ALTER INDEX {qualified(schema, name)} RENAME TO {quote_ident(target)}"
            )


async def _exists(conn: asyncpg.Connection, schema: str, name: str) -> bool:
    return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", qualified(schema, name))


async def _promote(
    conn: asyncpg.Connection, schema: str, table: str, incoming: str, lock_timeout_ms: int
) -> tuple[str | None, list[_View]]:
    """One attempt, inside a transaction: `incoming` becomes `table`."""
    backup = backup_name(table)
    live = qualified(schema, table)
    await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
    await conn.execute("SET LOCAL search_path = pg_catalog")
    if not await _exists(conn, schema, incoming):
        raise SwapError(f"swap {schema}.{table}: {schema}.{incoming} does not exist")
    if not await _exists(conn, schema, table):
        await _rename_table(conn, schema, incoming, table)
        return None, []
    await conn.execute(f"LOCK TABLE {live} IN ACCESS EXCLUSIVE MODE")
    if incoming == backup:
        await conn.execute(f"LOCK TABLE {qualified(schema, backup)} IN ACCESS EXCLUSIVE MODE")
    oid = await conn.fetchval("SELECT to_regclass($1)::oid", live)
    owner, grants = await _owner_and_grants(conn, oid)
    views = await _dependent_views(conn, live)
    for view in reversed(views):
        await conn.execute(f"DROP VIEW {qualified(view.schema, view.name)}")
    if incoming == backup:  # rollback: exchange the two
        parked = fit(staging_prefix(table) + "rollback")
        await _rename_table(conn, schema, table, parked)
        await _rename_table(conn, schema, backup, table)
        await _rename_table(conn, schema, parked, backup)
    else:
        await conn.execute(f"DROP TABLE IF EXISTS {qualified(schema, backup)}")
        await _rename_table(conn, schema, table, backup)
        await _rename_table(conn, schema, incoming, table)
    await _apply_owner_and_grants(conn, "TABLE", live, owner, grants)
    for view in views:
        target = qualified(view.schema, view.name)
        options = f" WITH ({', '.join(view.options)})" if view.options else ""
        await conn.execute(f"CREATE VIEW {target}{options} AS {view.definition}")
        await _apply_owner_and_grants(conn, "VIEW", target, view.owner, view.grants)
    return backup, views


async def _run(
    conn: asyncpg.Connection, schema: str, table: str, incoming: str, what: str,
    lock_timeout_ms: int, attempts: int, backoff: float,
) -> SwapResult:  # fmt: skip
    started = time.monotonic()
    for attempt in range(1, attempts + 1):
        try:
            async with conn.transaction():
                backup, views = await _promote(conn, schema, table, incoming, lock_timeout_ms)
        except _RETRYABLE as exc:
            log.warning(
                "%s %s.%s: attempt %d/%d could not lock in %d ms (%s)",
                what, schema, table, attempt, attempts, lock_timeout_ms, type(exc).__name__,
            )  # fmt: skip
            if attempt < attempts:
                await asyncio.sleep(backoff * 2 ** (attempt - 1))
            continue
        except asyncpg.PostgresError as exc:
            raise SwapError(
                f"{what} {schema}.{table} failed, nothing changed: {type(exc).__name__}: {exc}"
            ) from None
        seconds = time.monotonic() - started
        names = tuple(f"{v.schema}.{v.name}" for v in views)
        log.info(
            "%s %s.%s: done in %.3f s (attempt %d), previous kept as %s, views re-created: %s",
            what, schema, table, seconds, attempt, backup, ", ".join(names) or "none",
        )  # fmt: skip
        return SwapResult(f"{schema}.{table}", backup, attempt, seconds, names)
    raise SwapError(
        f"{what} {schema}.{table} failed: the table stayed locked by another transaction "
        f"(lock_timeout {lock_timeout_ms} ms, {attempts} attempts); the live table is unchanged"
    )


async def swap(
    conn: asyncpg.Connection, schema: str, table: str, staging: str, *,
    lock_timeout_ms: int = 2000, attempts: int = 5, backoff: float = 0.5,
) -> SwapResult:  # fmt: skip
    """Make `staging` the live `table`; the previous one is kept as `<table>_old_bkp`."""
    return await _run(conn, schema, table, staging, "swap", lock_timeout_ms, attempts, backoff)


async def rollback(
    conn: asyncpg.Connection, schema: str, table: str, *,
    lock_timeout_ms: int = 2000, attempts: int = 5, backoff: float = 0.5,
) -> SwapResult:  # fmt: skip
    """Put `<table>_old_bkp` back as `table` (and the current one becomes the backup)."""
    backup = backup_name(table)
    if not await _exists(conn, schema, backup):
        raise SwapError(f"rollback {schema}.{table}: there is no {schema}.{backup} to restore")
    return await _run(conn, schema, table, backup, "rollback", lock_timeout_ms, attempts, backoff)
