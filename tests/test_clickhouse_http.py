"""The embedded ClickHouse's HTTP interface, spoken to directly as curl and HTTP clients do.

Every expectation here is how a real ClickHouse 26.x server answers: the bytes of a result, the
`X-ClickHouse-*` headers, the status and text of an error, what is (and is not) left in a table
after a failure.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import re
import socket
import struct
import time
import uuid
import zlib
from collections.abc import Iterator

import httpx
import lz4.frame
import pytest
import zstandard
from conftest import ClickHouseServer, start_clickhouse, stop_process

DB = "conf_http"

# Rows whose text needs every escape a format has: a leading blank (and 32 is a blank byte in
# RowBinary/Native), a tab, quotes, a comma, a backslash, a line break, non-ASCII.
ROWS = [
    (32, " leading blank"),
    (7, 'tab\there, "quoted", comma'),
    (1, "back\\slash\nnew line"),
    (4_000_000_000, "ünïcødé"),
]


@pytest.fixture(scope="module")
def http(clickhouse: ClickHouseServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=clickhouse.http_url, timeout=60) as client:
        post(client, f"DROP DATABASE IF EXISTS {DB}")
        post(client, f"CREATE DATABASE {DB}")
        yield client


def post(client: httpx.Client, sql: str | bytes, **params: str) -> httpx.Response:
    """POST `sql` as the body; fail the test unless the server answers 200."""
    response = client.post("/", content=sql, params=params)
    assert response.status_code == 200, response.text
    return response


def query(client: httpx.Client, sql: str, **params: str) -> str:
    return post(client, sql, **params).text


def make_table(client: httpx.Client, name: str) -> str:
    table = f"{DB}.{name}"
    post(client, f"DROP TABLE IF EXISTS {table}")
    post(client, f"CREATE TABLE {table} (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
    return table


def rows_of(client: httpx.Client, table: str) -> list[tuple[int, str]]:
    text = query(client, f"SELECT id, name FROM {table} ORDER BY id FORMAT JSONCompactEachRow")
    return sorted((int(i), s) for i, s in map(json.loads, text.splitlines()))


def assert_error(response: httpx.Response, code: int, status: int) -> None:
    """ClickHouse's error: its status, the code header, `Code: N. DB::Exception: ...` once."""
    assert response.status_code == status, response.text
    assert response.headers["X-ClickHouse-Exception-Code"] == str(code)
    assert response.text.startswith(f"Code: {code}. DB::Exception: "), response.text
    assert response.text.count("(version ") == 1, response.text
    assert re.search(r"\(version 26\.9[\d.]*\)\n$", response.text), response.text


# -- data in every input format ----------------------------------------------------------------


def _varuint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varuint(len(data)) + data


def encode(fmt: str, rows: list[tuple[int, str]]) -> bytes:
    """`rows` in `fmt`, written by hand from ClickHouse's format specifications."""
    if fmt == "Native":  # one block: columns, rows, then each column's name, type and values
        ids = b"".join(struct.pack("<I", i) for i, _ in rows)
        names = b"".join(_string(s) for _, s in rows)
        return (
            _varuint(2) + _varuint(len(rows))
            + _string("id") + _string("UInt32") + ids
            + _string("name") + _string("String") + names
        )  # fmt: skip
    if fmt == "RowBinary":
        return b"".join(struct.pack("<I", i) + _string(s) for i, s in rows)
    if fmt == "JSONEachRow":
        return "".join(json.dumps({"id": i, "name": s}) + "\n" for i, s in rows).encode()
    if fmt == "CSV":
        out = io.StringIO()
        # Strings quoted: unquoted CSV fields lose their outer blanks (ClickHouse's default).
        csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC).writerows(rows)
        return out.getvalue().encode()
    if fmt == "TSV":
        escape = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n"})
        return "".join(f"{i}\t{s.translate(escape)}\n" for i, s in rows).encode()
    raise AssertionError(fmt)


FORMATS = ["Native", "RowBinary", "JSONEachRow", "CSV", "TSV"]


# -- basics ------------------------------------------------------------------------------------


