"""`stir status` against real servers: a stale table, never-synced tables, a held batch window;
then everything fresh and the window free. `stir freshness` and the monitoring tier's health line
count never-synced tables as such. With a real Prefect API: each tier's last run, the next
scheduled one, and the last alert."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import (
    ClickHouseServer,
    PostgresService,
    S3Service,
    SlackRecorder,
    databases_of_their_own,
    free_port,
    window_held,
)

from stir.dbt_project import parse_manifest
from stir.domain.tiers import TIERS, get_tier
from stir.locks import tier_lock

DATABASE = "status_test"
STALE_TABLE = "public.profile_metrics"  # the core tier's: SLA 45 minutes
WINDOW_HOLDER = "flow run leaderboards-2026-11-29T02:00 (status-test)"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return asyncio.run(parse_manifest(target_path=tmp_path_factory.mktemp("parse") / "target"))


@pytest.fixture(scope="module")
def served(manifest: dict) -> dict[str, list[str]]:
    """tier -> its served tables (schema.table), as the dbt project declares them."""
    return {spec.name: [d.ref for d in spec.served_tables(manifest)] for spec in TIERS}


@pytest.fixture(scope="module")
async def dsn(clickhouse: ClickHouseServer, postgres: PostgresService) -> str:
    """A PostgreSQL database of this module's own: its served tables are the only ones."""
    return await databases_of_their_own(clickhouse, postgres, DATABASE)


