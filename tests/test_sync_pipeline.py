"""The sync end to end against real servers: ClickHouse mart → S3 → PostgreSQL, gates, the
atomic swap (indexes, grants, dependent views), rollback, retry from S3, cleanup, bad input."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid

import asyncpg
import pytest
import zstandard
from conftest import ClickHouseServer, PostgresService, S3Service, s3_boto, settings_for_servers

from stir.clickhouse import ClickHouse, ClickHouseError
from stir.domain.declaration import Gates, ServedTable
from stir.serving.gates import GateError
from stir.serving.load import LoadError
from stir.serving.manifest import MANIFEST_NAME, Manifest
from stir.serving.naming import incoming_prefix, s3_run_prefix
from stir.serving.s3 import CheckpointError
from stir.serving.steps import check_checkpoint, export_to_s3, load_incoming, rollback_table
from stir.serving.swap import SwapError
from stir.serving.sync import sync_table
from stir.settings import (
    Settings,
)


@pytest.fixture
def settings(clickhouse: ClickHouseServer, s3: S3Service, postgres: PostgresService) -> Settings:
    """Settings pointing at the session's servers, with an S3 prefix of this test's own."""
    return settings_for_servers(clickhouse, s3, postgres, f"test-{uuid.uuid4().hex[:8]}")


async def make_mart(ch: ClickHouse, name: str, rows: int, *, extra: str = "") -> None:
    """A mart of `rows` rows: id, name, score, grp, small; `extra` is a SELECT suffix."""
    await ch.execute(f"DROP TABLE IF EXISTS {name}")
    await ch.execute(
        f"CREATE TABLE {name} (id UInt64, name String, score Float64, "
        "grp LowCardinality(String), small Int16) ENGINE = MergeTree ORDER BY id"
    )
    await ch.execute(
        f"INSERT INTO {name} SELECT number, concat('name-', toString(number)), number / 7, "
        f"concat('g', toString(number % 5)), toInt16(number % 1000) FROM numbers({rows}) {extra}"
    )


async def names_in(pg: asyncpg.Connection, table: str) -> list[str]:
    """Every relation of the public schema whose name starts with `table`."""
    rows = await pg.fetch(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND left(relname, length($1)) = $1 ORDER BY relname",
        table,
    )
    return [r["relname"] for r in rows]


def rewrite_part(settings: Settings, table: str, run_id: str, index: int, data: bytes) -> None:
    """Replace one part in S3 and record its new size and MD5 in the manifest, as a corrupt
    export that still looks complete would."""
    client = s3_boto(settings)
    bucket = settings.s3.bucket
    manifest_key = s3_run_prefix(settings.s3.prefix, "public", table, run_id) + MANIFEST_NAME
    manifest = json.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    part = manifest["parts"][index]
    client.put_object(Bucket=bucket, Key=part["key"], Body=data)
    part["bytes"] = len(data)
    part["etag"] = hashlib.md5(data, usedforsecurity=False).hexdigest()
    client.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())


def read_part(settings: Settings, manifest: Manifest, index: int) -> bytes:
    key = manifest.parts[index].key
    return s3_boto(settings).get_object(Bucket=settings.s3.bucket, Key=key)["Body"].read()


# --- the happy path ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_by", "ranges"),
    [("id", True), ("(small, id)", False)],
    ids=["sorted by its key: key ranges", "sorted otherwise: hashed"],
)
async def test_an_export_in_parts_holds_every_row_once(
    settings: Settings, ch: ClickHouse, order_by: str, ranges: bool
) -> None:
    """A mart sorted by its first key is split into key ranges (each part reads only its own
    granules); any other mart by a hash of its keys. Either way every row is in exactly one
    part, and each part's recorded count is what it holds."""
    await make_mart(ch, "mart_split", 10_001)
    await ch.execute("DROP TABLE IF EXISTS mart_split_sorted")
    await ch.execute(
        f"CREATE TABLE mart_split_sorted ENGINE = MergeTree ORDER BY {order_by} "
        "AS SELECT * FROM mart_split"
    )
    decl = ServedTable(model="mart_split_sorted", table="sync_split", keys=("id",), parts=4)
    exported = (await export_to_s3(decl, uuid.uuid4().hex[:12], settings)).manifest
    ids_by_part = [
        [int(line.split(b"\t")[0]) for line in read_part(settings, exported, i).splitlines()[1:]]
        for i in range(4)
    ]
    assert sorted(i for ids in ids_by_part for i in ids) == list(range(10_001))
    assert [p.rows for p in exported.parts] == [len(ids) for ids in ids_by_part]
    assert min(len(ids) for ids in ids_by_part) > 2000  # four real parts, not one and three empty
    contiguous = all(max(ids_by_part[i]) < min(ids_by_part[i + 1]) for i in range(3))
    assert contiguous is ranges
    assert ("OFFSET" in exported.source_query) is ranges


