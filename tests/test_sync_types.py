"""The ClickHouse → PostgreSQL type mapping, every type's edge values round-tripping
through the real path: ClickHouse export to S3 (CSV and JSON), COPY into PostgreSQL, and the
served marts' contracts giving PostgreSQL the types the application wants (no `numeric` without
a declared reason, no unsigned integers)."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import asyncpg
import pytest
from conftest import ClickHouseServer, PostgresService, S3Service, settings_for_servers

from stir.clickhouse import ClickHouse, split_type_arguments
from stir.domain.declaration import ServedTable, served_tables
from stir.serving.sync import sync_table
from stir.serving.types import CHType, UnsupportedType, export_expression, pg_type, unwrap
from stir.settings import (
    ClickHouseSettings,
    Settings,
)


@pytest.mark.parametrize(
    ("ch", "pg", "nullable"),
    [
        ("Int8", "smallint", False),
        ("UInt8", "smallint", False),
        ("UInt16", "integer", False),
        ("UInt32", "bigint", False),
        ("Int64", "bigint", False),
        ("UInt64", "numeric(20,0)", False),
        ("Int128", "numeric(39,0)", False),
        ("UInt256", "numeric(78,0)", False),
        ("Float32", "real", False),
        ("Float64", "double precision", False),
        ("Decimal(38, 10)", "numeric(38,10)", False),
        ("Decimal64(4)", "numeric(18,4)", False),
        ("String", "text", False),
        ("FixedString(16)", "text", False),
        ("Date", "date", False),
        ("Date32", "date", False),
        ("DateTime", "timestamptz", False),
        ("DateTime('Asia/Tokyo')", "timestamptz", False),
        ("DateTime64(3, 'Europe/Paris')", "timestamp(3) with time zone", False),
        ("DateTime64(9)", "timestamp(6) with time zone", False),
        ("UUID", "uuid", False),
        ("Bool", "boolean", False),
        ("Enum8('a' = 1, 'b, c' = 2)", "text", False),
        ("IPv4", "inet", False),
        ("LowCardinality(String)", "text", False),
        ("LowCardinality(Nullable(String))", "text", True),
        ("Nullable(Int32)", "integer", True),
        ("Array(Int32)", "integer[]", False),
        ("Array(Nullable(String))", "text[]", False),
        ("Array(LowCardinality(String))", "text[]", False),
        ("Array(Array(Int32))", "jsonb", False),
        ("Map(String, UInt64)", "jsonb", False),
        ("Tuple(a Int32, b String)", "jsonb", False),
        ("Nullable(Tuple(Int32, String))", "jsonb", True),
        ("JSON", "jsonb", False),
    ],
)
def test_type_mapping(ch: str, pg: str, nullable: bool) -> None:
    mapped = pg_type(ch)
    assert (mapped.sql, mapped.nullable) == (pg, nullable)


def test_type_parser_and_unsupported_types() -> None:
    assert split_type_arguments("'a, b' = 1, 'c(' = 2") == ["'a, b' = 1", "'c(' = 2"]
    parsed = CHType.parse("Map(String, Array(Nullable(Decimal(10, 2))))")
    assert parsed.name == "Map"
    assert parsed.arg_type(1) == CHType("Array", ("Nullable(Decimal(10, 2))",))
    with pytest.raises(UnsupportedType, match="AggregateFunction"):
        pg_type("AggregateFunction(uniq, UInt64)")
    with pytest.raises(UnsupportedType):
        export_expression("x", "Nested(a Int32", "csv")


def settings_for(ch: ClickHouseServer, s3: S3Service, pg: PostgresService) -> Settings:
    return settings_for_servers(ch, s3, pg, "types")


@pytest.fixture
async def ch(clickhouse: ClickHouseServer) -> AsyncIterator[ClickHouse]:
    settings = ClickHouseSettings(
        host=clickhouse.host, native_port=clickhouse.native_port, http_port=clickhouse.http_port
    )
    async with ClickHouse(settings) as client:
        yield client


UNICODE = 'unicode 日本語 🎉, "quoted", comma\nnewline \\ backslash \t tab {a,b}'
UTC_MAX = datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# (column, ClickHouse type, SQL literal per row, expected PostgreSQL value per row)
COLUMNS: list[tuple[str, str, list[str], list[Any]]] = [
    ("id", "UInt32", ["1", "2", "3"], [1, 2, 3]),
    ("i8", "Int8", ["-128", "127", "0"], [-128, 127, 0]),
    ("u8", "UInt8", ["0", "255", "1"], [0, 255, 1]),
    ("i16", "Int16", ["-32768", "32767", "0"], [-32768, 32767, 0]),
    ("u16", "UInt16", ["0", "65535", "1"], [0, 65535, 1]),
    ("i32", "Int32", ["-2147483648", "2147483647", "0"], [-2147483648, 2147483647, 0]),
    ("u32", "UInt32", ["0", "4294967295", "1"], [0, 4294967295, 1]),
    ("i64", "Int64", [str(-(2**63)), str(2**63 - 1), "0"], [-(2**63), 2**63 - 1, 0]),
    ("u64", "UInt64", ["0", str(2**64 - 1), "1"], [Decimal(0), Decimal(2**64 - 1), Decimal(1)]),
    ("i128", "Int128", [str(-(2**127)), str(2**127 - 1), "0"],
     [Decimal(-(2**127)), Decimal(2**127 - 1), Decimal(0)]),
    ("u256", "UInt256", ["0", str(2**256 - 1), "1"],
     [Decimal(0), Decimal(2**256 - 1), Decimal(1)]),
    ("f32", "Float32", ["nan", "inf", "-1.5"], [math.nan, math.inf, -1.5]),
    ("f64", "Float64", ["-inf", "1.7976931348623157e308", "nan"],
     [-math.inf, 1.7976931348623157e308, math.nan]),
    ("dec", "Decimal(38, 10)",
     ["toDecimal128('1234567890123456789012345678.0123456789', 10)",
      "toDecimal128('-0.0000000001', 10)", "0"],
     [Decimal("1234567890123456789012345678.0123456789"), Decimal("-0.0000000001"), Decimal(0)]),
    ("s", "String", ["''", f"'{UNICODE.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n').replace(chr(9), chr(92) + 't')}'", "'\\\\N'"],  # noqa: E501
     ["", UNICODE, "\\N"]),
    ("fs", "FixedString(4)", ["'ab'", "'abcd'", "''"], ["ab", "abcd", ""]),
    ("ns", "Nullable(String)", ["NULL", "''", "'NULL'"], [None, "", "NULL"]),
    ("lcn", "LowCardinality(Nullable(String))", ["NULL", "'x'", "'é'"], [None, "x", "é"]),
    ("ni", "Nullable(Int64)", ["NULL", "-1", "0"], [None, -1, 0]),
    ("d", "Date", ["'1970-01-01'", "'2149-06-06'", "'2000-02-29'"],
     [date(1970, 1, 1), date(2149, 6, 6), date(2000, 2, 29)]),
    ("d32", "Date32", ["'1900-01-01'", "'2299-12-31'", "'1969-12-31'"],
     [date(1900, 1, 1), date(2299, 12, 31), date(1969, 12, 31)]),
    ("dt", "DateTime('Asia/Tokyo')", ["toDateTime(0)", "toDateTime(4294967295)",
     "toDateTime('2024-03-31 02:30:00', 'UTC')"],
     [EPOCH, UTC_MAX, datetime(2024, 3, 31, 2, 30, tzinfo=UTC)]),
    ("dt64", "DateTime64(6, 'America/New_York')",
     ["toDateTime64('1900-01-01 00:00:00.000001', 6, 'UTC')",
      "toDateTime64('2299-12-31 23:59:59.999999', 6, 'UTC')",
      "toDateTime64('1970-01-01 00:00:00', 6, 'UTC')"],
     [datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
      datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), EPOCH]),
    ("u", "UUID", ["'00000000-0000-0000-0000-000000000000'",
                   "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
                   "'6f1c4a4e-2f5b-4a4c-9d1a-0b8e6b1e9a77'"],
     [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1),
      uuid.UUID("6f1c4a4e-2f5b-4a4c-9d1a-0b8e6b1e9a77")]),
    ("b", "Bool", ["true", "false", "true"], [True, False, True]),
    ("e", "Enum8('a' = 1, 'b, \"c\"' = 2)", ["'a'", "'b, \"c\"'", "'a'"], ["a", 'b, "c"', "a"]),
    ("ip4", "IPv4", ["'0.0.0.0'", "'255.255.255.255'", "'10.0.0.1'"],
     [IPv4Address("0.0.0.0"), IPv4Address("255.255.255.255"), IPv4Address("10.0.0.1")]),  # noqa: S104
    ("ip6", "IPv6", ["'::1'", "'2001:db8::ff'", "'::'"],
     [IPv6Address("::1"), IPv6Address("2001:db8::ff"), IPv6Address("::")]),
    ("ai", "Array(Int64)", ["[]", f"[{-(2**63)}, 0]", "[1]"], [[], [-(2**63), 0], [1]]),
    ("an", "Array(Nullable(String))", ["['a', NULL, '']", "['q\"\\\\,{}', 'NULL']", "[]"],
     [["a", None, ""], ['q"\\,{}', "NULL"], []]),
    ("af", "Array(Float64)", ["[nan, inf, -inf]", "[0.5]", "[]"],
     [[math.nan, math.inf, -math.inf], [0.5], []]),
    ("adt", "Array(DateTime('Asia/Tokyo'))", ["[toDateTime(0)]", "[]", "[]"], [[EPOCH], [], []]),
    ("ad", "Array(Date)", ["['2149-06-06']", "[]", "[]"], [[date(2149, 6, 6)], [], []]),
    ("mp", "Map(String, UInt64)", ["map('k', 1, 'é\"', 2)", "map()", "map('z', 0)"],
     [{"k": 1, 'é"': 2}, {}, {"z": 0}]),
    ("tp", "Tuple(a Int32, b String)", ["(1, 'x')", "(-1, '')", "(0, 'y')"],
     [{"a": 1, "b": "x"}, {"a": -1, "b": ""}, {"a": 0, "b": "y"}]),
    ("aa", "Array(Array(Int32))", ["[[1], [2, 3]]", "[]", "[[]]"], [[[1], [2, 3]], [], [[]]]),
]  # fmt: skip


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json"])
async def test_every_type_round_trips(
    fmt: str, ch: ClickHouse, clickhouse: ClickHouseServer, s3: S3Service,
    postgres: PostgresService,
) -> None:  # fmt: skip
    mart = f"types_{fmt}"
    await ch.execute(f"DROP TABLE IF EXISTS {mart}")
    columns = ", ".join(f"`{name}` {ch_type}" for name, ch_type, _, _ in COLUMNS)
    await ch.execute(f"CREATE TABLE {mart} ({columns}) ENGINE = MergeTree ORDER BY id")
    rows = ["(" + ", ".join(literals[i] for _, _, literals, _ in COLUMNS) + ")" for i in range(3)]
    await ch.execute(f"INSERT INTO {mart} VALUES {', '.join(rows)}")

    decl = ServedTable(model=mart, table=f"types_{fmt}", keys=("id",), format=fmt)  # type: ignore[arg-type]
    summary = await sync_table(decl, settings=settings_for(clickhouse, s3, postgres))
    assert summary.rows == 3

    conn = await asyncpg.connect(postgres.dsn)
    try:
        types = dict(
            await conn.fetch(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = $1::regclass AND attnum > 0",
                f"types_{fmt}",
            )
        )
        got = await conn.fetch(f"SELECT * FROM types_{fmt} ORDER BY id")
    finally:
        await conn.close()
    assert types["u64"] == "numeric(20,0)"
    assert types["an"] == "text[]"
    assert types["mp"] == "jsonb"
    problems = []
    for name, ch_type, _, expected in COLUMNS:
        values = [r[name] for r in got]
        if pg_type(ch_type).sql == "jsonb":
            values = [json.loads(v) for v in values]
        if not same(values, expected):
            problems.append(f"{name} {ch_type}: got {values!r}, expected {expected!r}")
    assert not problems, "\n".join(problems)


# --- served columns get the types the application wants ---------------------------------------
# Counts, ranks and audience sizes are integers in the app; ClickHouse's UInt64 arrives as
# numeric(20,0), which drivers read as decimals. So a served column may only map to `numeric`
# when its contract column says why (`meta: {numeric_reason: ...}`, e.g. exact money), and is
# never UInt32/UInt64: Int64 (or Int32) holds every count Stir serves.

UNSIGNED = {"UInt32", "UInt64"}


def served_type_problems(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(domain, `<model>.<column>: <ClickHouse type> → <PostgreSQL type> ...`) for every served
    contract column that maps to `numeric` without `meta.numeric_reason`, or is unsigned."""
    problems = []
    for node in manifest["nodes"].values():
        meta = node.get("config", {}).get("meta") or node.get("meta") or {}
        if node.get("resource_type") != "model" or "serve" not in meta:
            continue
        domain = node["path"].split("/")[1] if node["path"].count("/") > 1 else node["path"]
        for column in node.get("columns", {}).values():
            clickhouse_type = column.get("data_type")
            if not clickhouse_type:  # test_dbt_project: every mart column declares its type
                continue
            postgres_type = pg_type(clickhouse_type).sql
            scalar, _ = unwrap(CHType.parse(clickhouse_type))
            if scalar.name == "Array":
                scalar, _ = unwrap(scalar.arg_type())
            column_meta = column.get("config", {}).get("meta") or column.get("meta") or {}
            where = f"{node['name']}.{column['name']}: {clickhouse_type} → {postgres_type}"
            if scalar.name in UNSIGNED:
                problems.append((domain, f"{where} (unsigned: declare Int64 or Int32)"))
            elif postgres_type.startswith("numeric") and not column_meta.get("numeric_reason"):
                problems.append((domain, f"{where} without meta.numeric_reason"))
    return sorted(problems)


