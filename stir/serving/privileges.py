"""The privileges a tier run needs on ClickHouse, S3 and PostgreSQL, checked before it starts.

Against servers Stir did not start (`STIR_*_EMBEDDED=false`, a DSN), a missing privilege would
otherwise surface late and obscurely: after a long dbt build, as a failed swap or a bare
`permission denied`. `require_privileges` checks what the run will need in a few cheap queries
and raises one `PrivilegeError` listing every gap, each naming the server, the role or user, the
missing privilege and the statement (GRANT, or IAM action) that fixes it; never a secret.
docs/privileges.md documents the same list, check by check.

- ClickHouse (`CHECK GRANT`, ClickHouse 24.5 or newer; older servers are not checked): on each
  database dbt builds in, SELECT, INSERT, CREATE TABLE, CREATE VIEW, DROP TABLE, DROP VIEW
  (dbt's materializations and the EXCHANGE of a rebuilt table), and CREATE DATABASE where the
  database does not exist yet; SELECT on each source database; READ and WRITE ON S3 (the `s3`
  table function: dbt reads the drops, the export writes the parts); NAMED COLLECTION on
  STIR_S3_NAMED_COLLECTION when set.
- S3: put, get, list, delete of a small probe object under `<prefix>/`, and a multipart upload
  started and aborted (ClickHouse writes large parts in parts).
- PostgreSQL: the role logs in; USAGE and CREATE on each serving schema; it owns (or has the
  privileges of, and may SET ROLE to, the owner of) each live served table, its backup and the
  views on it, since the swap renames, drops and re-owns them; USAGE and SELECT on each table an
  enrichment joins; `pg_read_server_files` when a table uses the ssh transfer. Advisory locks
  need nothing.

Only the declarations are cached per process (one dbt parse); the privileges are checked on
every call, since they can be revoked at any time.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import asyncpg
from botocore.exceptions import BotoCoreError, ClientError

from stir.clickhouse import ClickHouse, ClickHouseError, ClickHouseUnavailable
from stir.clickhouse import quote_identifier as ch_ident
from stir.domain.declaration import ServedTable
from stir.domain.tiers import Tier
from stir.errors import connection_failure_reason
from stir.serving.naming import backup_name, qualified, quote_ident
from stir.serving.s3 import s3_client
from stir.settings import Settings

log = logging.getLogger("stir.serving.privileges")

Status = Literal["ok", "missing", "unchecked"]
CONNECT_TIMEOUT = 10.0
PROBE_FOLDER = "_stir_privilege_probe"
# What dbt does in a database it builds in: tables and views created, filled, exchanged, dropped.
DBT_PRIVILEGES = ("SELECT", "INSERT", "CREATE TABLE", "CREATE VIEW", "DROP TABLE", "DROP VIEW")
_SYNTAX_ERROR = 62  # ClickHouse's code for a statement it cannot parse (an older server)


class PrivilegeError(RuntimeError):
    """Stir lacks privileges a run needs; the message lists each one and how to grant it."""

    def __init__(self, missing: Sequence[Check]) -> None:
        self.missing = tuple(missing)
        lines = "\n".join(f"  - {check.describe()}" for check in self.missing)
        super().__init__(
            f"missing privileges ({len(self.missing)}), checked before the run started; "
            f"see docs/privileges.md:\n{lines}"
        )


@dataclass(frozen=True)
class Check:
    """One privilege on one server: whether the configured role or user has it."""

    server: str  # "PostgreSQL at 127.0.0.1:5432/stir"
    who: str  # 'role "stir_app"', 'user "stir"', 'the configured key (...)'
    privilege: str  # 'CREATE on schema "public"'
    status: Status
    fix: str = ""  # the GRANT (or IAM action) that gives it
    detail: str = ""  # what the server said, when it refused

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        text = f"{self.server}, {self.who}: {self.privilege}"
        if self.detail:
            text += f" ({self.detail})"
        if self.fix:
            text += f"; fix: {self.fix}"
        return text


@dataclass(frozen=True)
class Needs:
    """What a run touches: read from the dbt manifest and the served tables' declarations."""

    clickhouse_databases: tuple[str, ...] = ()  # where dbt builds models
    clickhouse_sources: tuple[str, ...] = ()  # the raw databases dbt reads
    serving_schemas: tuple[str, ...] = ()
    served_tables: tuple[tuple[str, str], ...] = ()  # (schema, table) of each live table
    enrich_tables: tuple[tuple[str, str], ...] = ()  # (schema, table) an enrichment joins
    ssh_transfer: bool = False


