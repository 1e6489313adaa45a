"""The sync at the copy limit (issue 16) keeps its guarantees: the incoming table is created
logged (no SET LOGGED rewrite after the load), a refused run leaves the live table as it was and
its retry from S3 swaps in a durable (logged), keyed table, in TSV and JSON (whose parts now
parse in parallel through temporary tables), an enriched table (built UNLOGGED by the join) is
made logged before it is served, and a run whose parts were compressed for the stream transfer
is refused, clearly, by the ssh transfer."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from conftest import (
    ClickHouseServer,
    PostgresService,
    S3Service,
    incoming_tables,
    settings_for_servers,
)

from stir.clickhouse import ClickHouse
from stir.domain.declaration import Gates, ServedTable
from stir.serving.gates import GateError
from stir.serving.s3 import CheckpointError
from stir.serving.steps import check_checkpoint, load_incoming_ssh
from stir.serving.sync import sync_table
from stir.settings import Settings

PERSISTENCE = "SELECT relpersistence::text FROM pg_class WHERE oid = to_regclass($1)"


@pytest.fixture
def settings(clickhouse: ClickHouseServer, s3: S3Service, postgres: PostgresService) -> Settings:
    return settings_for_servers(clickhouse, s3, postgres, f"test-{uuid.uuid4().hex[:8]}")


async def make_mart(ch: ClickHouse, name: str, rows: int, offset: int = 0) -> None:
    await ch.execute(f"DROP TABLE IF EXISTS {name}")
    await ch.execute(
        f"CREATE TABLE {name} ENGINE = MergeTree ORDER BY id AS SELECT number + {offset} AS id, "
        f"concat('v', toString(number + {offset})) AS v, toFloat64(number) / 4 AS x "
        f"FROM numbers({rows})"
    )


@pytest.mark.parametrize("fmt", ["tsv", "json"])
async def test_a_refused_run_leaves_live_untouched_and_its_retry_swaps_in_a_logged_table(
    fmt: str, settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    mart, table = f"mart_logged_{fmt}", f"sync_logged_{fmt}"
    # Enough rows for several parts, so that the parts load while later ones are exported.
    await make_mart(ch, mart, 250_000)
    decl = ServedTable(model=mart, table=table, keys=("id",), format=fmt)
    await sync_table(decl, settings=settings)
    assert await pg.fetchval(PERSISTENCE, table) == "p"

    await make_mart(ch, mart, 100_000, offset=1_000_000)  # 40% of the live rows
    run_id = f"20260101000000_{fmt}refused"
    with pytest.raises(GateError, match=r"row_count failed .* 100000 rows is 40.0%"):
        await sync_table(decl, settings=settings, run_id=run_id)
    row = await pg.fetchrow(f"SELECT count(*) AS n, min(id) AS lo FROM {table}")
    assert (row["n"], row["lo"]) == (250_000, 0)
    assert await incoming_tables(pg, table) == []

    await ch.execute(f"DROP TABLE {mart}")  # the retry reads the run's checkpoint in S3 only
    allowing = ServedTable(
        model=mart, table=table, keys=("id",), format=fmt, gates=Gates(min_ratio=0.3)
    )
    summary = await sync_table(allowing, settings=settings, run_id=run_id)
    assert summary.reused_export
    assert summary.rows == 100_000
    row = await pg.fetchrow(f"SELECT count(*) AS n, min(id) AS lo, sum(x) AS s FROM {table}")
    assert (row["n"], row["lo"]) == (100_000, 1_000_000)
    assert row["s"] == sum(range(100_000)) / 4
    assert await pg.fetchval(f"SELECT v FROM {table} WHERE id = 1000042") == "v1000042"
    # Durable and keyed: a logged table with its primary key; the backup is the old version.
    assert await pg.fetchval(PERSISTENCE, table) == "p"
    assert await pg.fetchval(PERSISTENCE, f"{table}_old_bkp") == "p"
    assert await pg.fetchval(f"SELECT count(*) FROM {table}_old_bkp") == 250_000
    assert (
        await pg.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass "
            "AND contype = 'p'",
            table,
        )
        == "PRIMARY KEY (id)"
    )
    # No temporary or scratch table of the JSON path survives the load's sessions.
    assert await incoming_tables(pg, table) == []
    assert await pg.fetchval("SELECT count(*) FROM pg_class WHERE relname = 'stir_json_part'") == 0


async def test_an_enriched_table_is_served_logged(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    await make_mart(ch, "mart_logged_enrich", 1000)
    await pg.execute("DROP TABLE IF EXISTS logged_enrich_src")
    await pg.execute("CREATE TABLE logged_enrich_src (pid bigint PRIMARY KEY, label text)")
    await pg.execute(
        "INSERT INTO logged_enrich_src SELECT i, 'l' || i FROM generate_series(1, 9) i"
    )
    decl = ServedTable.from_meta(
        "mart_logged_enrich",
        {"serve": {"table": "sync_logged_enrich", "keys": ["id"], "enrich": [{
            "join": "logged_enrich_src", "on": "logged_enrich_src.pid = id",
            "columns": {"label": "label"},
        }]}},
    )  # fmt: skip
    await sync_table(decl, settings=settings)
    assert await pg.fetchval(PERSISTENCE, "sync_logged_enrich") == "p"
    assert await pg.fetchval("SELECT label FROM sync_logged_enrich WHERE id = 3") == "l3"


async def test_a_run_exported_for_the_stream_transfer_is_not_retried_over_ssh(
    settings: Settings, ch: ClickHouse
) -> None:
    await make_mart(ch, "mart_logged_ssh", 100)
    decl = ServedTable(model="mart_logged_ssh", table="sync_logged_ssh", keys=("id",))
    summary = await sync_table(decl, settings=settings)
    manifest = await check_checkpoint(decl, summary.run_id, settings)
    with pytest.raises(CheckpointError, match=r"zstd-compressed parts.*retry it with transfer "):
        await load_incoming_ssh(decl, manifest, settings)
