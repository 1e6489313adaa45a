"""Conformance of the embedded ClickHouse's native TCP protocol, through clickhouse-driver.

Everything here talks to a real server process (the `clickhouse` fixture) with the driver that
production uses, so what is checked is what a client sees: results and their types, streaming in
blocks, progress, errors with ClickHouse's codes, compression, authentication, and that one client
going away mid-query leaves the server usable for the others.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import math
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import pytz
from clickhouse_driver import Client
from clickhouse_driver.block import RowOrientedBlock
from clickhouse_driver.bufferedwriter import CompressedBufferedWriter
from clickhouse_driver.connection import ServerInfo
from clickhouse_driver.context import Context
from clickhouse_driver.errors import ServerException
from clickhouse_driver.protocol import ServerPacketTypes
from clickhouse_driver.streams.native import BlockOutputStream
from conftest import ClickHouseServer, start_clickhouse, stop_process

from stir.clickhouse import split_type_arguments
from stir.stack.clickhouse.native_blocks import (
    BlockLayout,
    Cursor,
    header_block,
    parse_block,
    split_native,
    to_native,
    to_tcp,
)
from stir.stack.clickhouse.native_protocol import (
    PROTOCOL_REVISION,
    CompressionMethod,
    InputBuffer,
    compress,
)

COMPRESSIONS = [pytest.param(False, id="plain"), pytest.param("lz4", id="lz4")]


def connect(server: ClickHouseServer, **kwargs: object) -> Client:
    return Client(server.host, port=server.native_port, password=server.password, **kwargs)


@pytest.fixture(params=COMPRESSIONS)
def client(request: pytest.FixtureRequest, clickhouse: ClickHouseServer) -> Iterator[Client]:
    c = connect(clickhouse, compression=request.param)
    yield c
    c.disconnect()


@pytest.fixture
def table() -> str:
    """A table name of this test's own, so parametrized runs never see each other's rows."""
    return f"t_{uuid.uuid4().hex[:12]}"


def data_blocks(client: Client, query: str, settings: dict | None = None) -> list:
    """The Data packets of a SELECT as the driver receives them, header block included."""
    # The steps of Client.execute, minus result assembly (which would hide the blocks).
    client.connection = connection = client.get_connection()
    client.make_query_settings(settings)
    connection.force_connect()
    connection.send_query(query)
    connection.send_external_tables(None)
    blocks = []
    while True:
        packet = connection.receive_packet()
        if packet.type == ServerPacketTypes.EXCEPTION:
            raise packet.exception
        if packet.type == ServerPacketTypes.END_OF_STREAM:
            return blocks
        if packet.type == ServerPacketTypes.DATA:
            blocks.append(packet.block)


# -- handshake --------------------------------------------------------------------------------


def test_handshake_reports_server(clickhouse: ClickHouseServer) -> None:
    c = connect(clickhouse)
    ((version, zone),) = c.execute("SELECT version(), timezone()")
    info = c.connection.server_info
    assert info.name == "ClickHouse"
    assert version.startswith("26.9.")
    assert info.version_tuple() == tuple(int(p) for p in version.split(".")[:3])
    assert info.revision == PROTOCOL_REVISION
    assert info.used_revision == PROTOCOL_REVISION
    assert info.timezone == zone
    assert info.display_name
    assert c.connection.ping()
    c.disconnect()


# Revisions where the wire format changes: the oldest we accept, before per-column serialization
# flags, before ProfileEvents after insert blocks and query parameters, and the newest.
@pytest.mark.parametrize("revision", [54429, 54453, 54456, 54458, PROTOCOL_REVISION])
def test_older_client_revisions(clickhouse: ClickHouseServer, revision: int, table: str) -> None:
    c = connect(clickhouse, client_revision=revision, compression=True)
    c.execute(f"CREATE TABLE {table} (a UInt32, s LowCardinality(String)) ENGINE = Memory")
    c.execute(f"INSERT INTO {table} VALUES", [(i, str(i % 3)) for i in range(1000)])
    rows, columns = c.execute(
        f"SELECT a, s FROM {table} ORDER BY a LIMIT 2", with_column_types=True
    )
    assert c.connection.server_info.used_revision == revision
    assert rows == [(0, "0"), (1, "1")]
    assert columns == [("a", "UInt32"), ("s", "LowCardinality(String)")]
    assert c.execute(f"SELECT count(), uniqExact(s) FROM {table}") == [(1000, 3)]
    c.disconnect()


def test_http_request_on_native_port_is_told_off(clickhouse: ClickHouseServer) -> None:
    with socket.create_connection((clickhouse.host, clickhouse.native_port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.0 400")
    assert b"clickhouse-client" in answer


# -- SELECT -----------------------------------------------------------------------------------


def test_select_with_column_types(client: Client) -> None:
    rows, columns = client.execute(
        "SELECT number, toString(number) AS s, [number] AS a FROM numbers(3)",
        with_column_types=True,
    )
    assert rows == [(0, "0", [0]), (1, "1", [1]), (2, "2", [2])]
    assert columns == [("number", "UInt64"), ("s", "String"), ("a", "Array(UInt64)")]


def test_empty_result_still_has_columns(client: Client) -> None:
    rows, columns = client.execute(
        "SELECT 1 AS one, 'x' AS s WHERE 0 FORMAT JSON", with_column_types=True
    )
    assert rows == []
    assert columns == [("one", "UInt8"), ("s", "String")]


def test_execute_iter_streams_a_large_result(client: Client) -> None:
    count = total = 0
    for (number,) in client.execute_iter("SELECT number FROM numbers(2000000)"):
        count += 1
        total += number
    assert count == 2_000_000
    assert total == 2_000_000 * 1_999_999 // 2
    assert client.last_query.profile_info.rows == 2_000_000
    assert client.last_query.profile_info.blocks > 10


def test_result_arrives_block_by_block(client: Client) -> None:
    blocks = data_blocks(client, "SELECT number FROM numbers(2000000)")
    assert blocks[0].num_rows == 0  # the header block comes first
    assert blocks[0].columns_with_types == [("number", "UInt64")]
    with_rows = [b for b in blocks if b.num_rows]
    assert len(with_rows) > 10
    assert sum(b.num_rows for b in with_rows) == 2_000_000


def test_max_block_size_setting_changes_blocks(client: Client) -> None:
    blocks = data_blocks(client, "SELECT number FROM numbers(10000)", {"max_block_size": 1000})
    sizes = [b.num_rows for b in blocks if b.num_rows]
    assert sum(sizes) == 10000
    assert max(sizes) <= 1000


def test_execute_with_progress(client: Client) -> None:
    n = 20_000_000  # about half a second of hashing: long enough for several reports
    progress = client.execute_with_progress(f"SELECT sum(sipHash64(number)) > 0 FROM numbers({n})")
    seen = list(progress)
    assert len(seen) >= 2, "progress should arrive while the query runs, not only at its end"
    rows = [r for r, _ in seen]
    assert rows == sorted(rows)
    assert rows[0] < n  # a report from the middle of the scan
    assert seen[-1] == (n, n)  # rows read, and the total the engine announced
    assert progress.get_result() == [(1,)]


def test_setting_max_result_rows(client: Client) -> None:
    with pytest.raises(ServerException) as excinfo:
        client.execute("SELECT number FROM numbers(100)", settings={"max_result_rows": 10})
    assert excinfo.value.code == 396  # TOO_MANY_ROWS_OR_BYTES
    # The setting applied to that query only.
    assert len(client.execute("SELECT number FROM numbers(100)")) == 100
    rows = client.execute(
        "SELECT number FROM numbers(100000)",
        settings={"max_result_rows": 10, "result_overflow_mode": "break", "max_block_size": 20},
    )
    assert 10 <= len(rows) < 100000


def test_unknown_settings_are_ignored_unless_important(clickhouse: ClickHouseServer) -> None:
    c = connect(clickhouse)
    assert c.execute("SELECT 1", settings={"no_such_setting_here": 1}) == [(1,)]
    strict = connect(clickhouse, settings_is_important=True)
    with pytest.raises(ServerException) as excinfo:
        strict.execute("SELECT 1", settings={"no_such_setting_here": 1})
    assert excinfo.value.code == 115  # UNKNOWN_SETTING
    c.disconnect()
    strict.disconnect()


def test_settings_at_their_default_value(clickhouse: ClickHouseServer) -> None:
    """A ClickHouse server forwarding a query sends every setting its session changed."""
    c = connect(clickhouse)
    # Some settings cannot be SET at all, not even to the value they have.
    assert c.execute("SELECT 1", settings={"run_query_in_background": 0}) == [(1,)]
    # A query's setting at its default still overrides the connection's SET.
    ((default,),) = c.execute("SELECT getSetting('max_block_size')")
    c.execute("SET max_block_size = 100")
    assert c.execute("SELECT getSetting('max_block_size')") == [(100,)]
    assert c.execute(
        "SELECT getSetting('max_block_size')", settings={"max_block_size": default}
    ) == [(default,)]
    c.disconnect()


def test_session_set_and_use_belong_to_the_connection(clickhouse: ClickHouseServer) -> None:
    a, b = connect(clickhouse), connect(clickhouse)
    a.execute("SET max_result_rows = 5, result_overflow_mode = 'throw'")
    with pytest.raises(ServerException) as excinfo:
        a.execute("SELECT number FROM numbers(50)")
    assert excinfo.value.code == 396
    assert len(b.execute("SELECT number FROM numbers(50)")) == 50  # b never saw a's SET

    b.execute("CREATE DATABASE IF NOT EXISTS native_use_db")
    b.execute("USE native_use_db")
    assert b.execute("SELECT currentDatabase()") == [("native_use_db",)]
    with pytest.raises(ServerException) as excinfo:
        b.execute("USE no_such_database")
    assert excinfo.value.code == 81  # UNKNOWN_DATABASE
    assert connect(clickhouse, database="native_use_db").execute("SELECT currentDatabase()") == [
        ("native_use_db",)
    ]
    a.disconnect()
    b.disconnect()


# -- query parameters -------------------------------------------------------------------------


@pytest.mark.parametrize("server_side", [False, True], ids=["client-side", "server-side"])
def test_query_parameters(client: Client, server_side: bool) -> None:
    params = {
        "n": 42,
        "s": "it's a \\ tab\there",
        "d": date(2024, 2, 29),
        "a": [1, 2, 3],
        "u": "héllo 🚀",
    }
    if server_side:
        query = "SELECT {n:UInt32} + 1, {s:String}, {d:Date}, {a:Array(UInt8)}, {u:String}"
    else:
        query = "SELECT %(n)s + 1, %(s)s, toDate(%(d)s), %(a)s, %(u)s"
    rows = client.execute(query, params, settings={"server_side_params": server_side})
    assert rows == [(43, "it's a \\ tab\there", date(2024, 2, 29), [1, 2, 3], "héllo 🚀")]


def test_session_query_parameter(clickhouse: ClickHouseServer) -> None:
    c = connect(clickhouse)
    c.execute("SET param_who = 'world'")
    assert c.execute("SELECT concat('hello ', {who:String})") == [("hello world",)]
    c.disconnect()


# -- INSERT -----------------------------------------------------------------------------------

TYPE_MATRIX = """
    id UInt32,
    i8 Int8, u8 UInt8, i16 Int16, u16 UInt16, i32 Int32, u32 UInt32,
    i64 Int64, u64 UInt64, i128 Int128, u256 UInt256,
    f32 Float32, f64 Float64,
    dec Decimal(18, 4), dec38 Decimal(38, 10),
    s String, fs FixedString(4),
    d Date, d32 Date32,
    dt DateTime('UTC'), dt64 DateTime64(3, 'Europe/Berlin'),
    u UUID, b Bool,
    n Nullable(Int32), ns Nullable(String),
    lc LowCardinality(String), lcn LowCardinality(Nullable(String)),
    arr Array(Int32), arrn Array(Nullable(String)), arr2 Array(Array(UInt8)),
    arrlc Array(LowCardinality(String)),
    m Map(String, UInt64), t Tuple(Int32, String), nt Tuple(a Int32, b String),
    e Enum8('a' = 1, 'b b' = 2), ip4 IPv4, ip6 IPv6