def needs_from_manifest(
    manifest: Mapping[str, Any], tables: Sequence[ServedTable], default_transfer: str = "stream"
) -> Needs:
    """The needs of serving `tables`, with the ClickHouse databases of `manifest`."""
    nodes = manifest.get("nodes", {}).values()
    databases = {n["schema"] for n in nodes if n.get("resource_type") in ("model", "seed")}
    sources = {s["schema"] for s in manifest.get("sources", {}).values()} - databases
    enrich = set()
    for decl in tables:
        for join in decl.enrich:
            schema, _, table = join.join.rpartition(".")
            enrich.add((schema or decl.schema, table))
    return Needs(
        clickhouse_databases=tuple(sorted(databases)),
        clickhouse_sources=tuple(sorted(sources)),
        serving_schemas=tuple(sorted({decl.schema for decl in tables})),
        served_tables=tuple(sorted({(decl.schema, decl.table) for decl in tables})),
        enrich_tables=tuple(sorted(enrich)),
        ssh_transfer=any((decl.transfer or default_transfer) == "ssh" for decl in tables),
    )


_MANIFESTS: dict[tuple[str, str], dict[str, Any]] = {}


async def declared_manifest(settings: Settings) -> dict[str, Any]:
    """dbt's manifest of the project, parsed once per process: the declarations do not change
    while a process runs, and a parse costs a second or more (the privileges are not cached)."""
    from stir.dbt_project import dbt_project_dir, parse_manifest

    key = (str(dbt_project_dir(settings)), settings.clickhouse.database)
    if key not in _MANIFESTS:
        _MANIFESTS[key] = await parse_manifest(settings)
    return _MANIFESTS[key]


async def needs_of_tier(spec: Tier, settings: Settings) -> Needs:
    """What a run of `spec` touches: its served tables, every database dbt builds in."""
    return await needs_of_tiers([spec], settings)


async def needs_of_tiers(specs: Sequence[Tier], settings: Settings) -> Needs:
    """What runs of every tier in `specs` touch together."""
    manifest = await declared_manifest(settings)
    tables = [decl for spec in specs for decl in spec.served_tables(manifest)]
    return needs_from_manifest(manifest, tables, settings.sync.transfer)


async def check_privileges(settings: Settings, needs: Needs) -> list[Check]:
    """Every check, passed or not, on the three servers (checked concurrently)."""
    results = await asyncio.gather(
        check_clickhouse(settings, needs), check_s3(settings), check_postgres(settings, needs)
    )
    return [check for checks in results for check in checks]


async def require_privileges(settings: Settings, needs: Needs) -> list[Check]:
    """The checks, all passed; else `PrivilegeError` listing the missing ones."""
    started = asyncio.get_running_loop().time()
    checks = await check_privileges(settings, needs)
    missing = [check for check in checks if check.status == "missing"]
    if missing:
        raise PrivilegeError(missing)
    for check in checks:
        if check.status == "unchecked":
            log.warning("privilege not checked: %s", check.describe())
    seconds = asyncio.get_running_loop().time() - started
    log.info("privileges: %d checks passed in %.2f s", len(checks), seconds)
    return checks


# --- ClickHouse --------------------------------------------------------------------------------


