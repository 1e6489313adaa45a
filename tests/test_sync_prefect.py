"""The sync's steps run as Prefect tasks inside a flow (the tier flows call `sync_table`)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from conftest import ClickHouseServer, PostgresService, S3Service, settings_for_servers
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from stir.clickhouse import ClickHouse
from stir.domain.declaration import ServedTable
from stir.tasks.sync import SyncSummary, sync_table


@pytest.mark.usefixtures("prefect_api")  # the session's temporary Prefect API (conftest)
async def test_sync_table_inside_a_flow_runs_each_step_as_a_task(
    clickhouse: ClickHouseServer, s3: S3Service, postgres: PostgresService
) -> None:
    settings = settings_for_servers(clickhouse, s3, postgres, "flow")
    async with ClickHouse(settings.clickhouse) as ch:
        await ch.execute("DROP TABLE IF EXISTS mart_flow")
        await ch.execute(
            "CREATE TABLE mart_flow ENGINE = MergeTree ORDER BY id AS "
            "SELECT number AS id, toString(number) AS v FROM numbers(100)"
        )
    decl = ServedTable(model="mart_flow", table="sync_flow", keys=("id",))

    @flow(name="sync-one-table")
    async def sync_flow() -> SyncSummary:
        return await sync_table(decl, settings=settings)

    state = await sync_flow(return_state=True)
    summary = await state.result()
    assert summary.rows == 100
    # Task runs reach the API through Prefect's events pipeline: wait until they are recorded.
    expected = {"export", "gates", "index", "swap", "prune"}  # export: "export and load"
    seen: set[str] = set()
    async with get_client() as client:
        for _ in range(100):
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                )
            )
            seen = {r.name.split(" ")[0] for r in runs}
            if seen >= expected:
                break
            await asyncio.sleep(0.2)
    assert seen >= expected
    conn = await asyncpg.connect(postgres.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM sync_flow") == 100
    finally:
        await conn.close()