"""

BERLIN = pytz.timezone("Europe/Berlin")
MATRIX_ROWS = [
    (
        1,
        -128, 255, -32768, 65535, -(2**31), 2**32 - 1,
        -(2**63), 2**64 - 1, -(2**127), 2**256 - 1,
        float("inf"), float("nan"),
        Decimal("-12345678901234.5678"), Decimal("1234567890123456789012345678.0123456789"),
        "héllo wörld 🚀 \t\n\\'\"\0", "abcd",
        date(1970, 1, 1), date(1900, 1, 1),
        datetime(2106, 2, 7, 6, 28, 15, tzinfo=pytz.UTC),
        BERLIN.localize(datetime(2024, 3, 31, 3, 30, 0, 123000)),
        uuid.UUID("12345678-1234-5678-1234-567812345678"), True,
        None, None,
        "low", None,
        [], [], [],
        [],
        {}, (0, ""), (0, ""),
        "a", ipaddress.IPv4Address(0), ipaddress.IPv6Address("::"),
    ),
    (
        2,
        127, 0, 32767, 0, 2**31 - 1, 0,
        2**63 - 1, 0, 2**127 - 1, 0,
        float("-inf"), -0.0,
        Decimal("0.0001"), Decimal("-0.0000000001"),
        "", "ab",
        date(2149, 6, 6), date(2299, 12, 31),
        datetime(1970, 1, 1, 0, 0, 1, tzinfo=pytz.UTC),
        BERLIN.localize(datetime(1999, 12, 31, 23, 59, 59, 999000)),
        uuid.UUID(int=0), False,
        -7, "",
        "", "",
        [1, -2, 3], ["x", None, ""], [[1], [], [2, 3]],
        ["p", "q", "p"],
        {"k": 1, "ключ": 2**64 - 1}, (-1, "тест"), (5, "named"),
        "b b", ipaddress.IPv4Address("255.255.255.255"),
        ipaddress.IPv6Address("2001:db8::ff00:42:8329"),
    ),
]  # fmt: skip


def assert_same(actual: object, expected: object) -> None:
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(actual, float)
        assert math.isnan(actual)
    elif isinstance(expected, datetime) and expected.tzinfo is not None:
        # The driver reads DateTime('zone') back as naive wall-clock time in that zone (and
        # DateTime64 as aware); the expected values are written in the column's zone.
        assert isinstance(actual, datetime)
        if actual.tzinfo is None:
            assert actual == expected.replace(tzinfo=None)
        else:
            assert actual == expected
    elif isinstance(expected, float):
        assert actual == expected
        assert math.copysign(1, actual) == math.copysign(1, expected)
    elif isinstance(expected, tuple | list) and not isinstance(expected, str):
        assert len(actual) == len(expected), (actual, expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    else:
        assert actual == expected, (actual, expected)


def test_insert_type_matrix_round_trip(client: Client, table: str) -> None:
    client.execute(f"CREATE TABLE {table} ({TYPE_MATRIX}) ENGINE = MergeTree ORDER BY id")
    assert client.execute(f"INSERT INTO {table} VALUES", MATRIX_ROWS) == 2
    rows, columns = client.execute(f"SELECT * FROM {table} ORDER BY id", with_column_types=True)
    assert [name for name, _ in columns][:3] == ["id", "i8", "u8"]
    assert len(rows) == 2
    for actual, expected in zip(rows, MATRIX_ROWS, strict=True):
        for name, a, e in zip([c[0] for c in columns], actual, expected, strict=True):
            try:
                assert_same(a, e)
            except AssertionError as exc:
                raise AssertionError(f"column {name}: {a!r} != {e!r}") from exc
    # The engine agrees on the values themselves, not just the driver's round trip.
    assert client.execute(
        f"SELECT toString(u64), toString(i64), toString(dt64), hex(fs), lcn IS NULL FROM {table} "
        "ORDER BY id"
    ) == [
        ("18446744073709551615", "-9223372036854775808", "2024-03-31 03:30:00.123", "61626364", 1),
        ("0", "9223372036854775807", "1999-12-31 23:59:59.999", "61620000", 0),
    ]


def test_columnar_insert_of_many_rows(client: Client, table: str) -> None:
    client.execute(
        f"CREATE TABLE {table} (k UInt64, v String, n Nullable(Float64)) ENGINE = Memory"
    )
    n = 300_000
    keys = list(range(n))
    values = [f"value {i} " * (i % 5) for i in keys]
    floats = [None if i % 7 == 0 else i / 3 for i in keys]
    inserted = client.execute(
        f"INSERT INTO {table} (k, v, n) VALUES",
        [keys, values, floats],
        columnar=True,
        settings={"insert_block_size": 100_000},
    )
    assert inserted == n
    assert client.last_query.progress.written_rows == n
    assert client.execute(
        f"SELECT count(), sum(k), sum(length(v)), countIf(n IS NULL) FROM {table}"
    ) == [(n, sum(keys), sum(len(v) for v in values), sum(1 for f in floats if f is None))]
    assert client.execute(f"SELECT v FROM {table} WHERE k = 299999") == [(values[-1],)]


def test_insert_statement_forms(client: Client, table: str) -> None:
    client.execute(
        f"CREATE TABLE {table} (a UInt32, b String DEFAULT 'dflt', c UInt32 MATERIALIZED a * 2) "
        "ENGINE = MergeTree ORDER BY a"
    )
    client.execute(f"INSERT INTO {table} (a) VALUES", [(1,)])  # column subset: b defaults
    client.execute(f"INSERT INTO {table} VALUES", [{"a": 2, "b": "dict row"}])
    client.execute(f"INSERT INTO {table} FORMAT Native", [(3, "format clause")])
    client.execute(f"INSERT INTO {table} VALUES (4, 'inline')")
    client.execute(f"INSERT INTO {table} SELECT number + 5, 'select' FROM numbers(2)")
    client.execute(f"INSERT INTO {table} VALUES", [])
    assert client.execute(f"SELECT a, b, c FROM {table} ORDER BY a") == [
        (1, "dflt", 2),
        (2, "dict row", 4),
        (3, "format clause", 6),
        (4, "inline", 8),
        (5, "select", 10),
        (6, "select", 12),
    ]
    assert client.last_query.progress.rows == 6


def test_insert_that_fails_in_the_engine(client: Client, table: str) -> None:
    client.execute(
        f"CREATE TABLE {table} (a UInt32, CONSTRAINT small CHECK a < 10) ENGINE = Memory"
    )
    with pytest.raises(ServerException) as excinfo:
        client.execute(f"INSERT INTO {table} VALUES", [(1,), (20,)])
    assert excinfo.value.code == 469  # VIOLATED_CONSTRAINT
    assert "small" in excinfo.value.message
    with pytest.raises(ServerException) as excinfo:
        client.execute("INSERT INTO no_such_table_here VALUES", [(1,)])
    assert excinfo.value.code == 60  # UNKNOWN_TABLE
    client.execute(f"INSERT INTO {table} VALUES", [(3,)])
    assert client.execute(f"SELECT a FROM {table}") == [(3,)]


def driver_encoded_block(columns: list[tuple[str, str]], rows: list[tuple]) -> bytes:
    """A block as clickhouse-driver puts it in a Data packet at our revision (uncompressed)."""
    context = Context()
    context.server_info = ServerInfo(
        "ClickHouse", 26, 9, 2, PROTOCOL_REVISION, "UTC", "", PROTOCOL_REVISION
    )
    context.settings = {}
    context.client_settings = Client("localhost").client_settings
    sink = io.BytesIO()
    # The driver's own buffered writer; its "compressor" is anything with write().
    writer = CompressedBufferedWriter(sink, 1 << 20)
    BlockOutputStream(writer, context).write(RowOrientedBlock(columns, rows))
    return sink.getvalue()


def parse_in_pieces(data: bytes, step: int) -> tuple[BlockLayout, Cursor]:
    """Run the block parser on a buffer that grows `step` bytes whenever it asks for more."""
    cursor = Cursor(bytearray())
    parse = parse_block(cursor, block_info=True, custom_flags=True)
    try:
        need = next(parse)
        while True:
            while len(cursor.buf) < need:
                cursor.buf += data[len(cursor.buf) : len(cursor.buf) + step]
            need = parse.send(None)
    except StopIteration as stop:
        return stop.value, cursor


@pytest.mark.parametrize("step", [1, 7, 1 << 20])
def test_block_framing_matches_the_driver_byte_for_byte(step: int) -> None:
    """Every type's value sizes: re-framing a driver block must give back the very same bytes."""
    columns = [
        tuple(item.split(None, 1)) for item in split_type_arguments(" ".join(TYPE_MATRIX.split()))
    ]
    tcp = driver_encoded_block(columns, MATRIX_ROWS * 3)
    layout, cursor = parse_in_pieces(tcp, step)
    assert layout.rows == 6
    assert [(c.name, c.type) for c in layout.columns] == columns
    assert layout.end == len(tcp)
    native = to_native(cursor.buf, layout)
    (again,) = split_native(native)
    assert to_tcp(native, again, custom_flags=True) == tcp
    assert to_tcp(native, again, custom_flags=True, header_only=True) == header_block(
        columns, custom_flags=True
    )