def test_ping_and_root_answer_ok(http: httpx.Client) -> None:
    for path in ("/ping", "/"):
        response = http.get(path)
        assert (response.status_code, response.text) == (200, "Ok.\n")


def test_query_by_get_by_post_and_split_between_url_and_body(http: httpx.Client) -> None:
    assert http.get("/", params={"query": "SELECT 1 + 1"}).text == "2\n"
    assert http.post("/", content="SELECT 'posted'").text == "posted\n"
    # The `query` parameter, then the body: ClickHouse's own example, `?query=SELECT` + `1`.
    assert http.post("/", params={"query": "SELECT"}, content="40 + 2").text == "42\n"
    assert http.post("/", content="SELECT 7;").text == "7\n"


def test_settings_in_the_url_apply_to_that_request_only(http: httpx.Client) -> None:
    sql = "SELECT getSetting('max_block_size')"
    default = query(http, sql)
    assert default.strip() != "1234"
    assert query(http, sql, max_block_size="1234") == "1234\n"
    assert query(http, sql) == default
    # A SET without a session is for that request alone, as on a server.
    post(http, "SET max_block_size = 4321")
    assert query(http, sql) == default
    unknown = http.post("/", content="SELECT 1", params={"no_such_setting": "1"})
    assert_error(unknown, 115, 404)


def test_database_parameter_header_and_use_do_not_leak(http: httpx.Client) -> None:
    table = make_table(http, "dbparam")
    post(http, f"INSERT INTO {table} VALUES (1, 'one')")
    assert query(http, "SELECT name FROM dbparam", database=DB) == "one\n"
    by_header = http.post(
        "/", content="SELECT name FROM dbparam", headers={"X-ClickHouse-Database": DB}
    )
    assert by_header.text == "one\n"
    post(http, f"USE {DB}")
    assert query(http, "SELECT currentDatabase()") == "default\n"
    assert_error(http.post("/", content="SELECT 1", params={"database": "no_such_db"}), 81, 404)


def test_default_format_and_format_clause(http: httpx.Client) -> None:
    response = post(http, "SELECT 1 AS x, 'a' AS y", default_format="JSONEachRow")
    assert response.text == '{"x":1,"y":"a"}\n'
    assert response.headers["X-ClickHouse-Format"] == "JSONEachRow"
    # FORMAT in the query wins over default_format.
    response = post(http, "SELECT 1 AS x, 'a' AS y FORMAT CSV", default_format="JSONEachRow")
    assert response.text == '1,"a"\n'
    assert response.headers["X-ClickHouse-Format"] == "CSV"
    assert response.headers["Content-Type"] == "text/csv; charset=UTF-8"
    response = post(http, "SELECT 1 AS x FORMAT JSON")
    assert json.loads(response.text)["data"] == [{"x": 1}]
    assert_error(http.post("/", content="SELECT 1 FORMAT NoSuchFormat"), 73, 404)


def test_an_empty_result_keeps_its_format_frame(http: httpx.Client) -> None:
    """No rows is still a JSON document, and still a header for the WithNames formats."""
    empty = post(http, "SELECT 1 AS x, 'a' AS y WHERE 0 FORMAT JSON")
    document = json.loads(empty.text)
    assert document["data"] == []
    assert [column["name"] for column in document["meta"]] == ["x", "y"]
    assert document["rows"] == 0
    header = post(http, "SELECT 1 AS x, 'a' AS y WHERE 0 FORMAT CSVWithNames")
    assert header.text == '"x","y"\n'


def test_query_parameters(http: httpx.Client) -> None:
    params = {"param_x": "41", "param_s": "it's", "param_a": "[1,2,3]", "param_t": "2024-05-06"}
    sql = "SELECT {x:UInt32} + 1, {s:String}, arraySum({a:Array(UInt8)}), {t:Date} + 1"
    assert query(http, sql, **params) == "42\tit\\'s\t6\t2024-05-07\n"
    # Parameters in a GET too, and a missing one is ClickHouse's UNKNOWN_QUERY_PARAMETER.
    assert http.get("/", params={"query": "SELECT {x:UInt8} * 2", "param_x": "21"}).text == "42\n"
    assert_error(http.post("/", content="SELECT {missing:UInt8}"), 456, 500)