@pytest.fixture(scope="module")
def status_env(
    dsn: str, clickhouse: ClickHouseServer, s3: S3Service, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The environment of a `stir` process pointed at the session's servers (all external: the
    stack checks them, never starts them), with no Prefect API unless a test adds one."""
    state = tmp_path_factory.mktemp("status-state")  # shared: dbt's partial parse is reused
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(("STIR_", "PREFECT_"))
    }
    return {
        **clean,
        "PREFECT_HOME": str(state / "prefect-home"),  # no profile naming an API
        "STIR_STATE_DIR": str(state),
        "STIR_CLICKHOUSE_HTTP_PORT": str(clickhouse.http_port),
        "STIR_CLICKHOUSE_NATIVE_PORT": str(clickhouse.native_port),
        "STIR_CLICKHOUSE_EMBEDDED": "false",
        "STIR_POSTGRES_DSN": dsn,
        **s3.env,
    }


async def stir(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`stir ARGS` as a new process (this event loop keeps serving the locks the test holds)."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "stir.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


async def stamp_as_synced(dsn: str, tables: list[str], age: timedelta) -> None:
    """Create each table if missing and stamp it as a sync would, `age` ago: the comment JSON
    written here by hand, not by the code under test."""
    synced_at = (datetime.now(UTC) - age).isoformat()
    conn = await asyncpg.connect(dsn)
    try:
        for ref in tables:
            schema, _, name = ref.partition(".")
            stamp = {"stir": {"run_id": f"run-{name}", "exported_at": synced_at,
                              "synced_at": synced_at, "rows": 1}}  # fmt: skip
            comment = json.dumps(stamp).replace("'", "''")
            await conn.execute(f'CREATE TABLE IF NOT EXISTS "{schema}"."{name}" (id int)')
            await conn.execute(f'COMMENT ON TABLE "{schema}"."{name}" IS \'{comment}\'')
    finally:
        await conn.close()


async def drop_served_tables(dsn: str, served: dict[str, list[str]]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for ref in (ref for tables in served.values() for ref in tables):
            schema, _, name = ref.partition(".")
            await conn.execute(f'DROP TABLE IF EXISTS "{schema}"."{name}"')
    finally:
        await conn.close()


@pytest.fixture
async def core_synced_one_stale(dsn: str, served: dict[str, list[str]]) -> AsyncIterator[None]:
    """The core tier's tables synced a minute ago, but `STALE_TABLE` two hours ago; no other
    tier ever synced."""
    await drop_served_tables(dsn, served)
    await stamp_as_synced(dsn, [t for t in served["core"] if t != STALE_TABLE], timedelta(0))
    await stamp_as_synced(dsn, [STALE_TABLE], timedelta(hours=2))
    yield
    await drop_served_tables(dsn, served)


def _tables_by_state(document: dict[str, Any]) -> dict[str, set[str]]:
    states: dict[str, set[str]] = {}
    for item in document["tables"]["items"]:
        states.setdefault(item["state"], set()).add(item["ref"])
    return states


@pytest.mark.usefixtures("core_synced_one_stale")
async def test_status_names_the_stale_and_never_synced_tables_and_who_holds_the_window(
    dsn: str, status_env: dict[str, str], served: dict[str, list[str]], tmp_path: Path
) -> None:
    every = {ref for tables in served.values() for ref in tables}
    never = every - set(served["core"])
    before = datetime.now(UTC)
    async with tier_lock(dsn, "leaderboards", WINDOW_HOLDER):
        after = datetime.now(UTC)
        as_json = await stir(status_env, tmp_path, "status", "--json")
        as_text = await stir(status_env, tmp_path, "status")

    assert as_json.returncode == 1, as_json.stdout + as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["needs_attention"] is True
    services = [(s["name"], s["state"], s["detail"]) for s in document["services"]]
    assert [state for _, state, _ in services] == ["external-ok"] * 3, services
    assert document["scheduler"]["configured"] is False
    # The window: held by the session holding the holder tier's lock, since it took it.
    window = document["window"]
    assert window["state"] == "held"
    assert window["holder"] == WINDOW_HOLDER
    since = datetime.fromisoformat(window["since"])
    assert before - timedelta(seconds=1) <= since <= after + timedelta(seconds=1)
    # The tables: one stale, the core tier's others fresh, every other tier's never synced.
    states = _tables_by_state(document)
    assert states == {"STALE": {STALE_TABLE}, "ok": set(served["core"]) - {STALE_TABLE},
                      "never synced": never}  # fmt: skip
    assert (document["tables"]["stale"], document["tables"]["never_synced"]) == (1, len(never))
    problems = "\n".join(document["problems"])
    assert STALE_TABLE in problems
    for spec in TIERS[1:]:
        tables = len(served[spec.name])
        assert f"all {tables} served tables of the {spec.name} tier never synced" in problems
    core = next(t for t in document["tiers"] if t["name"] == "core")
    assert core["last_sync"]["tables_synced"] == len(served["core"])
    assert core["last_sync"]["run_id"] in {f"run-{t.partition('.')[2]}" for t in served["core"]}
    assert core["last_run"] is None  # no Prefect API: nothing is known of runs

    # The same on one screen.
    assert as_text.returncode == 1, as_text.stdout + as_text.stderr
    screen = as_text.stdout
    assert "needs attention" in screen
    assert f"held by {WINDOW_HOLDER} since {since:%Y-%m-%d %H:%M:%S} UTC" in screen
    assert f"{len(every)} served tables: {len(served['core']) - 1} within their SLA, " in screen
    assert f"1 past their SLA, {len(never)} never synced" in screen
    stale_line = f"- {STALE_TABLE} (core tier) was last synced 2:0"  # two hours and a bit ago
    assert stale_line in screen
    assert "past its SLA of 0:45:00" in screen
    assert "scheduler not configured" in screen

    # The window released, the stale table synced again, every tier's tables synced: all well.
    await stamp_as_synced(dsn, sorted(every), timedelta(minutes=1))
    healthy = await stir(status_env, tmp_path, "status", "--json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    document = json.loads(healthy.stdout)
    assert document["problems"] == [], document["services"]
    assert document["window"] == {"state": "free", "holder": None, "since": None, "detail": ""}
    assert _tables_by_state(document) == {"ok": every}


async def test_status_says_which_service_is_down_and_still_reads_the_rest(
    status_env: dict[str, str], tmp_path: Path
) -> None:
    """PostgreSQL unreachable: shown as such, exit 1; the other services are still checked."""
    down = f"postgresql://stir@127.0.0.1:{free_port()}/stir"
    result = await stir({**status_env, "STIR_POSTGRES_DSN": down}, tmp_path, "status", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    document = json.loads(result.stdout)
    states = {s["name"]: s["state"] for s in document["services"]}
    assert states == {"clickhouse": "external-ok", "s3": "external-ok",
                      "postgres": "external-unreachable"}  # fmt: skip
    assert document["tables"] is None
    assert document["window"]["state"] == "unknown"
    assert any("cannot reach PostgreSQL" in p for p in document["problems"])


@pytest.mark.usefixtures("core_synced_one_stale")
async def test_freshness_and_the_health_line_count_never_synced_tables_apart(
    dsn: str,
    status_env: dict[str, str],
    served: dict[str, list[str]],
    manifest: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    total = sum(len(tables) for tables in served.values())
    counts = (
        f"{total} served tables: {len(served['core']) - 1} within their SLA, 1 past their SLA, "
        f"{total - len(served['core'])} never synced"
    )
    result = await stir(status_env, tmp_path, "freshness")
    assert result.returncode == 1, result.stdout + result.stderr
    assert counts in result.stdout

    from stir.serving.freshness import freshness_report
    from stir.settings import get_settings
    from stir.tasks.health import HealthReport

    monkeypatch.setenv("STIR_POSTGRES_DSN", dsn)
    report = await freshness_report(manifest, get_settings())
    health = HealthReport(tuple(report), (), ("freshness:" + STALE_TABLE,), (), ())
    assert health.line == f"{counts}; alerting: freshness:{STALE_TABLE}"


# --- with a Prefect API -------------------------------------------------------------------


@pytest.fixture
def prefect_env(
    prefect_api: None, dsn: str, status_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The `stir` environment with the session's Prefect API; tier runs in this process use the
    module's PostgreSQL."""
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("STIR_POSTGRES_DSN", dsn)
    return {**status_env, "STIR_PREFECT_API_URL": str(PREFECT_API_URL.value())}