def test_served_type_problems_names_numeric_without_a_reason_and_unsigned() -> None:
    def column(name: str, data_type: str, **meta: str) -> dict[str, Any]:
        return {"name": name, "data_type": data_type, "config": {"meta": meta}}

    served = {
        "resource_type": "model", "name": "mart_a", "path": "marts/shop/mart_a.sql",
        "config": {"meta": {"serve": {"table": "a", "keys": ["id"]}}},
        "columns": {c["name"]: c for c in [
            column("id", "Int64"),
            column("orders", "UInt64"),
            column("rank", "Nullable(UInt32)"),
            column("flag", "UInt8"),
            column("revenue", "Decimal(38, 2)", numeric_reason="money"),
            column("fee", "Decimal(18, 4)"),
            column("huge", "Int128", numeric_reason="sums beyond bigint"),
            column("ids", "Array(UInt64)", numeric_reason="no excuse for unsigned"),
            column("tags", "Array(LowCardinality(String))"),
        ]},
    }  # fmt: skip
    unserved = {
        "resource_type": "model", "name": "int_b", "path": "intermediate/int_b.sql",
        "config": {"meta": {}}, "columns": {"n": column("n", "UInt64")},
    }  # fmt: skip
    manifest = {"nodes": {"model.stir.mart_a": served, "model.stir.int_b": unserved}}
    assert served_type_problems(manifest) == [
        ("shop", "mart_a.fee: Decimal(18, 4) → numeric(18,4) without meta.numeric_reason"),
        ("shop", "mart_a.ids: Array(UInt64) → numeric(20,0)[] (unsigned: declare Int64 or Int32)"),
        ("shop", "mart_a.orders: UInt64 → numeric(20,0) (unsigned: declare Int64 or Int32)"),
        ("shop", "mart_a.rank: Nullable(UInt32) → bigint (unsigned: declare Int64 or Int32)"),
    ]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """dbt's manifest of transform/ (a parse: no database)."""
    from stir.dbt_project import parse_manifest

    return asyncio.run(parse_manifest(target_path=tmp_path_factory.mktemp("parse") / "target"))


def test_served_columns_are_numeric_only_with_a_reason_and_never_unsigned(manifest: dict) -> None:
    assert served_tables(manifest)  # the check below reads the real project's served marts
    by_domain: dict[str, list[str]] = defaultdict(list)
    for domain, problem in served_type_problems(manifest):
        by_domain[domain].append(problem)
    report = "\n".join(
        f"{domain} ({len(problems)}):\n  " + "\n  ".join(problems)
        for domain, problems in sorted(by_domain.items())
    )
    assert not by_domain, f"served columns not typed as the app wants:\n{report}"