# -- inserts with their data in the body -------------------------------------------------------


@pytest.mark.parametrize("statement_in", ["body", "url"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_insert_with_data_in_the_body(http: httpx.Client, fmt: str, statement_in: str) -> None:
    table = make_table(http, f"ins_{fmt}_{statement_in}".lower())
    statement = f"INSERT INTO {table} (id, name) FORMAT {fmt}"
    if statement_in == "body":
        response = post(http, statement.encode() + b"\n" + encode(fmt, ROWS))
    else:
        response = post(http, encode(fmt, ROWS), query=statement)
    assert json.loads(response.headers["X-ClickHouse-Summary"])["written_rows"] == str(len(ROWS))
    assert rows_of(http, table) == sorted(ROWS)


def test_insert_streamed_in_chunks(http: httpx.Client) -> None:
    """A chunked body (no Content-Length) of many pieces arrives whole."""
    table = make_table(http, "ins_chunked")
    rows = [(i, f"row {i}") for i in range(200_000)]
    data = encode("RowBinary", rows)
    pieces = (data[i : i + 7_777] for i in range(0, len(data), 7_777))
    http.post("/", params={"query": f"INSERT INTO {table} FORMAT RowBinary"}, content=pieces)
    assert query(http, f"SELECT count(), sum(id), max(name) FROM {table}") == (
        f"200000\t{sum(range(200_000))}\trow 99999\n"
    )


# -- compression -------------------------------------------------------------------------------

COMPRESS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zstd": zstandard.ZstdCompressor().compress,
    "lz4": lz4.frame.compress,
}
DECOMPRESS = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
    "lz4": lz4.frame.decompress,
}


def raw_body(response: httpx.Response) -> bytes:
    """The body as it came over the wire, before any decoding by httpx."""
    return b"".join(response.iter_raw())


@pytest.mark.parametrize("encoding", list(COMPRESS))
def test_compressed_request_body(http: httpx.Client, encoding: str) -> None:
    table = make_table(http, f"compressed_{encoding}")
    body = f"INSERT INTO {table} FORMAT CSV\n".encode() + encode("CSV", ROWS)
    response = http.post(
        "/", content=COMPRESS[encoding](body), headers={"Content-Encoding": encoding}
    )
    assert response.status_code == 200, response.text
    assert rows_of(http, table) == sorted(ROWS)
    # Several frames one after the other, as clickhouse-connect sends a large insert.
    post(http, f"TRUNCATE TABLE {table}")
    frames = [body[:40], body[40:90], body[90:]]
    response = http.post(
        "/",
        content=b"".join(COMPRESS[encoding](frame) for frame in frames),
        headers={"Content-Encoding": encoding},
    )
    assert response.status_code == 200, response.text
    assert rows_of(http, table) == sorted(ROWS)
    # A compressed query, too.
    response = http.post(
        "/", content=COMPRESS[encoding](b"SELECT 6 * 7"), headers={"Content-Encoding": encoding}
    )
    assert response.text == "42\n"


@pytest.mark.parametrize("encoding", list(COMPRESS))
def test_compressed_response(http: httpx.Client, encoding: str) -> None:
    sql = "SELECT number, toString(number * 3) FROM numbers(100000) FORMAT CSV"
    expected = "".join(f'{n},"{n * 3}"\n' for n in range(100_000)).encode()
    request = http.build_request(
        "POST",
        "/",
        content=sql,
        params={"enable_http_compression": "1"},
        headers={"Accept-Encoding": encoding},
    )
    with http.stream(request.method, request.url, content=sql, headers=request.headers) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Encoding"] == encoding
        assert DECOMPRESS[encoding](raw_body(resp)) == expected
    # A non-SELECT's result (SHOW) is compressed as well.
    with http.stream(
        "POST", "/", content="SHOW DATABASES", params={"enable_http_compression": "1"},
        headers={"Accept-Encoding": encoding},
    ) as resp:  # fmt: skip
        assert resp.headers["Content-Encoding"] == encoding
        assert DB in DECOMPRESS[encoding](raw_body(resp)).decode().split("\n")


