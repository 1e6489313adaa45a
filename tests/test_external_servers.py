"""Tiers against servers Stir did not start, as operated: `STIR_*_EMBEDDED=false` and a DSN.

The servers are the embedded ones, started here on their own ports under their own
credentials: a ClickHouse whose only user is `stir_ch` with a password; a PostgreSQL that asks
every role but the administrator for a password (scram-sha-256), holding a database `serving`
whose `public` schema (where the served tables are declared) is owned by `stir_app`, a
non-superuser LOGIN role, which owns nothing else: Coffee's operational schema belongs to the
administrator, and `stir_app` may only read the table the enrichment joins. S3 is the session's
moto server, under a prefix of this module. The tiers serve into that database as `stir_app`; a
privilege taken away fails the next run before dbt starts, naming it and its GRANT.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import pytest
from conftest import (
    ClickHouseServer,
    S3Service,
    _stack_service,
    free_port,
    isolated_stir_env,
    stop_process,
    wait_for_port,
)

from stir.domain.tiers import get_tier
from stir.flows.tier import flow_of, tier_flow
from stir.settings import get_settings
from stir.sources.seed import Seeder

pytestmark = pytest.mark.usefixtures("prefect_api")

CH_USER = "stir_ch"
CH_PASSWORD = "ch-Secret-4711"
APP_ROLE = "stir_app"
APP_PASSWORD = "pg-Secret-0815"
ADMIN = "stir"  # the cluster's superuser (the stack's), trusted on loopback as before
DATABASE = "serving"
CH_DATABASE = "external_test"
# The administrator alone keeps trust; every other role logs in with its password.
HBA = f"""\
local   all  all                       trust
host    all  {ADMIN}  127.0.0.1/32     trust
host    all  all      127.0.0.1/32     scram-sha-256
"""
TIERS_RUN = ("core", "monitoring")


@dataclass
class External:
    """The servers, and how to reach PostgreSQL as its administrator."""

    clickhouse: ClickHouseServer
    admin_dsn: str
    app_dsn: str


def start_clickhouse_as(data_dir: Path, user: str, password: str) -> ClickHouseServer:
    """The embedded ClickHouse whose only user is `user`, on free (non-default) ports."""
    http_port, native_port = free_port(), free_port()
    log = data_dir.parent / f"{data_dir.name}.log"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "stir.stack.clickhouse", "--data-dir", str(data_dir),
            "--http-port", str(http_port), "--native-port", str(native_port), "--user", user,
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "STIR_CLICKHOUSE_PASSWORD": password},
    )  # fmt: skip
    wait_for_port(http_port, process, log)
    wait_for_port(native_port, process, log)
    return ClickHouseServer("127.0.0.1", http_port, native_port, password, data_dir, process)


def clickhouse_http(server: ClickHouseServer, statement: str) -> None:
    token = base64.b64encode(f"{CH_USER}:{CH_PASSWORD}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - the test's own loopback server
        server.http_url, data=statement.encode(), headers={"Authorization": f"Basic {token}"}
    )
    urllib.request.urlopen(request).read()  # noqa: S310


async def admin_sql(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def external(s3: S3Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[External]:
    """The servers started apart from Stir, seeded (scale xs), and Stir's settings pointing at
    them as `stir_ch` and `stir_app`."""
    clickhouse = start_clickhouse_as(
        tmp_path_factory.mktemp("external-clickhouse") / "data", CH_USER, CH_PASSWORD
    )
    clickhouse_http(clickhouse, f"CREATE DATABASE IF NOT EXISTS {CH_DATABASE}")
    # As the session's PostgreSQL: outside pytest's temporary root, which another session may
    # make unreachable to the server's own user (see conftest's `postgres`).
    pg_state = Path(tempfile.mkdtemp(prefix="stir-test-external-pg-"))
    pg_state.chmod(0o755)
    port = free_port()
    _, postgres = _stack_service(pg_state, "postgres", STIR_POSTGRES_PORT=str(port))
    outcome = postgres.up(timeout=60)
    assert outcome.ok, outcome.message
    admin = f"postgresql://{ADMIN}@127.0.0.1:{port}"
    app_dsn = f"postgresql://{APP_ROLE}:{APP_PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    postgres.files.data_dir.joinpath("pg_hba.conf").write_text(HBA)
    asyncio.run(
        admin_sql(
            f"{admin}/postgres",
            "SELECT pg_reload_conf()",
            f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'",
            f"CREATE DATABASE {DATABASE}",
        )
    )
    asyncio.run(admin_sql(f"{admin}/{DATABASE}", f"ALTER SCHEMA public OWNER TO {APP_ROLE}"))
    common = {
        "STIR_CLICKHOUSE_EMBEDDED": "false",
        "STIR_CLICKHOUSE_HOST": "127.0.0.1",
        "STIR_CLICKHOUSE_HTTP_PORT": str(clickhouse.http_port),
        "STIR_CLICKHOUSE_NATIVE_PORT": str(clickhouse.native_port),
        "STIR_CLICKHOUSE_USER": CH_USER,
        "STIR_CLICKHOUSE_PASSWORD": CH_PASSWORD,
        "STIR_CLICKHOUSE_DATABASE": CH_DATABASE,
        **s3.env,
        "STIR_S3_PREFIX": "external",
    }
    cwd = tmp_path_factory.mktemp("external-cwd")
    # Coffee's operational data belongs to the administrator; the app role may read the one
    # table the enrichment of `profile_metrics` joins.
    seeding = isolated_stir_env(cwd, **common, STIR_POSTGRES_DSN=f"{admin}/{DATABASE}")
    try:
        asyncio.run(Seeder(get_settings()).seed("xs", 7))
    finally:
        seeding.undo()
    asyncio.run(
        admin_sql(
            f"{admin}/{DATABASE}",
            f"GRANT USAGE ON SCHEMA coffee TO {APP_ROLE}",
            f"GRANT SELECT ON coffee.tracked_profiles TO {APP_ROLE}",
        )
    )
    patch = isolated_stir_env(cwd, **common, STIR_POSTGRES_DSN=app_dsn)
    yield External(clickhouse, f"{admin}/{DATABASE}", app_dsn)
    patch.undo()
    stop_process(clickhouse.process)
    postgres.down()
    shutil.rmtree(pg_state, ignore_errors=True)


def stir_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "stir"), *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


async def test_tiers_serve_into_servers_stir_did_not_start(external: External) -> None:
    # The password really is checked: without it the role cannot log in.
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(external.app_dsn.replace(APP_PASSWORD, "wrong"))
    served: dict[str, int] = {}
    for name in TIERS_RUN:
        started = time.monotonic()
        state = await flow_of(name)(name, return_state=True)
        assert state.is_completed(), f"{name}: {state.message}"
        result = await state.result()
        assert result["tables"], f"{name} served nothing"
        served.update(result["tables"])
        print(f"{name}: {len(result['tables'])} tables in {time.monotonic() - started:.1f} s")
    conn = await asyncpg.connect(external.app_dsn)
    try:
        for table, rows in served.items():
            schema, _, name = table.rpartition(".")
            assert await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{name}"') == rows
        owners = dict(
            await conn.fetch(
                "SELECT schemaname || '.' || tablename, tableowner FROM pg_tables"
                " WHERE schemaname = 'public'"
            )
        )
        # The enrichment joined Coffee's table, read with the app role's SELECT alone.
        enriched = await conn.fetchval(
            "SELECT count(tracked_profile_id) FROM public.profile_metrics"
        )
    finally:
        await conn.close()
    assert set(served) <= set(owners)
    assert set(owners.values()) == {APP_ROLE}, owners
    assert enriched > 0
    checked = await asyncio.to_thread(stir_cli, "check", *TIERS_RUN)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok      PostgreSQL" in checked.stdout
    assert 'CREATE on schema "public"' in checked.stdout
    assert f'owner of table "public"."profile_metrics" (owned by {APP_ROLE!r})' in checked.stdout
    for secret in (CH_PASSWORD, APP_PASSWORD):
        assert secret not in checked.stdout + checked.stderr


async def test_a_revoked_privilege_fails_the_tier_at_start_naming_its_grant(
    external: External,
) -> None:
    core = replace(get_tier("core"), retries=0)
    revoke = f"REVOKE CREATE ON SCHEMA public FROM {APP_ROLE}"
    await admin_sql(external.admin_dsn, revoke)
    try:
        started = time.monotonic()
        state = await tier_flow(core)("core", return_state=True)
        seconds = time.monotonic() - started
        checked = await asyncio.to_thread(stir_cli, "check", "core")
    finally:
        await admin_sql(external.admin_dsn, f"GRANT CREATE ON SCHEMA public TO {APP_ROLE}")
    assert state.is_failed()
    message = state.message or ""
    assert "PostgreSQL at 127.0.0.1:" in message
    assert f"role '{APP_ROLE}'" in message
    assert 'CREATE on schema "public"' in message
    assert f'GRANT CREATE ON SCHEMA "public" TO "{APP_ROLE}";' in message
    assert seconds < 60, f"the check should fail the run before dbt, not after {seconds:.0f} s"
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "MISSING PostgreSQL" in checked.stdout
    assert f'GRANT CREATE ON SCHEMA "public" TO "{APP_ROLE}";' in checked.stdout

    # The enrichment's table, no longer readable: named with its GRANT too.
    await admin_sql(external.admin_dsn, f"REVOKE SELECT ON coffee.tracked_profiles FROM {APP_ROLE}")
    try:
        state = await tier_flow(core)("core", return_state=True)
    finally:
        await admin_sql(
            external.admin_dsn, f"GRANT SELECT ON coffee.tracked_profiles TO {APP_ROLE}"
        )
    assert state.is_failed()
    assert f'GRANT SELECT ON "coffee"."tracked_profiles" TO "{APP_ROLE}";' in state.message
    for secret in (CH_PASSWORD, APP_PASSWORD):
        assert secret not in (state.message or "") + checked.stdout + checked.stderr
    # Granted again, the tier runs.
    again = await tier_flow(core)("core", return_state=True)
    assert again.is_completed(), again.message