@pytest.mark.usefixtures("core_synced_one_stale")
async def test_status_with_prefect_shows_each_tier_s_runs_and_the_last_alert(
    prefect_env: dict[str, str],
    dsn: str,
    slack: SlackRecorder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled
    from prefect.variables import Variable

    from stir.flows.tier import flow_of, tier_flow
    from stir.tasks import health, notify

    await Variable.aunset(health.LAST_ALERT_VARIABLE)  # no health alert of another test's

    # core: a real run of the tier's flow, skipped because the test holds the tier's lock.
    async with tier_lock(dsn, "core", "the status test"):
        skipped = await flow_of("core")("core", return_state=True)
    assert skipped.name == "Skipped", skipped.message
    assert "tier:core is held by the status test" in skipped.message  # who, from PostgreSQL
    # growth: a real run that fails (its PostgreSQL is not there) and alerts.
    with monkeypatch.context() as patch:
        patch.setenv("STIR_POSTGRES_DSN", f"postgresql://stir@127.0.0.1:{free_port()}/stir")
        failed = await tier_flow(replace(get_tier("growth"), retries=0))(
            "growth", return_state=True
        )
    assert failed.is_failed()
    assert len(slack.messages) == 1
    # collections: deployed, its next run scheduled.
    due = (datetime.now(UTC) + timedelta(minutes=20)).replace(microsecond=0)
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("tier")
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name="collections", parameters={"tier": "collections"}
        )
        await client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=due)
        )
    try:
        async with tier_lock(dsn, "leaderboards", WINDOW_HOLDER), window_held():
            result = await stir(prefect_env, tmp_path, "status", "--json")
    finally:
        async with get_client() as client:
            await client.delete_deployment(deployment_id)
        await notify.clear_fold_state()

    assert result.returncode == 1, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["scheduler"]["configured"] is True
    assert any(s["name"] == "prefect" and s["healthy"] for s in document["services"])
    tiers = {t["name"]: t for t in document["tiers"]}
    core = tiers["core"]["last_run"]
    assert core["state"] == "Skipped"
    assert core["state_type"] == "COMPLETED"
    assert core["name"].startswith("core-")
    started = datetime.fromisoformat(core["started_at"])
    assert datetime.now(UTC) - timedelta(minutes=5) < started < datetime.now(UTC)
    assert 0 <= core["seconds"] < 60
    growth = tiers["growth"]["last_run"]
    assert (growth["state"], growth["state_type"]) == ("Failed", "FAILED")
    assert any(p.startswith("tier growth: its last run growth-") for p in document["problems"])
    assert tiers["collections"]["deployment"] == "tier/collections"
    assert datetime.fromisoformat(tiers["collections"]["next_run_at"]) == due
    # The window: its holder from PostgreSQL, and from Prefect that it runs alone.
    assert document["window"]["holder"] == WINDOW_HOLDER
    assert "alone in the window" in document["window"]["detail"]
    # The last alert: growth's failure, from the alert fold state.
    last = document["alerts"]["last"]
    assert last["text"].startswith("tier growth failed")
    assert "ServiceUnavailable" in last["text"]