def test_response_compression_only_when_enabled_and_as_curl_asks(http: httpx.Client) -> None:
    sql = "SELECT 'plain'"
    with http.stream("POST", "/", content=sql, headers={"Accept-Encoding": "gzip"}) as resp:
        assert "Content-Encoding" not in resp.headers  # enable_http_compression is off
        assert raw_body(resp) == b"plain\n"
    # curl --compressed offers "deflate, gzip, br, zstd"; ClickHouse prefers zstd.
    with http.stream(
        "POST", "/", content=sql, params={"enable_http_compression": "1"},
        headers={"Accept-Encoding": "deflate, gzip, br, zstd"},
    ) as resp:  # fmt: skip
        assert resp.headers["Content-Encoding"] == "zstd"
        assert DECOMPRESS["zstd"](raw_body(resp)) == b"plain\n"


def test_corrupt_or_unknown_request_encoding_is_a_client_error(http: httpx.Client) -> None:
    garbage = http.post("/", content=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    assert_error(garbage, 354, 500)
    truncated = gzip.compress(b"SELECT 1")[:-6]
    assert_error(http.post("/", content=truncated, headers={"Content-Encoding": "gzip"}), 354, 500)
    assert_error(http.post("/", content=b"x", headers={"Content-Encoding": "snappy2"}), 89, 500)
    assert http.get("/ping").text == "Ok.\n"


# -- headers and errors ------------------------------------------------------------------------


def test_response_headers(http: httpx.Client, clickhouse: ClickHouseServer) -> None:
    table = make_table(http, "headers")
    response = post(http, f"INSERT INTO {table} FORMAT TSV\n1\ta\n2\tb\n3\tc\n")
    summary = json.loads(response.headers["X-ClickHouse-Summary"])
    assert summary["written_rows"] == "3"
    assert int(summary["written_bytes"]) > 0

    response = post(http, f"SELECT count() FROM {table}", query_id="my-query-1")
    assert response.text == "3\n"
    assert response.headers["X-ClickHouse-Query-Id"] == "my-query-1"
    assert response.headers["X-ClickHouse-Format"] == "TabSeparated"
    assert response.headers["Content-Type"] == "text/tab-separated-values; charset=UTF-8"
    assert response.headers["X-ClickHouse-Timezone"] == query(http, "SELECT timezone()").strip()
    assert re.fullmatch(r"[a-z0-9]{16}", response.headers["X-ClickHouse-Exception-Tag"])
    json.loads(response.headers["X-ClickHouse-Summary"])
    # Without a query_id, the server makes one up: a UUID, a new one each time.
    first = post(http, "SELECT 1").headers["X-ClickHouse-Query-Id"]
    second = post(http, "SELECT 1").headers["X-ClickHouse-Query-Id"]
    assert first != second
    uuid.UUID(first)


def test_errors_as_clickhouse_returns_them(http: httpx.Client) -> None:
    unknown_table = http.post("/", content=f"SELECT * FROM {DB}.no_such_table")
    assert_error(unknown_table, 60, 404)
    assert "(UNKNOWN_TABLE)" in unknown_table.text
    assert unknown_table.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert_error(http.post("/", content="SELEKT 1"), 62, 400)
    assert_error(http.get("/", params={"query": "SELECT throwIf(1, 'boom')"}), 395, 500)
    assert_error(http.post("/", content="   "), 62, 400)
    assert http.get("/no/such/handler").status_code == 404


def test_error_after_the_result_started_ends_the_body_with_a_tagged_block(
    http: httpx.Client,
) -> None:
    sql = "SELECT number FROM numbers(2000000) WHERE NOT throwIf(number = 1500000, 'late boom')"
    response = http.post("/", content=sql)
    # The status went out with the first rows; the error is framed at the end, 26.x style.
    assert response.status_code == 200
    tag = response.headers["X-ClickHouse-Exception-Tag"]
    body = response.content
    assert body.startswith(b"0\n1\n2\n")
    match = re.search(
        rb"\r\n__exception__\r\n(\w+)\r\n(Code: 395\..*late boom.*?)\n"
        rb"(\d+) (\w+)\r\n__exception__\r\n$",
        body,
        re.DOTALL,
    )
    assert match, body[-500:]
    assert match.group(1).decode() == match.group(4).decode() == tag
    assert int(match.group(3)) == len(match.group(2))


# -- authentication and persistence: a server of our own, with a password -------------------


PASSWORD = "s3cret-pass"


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ClickHouseServer]]:
    """A password-protected server; a test may restart it (the list holds the current one)."""
    data_dir = tmp_path_factory.mktemp("clickhouse-private") / "data"
    holder = [start_clickhouse(data_dir, password=PASSWORD)]
    yield holder
    stop_process(holder[0].process)