# -- errors -----------------------------------------------------------------------------------


def test_errors_carry_clickhouse_code_and_message(client: Client) -> None:
    with pytest.raises(ServerException) as excinfo:
        client.execute("SELECT * FROM no_such_table_anywhere")
    assert excinfo.value.code == 60
    assert "no_such_table_anywhere" in excinfo.value.message
    assert "UNKNOWN_TABLE" in str(excinfo.value)

    with pytest.raises(ServerException) as excinfo:
        client.execute("SELEC 1")
    assert excinfo.value.code == 62  # SYNTAX_ERROR

    # An error after some blocks were already sent.
    with pytest.raises(ServerException) as excinfo:
        list(
            client.execute_iter(
                "SELECT throwIf(number = 150000, 'boom') FROM numbers(300000)",
                settings={"max_block_size": 10000},
            )
        )
    assert excinfo.value.code == 395
    assert "boom" in excinfo.value.message

    assert client.execute("SELECT 'still fine'") == [("still fine",)]


def test_type_the_server_cannot_frame_is_an_error(client: Client) -> None:
    with pytest.raises(ServerException) as excinfo:
        client.execute("SELECT 1::Dynamic")
    assert excinfo.value.code == 48  # NOT_IMPLEMENTED
    assert "Dynamic" in excinfo.value.message
    assert client.execute("SELECT 1") == [(1,)]


