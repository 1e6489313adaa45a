"""clickhouse-connect, ClickHouse's own Python client, against the embedded server over HTTP.

Nothing of ours on the client side: the values go through clickhouse-connect's Native encoder
and decoder, with each of its compression choices, and must come back exactly as sent.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import Iterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from conftest import ClickHouseServer

DB = "conf_connect"
COMPRESSIONS = [False, "lz4", "zstd", "gzip"]

TOKYO, NEW_YORK = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")

# Every common type, and the values that are hard for each: extremes, NULLs, empties, non-ASCII.
COLUMNS = {
    "id": "UInt32",
    "u8": "UInt8",
    "u64": "UInt64",
    "i8": "Int8",
    "i64": "Int64",
    "u128": "UInt128",
    "f32": "Float32",
    "f64": "Float64",
    "flag": "Bool",
    "s": "String",
    "fs": "FixedString(4)",
    "d": "Date",
    "d32": "Date32",
    "t": "DateTime('UTC')",
    "t64": "DateTime64(3, 'Asia/Tokyo')",
    "t64us": "DateTime64(6, 'America/New_York')",
    "dec": "Decimal(18, 4)",
    "dec38": "Decimal(38, 10)",
    "uid": "UUID",
    "ip4": "IPv4",
    "ip6": "IPv6",
    "e": "Enum8('draft' = 1, 'live' = 2)",
    "n": "Nullable(Int64)",
    "ns": "Nullable(String)",
    "lc": "LowCardinality(String)",
    "lcn": "LowCardinality(Nullable(String))",
    "arr": "Array(Int32)",
    "arr_ns": "Array(Nullable(String))",
    "arr2": "Array(Array(UInt8))",
    "m": "Map(String, UInt64)",
    "tup": "Tuple(UInt8, String)",
}

ROWS = [
    (
        1, 0, 0, -128, -(2**63), 0, 1.5, -0.0001, True, "", b"ab\x00\x00",
        dt.date(1970, 1, 1), dt.date(1900, 1, 1),
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=TOKYO),
        dt.datetime(2024, 3, 10, 2, 30, 0, 123456, tzinfo=dt.UTC).astimezone(NEW_YORK),
        Decimal("-99999999999999.9999"), Decimal("1234567890123456789012345678.0123456789"),
        uuid.UUID("00000000-0000-0000-0000-000000000000"),
        ipaddress.IPv4Address(0), ipaddress.IPv6Address(0),
        "draft", None, None, "", None, [], [], [], {}, (0, ""),
    ),
    (
        2, 255, 2**64 - 1, 127, 2**63 - 1, 2**128 - 1, -3.25, 3.141592653589793, False,
        "ünïcødé \t tab, \"quotes\" 'single' \\ back\nnew line", b"full",
        dt.date(2149, 6, 6), dt.date(2299, 12, 31),
        dt.datetime(2106, 2, 7, 6, 28, 15, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, 23, 0, 0, 1000, tzinfo=TOKYO),
        dt.datetime(2024, 11, 3, 1, 30, 0, 1, tzinfo=NEW_YORK),
        Decimal("0.0001"), Decimal("-0.0000000001"),
        uuid.UUID("f1e2d3c4-b5a6-4798-8a7b-6c5d4e3f2a1b"),
        ipaddress.IPv4Address("255.255.255.255"), ipaddress.IPv6Address("2001:db8::ff00:42:8329"),
        "live", -1, "not null", "repeated", "x", [-(2**31), 0, 2**31 - 1], [None, "", "z"],
        [[], [1, 2], [255]], {"a": 1, "ünï": 2**64 - 1}, (255, "ünï"),
    ),
    (
        3, 7, 42, -1, 0, 12345678901234567890, 0.0, -1e308, True, "x" * 10_000, b"\xff\xfe\xfd\xfc",
        dt.date(2024, 2, 29), dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 12, 0, 0, 1000, tzinfo=TOKYO),
        dt.datetime(2024, 2, 29, 12, 0, 0, 999999, tzinfo=NEW_YORK),
        Decimal("12.3400"), Decimal("0E-10"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        ipaddress.IPv4Address("10.1.2.3"), ipaddress.IPv6Address("::ffff:10.1.2.3"),
        "draft", 2**62, "ns", "repeated", None, [1, 1, 1], [None], [[0]],
        {"": 0}, (1, "\n"),
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def admin(clickhouse: ClickHouseServer) -> Iterator[Client]:
    client = clickhouse_connect.get_client(host=clickhouse.host, port=clickhouse.http_port)
    client.command(f"DROP DATABASE IF EXISTS {DB}")
    client.command(f"CREATE DATABASE {DB}")
    yield client
    client.close()


def connect(server: ClickHouseServer, compress: bool | str, **kwargs: object) -> Client:
    return clickhouse_connect.get_client(
        host=server.host, port=server.http_port, compress=compress, **kwargs
    )


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_every_common_type_round_trips(
    clickhouse: ClickHouseServer, admin: Client, compress: bool | str
) -> None:
    table = f"{DB}.types_{compress or 'none'}"
    columns = ", ".join(f"{name} {ch_type}" for name, ch_type in COLUMNS.items())
    admin.command(f"CREATE TABLE {table} ({columns}) ENGINE = MergeTree ORDER BY id")
    client = connect(clickhouse, compress)
    summary = client.insert(table, ROWS, column_names=list(COLUMNS))
    assert summary.written_rows == len(ROWS)

    result = client.query(f"SELECT * FROM {table} ORDER BY id")
    assert result.column_names == tuple(COLUMNS)
    # Native over HTTP names a DateTime's time zone only to a client whose
    # client_protocol_version is at least 54337; clickhouse-connect probes for that, chDB can't
    # take the parameter, so the client gets DateTime (the same instant, in the server's zone),
    # as from a real server that answers the probe without it. DateTime64 keeps its zone.
    assert [t.name for t in result.column_types] == [
        "DateTime" if name == "t" else ch_type for name, ch_type in COLUMNS.items()
    ]
    for sent, got in zip(ROWS, result.result_rows, strict=True):
        for name, want, have in zip(COLUMNS, sent, got, strict=True):
            if name == "t":
                assert have.replace(tzinfo=have.tzinfo or dt.UTC) == want, name
            elif isinstance(want, dt.datetime):
                # The same instant, shown in the column's own time zone.
                assert have == want, name
                assert have.utcoffset() == want.astimezone(have.tzinfo).utcoffset(), name
                assert str(have.tzinfo) in {"UTC", str(TOKYO), str(NEW_YORK)}, name
            elif name == "f32":
                assert have == pytest.approx(want), name
            else:
                assert (type(have), have) == (type(want), want), name
    # The server sees the same values as the client: checked in SQL, not through the decoder.
    check = client.query(
        f"SELECT toString(t64), toString(t64us), toString(dec38), toString(uid), "
        f"toString(ip6), mapKeys(m), lcn FROM {table} WHERE id = 2"
    ).result_rows[0]
    assert check == (
        "1999-12-31 23:00:00.001",
        "2024-11-03 01:30:00.000001",
        "-0.0000000001",
        "f1e2d3c4-b5a6-4798-8a7b-6c5d4e3f2a1b",
        "2001:db8::ff00:42:8329",
        ["a", "ünï"],
        "x",
    )
    client.close()


def test_ddl(clickhouse: ClickHouseServer, admin: Client) -> None:
    client = connect(clickhouse, "lz4", database=DB)
    client.command("CREATE TABLE ddl (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
    client.command("ALTER TABLE ddl ADD COLUMN score Float64 DEFAULT 0.5 AFTER id")
    client.command("RENAME TABLE ddl TO ddl_renamed")
    client.insert("ddl_renamed", [(1, "a")], column_names=["id", "name"])
    assert client.query("SELECT id, score, name FROM ddl_renamed").result_rows == [(1, 0.5, "a")]
    assert "`score` Float64 DEFAULT 0.5" in client.command("SHOW CREATE TABLE ddl_renamed")
    assert client.command("EXISTS TABLE ddl") == 0
    client.command("TRUNCATE TABLE ddl_renamed")
    assert client.command("SELECT count() FROM ddl_renamed") == 0
    client.command("CREATE VIEW ddl_view AS SELECT id * 2 AS twice FROM ddl_renamed")
    client.insert("ddl_renamed", [(21, "b")], column_names=["id", "name"])
    assert client.command("SELECT twice FROM ddl_view") == 42
    client.command("DROP VIEW ddl_view")
    client.command("DROP TABLE ddl_renamed")
    tables = client.query(f"SELECT name FROM system.tables WHERE database = '{DB}'")
    assert not {"ddl", "ddl_renamed", "ddl_view"} & {row[0] for row in tables.result_rows}
    client.close()


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_query_parameters(clickhouse: ClickHouseServer, compress: bool | str) -> None:
    client = connect(clickhouse, compress)
    tricky = 'it\'s a "test" \\ with\ttab'
    # Server-side binding ({name:Type}, sent as param_name) ...
    bound = client.query(
        "SELECT {s:String}, {n:UInt64} + 1, {d:Date}, {a:Array(Int32)}, "
        "{t:DateTime64(3, 'Europe/Berlin')}",
        parameters={
            "s": tricky,
            "n": 2**63,
            "d": dt.date(2024, 2, 29),
            "a": [1, -2],
            "t": dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
        },
    ).result_rows
    assert bound == [
        (
            tricky,
            2**63 + 1,
            dt.date(2024, 2, 29),
            [1, -2],
            dt.datetime(2024, 1, 2, 4, 4, 5, 678000, tzinfo=ZoneInfo("Europe/Berlin")),
        )
    ]
    # ... and client-side substitution (%(name)s), with settings for the one query.
    rows = client.query(
        "SELECT %(s)s, getSetting('max_block_size')",
        parameters={"s": tricky},
        settings={"max_block_size": 1111},
    ).result_rows
    assert rows == [(tricky, 1111)]
    client.close()


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_streaming_a_large_result(clickhouse: ClickHouseServer, compress: bool | str) -> None:
    client = connect(clickhouse, compress)
    n = 2_000_000
    count = total = blocks = 0
    last = ""
    with client.query_row_block_stream(
        "SELECT number, toString(number) FROM numbers({n:UInt64})", parameters={"n": n}
    ) as stream:
        for block in stream:
            blocks += 1
            count += len(block)
            total += sum(row[0] for row in block)
            last = block[-1][1]
    assert (count, total, last) == (n, n * (n - 1) // 2, str(n - 1))
    assert blocks > 1  # it came in pieces, not as one materialised result
    client.close()


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_large_insert(clickhouse: ClickHouseServer, admin: Client, compress: bool | str) -> None:
    table = f"{DB}.bulk_{compress or 'none'}"
    admin.command(f"CREATE TABLE {table} (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    client = connect(clickhouse, compress)
    n = 300_000
    ids = list(range(n))
    client.insert(table, [ids, [f"name {i}" for i in ids]], column_oriented=True)
    result = client.query(f"SELECT count(), sum(id), countDistinct(name) FROM {table}")
    assert result.result_rows == [(n, n * (n - 1) // 2, n)]
    client.close()


def test_errors_surface_as_database_error_with_the_clickhouse_code(
    clickhouse: ClickHouseServer,
) -> None:
    client = connect(clickhouse, "lz4")
    with pytest.raises(DatabaseError) as unknown_table:
        client.query(f"SELECT * FROM {DB}.no_such_table")
    assert unknown_table.value.code == 60
    assert "UNKNOWN_TABLE" in str(unknown_table.value)
    with pytest.raises(DatabaseError) as syntax:
        client.command("CREATE TABEL nope (x UInt8) ENGINE = Memory")
    assert syntax.value.code == 62
    with pytest.raises(DatabaseError) as insert_into_nothing:
        client.insert(f"{DB}.no_such_table", [(1,)], column_names=["x"])
    assert insert_into_nothing.value.code == 60
    # A failure after the result started streaming is still the client's error, with its code.
    # (clickhouse-connect reads a result lazily, so the error shows when the rows are read.)
    late_query = client.query(
        "SELECT number, throwIf(number = 1500000, 'late') FROM numbers(3000000)"
    )
    with pytest.raises(DatabaseError) as late:
        list(late_query.result_rows)
    assert late.value.code == 395
    assert "late" in str(late.value)
    # The client is still usable afterwards.
    assert client.command("SELECT 42") == 42
    client.close()


def test_client_session_keeps_its_settings_to_itself(clickhouse: ClickHouseServer) -> None:
    """clickhouse-connect opens a session per client: its SET lasts there and only there."""
    first, second = connect(clickhouse, False), connect(clickhouse, "zstd")
    sql = "SELECT getSetting('max_block_size')"
    default = second.command(sql)
    first.command("SET max_block_size = 123")
    assert first.command(sql) == 123
    assert second.command(sql) == default
    first.close()
    second.close()