async def check_clickhouse(settings: Settings, needs: Needs) -> list[Check]:
    cfg = settings.clickhouse
    server = f"ClickHouse at {cfg.host}:{cfg.native_port}"
    who = f"user {cfg.user!r}"
    user = ch_ident(cfg.user)

    def check(privilege: str, on: str, status: Status, detail: str = "") -> Check:
        fix = "" if status == "ok" else f"GRANT {privilege} ON {on} TO {user};"
        return Check(server, who, f"{privilege} ON {on}", status, fix, detail)

    async with ClickHouse(cfg, pool_size=1, timeout_seconds=30, read_retries=1) as ch:
        try:
            existing = {row[0] for row in await ch.fetch("SELECT name FROM system.databases")}
        except ClickHouseUnavailable as exc:
            return [Check(server, who, "connect", "missing", _ch_connect_fix(), exc.reason)]
        except ClickHouseError as exc:
            if exc.code in (192, 193, 516):  # UNKNOWN_USER, WRONG_PASSWORD, AUTHENTICATION_FAILED
                fix = "check STIR_CLICKHOUSE_USER and STIR_CLICKHOUSE_PASSWORD"
                return [Check(server, who, "log in", "missing", fix, "authentication failed")]
            raise

        async def granted(privileges: Sequence[str], on: str) -> bool | None:
            """Whether the user has all of `privileges` on `on`; None: the server cannot say."""
            try:
                value = await ch.fetch_value(f"CHECK GRANT {', '.join(privileges)} ON {on}")
            except ClickHouseError as exc:
                if exc.code == _SYNTAX_ERROR:
                    return None
                raise
            return bool(value)

        if await granted(["SELECT"], "system.one") is None:
            return [
                Check(
                    server, who, "any privilege", "unchecked",
                    detail="the server has no CHECK GRANT (ClickHouse before 24.5)",
                )
            ]  # fmt: skip
        checks: list[Check] = []
        for database in needs.clickhouse_databases:
            on = f"{ch_ident(database)}.*"
            wanted = list(DBT_PRIVILEGES)
            if database not in existing:  # dbt creates it first
                wanted.append("CREATE DATABASE")
            if await granted(wanted, on):  # one query when everything is there
                checks += [check(p, on, "ok") for p in wanted]
                continue
            for privilege in wanted:
                checks.append(
                    check(privilege, on, "ok" if await granted([privilege], on) else "missing")
                )
        for database in needs.clickhouse_sources:
            on = f"{ch_ident(database)}.*"
            checks.append(check("SELECT", on, "ok" if await granted(["SELECT"], on) else "missing"))
        # The s3 table function: READ and WRITE ON S3 since ClickHouse 25.x, the S3 source
        # privilege before (the server then refuses the newer syntax).
        for privilege in ("READ", "WRITE"):
            allowed = await granted([privilege], "S3")
            if allowed is None:
                allowed = await granted(["S3"], "*.*")
                checks.append(check("S3", "*.*", "ok" if allowed else "missing"))
                break
            checks.append(check(privilege, "S3", "ok" if allowed else "missing"))
        collection = settings.s3.named_collection
        if collection:
            on = ch_ident(collection)
            allowed = await granted(["NAMED COLLECTION"], on)
            if allowed is None:  # before 24.x: USE NAMED COLLECTION
                allowed = await granted(["USE NAMED COLLECTION"], on)
            checks.append(check("NAMED COLLECTION", on, "ok" if allowed else "missing"))
    return checks


def _ch_connect_fix() -> str:
    return "check STIR_CLICKHOUSE_HOST and STIR_CLICKHOUSE_NATIVE_PORT; is the server running?"


# --- S3 ----------------------------------------------------------------------------------------


async def check_s3(settings: Settings) -> list[Check]:
    """A probe object put, read, listed and deleted under the prefix, and a multipart upload
    started and aborted: what the export, the load and the pruning do."""
    cfg = settings.s3
    server = f"S3 at {cfg.endpoint_url}, bucket {cfg.bucket!r}"
    # Whose requests these are: the configured key (from the environment or its block), else
    # boto3's default chain (an instance role, AWS_* variables, ~/.aws).
    if cfg.access_key_id is not None:
        who = "the configured key (STIR_S3_ACCESS_KEY_ID or STIR_S3_CREDENTIALS_BLOCK)"
        policy = "the key's IAM policy"
    else:
        who = "the default AWS credentials (instance role or AWS_* environment)"
        policy = "the IAM policy of the role"
    head = cfg.prefix.strip("/")
    folder = f"{head}/{PROBE_FOLDER}/" if head else f"{PROBE_FOLDER}/"
    key = f"{folder}{secrets.token_hex(8)}"
    objects = f"arn:aws:s3:::{cfg.bucket}/{folder.removesuffix(PROBE_FOLDER + '/')}*"
    bucket_arn = f"arn:aws:s3:::{cfg.bucket}"
    checks: list[Check] = []

    def outcome(action: str, resource: str, error: BaseException | None) -> Check:
        if error is None:
            return Check(server, who, action, "ok")
        code, status = _s3_error(error)
        if code in ("NoSuchBucket",):
            fix = f"create the bucket {cfg.bucket!r}, or set STIR_S3_BUCKET"
        elif code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
            fix = "check the S3 key (STIR_S3_ACCESS_KEY_ID/SECRET_ACCESS_KEY or its block)"
        elif status is None:
            fix = "check STIR_S3_ENDPOINT_URL; is the endpoint reachable from here?"
        else:
            fix = f"allow {action} on {resource} in {policy}"
        return Check(server, who, action, "missing", fix, code or "no answer")

    async with s3_client(cfg) as client:
        steps: list[tuple[str, str, Any]] = [
            ("s3:PutObject", objects, lambda: client.put_object(
                Bucket=cfg.bucket, Key=key, Body=b"stir privilege probe\n")),
            ("s3:GetObject", objects, lambda: _read(client, cfg.bucket, key)),
            ("s3:ListBucket", bucket_arn, lambda: client.list_objects_v2(
                Bucket=cfg.bucket, Prefix=folder, MaxKeys=1)),
            ("s3:AbortMultipartUpload", objects, lambda: _multipart(client, cfg.bucket, key)),
            ("s3:DeleteObject", objects, lambda: client.delete_object(Bucket=cfg.bucket, Key=key)),
        ]  # fmt: skip
        for action, resource, step in steps:
            try:
                await step()
            except (BotoCoreError, ClientError, OSError) as exc:  # reported, not raised
                checks.append(outcome(action, resource, exc))
                if _s3_error(exc)[1] is None or action == "s3:PutObject":
                    break  # unreachable, or nothing to read, list or delete
            else:
                checks.append(outcome(action, resource, None))
    return checks