# -- compression ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["lz4", "lz4hc"])
def test_compressed_round_trip(clickhouse: ClickHouseServer, method: str, table: str) -> None:
    c = connect(clickhouse, compression=method)
    c.execute(f"CREATE TABLE {table} (s String) ENGINE = Memory")
    text = "compressible " * 1000
    c.execute(f"INSERT INTO {table} VALUES", [(text,)] * 500)
    assert c.execute(f"SELECT count(), any(s) = %(t)s FROM {table}", {"t": text}) == [(500, 1)]
    c.disconnect()


def test_zstd_frames_decode() -> None:
    """zstd (clickhouse-driver needs the separate `zstd` package for it): our framing both ways."""
    payload = bytes(range(256)) * 5000

    async def read_back(data: bytes) -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        buf = InputBuffer(reader)
        out = b""
        while len(out) < len(payload):
            out += await buf.read_frame()
        return out

    for method in (CompressionMethod.ZSTD, CompressionMethod.LZ4, CompressionMethod.NONE):
        assert asyncio.run(read_back(compress(payload, method))) == payload


# -- authentication ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    server = start_clickhouse(tmp_path_factory.mktemp("guarded") / "data", password="s3cret!")
    yield server
    stop_process(server.process)


def test_password_is_checked(guarded: ClickHouseServer) -> None:
    assert connect(guarded).execute("SELECT 1") == [(1,)]
    for password in ("wrong", ""):
        bad = Client(guarded.host, port=guarded.native_port, password=password)
        with pytest.raises(ServerException) as excinfo:
            bad.execute("SELECT 1")
        assert excinfo.value.code == 516  # AUTHENTICATION_FAILED
        assert "Authentication failed" in excinfo.value.message
    other_user = Client(guarded.host, port=guarded.native_port, user="eve", password="s3cret!")
    with pytest.raises(ServerException) as excinfo:
        other_user.execute("SELECT 1")
    assert excinfo.value.code == 516


