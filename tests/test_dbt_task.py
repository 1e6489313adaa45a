"""`tasks.dbt.build_selection` in a real flow: each dbt node a Prefect task; a failing test
blocks the model it tests and what is built from it, and nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from conftest import ClickHouseServer, isolated_stir_env
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from stir.dbt_project import DbtBuildResult, dbt_workspace, parse_manifest
from stir.domain.tiers import TIERS, WindowRole
from stir.settings import get_settings
from stir.tasks.dbt import build_selection, dbt_log_level, models_not_built_yet

PROJECT = Path(__file__).parent / "dbt_conformance"
RAW = "dbt_conformance_raw"

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def orders(
    clickhouse: ClickHouseServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[clickhouse_connect.driver.client.Client]:
    """The conformance project's source table, and dbt pointed at the test server."""
    monkeypatch.setenv("DBT_CLICKHOUSE_HOST", clickhouse.host)
    monkeypatch.setenv("DBT_CLICKHOUSE_PORT", str(clickhouse.http_port))
    monkeypatch.setenv("DBT_CLICKHOUSE_DRIVER", "http")
    ch = clickhouse_connect.get_client(host=clickhouse.host, port=clickhouse.http_port)
    # Empty the target database rather than drop it: dbt-clickhouse creates a missing database
    # once per process (when it first connects), so a database dropped between two builds of
    # one test session would not come back.
    ch.command("CREATE DATABASE IF NOT EXISTS dbt_conformance")
    for (table,) in ch.query("SHOW TABLES FROM dbt_conformance").result_rows:
        ch.command(f"DROP TABLE dbt_conformance.`{table}`")
    ch.command(f"DROP DATABASE IF EXISTS {RAW}")
    ch.command(f"CREATE DATABASE {RAW}")
    ch.command(
        f"CREATE TABLE {RAW}.orders (order_id UInt32, customer String, status String, "
        "amount Float64, updated_at DateTime) ENGINE = MergeTree ORDER BY order_id"
    )
    ch.command(
        f"INSERT INTO {RAW}.orders VALUES (1, 'ann', 'placed', 1.5, '2024-01-01 00:00:00'), "
        "(2, 'bo', 'shipped', 2.5, '2024-01-02 00:00:00')"
    )
    yield ch
    ch.close()


@flow(name="dbt-build-under-test")
async def build(selector: str) -> DbtBuildResult:
    # The conformance project has its own profiles.yml (DBT_CLICKHOUSE_* variables).
    with dbt_workspace(name="test", profiles_dir=PROJECT, project_dir=PROJECT) as workspace:
        return await build_selection(selector, workspace)


async def task_run_names(flow_run_id: object) -> set[str]:
    async with get_client() as client:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name for run in runs}


async def test_every_dbt_node_becomes_a_task_of_the_flow(
    orders: clickhouse_connect.driver.client.Client, tmp_path: Path
) -> None:
    state = await build("orders_current_and_upstream", return_state=True)
    assert state.is_completed(), state.message
    result = await state.result()
    assert result.statuses == {"success": 2, "pass": 4}
    assert result.problems == ()
    assert result.blocked == frozenset()  # a view, an incremental, their tests
    # prefect-dbt creates the nodes' task runs from a queue of dbt events: the last may reach
    # the API a moment after the flow's end.
    expected = ("stg_orders", "orders_current", "unique_orders_current_order_id")
    for _ in range(50):
        names = " ".join(await task_run_names(state.state_details.flow_run_id))
        if all(model in names for model in expected):
            break
        await asyncio.sleep(0.2)
    for model in expected:
        assert model in names
    assert orders.command("SELECT count() FROM dbt_conformance.orders_current") == 2


async def test_a_failing_dbt_test_blocks_what_it_tests_and_what_is_built_from_it(
    orders: clickhouse_connect.driver.client.Client,
) -> None:
    orders.command(f"INSERT INTO {RAW}.orders VALUES (3, 'cy', 'lost', 1, '2024-01-03 00:00:00')")
    result = await build("orders_current_and_upstream")
    failing = [p for p in result.failures if p.unique_id.startswith("test.")]
    assert [p.status for p in failing] == ["fail"]
    assert "accepted_values" in failing[0].name
    # The model it tests and the model built from it are not to be served; its parent is.
    assert result.blocked == {
        "model.dbt_conformance.orders_current",
        "model.dbt_conformance.customer_totals",
    }