def test_basic_auth_and_clickhouse_user_key_headers(private_server: list[ClickHouseServer]) -> None:
    url = private_server[0].http_url
    sql = {"query": "SELECT currentUser()"}
    basic = "Basic " + base64.b64encode(f"default:{PASSWORD}".encode()).decode()
    assert httpx.get(url, params=sql, headers={"Authorization": basic}).text == "default\n"
    headers = {"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD}
    assert httpx.get(url, params=sql, headers=headers).text == "default\n"
    assert (
        httpx.get(url, params={**sql, "user": "default", "password": PASSWORD}).status_code == 200
    )

    assert_error(httpx.get(url, params=sql), 516, 403)  # no password at all
    wrong = "Basic " + base64.b64encode(b"default:wrong").decode()
    response = httpx.get(url, params=sql, headers={"Authorization": wrong})
    assert_error(response, 516, 403)
    assert "Authentication failed" in response.text
    wrong_user = {"X-ClickHouse-User": "mallory", "X-ClickHouse-Key": PASSWORD}
    assert_error(httpx.get(url, params=sql, headers=wrong_user), 516, 403)
    assert httpx.get(f"{url}/ping").text == "Ok.\n"  # health checks need no credentials


def test_tables_survive_a_restart(private_server: list[ClickHouseServer]) -> None:
    auth = {"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD}
    server = private_server[0]
    with httpx.Client(base_url=server.http_url, headers=auth, timeout=60) as client:
        post(client, f"CREATE DATABASE IF NOT EXISTS {DB}")
        table = make_table(client, "kept")
        post(client, encode("RowBinary", ROWS), query=f"INSERT INTO {table} FORMAT RowBinary")
    stop_process(server.process)
    private_server[0] = server = start_clickhouse(server.data_dir, password=PASSWORD)
    with httpx.Client(base_url=server.http_url, headers=auth, timeout=60) as client:
        assert rows_of(client, table) == sorted(ROWS)


# -- bad input ---------------------------------------------------------------------------------


def test_malformed_http_request_gets_400_and_the_server_keeps_serving(
    clickhouse: ClickHouseServer, http: httpx.Client
) -> None:
    for garbage in (b"THIS IS NOT HTTP\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        with socket.create_connection((clickhouse.host, clickhouse.http_port), timeout=10) as sock:
            sock.sendall(garbage)
            reply = sock.recv(4096)
        assert re.match(rb"HTTP/1\.[01] 400 ", reply), reply
    assert http.get("/", params={"query": "SELECT 'still here'"}).text == "still here\n"


def test_failed_query_leaves_earlier_data_intact(http: httpx.Client) -> None:
    table = make_table(http, "intact")
    post(http, f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    # Fails halfway through its own rows, inside ClickHouse.
    failing = http.post(
        "/",
        content=f"INSERT INTO {table} SELECT number + 10, toString(throwIf(number = 5)) "
        "FROM numbers(10)",
    )
    assert_error(failing, 395, 500)
    assert_error(http.post("/", content=f"SELECT intDiv(id, 0) FROM {table}"), 153, 500)
    assert rows_of(http, table) == [(1, "a"), (2, "b"), (3, "c")]


@pytest.mark.parametrize("rows", [3, 5_000_000], ids=["small", "many-blocks"])
def test_insert_with_a_malformed_row_changes_nothing(http: httpx.Client, rows: int) -> None:
    """All or nothing, even far past max_insert_block_size (1,048,449 rows): chDB, like
    ClickHouse, would have committed the blocks before the bad row (checked: 4.2 M good rows
    and a bad one left 2.1 M in the table)."""
    table = make_table(http, f"malformed_{rows}")
    post(http, f"INSERT INTO {table} VALUES (0, 'before')")
    good = post(http, f"SELECT number + 1, 'r' FROM numbers({rows}) FORMAT CSV").content
    data = good + b"not-a-number,oops\n" + b"999999999,after\n"
    pieces = (data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20))
    response = http.post("/", params={"query": f"INSERT INTO {table} FORMAT CSV"}, content=pieces)
    assert response.headers["X-ClickHouse-Exception-Code"] in ("6", "27", "72"), response.text
    assert response.status_code == 400
    assert query(http, f"SELECT count(), max(name) FROM {table}") == "1\tbefore\n"
    # And the table still takes a good insert.
    post(http, good, query=f"INSERT INTO {table} FORMAT CSV")
    assert query(http, f"SELECT count() FROM {table}") == f"{rows + 1}\n"


def test_insert_violating_a_constraint_is_an_error_and_changes_nothing(
    http: httpx.Client,
) -> None:
    """chDB's streaming insert reports success here and drops the rows; the endpoint must not."""
    table = "constrained"
    post(http, f"DROP TABLE IF EXISTS {table}")
    post(
        http,
        f"CREATE TABLE {table} (id UInt64, name String, CONSTRAINT positive CHECK id > 0) "
        "ENGINE = MergeTree ORDER BY id",
    )
    post(http, f"INSERT INTO {table} VALUES (1, 'kept')")
    response = http.post(
        "/", params={"query": f"INSERT INTO {table} FORMAT CSV"}, content=b"2,ok\n0,bad\n"
    )
    assert_error(response, 469, 500)  # VIOLATED_CONSTRAINT
    assert rows_of(http, table) == [(1, "kept")]


def test_get_with_a_modifying_statement_is_readonly(http: httpx.Client) -> None:
    table = make_table(http, "readonly")
    for sql in (
        f"CREATE TABLE {DB}.made_by_get (x UInt8) ENGINE = Memory",
        f"INSERT INTO {table} VALUES (1, 'x')",
        f"INSERT INTO {table} FORMAT CSV\n2,y\n",
        f"DROP TABLE {table}",
    ):
        assert_error(http.get("/", params={"query": sql}), 164, 500)
    assert query(http, f"EXISTS TABLE {DB}.made_by_get") == "0\n"
    assert rows_of(http, table) == []


def test_client_leaving_mid_insert_commits_nothing(
    clickhouse: ClickHouseServer, http: httpx.Client
) -> None:
    table = make_table(http, "half_sent")
    data = post(http, "SELECT number, 'r' FROM numbers(3000000) FORMAT CSV").content
    for framing in ("Content-Length", "chunked"):
        with socket.create_connection((clickhouse.host, clickhouse.http_port), timeout=10) as sock:
            head = f"POST /?query=INSERT+INTO+{table}+FORMAT+CSV HTTP/1.1\r\nHost: x\r\n"
            half = data[: len(data) // 2]
            if framing == "chunked":
                sock.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
                sock.sendall(b"%x\r\n%s\r\n" % (len(half), half))
            else:
                sock.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + half)
            time.sleep(0.2)  # the server is reading the body when the client goes
        assert query(http, f"SELECT count() FROM {table}") == "0\n"


def test_insert_values_containing_the_word_format(http: httpx.Client) -> None:
    table = make_table(http, "values_format")
    post(http, f"INSERT INTO {table} VALUES (1, 'x FORMAT CSV\\n2,y'), (3, 'FORMAT Native')")
    assert rows_of(http, table) == [(1, "x FORMAT CSV\n2,y"), (3, "FORMAT Native")]


def test_settings_that_would_outlive_their_request_do_not(http: httpx.Client) -> None:
    """The engine is shared: no request may leave it read-only, in another dialect, or unable
    to parse the statement that resets its settings."""
    table = make_table(http, "after_readonly")
    for level in ("1", "2"):
        refused = http.post(
            "/", content=f"INSERT INTO {table} VALUES (1, 'a')", params={"readonly": level}
        )
        assert_error(refused, 164, 500)
        assert query(http, "SELECT 1", readonly=level) == "1\n"
    assert_error(http.post("/", content="SET max_threads = 1", params={"readonly": "1"}), 164, 500)
    assert_error(http.post("/", content="SELECT 1", params={"dialect": "prql"}), 36, 400)
    assert_error(http.post("/", content="SELECT 1", params={"max_query_size": "5"}), 36, 400)
    assert_error(http.post("/", content="SELECT 1", params={"max_parser_depth": "1"}), 36, 400)
    assert query(http, "SELECT 1", max_query_size="100000", max_parser_depth="500") == "1\n"
    # Every later request is as before: writable, default parser, default limits.
    post(http, f"INSERT INTO {table} VALUES (2, 'b')")
    sql = "SELECT getSetting('readonly'), getSetting('dialect'), getSetting('max_query_size')"
    assert query(http, sql) == "0\tclickhouse\t262144\n"
    assert rows_of(http, table) == [(2, "b")]


# -- sessions and isolation between requests ---------------------------------------------------


def test_session_keeps_set_and_use_for_itself_only(http: httpx.Client) -> None:
    sql = "SELECT getSetting('max_block_size'), currentDatabase()"
    default = query(http, sql).split("\t")[0]
    post(http, "SET max_block_size = 777", session_id="conf-a")
    post(http, f"USE {DB}", session_id="conf-a")
    assert query(http, sql, session_id="conf-a") == f"777\t{DB}\n"
    assert query(http, sql, session_id="conf-b") == f"{default}\tdefault\n"
    assert query(http, sql) == f"{default}\tdefault\n"
    # A URL setting of one request of the session overrides, for that request only.
    assert query(http, sql, session_id="conf-a", max_block_size="5") == f"5\t{DB}\n"
    assert query(http, sql, session_id="conf-a") == f"777\t{DB}\n"
    # A bad SET changes nothing and says why.
    assert_error(
        http.post("/", content="SET no_such_setting = 1", params={"session_id": "conf-a"}), 115, 404
    )
    unknown = http.post(
        "/", content="SELECT 1", params={"session_id": "nope", "session_check": "1"}
    )
    assert_error(unknown, 372, 500)
    # readonly, in a session: the session is read-only, the others are not.
    table = make_table(http, "session_readonly")
    post(http, "SET readonly = 1", session_id="conf-ro")
    refused = http.post(
        "/", content=f"INSERT INTO {table} VALUES (1, 'a')", params={"session_id": "conf-ro"}
    )
    assert_error(refused, 164, 500)
    assert query(http, "SELECT 2", session_id="conf-ro") == "2\n"
    post(http, f"INSERT INTO {table} VALUES (1, 'a')", session_id="conf-b")
    assert rows_of(http, table) == [(1, "a")]


def test_client_leaving_a_large_streamed_select_does_not_wedge_the_server(
    clickhouse: ClickHouseServer, http: httpx.Client
) -> None:
    request = (
        "GET /?query=SELECT+number,+toString(number)+FROM+system.numbers&max_block_size=4096 "
        f"HTTP/1.1\r\nHost: {clickhouse.host}\r\n\r\n"
    ).encode()
    with socket.create_connection((clickhouse.host, clickhouse.http_port), timeout=10) as sock:
        sock.sendall(request)
        received = 0
        while received < 2_000_000:  # an endless result; take 2 MB of it and hang up
            chunk = sock.recv(65536)
            assert chunk
            received += len(chunk)
    started = time.monotonic()
    answer = httpx.get(
        clickhouse.http_url, params={"query": "SELECT getSetting('max_block_size')"}, timeout=10
    )
    assert time.monotonic() - started < 5
    assert answer.status_code == 200
    assert answer.text != "4096\n"  # the abandoned query's settings are gone too
    # And the next large result streams in full.
    count = query(http, "SELECT count() FROM (SELECT number FROM numbers(3000000))")
    assert count == "3000000\n"