# -- several clients --------------------------------------------------------------------------


def test_concurrent_clients(clickhouse: ClickHouseServer, table: str) -> None:
    connect(clickhouse).execute(
        f"CREATE TABLE {table} (worker UInt8, i UInt32) ENGINE = MergeTree ORDER BY (worker, i)"
    )
    errors: list[BaseException] = []
    workers, per_worker = 6, 5

    def work(worker: int) -> None:
        try:
            c = connect(clickhouse, compression=bool(worker % 2))
            for batch in range(per_worker):
                rows = [(worker, batch * 1000 + i) for i in range(1000)]
                c.execute(f"INSERT INTO {table} VALUES", rows)
                (count,) = c.execute(f"SELECT count() FROM {table} WHERE worker = {worker}")[0]
                assert count == (batch + 1) * 1000
                assert sum(1 for _ in c.execute_iter("SELECT number FROM numbers(100000)")) == (
                    100000
                )
            c.disconnect()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    counts = connect(clickhouse).execute(
        f"SELECT worker, count(), uniqExact(i) FROM {table} GROUP BY worker ORDER BY worker"
    )
    assert counts == [(w, per_worker * 1000, per_worker * 1000) for w in range(workers)]


def answers_quickly(server: ClickHouseServer, within: float = 10.0) -> float:
    started = time.monotonic()
    c = connect(server, send_receive_timeout=within)
    assert c.execute("SELECT 42") == [(42,)]
    c.disconnect()
    return time.monotonic() - started


