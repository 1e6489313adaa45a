"""Two embedded ClickHouse servers as the shards of one cluster: ClickHouse as the client.

Here the client of the native protocol is ClickHouse itself (the chDB inside server `a`): remote()
and Distributed tables make it ask server `b` (or `a` itself) for its tables' status, then send
shard queries with scalars and the initiator's settings. Both servers start with the same cluster
definition (remote_servers, passed with --config-file), so either can hold a Distributed table.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException
from clickhouse_driver.reader import read_binary_str, read_binary_uint8
from clickhouse_driver.varint import read_varint, write_varint
from clickhouse_driver.writer import write_binary_str
from conftest import ClickHouseServer, free_port, launch_clickhouse, stop_process, wait_for_port

CLUSTER = "stir_two_shards"


@dataclass
class Shards:
    a: ClickHouseServer
    b: ClickHouseServer

    def client(self, server: ClickHouseServer) -> Client:
        return Client(server.host, port=server.native_port)

    def address(self, *servers: ClickHouseServer) -> str:
        """The address list of remote(): one shard per server."""
        return ",".join(f"{s.host}:{s.native_port}" for s in servers)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shards]:
    root = tmp_path_factory.mktemp("shards")
    ports = [(free_port(), free_port()) for _ in range(2)]
    replicas = "".join(
        f"<shard><replica><host>127.0.0.1</host><port>{native}</port></replica></shard>"
        for _, native in ports
    )
    config = root / "cluster.xml"
    config.write_text(
        f"<clickhouse><remote_servers><{CLUSTER}>{replicas}</{CLUSTER}></remote_servers>"
        "</clickhouse>"
    )
    # Both start at once: each takes a few seconds to load chDB.
    names = ("a", "b")
    processes = [
        launch_clickhouse(root / name, http, native, config_file=config)
        for name, (http, native) in zip(names, ports, strict=True)
    ]
    try:
        servers = []
        for name, process, (http, native) in zip(names, processes, ports, strict=True):
            for port in (http, native):
                wait_for_port(port, process, root / f"{name}.log")
            servers.append(ClickHouseServer("127.0.0.1", http, native, "", root / name, process))
        yield Shards(*servers)
    finally:
        for process in processes:
            stop_process(process)


@pytest.fixture
def table() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def create_on(shards: Shards, table: str, *servers: ClickHouseServer) -> None:
    for server in servers:
        shards.client(server).execute(
            f"CREATE TABLE {table} (id UInt32, name String, amount Decimal(10, 2), day Date) "
            "ENGINE = MergeTree ORDER BY id"
        )


def rows(first: int, count: int) -> list[tuple[int, str, Decimal, date]]:
    return [
        (i, f"name {i}", Decimal(i) / 4, date(2024, 1, 1 + i % 28))
        for i in range(first, first + count)
    ]


def insert(shards: Shards, server: ClickHouseServer, table: str, values: list[tuple]) -> None:
    shards.client(server).execute(f"INSERT INTO {table} (id, name, amount, day) VALUES", values)


# -- the wire ---------------------------------------------------------------------------------


def test_tables_status_lists_the_tables_that_exist(shards: Shards, table: str) -> None:
    """TablesStatusRequest (client packet 5) gets TablesStatusResponse (server packet 9).

    Layout from ClickHouse's TablesStatus.cpp: a count, then per table its database and name;
    the response has an entry per existing table only, each with is_replicated (false here, so
    no delay follows).
    """
    create_on(shards, table, shards.b)
    c = shards.client(shards.b)
    c.connection.force_connect()
    conn = c.connection
    write_varint(5, conn.fout)
    write_varint(2, conn.fout)
    for database, name in (("default", table), ("default", "no_such_table")):
        write_binary_str(database, conn.fout)
        write_binary_str(name, conn.fout)
    conn.fout.flush()

    assert read_varint(conn.fin) == 9
    assert read_varint(conn.fin) == 1
    assert read_binary_str(conn.fin) == "default"
    assert read_binary_str(conn.fin) == table
    assert read_binary_uint8(conn.fin) == 0  # not replicated
    # The connection is still in step: the next request is answered.
    assert conn.ping()
    conn.disconnect()


# -- remote() ---------------------------------------------------------------------------------


def test_remote_reads_a_table_of_the_other_server(shards: Shards, table: str) -> None:
    create_on(shards, table, shards.b)
    expected = rows(0, 50)
    insert(shards, shards.b, table, expected)
    got, columns = shards.client(shards.a).execute(
        f"SELECT id, name, amount, day FROM remote('{shards.address(shards.b)}', default.{table}) "
        "ORDER BY id",
        with_column_types=True,
    )
    assert got == expected
    assert columns == [
        ("id", "UInt32"),
        ("name", "String"),
        ("amount", "Decimal(10, 2)"),
        ("day", "Date"),
    ]


def test_remote_over_two_shards_is_their_union(shards: Shards, table: str) -> None:
    """Server a is one of the shards: it reads itself through its own native port."""
    create_on(shards, table, shards.a, shards.b)
    insert(shards, shards.a, table, rows(0, 30))
    insert(shards, shards.b, table, rows(100, 20))
    got = shards.client(shards.a).execute(
        f"SELECT id, name, amount, day FROM "
        f"remote('{shards.address(shards.a, shards.b)}', default.{table})"
    )
    assert sorted(got) == rows(0, 30) + rows(100, 20)


def test_insert_into_function_remote_writes_on_the_other_server(shards: Shards, table: str) -> None:
    create_on(shards, table, shards.b)
    shards.client(shards.a).execute(
        f"INSERT INTO FUNCTION remote('{shards.address(shards.b)}', default.{table}) "
        "SELECT number, concat('name ', toString(number)), number / 4, "
        "toDate('2024-01-01') + number % 28 FROM numbers(40)"
    )
    got = shards.client(shards.b).execute(f"SELECT id, name, amount, day FROM {table} ORDER BY id")
    assert got == rows(0, 40)


def test_limit_over_an_endless_remote_stream_cancels_it(shards: Shards) -> None:
    """Server a cancels b's endless stream once it has its rows; b's shard engine is free again."""
    a = shards.client(shards.a)
    source = f"remote('{shards.address(shards.b)}', system.numbers)"
    assert a.execute(f"SELECT number FROM {source} LIMIT 3") == [(0,), (1,), (2,)]
    assert a.execute(f"SELECT count() FROM (SELECT number FROM {source} LIMIT 100000)") == [
        (100000,)
    ]


def test_servers_reading_each_other_at_once_do_not_wait_for_each_other(
    shards: Shards, table: str
) -> None:
    """Each query holds its server's engine while the other server's shard query runs there."""
    create_on(shards, table, shards.a, shards.b)
    insert(shards, shards.a, table, rows(0, 10))
    insert(shards, shards.b, table, rows(0, 10))
    results: dict[str, object] = {}

    def read_other(mine: ClickHouseServer, other: ClickHouseServer, key: str) -> None:
        # The shard sleeps 50 ms a row, so the two queries overlap.
        results[key] = shards.client(mine).execute(
            f"SELECT sum(id), sum(sleepEachRow(0.05)) "
            f"FROM remote('{shards.address(other)}', default.{table})"
        )

    started = time.monotonic()
    threads = [
        threading.Thread(target=read_other, args=(shards.a, shards.b, "a")),
        threading.Thread(target=read_other, args=(shards.b, shards.a, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == {"a": [(45, 0)], "b": [(45, 0)]}
    assert time.monotonic() - started < 10


# -- a cluster: Distributed tables ------------------------------------------------------------


@pytest.fixture
def distributed(shards: Shards, table: str) -> str:
    """A Distributed table on server a over `table` on both shards, sharded by id."""
    create_on(shards, table, shards.a, shards.b)
    name = f"{table}_all"
    shards.client(shards.a).execute(
        f"CREATE TABLE {name} AS {table} ENGINE = Distributed({CLUSTER}, default, {table}, id)"
    )
    return name


def test_cluster_definition_is_loaded(shards: Shards) -> None:
    got = shards.client(shards.a).execute(
        "SELECT shard_num, port, is_local FROM system.clusters WHERE cluster = %(c)s "
        "ORDER BY shard_num",
        {"c": CLUSTER},
    )
    # Server a knows its own shard by its native port: it reads that one in process.
    assert got == [(1, shards.a.native_port, 1), (2, shards.b.native_port, 0)]


def test_distributed_table_spreads_inserts_and_reads_both_shards(
    shards: Shards, table: str, distributed: str
) -> None:
    a, b = shards.client(shards.a), shards.client(shards.b)
    a.execute(
        f"INSERT INTO {distributed} (id, name, amount, day) VALUES",
        rows(0, 20),
        settings={"distributed_foreground_insert": 1},
    )
    # Sharding key id over two shards of weight 1: even ids on the first shard, odd on the second.
    everything = rows(0, 20)
    on_a = a.execute(f"SELECT id, name, amount, day FROM {table} ORDER BY id")
    on_b = b.execute(f"SELECT id, name, amount, day FROM {table} ORDER BY id")
    assert on_a == [r for r in everything if r[0] % 2 == 0]
    assert on_b == [r for r in everything if r[0] % 2 == 1]
    assert sorted(a.execute(f"SELECT id, name, amount, day FROM {distributed}")) == everything

    # Sums per shard, then their total, from complete per-shard results (see the next test).
    per_shard = a.execute(
        f"SELECT sum(id), sum(amount) FROM {distributed}",
        settings={"distributed_group_by_no_merge": 1},
    )
    assert sorted(per_shard) == [(90, Decimal("22.5")), (100, Decimal("25"))]
    total = a.execute(
        f"SELECT sum(s) FROM (SELECT sum(id) AS s FROM {distributed})",
        settings={"distributed_group_by_no_merge": 1},
    )
    assert total == [(sum(range(20)),)]


def test_distributed_background_insert_reaches_the_other_shard(
    shards: Shards, table: str, distributed: str
) -> None:
    a = shards.client(shards.a)
    a.execute(f"INSERT INTO {distributed} (id, name, amount, day) VALUES", rows(0, 6))
    a.execute(f"SYSTEM FLUSH DISTRIBUTED {distributed}")
    on_b = shards.client(shards.b).execute(f"SELECT id FROM {table} ORDER BY id")
    assert on_b == [(1,), (3,), (5,)]


def test_shard_asked_for_mergeable_state_says_it_cannot(shards: Shards, distributed: str) -> None:
    """chDB runs a query to its end only; a shard answer before the merge is refused plainly."""
    with pytest.raises(ServerException) as excinfo:
        shards.client(shards.a).execute(f"SELECT sum(id) FROM {distributed}")
    assert excinfo.value.code == 48  # NOT_IMPLEMENTED, relayed by server a
    assert "WITH_MERGEABLE_STATE" in excinfo.value.message
    assert "distributed_group_by_no_merge" in excinfo.value.message


def test_on_cluster_ddl_is_refused_by_the_engine(shards: Shards, table: str) -> None:
    """chDB has no distributed DDL queue (no Keeper, no DDL worker): ON CLUSTER cannot run."""
    with pytest.raises(ServerException) as excinfo:
        shards.client(shards.a).execute(
            f"CREATE TABLE {table} ON CLUSTER {CLUSTER} (id UInt32) ENGINE = MergeTree ORDER BY id"
        )
    assert excinfo.value.code == 392  # QUERY_IS_PROHIBITED
    assert "Replicated DDL queries are disabled" in excinfo.value.message