async def test_a_test_of_a_mart_not_built_yet_waits_for_it_instead_of_failing(
    clickhouse: ClickHouseServer, tmp_path: Path
) -> None:
    """On a new platform the daily holder may run before the monitoring tier ever has: its
    reconciliations of the monitoring marts with the whole scrape log wait for those marts (the
    run neither fails nor blocks anything), and run once the mart is there."""
    database = "awaiting_marts"
    env = isolated_stir_env(
        tmp_path, STIR_CLICKHOUSE_HOST=clickhouse.host,
        STIR_CLICKHOUSE_NATIVE_PORT=str(clickhouse.native_port),
        STIR_CLICKHOUSE_HTTP_PORT=str(clickhouse.http_port), STIR_CLICKHOUSE_DATABASE=database,
    )  # fmt: skip
    try:
        settings = get_settings()
    finally:
        env.undo()
    ch = clickhouse_connect.get_client(host=clickhouse.host, port=clickhouse.http_port)
    ch.command(f"DROP DATABASE IF EXISTS {database}")
    ch.command(f"CREATE DATABASE {database}")  # by the holder's own build, which comes first
    manifest = await parse_manifest(settings, target_path=tmp_path / "target")
    holder = next(tier for tier in TIERS if tier.window is WindowRole.HOLDER)
    cross = holder.cross_owner_tests(manifest)
    reconciliations = {
        f"test.stir.{name}" for name in ("assert_scrape_health_matches_log",
                                         "assert_stale_profiles_match_log")
    }  # fmt: skip
    assert reconciliations <= set(cross)

    awaiting = await models_not_built_yet(cross, manifest, settings)
    assert awaiting["test.stir.assert_scrape_health_matches_log"] == ["mart_scrape_health"]
    assert reconciliations <= set(awaiting)

    # The monitoring tier builds its mart: that test runs now, the other still waits for its own.
    ch.command(f"CREATE TABLE {database}.mart_scrape_health (x UInt8) ENGINE = Memory")
    try:
        awaiting = await models_not_built_yet(cross, manifest, settings)
    finally:
        ch.command(f"DROP DATABASE {database}")
    assert "test.stir.assert_scrape_health_matches_log" not in awaiting
    assert "test.stir.assert_stale_profiles_match_log" in awaiting


@pytest.mark.parametrize(("prefect_level", "dbt_level"), [("WARNING", "warn"), ("DEBUG", "debug")])
def test_dbt_follows_prefect_logging_level(prefect_level: str, dbt_level: str) -> None:
    """prefect-dbt alone fails on PREFECT_LOGGING_LEVEL=WARNING (dbt's word is "warn")."""
    from prefect.settings import PREFECT_LOGGING_LEVEL, temporary_settings

    with temporary_settings({PREFECT_LOGGING_LEVEL: prefect_level}):
        level = dbt_log_level()
    assert level.value == dbt_level


def test_node_tasks_trust_the_full_ca_bundle_whenever_the_api_speaks_tls() -> None:
    """The one-certificate bundle that spares each node's task the full CA bundle is given only
    for a plain-http API; a TLS API (Prefect Cloud, a server behind https) keeps its own."""
    import prefect.settings

    from stir.tasks.dbt import _for_plain_http

    bundle = "/etc/ssl/certs/operators-bundle.pem"
    for url, kept in (
        ("https://api.prefect.cloud/api/accounts/a/workspaces/w", True),
        ("http://127.0.0.1:4200/api", False),
        (None, False),  # Prefect's temporary server on loopback
    ):
        settings = prefect.settings.Settings().copy_with_update(
            updates={prefect.settings.PREFECT_API_URL: url,
                     prefect.settings.PREFECT_API_SSL_CERT_FILE: bundle}
        )  # fmt: skip
        cert_file = _for_plain_http(settings).api.ssl_cert_file
        assert (cert_file == bundle) is kept, (url, cert_file)


@flow(name="dbt-build-with-stir-profile")
async def build_with_stir_profile(project: str) -> DbtBuildResult:
    # The profile Stir writes from its settings (the environment the test patched).
    with dbt_workspace(name="test", project_dir=Path(project)) as workspace:
        return await build_selection("slow", workspace)


async def test_a_statement_longer_than_the_query_timeout_fails_its_model_and_names_the_setting(
    clickhouse: ClickHouseServer, tmp_path: Path
) -> None:
    """STIR_DBT_QUERY_TIMEOUT reaches dbt through the profile Stir writes: a model whose
    statement outlives it fails, with the setting named first in its message; the same model
    builds under a timeout it fits."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: query_timeout\nversion: '1.0'\nconfig-version: 2\nprofile: stir\n"
    )
    (project / "selectors.yml").write_text("selectors:\n  - name: slow\n    definition: slow\n")
    (project / "models" / "slow.sql").write_text(
        "{{ config(materialized='table', order_by='slept') }}\nselect sleep(2) as slept\n"
    )
    database = "dbt_query_timeout"
    ch = clickhouse_connect.get_client(host=clickhouse.host, port=clickhouse.http_port)
    ch.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    messages = {}
    for timeout in (1, 60):
        env = isolated_stir_env(
            tmp_path, STIR_CLICKHOUSE_HOST=clickhouse.host,
            STIR_CLICKHOUSE_NATIVE_PORT=str(clickhouse.native_port),
            STIR_CLICKHOUSE_HTTP_PORT=str(clickhouse.http_port),
            STIR_CLICKHOUSE_DATABASE=database, STIR_STATE_DIR=str(tmp_path / "state"),
            STIR_DBT_QUERY_TIMEOUT=str(timeout),
        )  # fmt: skip
        try:
            result = await build_with_stir_profile(str(project))
        finally:
            env.undo()
        messages[timeout] = [p.message for p in result.failures]
    assert len(messages[1]) == 1
    assert messages[1][0].startswith("a ClickHouse statement ran longer than STIR_DBT_QUERY")
    assert "read timeout=1" in messages[1][0]
    assert messages[60] == []
    assert ch.command(f"SELECT count() FROM {database}.slow") == 1
    ch.close()
