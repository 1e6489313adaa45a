"""The atomic swap: the incoming table becomes the live one in one short transaction.

Each attempt is one transaction with a short `lock_timeout`; an attempt that cannot get its locks
in time (or is chosen as a deadlock victim) is rolled back and retried with backoff, a bounded
number of times (`SwapError` after the last: the live table is unchanged).

1. Plan, before any lock, from the catalogs: the views that depend on `<t>` (recursively), with
   their definitions (`pg_get_viewdef` with an empty search path, so every name is
   schema-qualified), options, owners and grants; `<t>`'s owner and grants; and the statements:
   drop those views; rename the previous `<t>_old_bkp` aside to a discard name (dropping a big
   table under the lock would hold readers for its whole unlink); rename `<t>` → `<t>_old_bkp`
   and the incoming table → `<t>`, renaming every index after its table (`<table>_pkey`,
   `<table>_<cols>_idx`: index names are unique per schema); give the new `<t>` the old one's
   owner and grants; re-create the views (they bind to a table's identity) with theirs.
2. `LOCK TABLE <views on t>, <t> IN ACCESS EXCLUSIVE MODE`, views first, in the order readers take
   them (a reader locks the view, then what it reads; the other order deadlocks).
3. Under the lock: re-read the dependent views, and re-plan only if they changed meanwhile; then
   run the plan as ONE batch of DDL and commit. Readers wait milliseconds.
4. After the commit, drop the discarded old backup (a failure there is only logged: its name has
   the incoming prefix, so the table's next sync drops it).

With no live `<t>` yet, the incoming table is just renamed. `rollback` exchanges `<t>` and
`<t>_old_bkp` the same way, through a parked name.
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
    incoming_prefix,
    index_name,
    index_role,
    qualified,
    quote_ident,
)

log = logging.getLogger("stir.serving.swap")

_RETRYABLE = (asyncpg.exceptions.LockNotAvailableError, asyncpg.exceptions.DeadlockDetectedError)


class SwapError(RuntimeError):
    """The swap did not happen; the live table is unchanged."""


@dataclass(frozen=True)
class SwapResult:
    ref: str  # the swapped table as schema.table
    backup: str | None
    attempts: int
    seconds: float
    views: tuple[str, ...]
    # From the ACCESS EXCLUSIVE lock granted to the commit: how long readers were held back.
    lock_seconds: float = 0.0


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


def _owner_and_grants_sql(
    kind: str, target: str, current_owner: str, owner: str, grants: list[_Grant]
) -> list[str]:
    """Statements giving `target` the owner and grants of the object it replaces."""
    statements = []
    if current_owner != owner:
        statements.append(f"ALTER {kind} {target} OWNER TO {quote_ident(owner)}")
    for g in grants:
        grantee = "PUBLIC" if g.grantee is None else quote_ident(g.grantee)
        option = " WITH GRANT OPTION" if g.grantable else ""
        statements.append(f"GRANT {g.privilege} ON {target} TO {grantee}{option}")
    return statements


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


async def _rename_table_sql(conn: asyncpg.Connection, schema: str, old: str, new: str) -> list[str]:
    """Statements renaming table `old` to `new` and each of its indexes after `new`."""
    statements = [f"ALTER TABLE {qualified(schema, old)} RENAME TO {quote_ident(new)}"]
    for name, role in await _index_roles(conn, qualified(schema, old)):
        target = index_name(new, role)
        if target != name:
            statements.append(
                f"ALTER INDEX {qualified(schema, name)} RENAME TO {quote_ident(target)}"
            )
    return statements


async def _exists(conn: asyncpg.Connection, schema: str, name: str) -> bool:
    return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", qualified(schema, name))


@dataclass(frozen=True)
class _Plan:
    """Every statement of one swap, prepared from the catalogs before the lock is taken."""

    views: list[_View]
    statements: list[str]
    backup: str
    discard: str | None  # the previous backup, renamed aside; dropped after the commit


async def _plan(conn: asyncpg.Connection, schema: str, table: str, incoming: str) -> _Plan:
    backup = backup_name(table)
    live = qualified(schema, table)
    views = await _dependent_views(conn, live)
    owner, grants = await _owner_and_grants(conn, await conn.fetchval(
        "SELECT to_regclass($1)::oid", live))  # fmt: skip
    incoming_owner = await conn.fetchval(
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass($1)",
        qualified(schema, incoming),
    )
    statements = [f"DROP VIEW {qualified(v.schema, v.name)}" for v in reversed(views)]
    discard = None
    if incoming == backup:  # rollback: exchange the two, through a parked name
        parked = fit(incoming_prefix(table) + "rollback")
        statements += await _rename_table_sql(conn, schema, table, parked)
        statements += await _rename_table_sql(conn, schema, backup, table)
        # After the first rename, the parked table's indexes are named after `parked`.
        statements.append(
            f"ALTER TABLE {qualified(schema, parked)} RENAME TO {quote_ident(backup)}"
        )
        for _name, role in await _index_roles(conn, live):
            statements.append(
                f"ALTER INDEX {qualified(schema, index_name(parked, role))} "
                f"RENAME TO {quote_ident(index_name(backup, role))}"
            )
    else:
        if await _exists(conn, schema, backup):
            # Dropping a big table inside the lock would hold readers back for its whole unlink:
            # rename it aside (instant) and drop it after the commit.
            discard = fit(incoming_prefix(table) + "discard")
            statements.append(f"DROP TABLE IF EXISTS {qualified(schema, discard)}")  # a crash's
            statements += await _rename_table_sql(conn, schema, backup, discard)
        statements += await _rename_table_sql(conn, schema, table, backup)
        statements += await _rename_table_sql(conn, schema, incoming, table)
    statements += _owner_and_grants_sql("TABLE", live, incoming_owner, owner, grants)
    creator = await conn.fetchval("SELECT current_user")  # owns the views it re-creates
    for view in views:
        target = qualified(view.schema, view.name)
        options = f" WITH ({', '.join(view.options)})" if view.options else ""
        statements.append(f"CREATE VIEW {target}{options} AS {view.definition}")
        statements += _owner_and_grants_sql("VIEW", target, creator, view.owner, view.grants)
    return _Plan(views, statements, backup, discard)


async def _promote(
    conn: asyncpg.Connection, schema: str, table: str, incoming: str, lock_timeout_ms: int
) -> tuple[_Plan | None, float | None]:
    """One attempt, inside a transaction: `incoming` becomes `table`. Returns the plan it ran
    (None: there was no live table, `incoming` was just renamed) and when the lock was granted.

    Everything is read from the catalogs first; under the exclusive lock only a check that the
    dependent views did not change, then ONE batch of DDL: readers wait milliseconds.
    """
    live = qualified(schema, table)
    await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
    await conn.execute("SET LOCAL search_path = pg_catalog")
    if not await _exists(conn, schema, incoming):
        raise SwapError(f"swap {schema}.{table}: {schema}.{incoming} does not exist")
    if not await _exists(conn, schema, table):
        await conn.execute("; ".join(await _rename_table_sql(conn, schema, incoming, table)))
        return None, None
    plan = await _plan(conn, schema, table, incoming)
    # Lock in the order readers do: a query on a view locks the view, then what it reads. Taking
    # the table first and a view later (to drop it) deadlocks with every reader caught between.
    locked = [*(qualified(v.schema, v.name) for v in reversed(plan.views)), live]
    if incoming == plan.backup:
        locked.append(qualified(schema, plan.backup))
    await conn.execute(f"LOCK TABLE {', '.join(locked)} IN ACCESS EXCLUSIVE MODE")
    locked_at = time.monotonic()
    if await _dependent_views(conn, live) != plan.views:  # a view changed since we planned
        plan = await _plan(conn, schema, table, incoming)
    await conn.execute(";\n".join(plan.statements))
    return plan, locked_at


async def _run(
    conn: asyncpg.Connection, schema: str, table: str, incoming: str, what: str,
    lock_timeout_ms: int, attempts: int, backoff: float,
) -> SwapResult:  # fmt: skip
    started = time.monotonic()
    for attempt in range(1, attempts + 1):
        try:
            async with conn.transaction():
                plan, locked_at = await _promote(conn, schema, table, incoming, lock_timeout_ms)
            committed_at = time.monotonic()
            backup, views = (plan.backup, plan.views) if plan else (None, [])
            if plan and plan.discard:
                try:  # the swap is done; a leftover is dropped by the table's next sync
                    await conn.execute(f"DROP TABLE IF EXISTS {qualified(schema, plan.discard)}")
                except asyncpg.PostgresError as exc:
                    log.warning("could not drop %s.%s: %s", schema, plan.discard, exc)
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
        seconds = committed_at - started
        lock_seconds = committed_at - locked_at if locked_at is not None else 0.0
        names = tuple(f"{v.schema}.{v.name}" for v in views)
        log.info(
            "%s %s.%s: done in %.3f s (attempt %d, exclusive lock held %.1f ms), previous kept "
            "as %s, views re-created: %s",
            what, schema, table, seconds, attempt, lock_seconds * 1000, backup,
            ", ".join(names) or "none",
        )  # fmt: skip
        return SwapResult(f"{schema}.{table}", backup, attempt, seconds, names, lock_seconds)
    raise SwapError(
        f"{what} {schema}.{table} failed: the table stayed locked by another transaction "
        f"(lock_timeout {lock_timeout_ms} ms, {attempts} attempts); the live table is unchanged"
    )


async def swap(
    conn: asyncpg.Connection, schema: str, table: str, incoming: str, *,
    lock_timeout_ms: int = 2000, attempts: int = 5, backoff: float = 0.5,
) -> SwapResult:  # fmt: skip
    """Make `incoming` the live `table`; the previous one is kept as `<table>_old_bkp`."""
    return await _run(conn, schema, table, incoming, "swap", lock_timeout_ms, attempts, backoff)


async def rollback(
    conn: asyncpg.Connection, schema: str, table: str, *,
    lock_timeout_ms: int = 2000, attempts: int = 5, backoff: float = 0.5,
) -> SwapResult:  # fmt: skip
    """Put `<table>_old_bkp` back as `table` (and the current one becomes the backup)."""
    backup = backup_name(table)
    if not await _exists(conn, schema, backup):
        raise SwapError(f"rollback {schema}.{table}: there is no {schema}.{backup} to restore")
    return await _run(conn, schema, table, backup, "rollback", lock_timeout_ms, attempts, backoff)