async def test_sync_exports_parts_and_manifest_then_loads_keys_and_indexes(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stir")
    await make_mart(ch, "mart_e2e", 10_000)
    decl = ServedTable.from_meta(
        "mart_e2e",
        {"serve": {"table": "sync_e2e", "keys": ["id"], "rows_per_part": 3000,
                   "indexes": ["grp", {"columns": ["name"], "unique": True}]}},
        {"id": {}, "name": {}, "score": {}, "grp": {}, "small": {}},
    )  # fmt: skip
    summary = await sync_table(decl, settings=settings)

    assert summary.rows == 10_000
    assert not summary.reused_export
    assert [p.phase for p in summary.phases] == [
        "export", "load", "gates", "finalize", "swap",
    ]  # fmt: skip
    # The parts were loaded as they were exported: the first was in PostgreSQL before the
    # export finished.
    assert summary.phases[1].detail == "stream, overlapping the export"
    messages = [r.getMessage() for r in caplog.records]
    first_part = next(
        i for i, m in enumerate(messages) if m.startswith("load public.sync_e2e: part")
    )
    export_done = next(
        i for i, m in enumerate(messages) if m.startswith("export public.sync_e2e run")
    )
    assert first_part < export_done
    # Every phase handled every row, within the sync's own time (export and load overlap, so
    # their sum may exceed it; neither alone may).
    assert [p.rows for p in summary.phases] == [10_000] * 5
    assert all(0 < p.seconds <= summary.seconds for p in summary.phases), summary.phases
    assert summary.bytes > 0

    prefix = s3_run_prefix(settings.s3.prefix, "public", "sync_e2e", summary.run_id)
    listed = s3_boto(settings).list_objects_v2(Bucket=settings.s3.bucket, Prefix=prefix)
    keys = sorted(o["Key"][len(prefix) :] for o in listed["Contents"])
    # The stream transfer's parts are zstd-compressed; each holds its rows and a header.
    assert keys == [MANIFEST_NAME, *(f"part-{i:05d}.tsv.zst" for i in range(4))]
    body = s3_boto(settings).get_object(Bucket=settings.s3.bucket, Key=prefix + MANIFEST_NAME)
    manifest = Manifest.from_dict(json.loads(body["Body"].read()))
    assert manifest.rows == 10_000
    assert len(manifest.parts) == 4
    assert manifest.extra["compression"] == "zstd"
    text = zstandard.ZstdDecompressor().decompressobj().decompress(read_part(settings, manifest, 0))
    assert text.count(b"\n") == manifest.parts[0].rows + 1
    assert text.startswith(b"id\tname\tscore\tgrp\tsmall\n")
    assert [c.name for c in manifest.columns] == ["id", "name", "score", "grp", "small"]
    assert [c.postgres_type for c in manifest.columns][:2] == ["numeric(20,0)", "text"]
    assert "FROM `mart_e2e`" in manifest.source_query
    assert all(p.query_id and len(p.etag) == 32 and p.bytes > 0 for p in manifest.parts)
    assert sum(p.rows for p in manifest.parts) == 10_000

    assert await pg.fetchval("SELECT count(*) FROM sync_e2e") == 10_000
    assert await pg.fetchval("SELECT name FROM sync_e2e WHERE id = 42") == "name-42"
    persistence = "SELECT relpersistence::text FROM pg_class WHERE relname = 'sync_e2e'"
    assert await pg.fetchval(persistence) == "p"  # logged again
    indexes = await pg.fetch(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'sync_e2e' ORDER BY 1"
    )
    assert [r[0] for r in indexes] == ["sync_e2e_grp_idx", "sync_e2e_name_key", "sync_e2e_pkey"]
    assert await names_in(pg, incoming_prefix("sync_e2e")) == []
    phases = [r.getMessage() for r in caplog.records if r.name.startswith("stir")]
    assert any("load public.sync_e2e" in m and "10,000 rows" in m for m in phases)
    assert any(m.startswith("sync public.sync_e2e") and "rows/s" in m for m in phases)
    assert not any(settings.s3.secret_access_key.get_secret_value() in m for m in caplog.messages)


async def test_swap_keeps_backup_grants_and_views_and_rollback_restores(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    decl = ServedTable(model="mart_swap", table="sync_swap", keys=("id",), indexes=())
    await make_mart(ch, "mart_swap", 1000)
    first = await sync_table(decl, settings=settings, keep_runs=2)
    await pg.execute("DROP ROLE IF EXISTS sync_reader")
    await pg.execute("CREATE ROLE sync_reader")
    await pg.execute("GRANT SELECT ON sync_swap TO sync_reader")
    await pg.execute("CREATE VIEW sync_swap_v AS SELECT id, name FROM sync_swap WHERE id < 900")
    await pg.execute("CREATE VIEW sync_swap_v2 AS SELECT count(*) AS n FROM sync_swap_v")
    await pg.execute("GRANT SELECT ON sync_swap_v2 TO sync_reader")

    await make_mart(ch, "mart_swap", 800)  # 80 %: within the default bounds
    second = await sync_table(decl, settings=settings, keep_runs=2)
    assert second.backup == "sync_swap_old_bkp"
    assert second.views == ("public.sync_swap_v", "public.sync_swap_v2")
    assert await pg.fetchval("SELECT count(*) FROM sync_swap") == 800
    assert await pg.fetchval("SELECT count(*) FROM sync_swap_old_bkp") == 1000
    assert await pg.fetchval("SELECT n FROM sync_swap_v2") == 800  # views follow the new table
    for relation in ("sync_swap", "sync_swap_v2"):
        assert await pg.fetchval(
            "SELECT has_table_privilege('sync_reader', $1, 'SELECT')", relation
        )
    assert not await pg.fetchval("SELECT has_table_privilege('sync_reader', 'sync_swap', 'UPDATE')")
    pkeys = await pg.fetch(
        "SELECT tablename, indexname FROM pg_indexes WHERE tablename LIKE 'sync\\_swap%' ORDER BY 1"
    )
    assert [tuple(r) for r in pkeys] == [
        ("sync_swap", "sync_swap_pkey"), ("sync_swap_old_bkp", "sync_swap_old_bkp_pkey"),
    ]  # fmt: skip

    restored = await rollback_table("sync_swap", "public", settings, "the test")
    assert restored.views == second.views
    assert await pg.fetchval("SELECT count(*) FROM sync_swap") == 1000
    assert await pg.fetchval("SELECT count(*) FROM sync_swap_old_bkp") == 800
    assert await pg.fetchval("SELECT n FROM sync_swap_v2") == 900
    assert await pg.fetchval("SELECT has_table_privilege('sync_reader', 'sync_swap', 'SELECT')")
    pkeys = await pg.fetch(
        "SELECT tablename, indexname FROM pg_indexes WHERE tablename LIKE 'sync\\_swap%' ORDER BY 1"
    )
    assert [tuple(r) for r in pkeys] == [
        ("sync_swap", "sync_swap_pkey"), ("sync_swap_old_bkp", "sync_swap_old_bkp_pkey"),
    ]  # fmt: skip

    third = await sync_table(decl, settings=settings, keep_runs=2)  # replaces the backup
    assert await pg.fetchval("SELECT count(*) FROM sync_swap_old_bkp") == 1000
    assert third.pruned_runs == (first.run_id,)  # only the newest two runs stay in S3
    assert s3_runs(settings, "public", "sync_swap") == {second.run_id, third.run_id}


def s3_runs(settings: Settings, schema: str, table: str) -> set[str]:
    """The run ids of `schema.table` in S3, listed under the documented layout itself."""
    prefix = f"{settings.s3.prefix}/{schema}/{table}/"
    listed = s3_boto(settings).list_objects_v2(Bucket=settings.s3.bucket, Prefix=prefix)
    return {o["Key"][len(prefix) :].split("/")[0] for o in listed.get("Contents", [])}


async def test_same_table_name_in_two_schemas_keeps_separate_checkpoints(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    """`a.twin` and `b.twin` export under their own S3 prefixes: both sync, each retry reloads
    its own checkpoint, and pruning one table's runs leaves the other's."""
    for schema in ("sync_twin_a", "sync_twin_b"):
        await pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pg.execute(f"CREATE SCHEMA {schema}")
    await make_mart(ch, "mart_twin_a", 300)
    await make_mart(ch, "mart_twin_b", 500)
    twin_a = ServedTable(model="mart_twin_a", table="twin", schema="sync_twin_a", keys=("id",))
    twin_b = ServedTable(model="mart_twin_b", table="twin", schema="sync_twin_b", keys=("id",))
    run_id = "20260101000000_twin"  # one run id for both: only the schema tells them apart

    first_a = await sync_table(twin_a, settings=settings, run_id=run_id, keep_runs=1)
    first_b = await sync_table(twin_b, settings=settings, run_id=run_id, keep_runs=1)
    assert (first_a.ref, first_b.ref) == ("sync_twin_a.twin", "sync_twin_b.twin")
    assert not first_b.reused_export  # b's own export, not a's checkpoint
    assert (first_a.rows, first_b.rows) == (300, 500)
    assert await pg.fetchval("SELECT count(*) FROM sync_twin_a.twin") == 300
    assert await pg.fetchval("SELECT count(*) FROM sync_twin_b.twin") == 500
    assert s3_runs(settings, "sync_twin_a", "twin") == {run_id}
    assert s3_runs(settings, "sync_twin_b", "twin") == {run_id}

    # Both checkpoints are readable: each retry reloads its own rows from S3.
    again_a = await sync_table(twin_a, settings=settings, run_id=run_id, keep_runs=1)
    again_b = await sync_table(twin_b, settings=settings, run_id=run_id, keep_runs=1)
    assert (again_a.reused_export, again_a.rows) == (True, 300)
    assert (again_b.reused_export, again_b.rows) == (True, 500)

    # A new run of a, keeping one run, prunes a's old checkpoint and never b's.
    second_a = await sync_table(twin_a, settings=settings, keep_runs=1)
    assert second_a.pruned_runs == (run_id,)
    assert s3_runs(settings, "sync_twin_a", "twin") == {second_a.run_id}
    assert s3_runs(settings, "sync_twin_b", "twin") == {run_id}
    assert (await check_checkpoint(twin_b, run_id, settings)).rows == 500


# --- retry and cleanup --------------------------------------------------------------------


async def test_retry_reloads_from_s3_without_querying_clickhouse(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    decl = ServedTable(model="mart_retry", table="sync_retry", keys=("id",), format="json")
    await make_mart(ch, "mart_retry", 2000)
    run_id = "20260101000000_retry1"
    exported = await export_to_s3(decl, run_id, settings)
    assert exported.manifest.rows == 2000
    assert not exported.reused
    await ch.execute("DROP TABLE mart_retry")  # ClickHouse can no longer answer for it

    summary = await sync_table(decl, settings=settings, run_id=run_id)
    assert summary.reused_export
    assert summary.rows == 2000
    assert await pg.fetchval("SELECT sum(small) FROM sync_retry") == sum(
        i % 1000 for i in range(2000)
    )


async def test_incoming_table_left_by_a_killed_run_is_dropped_by_the_next(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    decl = ServedTable(model="mart_crash", table="sync_crash", keys=("id",))
    await make_mart(ch, "mart_crash", 500)
    await sync_table(decl, settings=settings)
    # A run killed between load and swap leaves its loaded incoming table behind.
    exported = await export_to_s3(decl, "20260101000000_killed", settings)
    loaded = await load_incoming(decl, exported.manifest, settings)
    assert await names_in(pg, incoming_prefix("sync_crash")) == [loaded.incoming]
    assert await pg.fetchval("SELECT count(*) FROM sync_crash") == 500  # live untouched

    await make_mart(ch, "mart_crash", 600)
    summary = await sync_table(decl, settings=settings)
    assert summary.rows == 600
    assert await names_in(pg, incoming_prefix("sync_crash")) == []
    assert await pg.fetchval("SELECT count(*) FROM sync_crash") == 600


# --- gates ----------------------------------------------------------------------------------


async def live_rows(pg: asyncpg.Connection, table: str) -> int:
    return await pg.fetchval(f'SELECT count(*) FROM "{table}"')


async def test_gates_refuse_a_shrunken_or_empty_table(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    decl = ServedTable(model="mart_gate", table="sync_gate", keys=("id",))
    await make_mart(ch, "mart_gate", 1000)
    await sync_table(decl, settings=settings)

    await make_mart(ch, "mart_gate", 400)
    with pytest.raises(GateError, match=r"row_count failed for public.sync_gate: 400 rows is "
                       r"40.0% of the live 1000 \(minimum 50%\)"):  # fmt: skip
        await sync_table(decl, settings=settings)
    assert await live_rows(pg, "sync_gate") == 1000
    assert await names_in(pg, incoming_prefix("sync_gate")) == []

    await make_mart(ch, "mart_gate", 0)
    with pytest.raises(GateError, match=r"row_count .* empty"):
        await sync_table(decl, settings=settings)
    permissive = ServedTable(
        model="mart_gate", table="sync_gate", keys=("id",),
        gates=Gates(min_ratio=0, allow_empty=True),
    )  # fmt: skip
    assert (await sync_table(permissive, settings=settings)).rows == 0
    assert await live_rows(pg, "sync_gate") == 0


async def test_gates_refuse_duplicate_and_null_keys(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    await make_mart(ch, "mart_dup", 100, extra="UNION ALL SELECT 7, 'again', 0, 'g', 0")
    decl = ServedTable(model="mart_dup", table="sync_dup", keys=("id",))
    with pytest.raises(GateError, match=r"keys_unique failed for public.sync_dup: 1 key values"):
        await sync_table(decl, settings=settings)

    await ch.execute("DROP TABLE IF EXISTS mart_nullkey")
    await ch.execute(
        "CREATE TABLE mart_nullkey ENGINE = MergeTree ORDER BY tuple() AS "
        "SELECT if(number = 3, NULL, number) AS id, toString(number) AS v FROM numbers(10)"
    )
    decl = ServedTable(model="mart_nullkey", table="sync_nullkey", keys=("id",))
    with pytest.raises(GateError, match=r"keys_not_null .*: 1 of 10 rows have a NULL key"):
        await sync_table(decl, settings=settings)
    assert await names_in(pg, "sync_dup") == []
    assert await names_in(pg, "sync_nullkey") == []


async def test_gates_refuse_dropping_or_retyping_a_column_unless_allowed(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    await make_mart(ch, "mart_cols", 100)
    full = ServedTable(model="mart_cols", table="sync_cols", keys=("id",))
    await sync_table(full, settings=settings)

    fewer = ServedTable(model="mart_cols", table="sync_cols", keys=("id",),
                        columns=("id", "name", "score", "grp"))  # fmt: skip
    with pytest.raises(GateError, match=r"columns failed .*\['small'\] would be dropped"):
        await sync_table(fewer, settings=settings)
    assert await pg.fetchval("SELECT count(small) FROM sync_cols") == 100  # live untouched

    await ch.execute("ALTER TABLE mart_cols MODIFY COLUMN small Int64")
    with pytest.raises(GateError, match="small smallint -> bigint"):
        await sync_table(full, settings=settings)
    retype = ServedTable(model="mart_cols", table="sync_cols", keys=("id",),
                         gates=Gates(allow_retype_columns=True))  # fmt: skip
    summary = await sync_table(retype, settings=settings)
    assert "dropped [], retyped" in " ".join(summary.gates.notes)

    # An upgrade that retypes columns everywhere opens the gate for every table by a setting.
    await ch.execute("ALTER TABLE mart_cols MODIFY COLUMN small Int32")
    with pytest.raises(GateError, match="small bigint -> integer"):
        await sync_table(full, settings=settings)
    upgrade = settings.model_copy(
        update={"sync": settings.sync.model_copy(update={"allow_retype_columns": True})}
    )
    summary = await sync_table(full, settings=upgrade)
    assert "retyped ['small bigint -> integer']" in " ".join(summary.gates.notes)


# --- bad input --------------------------------------------------------------------------------


async def test_malformed_json_line_fails_the_load_and_leaves_live_untouched(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    decl = ServedTable(model="mart_badjson", table="sync_badjson", keys=("id",), format="json")
    await make_mart(ch, "mart_badjson", 300)
    await sync_table(decl, settings=settings)
    run_id = "20260101000000_badjson"
    exported = await export_to_s3(decl, run_id, settings)
    lines = read_part(settings, exported.manifest, 0).split(b"\n")
    lines[5] = b'{"id": 5, "name": "broken'
    rewrite_part(settings, "sync_badjson", run_id, 0, b"\n".join(lines))

    with pytest.raises(LoadError, match=r"part-00000.jsonl: .*invalid input syntax for type json"):
        await sync_table(decl, settings=settings, run_id=run_id)
    assert await live_rows(pg, "sync_badjson") == 300
    assert await names_in(pg, incoming_prefix("sync_badjson")) == []


async def test_a_value_that_does_not_fit_its_type_fails_the_load(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    decl = ServedTable(model="mart_range", table="sync_range", keys=("id",), format="csv")
    await make_mart(ch, "mart_range", 300)
    await sync_table(decl, settings=settings)
    run_id = "20260101000000_range"
    exported = await export_to_s3(decl, run_id, settings)
    lines = read_part(settings, exported.manifest, 0).split(b"\n")
    fields = lines[3].split(b",")
    fields[-1] = b"70000"  # `small` is smallint in PostgreSQL
    lines[3] = b",".join(fields)
    rewrite_part(settings, "sync_range", run_id, 0, b"\n".join(lines))

    with pytest.raises(LoadError, match=r'"70000" is out of range for type smallint'):
        await sync_table(decl, settings=settings, run_id=run_id)
    assert await live_rows(pg, "sync_range") == 300


async def test_a_tampered_part_is_caught_by_its_checksum(
    settings: Settings, ch: ClickHouse
) -> None:
    decl = ServedTable(model="mart_sum", table="sync_sum", keys=("id",))
    await make_mart(ch, "mart_sum", 50)
    run_id = "20260101000000_sum"
    exported = await export_to_s3(decl, run_id, settings)
    data = read_part(settings, exported.manifest, 0)
    s3_boto(settings).put_object(
        Bucket=settings.s3.bucket, Key=exported.manifest.parts[0].key, Body=data.replace(b"7", b"8")
    )
    with pytest.raises(LoadError, match="MD5 differs"):
        await sync_table(decl, settings=settings, run_id=run_id)


async def test_missing_part_or_manifest_fails_before_loading(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    decl = ServedTable(model="mart_missing", table="sync_missing", keys=("id",), parts=2)
    await make_mart(ch, "mart_missing", 300)
    await sync_table(decl, settings=settings)
    run_id = "20260101000000_missing"
    exported = await export_to_s3(decl, run_id, settings)
    client = s3_boto(settings)
    client.delete_object(Bucket=settings.s3.bucket, Key=exported.manifest.parts[1].key)
    with pytest.raises(CheckpointError, match=r"part .*part-00001.tsv is missing"):
        await sync_table(decl, settings=settings, run_id=run_id)
    assert await live_rows(pg, "sync_missing") == 300

    manifest_key = (
        s3_run_prefix(settings.s3.prefix, "public", "sync_missing", run_id) + MANIFEST_NAME
    )
    client.delete_object(Bucket=settings.s3.bucket, Key=manifest_key)
    with pytest.raises(CheckpointError, match=r"has no manifest .* did not finish"):
        await check_checkpoint(decl, run_id, settings)
    # Without a manifest the run is incomplete: a retry exports again, and with the mart gone
    # that fails in ClickHouse, without a trace of the S3 credentials, and changes nothing.
    await ch.execute("DROP TABLE mart_missing")
    with pytest.raises(ClickHouseError) as failure:
        await sync_table(decl, settings=settings, run_id=run_id)
    assert settings.s3.secret_access_key.get_secret_value() not in str(failure.value)
    assert await live_rows(pg, "sync_missing") == 300


async def test_swap_gives_up_while_an_application_holds_the_table(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection, postgres: PostgresService
) -> None:
    decl = ServedTable(model="mart_lock", table="sync_lock", keys=("id",))
    await make_mart(ch, "mart_lock", 200)
    await sync_table(decl, settings=settings)
    await make_mart(ch, "mart_lock", 250)

    app = await asyncpg.connect(postgres.dsn)
    try:
        transaction = app.transaction()
        await transaction.start()
        assert await app.fetchval("SELECT count(*) FROM sync_lock") == 200  # holds ACCESS SHARE
        with pytest.raises(SwapError, match=r"swap public.sync_lock failed: the table stayed "
                           r"locked .*lock_timeout 100 ms, 2 attempts.*unchanged"):  # fmt: skip
            await sync_table(decl, settings=settings, lock_timeout_ms=100, swap_attempts=2)
        # Readers were never blocked for long, and still see the old version.
        reader = await asyncpg.connect(postgres.dsn)
        try:
            assert (
                await asyncio.wait_for(reader.fetchval("SELECT count(*) FROM sync_lock"), 5) == 200
            )
        finally:
            await reader.close()
        await transaction.rollback()
    finally:
        await app.close()
    assert await names_in(pg, incoming_prefix("sync_lock")) == []
    assert (await sync_table(decl, settings=settings)).rows == 250


# --- enrichment -----------------------------------------------------------------------------


async def test_enrichment_joins_operational_tables_and_refuses_multiplied_rows(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    await ch.execute("DROP TABLE IF EXISTS mart_enrich")
    await ch.execute(
        "CREATE TABLE mart_enrich ENGINE = MergeTree ORDER BY profile_id AS SELECT number AS "
        "profile_id, concat('p', toString(number)) AS handle FROM numbers(100)"
    )
    await pg.execute("DROP SCHEMA IF EXISTS enrich_src CASCADE")
    await pg.execute("CREATE SCHEMA enrich_src")
    await pg.execute(
        "CREATE TABLE enrich_src.tracked (tracked_id integer PRIMARY KEY, platform_id bigint, "
        "note varchar(20))"
    )
    await pg.execute(
        "INSERT INTO enrich_src.tracked SELECT i, i * 10, 'note ' || i FROM generate_series(1, 5) i"
    )
    decl = ServedTable.from_meta(
        "mart_enrich",
        {"serve": {"table": "sync_enrich", "keys": ["profile_id"], "enrich": [{
            "join": "enrich_src.tracked",
            "on": "enrich_src.tracked.platform_id = profile_id",
            "columns": {"tracked_profile_id": "tracked_id", "tracked_note": "note"},
        }]}},
    )  # fmt: skip
    summary = await sync_table(decl, settings=settings)
    assert "enrich" in [p.phase for p in summary.phases]
    rows = await pg.fetch(
        "SELECT profile_id, handle, tracked_profile_id, tracked_note FROM sync_enrich "
        "WHERE profile_id IN (20, 21) ORDER BY 1"
    )
    assert [tuple(r) for r in rows] == [(20, "p20", 2, "note 2"), (21, "p21", None, None)]
    types = await pg.fetch(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
        "'sync_enrich'::regclass AND attname LIKE 'tracked%' ORDER BY attnum"
    )
    assert [r[0] for r in types] == ["integer", "character varying(20)"]

    await pg.execute("INSERT INTO enrich_src.tracked VALUES (6, 30, 'twin of 3')")
    with pytest.raises(GateError, match=r"enrich failed .*100 rows into 101"):
        await sync_table(decl, settings=settings)
    assert await live_rows(pg, "sync_enrich") == 100
    assert await names_in(pg, incoming_prefix("sync_enrich")) == []


async def test_two_syncs_of_one_table_at_once_run_one_after_the_other(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """A tier and an ad-hoc `sync-table` of the same table started together: the second waits
    for the first (it never drops the first one's incoming table), and both swap in."""
    caplog.set_level(logging.INFO, logger="stir")
    await make_mart(ch, "mart_twice", 20_000)
    decl = ServedTable.from_meta(
        "mart_twice", {"serve": {"table": "sync_twice", "keys": ["id"]}},
        {"id": {}, "name": {}, "score": {}, "grp": {}, "small": {}},
    )  # fmt: skip
    first, second = await asyncio.gather(
        sync_table(decl, settings=settings), sync_table(decl, settings=settings)
    )
    assert first.rows == second.rows == 20_000
    assert first.run_id != second.run_id
    assert any("waiting up to" in r.getMessage() and "sync:public.sync_twice" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert await pg.fetchval("SELECT count(*) FROM public.sync_twice") == 20_000
    # The live table and one backup, with their keys: no incoming table left behind.
    assert await names_in(pg, "sync_twice") == [
        "sync_twice", "sync_twice_old_bkp", "sync_twice_old_bkp_pkey", "sync_twice_pkey",
    ]  # fmt: skip
