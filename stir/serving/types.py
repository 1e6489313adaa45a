"""ClickHouse → PostgreSQL type mapping, and the export expressions that make each value load.

Every ClickHouse column type a mart can have maps to one PostgreSQL type (`pg_type`), and to a
SELECT expression (`export_expression`) whose output, in the chosen file format, PostgreSQL's
COPY (CSV path) or `json_populate_record` (JSON path) reads back exactly:

- DateTime/DateTime64 (any time zone) are written in UTC ISO form (`date_time_output_format=iso`)
  and load into `timestamptz`; PostgreSQL keeps at most microseconds (DateTime64(7..9) rounds).
- FixedString(N) drops the `\\0` padding (PostgreSQL text cannot hold NUL bytes).
- Arrays of scalars become PostgreSQL arrays: on the CSV path the expression builds the array
  literal (`{"a",NULL}`) in ClickHouse; JSON arrays load natively on the JSON path.
- Map, Tuple, JSON, Variant/Dynamic and nested arrays become `jsonb` (`toJSONString` on CSV).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stir.clickhouse import quote_identifier as ch_ident
from stir.clickhouse import split_type_arguments


class UnsupportedType(ValueError):
    """A ClickHouse type that has no PostgreSQL mapping."""


@dataclass(frozen=True)
class CHType:
    """A parsed ClickHouse type: `name(args...)`."""

    name: str
    args: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> CHType:
        text = text.strip()
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?$", text, re.S)
        if not match:
            raise UnsupportedType(f"cannot parse ClickHouse type {text!r}")
        return cls(match.group(1), tuple(split_type_arguments(match.group(2) or "")))

    def arg_type(self, index: int = 0) -> CHType:
        """An argument that is itself a type; named tuple elements (`a Int32`) lose the name."""
        arg = self.args[index]
        named = re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s+(.+)$", arg, re.S)
        if named and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*\(", arg):
            arg = named.group(1)
        return CHType.parse(arg)


_INTEGERS = {
    "Int8": "smallint",
    "UInt8": "smallint",
    "Int16": "smallint",
    "UInt16": "integer",
    "Int32": "integer",
    "UInt32": "bigint",
    "Int64": "bigint",
    "UInt64": "numeric(20,0)",
    "Int128": "numeric(39,0)",
    "UInt128": "numeric(39,0)",
    "Int256": "numeric(77,0)",
    "UInt256": "numeric(78,0)",
}
_DECIMAL_PRECISION = {"Decimal32": 9, "Decimal64": 18, "Decimal128": 38, "Decimal256": 76}
_SIMPLE = {
    "Float32": "real",
    "BFloat16": "real",
    "Float64": "double precision",
    "String": "text",
    "FixedString": "text",
    "Enum8": "text",
    "Enum16": "text",
    "Enum": "text",
    "Nothing": "text",
    "Date": "date",
    "Date32": "date",
    "DateTime": "timestamptz",
    "UUID": "uuid",
    "Bool": "boolean",
    "IPv4": "inet",
    "IPv6": "inet",
}
_JSONB = {"Map", "Tuple", "JSON", "Object", "Variant", "Dynamic", "Nested"}


def unwrap(t: CHType) -> tuple[CHType, bool]:
    """The type under Nullable/LowCardinality, and whether it is nullable."""
    nullable = False
    while t.name in ("Nullable", "LowCardinality"):
        nullable = nullable or t.name == "Nullable"
        t = t.arg_type()
    return t, nullable


def _scalar_pg(t: CHType) -> str | None:
    if t.name in _INTEGERS:
        return _INTEGERS[t.name]
    if t.name in _SIMPLE:
        return _SIMPLE[t.name]
    if t.name == "Decimal":
        precision = int(t.args[0])
        scale = int(t.args[1]) if len(t.args) > 1 else 0
        return f"numeric({precision},{scale})"
    if t.name in _DECIMAL_PRECISION:
        return f"numeric({_DECIMAL_PRECISION[t.name]},{int(t.args[0])})"
    if t.name == "DateTime64":
        precision = min(int(t.args[0]) if t.args else 3, 6)
        return f"timestamp({precision}) with time zone"
    return None


def _array_element(t: CHType) -> CHType | None:
    """The scalar element of an Array that maps to a PostgreSQL array, else None (→ jsonb)."""
    if t.name != "Array":
        return None
    element, _ = unwrap(t.arg_type())
    return element if _scalar_pg(element) is not None else None


@dataclass(frozen=True)
class PgType:
    sql: str
    nullable: bool


def pg_type(clickhouse_type: str) -> PgType:
    """The PostgreSQL type of a ClickHouse column type (nullable when the source is)."""
    t, nullable = unwrap(CHType.parse(clickhouse_type))
    scalar = _scalar_pg(t)
    if scalar is not None:
        return PgType(scalar, nullable)
    if t.name == "Array":
        element = _array_element(t)
        if element is not None:
            return PgType(f"{_scalar_pg(element)}[]", nullable)
        return PgType("jsonb", nullable)
    if t.name in _JSONB:
        return PgType("jsonb", nullable)
    raise UnsupportedType(f"no PostgreSQL type for ClickHouse type {clickhouse_type!r}")


def _text(t: CHType, x: str) -> str:
    """An expression giving the PostgreSQL input text of one scalar value `x` of type `t`."""
    if t.name in ("DateTime", "DateTime64"):
        return f"concat(toString({x}, 'UTC'), '+00')"
    if t.name == "FixedString":
        return f"replaceAll(toString({x}), '\\0', '')"
    if t.name == "String":
        return x
    return f"toString({x})"


def _array_literal(element: CHType, column: str) -> str:
    item = _text(element, "x")
    quoted = (
        f"ifNull(concat('\"', replaceAll(replaceAll({item}, '\\\\', '\\\\\\\\'), '\"', '\\\\\"'),"
        " '\"'), 'NULL')"
    )
    return f"concat('{{', arrayStringConcat(arrayMap(x -> {quoted}, {column}), ','), '}}')"


def export_expression(name: str, clickhouse_type: str, fmt: str) -> str:
    """The SELECT expression exporting column `name` for the `csv`/`tsv` or `json` path."""
    column = ch_ident(name)
    t, _ = unwrap(CHType.parse(clickhouse_type))
    pg_type(clickhouse_type)  # raises for an unsupported type
    if t.name == "FixedString":
        return _text(t, column)
    if t.name == "Array":
        element = _array_element(t)
        if fmt != "json":
            if element is not None:
                return _array_literal(element, column)
            return f"toJSONString({column})"
        if element is not None and element.name == "FixedString":
            return f"arrayMap(x -> {_text(element, 'x')}, {column})"
        return column
    if t.name in _JSONB and fmt != "json":
        return f"toJSONString({column})"
    return column


# Settings for the export query: what makes ClickHouse's output PostgreSQL-readable.
EXPORT_SETTINGS: dict[str, object] = {
    "date_time_output_format": "iso",
    "format_csv_null_representation": "\\N",
    "output_format_json_quote_denormals": 1,
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_named_tuples_as_objects": 1,
    "output_format_decimal_trailing_zeros": 0,
    "s3_truncate_on_insert": 1,
}