def test_client_disconnecting_mid_query(clickhouse: ClickHouseServer) -> None:
    c = connect(clickhouse)
    rows = c.execute_iter("SELECT number FROM numbers(1000000000)")
    assert [next(rows) for _ in range(10)][-1] == (9,)
    c.disconnect()  # abandons a query that would take minutes to stream
    assert answers_quickly(clickhouse) < 5

    # The same with a client that sends a query and closes without reading a byte.
    raw = connect(clickhouse)
    raw.connection.force_connect()
    raw.connection.send_query("SELECT number FROM numbers(1000000000)")
    raw.connection.send_external_tables(None)
    raw.connection.socket.close()
    assert answers_quickly(clickhouse) < 5


def test_half_a_packet_then_gone(clickhouse: ClickHouseServer) -> None:
    with socket.create_connection((clickhouse.host, clickhouse.native_port), timeout=5) as sock:
        sock.sendall(b"\x00\x10ClickHouse pyth")  # a Hello cut in the middle
    assert answers_quickly(clickhouse) < 5


def test_cancel_mid_stream(clickhouse: ClickHouseServer) -> None:
    c = connect(clickhouse)
    rows = c.execute_iter(
        "SELECT number FROM numbers(1000000000)", settings={"max_block_size": 1000}
    )
    assert next(rows) == (0,)
    c.cancel()  # sends Cancel and reads until EndOfStream
    assert c.execute("SELECT 'after cancel'") == [("after cancel",)]
    c.disconnect()


def test_session_timezone_of_datetime(client: Client) -> None:
    """DateTime without a zone is read in the server's zone the driver got at handshake."""
    (value,) = client.execute("SELECT toDateTime('2024-01-02 03:04:05', 'UTC')")[0]
    assert value.replace(tzinfo=None) == datetime(2024, 1, 2, 3, 4, 5)
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert client.execute("SELECT toUnixTimestamp(%(m)s)", {"m": moment}) == [
        (int(moment.timestamp()),)
    ]