async def _read(client: Any, bucket: str, key: str) -> None:
    response = await client.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as body:
        await body.read()


async def _multipart(client: Any, bucket: str, key: str) -> None:
    upload = await client.create_multipart_upload(Bucket=bucket, Key=f"{key}.multipart")
    await client.abort_multipart_upload(
        Bucket=bucket, Key=f"{key}.multipart", UploadId=upload["UploadId"]
    )


def _s3_error(exc: BaseException) -> tuple[str, int | None]:
    """The S3 error code and HTTP status of a refused request; status None: no answer. The
    server's own message is left out: it may quote the access key id."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return type(exc).__name__, None
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code or str(status), status


# --- PostgreSQL --------------------------------------------------------------------------------


def _pg_server_and_role(settings: Settings) -> tuple[str, str]:
    """Where the DSN points and as whom, without its password."""
    parts = urlsplit(settings.postgres.effective_dsn())
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    database = unquote(parts.path.lstrip("/")) or settings.postgres.database
    role = unquote(parts.username or "") or settings.postgres.user
    return f"PostgreSQL at {host}:{port}/{database}", role


_RELATIONS = """
WITH RECURSIVE live AS (
    SELECT c.oid FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN unnest($1::text[], $2::text[]) AS t(schema, name)
      ON n.nspname = t.schema AND c.relname = t.name
), relations(oid) AS (
    SELECT oid FROM live
    UNION
    SELECT r.ev_class FROM relations
    JOIN pg_depend d ON d.refobjid = relations.oid AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid WHERE r.ev_class <> d.refobjid
)
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       pg_get_userbyid(c.relowner) AS owner,
       pg_has_role(current_user, c.relowner, 'USAGE') AS owns,
       -- the swap gives the new table its predecessor's owner (ALTER ... OWNER TO)
       CASE WHEN current_setting('server_version_num')::int >= 160000
            THEN pg_has_role(current_user, c.relowner, 'SET')
            ELSE pg_has_role(current_user, c.relowner, 'MEMBER') END AS may_become
FROM relations JOIN pg_class c ON c.oid = relations.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY 1, 2
"""

_SCHEMAS = """
SELECT t.schema, n.oid IS NOT NULL AS exists,
       n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE') AS usage,
       n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'CREATE') AS create
FROM unnest($1::text[]) AS t(schema) LEFT JOIN pg_namespace n ON n.nspname = t.schema
ORDER BY 1
"""

_TABLES = """
SELECT t.schema, t.name, c.oid IS NOT NULL AS exists,
       n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE') AS usage,
       c.oid IS NOT NULL AND has_table_privilege(c.oid, 'SELECT') AS select
FROM unnest($1::text[], $2::text[]) AS t(schema, name)
LEFT JOIN pg_namespace n ON n.nspname = t.schema
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
ORDER BY 1, 2
"""


async def check_postgres(settings: Settings, needs: Needs) -> list[Check]:
    server, role = _pg_server_and_role(settings)
    try:
        conn = await asyncpg.connect(settings.postgres.effective_dsn(), timeout=CONNECT_TIMEOUT)
    except asyncpg.PostgresError as exc:  # refused by the server: its message has no secret
        fix = "check the role and password in STIR_POSTGRES_DSN, and pg_hba.conf"
        if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError) and "log in" in str(exc):
            fix = f"ALTER ROLE {quote_ident(role)} LOGIN;"
        return [Check(server, f"role {role!r}", "log in", "missing", fix, str(exc))]
    except (OSError, TimeoutError) as exc:
        fix = "check the host and port in STIR_POSTGRES_DSN; is the server running?"
        reason = connection_failure_reason(exc)
        return [Check(server, f"role {role!r}", "connect", "missing", fix, reason)]
    try:
        return await _postgres_checks(conn, server, needs)
    finally:
        await conn.close()


async def _postgres_checks(conn: asyncpg.Connection, server: str, needs: Needs) -> list[Check]:
    role = await conn.fetchval("SELECT current_user")
    who, grantee = f"role {role!r}", quote_ident(role)
    checks = [Check(server, who, "log in", "ok")]

    # The live tables, their backups, and the views on them: the swap renames, drops and
    # re-owns each.
    wanted = [(s, t) for s, t in needs.served_tables] + [
        (s, backup_name(t)) for s, t in needs.served_tables
    ]
    relations = await conn.fetch(_RELATIONS, [s for s, _ in wanted], [t for _, t in wanted])
    schemas = sorted(
        set(needs.serving_schemas) | {r["schema"] for r in relations if r["kind"] == "v"}
    )
    for row in await conn.fetch(_SCHEMAS, schemas):
        schema = quote_ident(row["schema"])
        if not row["exists"]:
            checks.append(
                Check(server, who, f"schema {schema} exists", "missing",
                      f"CREATE SCHEMA {schema} AUTHORIZATION {grantee};")
            )  # fmt: skip
            continue
        for privilege in ("USAGE", "CREATE"):
            has = row[privilege.lower()]
            fix = "" if has else f"GRANT {privilege} ON SCHEMA {schema} TO {grantee};"
            status: Status = "ok" if has else "missing"
            checks.append(Check(server, who, f"{privilege} on schema {schema}", status, fix))
    for row in relations:
        kind = "VIEW" if row["kind"] == "v" else "TABLE"
        target = qualified(row["schema"], row["name"])
        has = row["owns"] and row["may_become"]
        fix = "" if has else (
            f"ALTER {kind} {target} OWNER TO {grantee}; "
            f"or GRANT {quote_ident(row['owner'])} TO {grantee};"
        )  # fmt: skip
        checks.append(
            Check(server, who, f"owner of {kind.lower()} {target} (owned by {row['owner']!r})",
                  "ok" if has else "missing", fix)
        )  # fmt: skip

    if needs.enrich_tables:
        rows = await conn.fetch(
            _TABLES, [s for s, _ in needs.enrich_tables], [t for _, t in needs.enrich_tables]
        )
        for row in rows:
            schema, target = quote_ident(row["schema"]), qualified(row["schema"], row["name"])
            privilege = f"SELECT on {target} (an enrichment joins it)"
            if not row["exists"]:
                checks.append(
                    Check(server, who, privilege, "missing",
                          "create the table, or correct `enrich: join:` in the declaration",
                          "no such table")
                )  # fmt: skip
                continue
            fixes = []
            if not row["usage"]:
                fixes.append(f"GRANT USAGE ON SCHEMA {schema} TO {grantee};")
            if not row["select"]:
                fixes.append(f"GRANT SELECT ON {target} TO {grantee};")
            status = "missing" if fixes else "ok"
            checks.append(Check(server, who, privilege, status, " ".join(fixes)))

    if needs.ssh_transfer:
        allowed = await conn.fetchval(
            "SELECT r.rolsuper OR pg_has_role(current_user, 'pg_read_server_files', 'USAGE') "
            "FROM pg_roles r WHERE r.rolname = current_user"
        )
        fix = "" if allowed else f"GRANT pg_read_server_files TO {grantee};"
        checks.append(
            Check(server, who, "pg_read_server_files (the ssh transfer's COPY FROM a file)",
                  "ok" if allowed else "missing", fix)
        )  # fmt: skip
    return checks
