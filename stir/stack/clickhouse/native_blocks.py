"""Where each column of a ClickHouse Native block starts and ends, so blocks can be re-framed.

The native TCP protocol carries the same column encoding as the `Native` format that chDB reads
and writes, with two additions: every block starts with a BlockInfo record and, from protocol
revision 54454 on, every column header is followed by one byte telling whether the column uses a
custom (sparse) serialization. Converting between the two means finding the end of each column's
data, which takes the size of every value of its type: this module knows those sizes for the types
clickhouse-driver can carry (and Variant), and refuses the rest with NOT_IMPLEMENTED.

The parser is written as generators so that the same code reads a complete chunk from the engine
and a block that is still arriving over the socket: whenever its buffer is too short it yields the
buffer length it needs, and the caller appends bytes before resuming it. It never copies data; it
only records offsets.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from stir.clickhouse import split_type_arguments
from stir.stack.clickhouse.native_protocol import NOT_IMPLEMENTED, ProtocolError, string, varint

# What a parse step is: it may ask for a longer buffer (yield the length) and returns a value.
Parse = Generator[int, None, None]

# BlockInfo as ClickHouse writes it: field 1 is_overflows = 0, field 2 bucket_num = -1, end (0).
BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"

_U64 = struct.Struct("<Q")


class Buffer(Protocol):
    """A growing byte buffer and the parser's position in it."""

    buf: bytearray | bytes
    pos: int


@dataclass
class Cursor:
    """A buffer and a position in it: complete engine output, or a buffer the caller grows."""

    buf: bytes | bytearray
    pos: int = 0


def _need(cur: Buffer, n: int) -> Parse:
    end = cur.pos + n
    while len(cur.buf) < end:
        yield end


def _read_varint(cur: Buffer) -> Generator[int, None, int]:
    result = shift = 0
    for _ in range(10):
        while cur.pos >= len(cur.buf):
            yield cur.pos + 1
        byte = cur.buf[cur.pos]
        cur.pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result
        shift += 7
    raise ProtocolError("Too long VarUInt in a block. (CANNOT_READ_ALL_DATA)", 33)


def _read_string(cur: Buffer) -> Generator[int, None, str]:
    size = yield from _read_varint(cur)
    yield from _need(cur, size)
    text = bytes(cur.buf[cur.pos : cur.pos + size]).decode("utf-8", errors="replace")
    cur.pos += size
    return text


def _read_u64(cur: Buffer) -> Generator[int, None, int]:
    yield from _need(cur, 8)
    value = _U64.unpack_from(cur.buf, cur.pos)[0]
    cur.pos += 8
    return value


# -- column types -----------------------------------------------------------------------------


class Column:
    """How one type's values are laid out in a Native block: a state prefix, then the data."""

    has_prefix = False

    def prefix(self, cur: Buffer) -> Parse:
        return
        yield

    def data(self, cur: Buffer, rows: int) -> Parse:
        raise NotImplementedError


class Fixed(Column):
    def __init__(self, size: int) -> None:
        self.size = size

    def data(self, cur: Buffer, rows: int) -> Parse:
        yield from _need(cur, self.size * rows)
        cur.pos += self.size * rows


class String(Column):
    def data(self, cur: Buffer, rows: int) -> Parse:
        # Hot loop: millions of strings per query, so walk the buffer with locals and only
        # return to the generator machinery when the bytes run out.
        while rows:
            buf, pos, end = cur.buf, cur.pos, len(cur.buf)
            want = end + 1
            while rows:
                if pos >= end:
                    break
                size = buf[pos]
                nxt = pos + 1
                if size >= 0x80:
                    size &= 0x7F
                    shift = 7
                    while True:
                        if nxt >= end:
                            size = -1
                            break
                        byte = buf[nxt]
                        nxt += 1
                        size |= (byte & 0x7F) << shift
                        if byte < 0x80:
                            break
                        shift += 7
                    if size < 0:
                        break
                if nxt + size > end:
                    want = nxt + size
                    break
                pos = nxt + size
                rows -= 1
            cur.pos = pos
            if rows:
                yield want


class Nullable(Column):
    def __init__(self, inner: Column) -> None:
        self.inner = inner
        self.has_prefix = inner.has_prefix

    def prefix(self, cur: Buffer) -> Parse:
        yield from self.inner.prefix(cur)

    def data(self, cur: Buffer, rows: int) -> Parse:
        yield from _need(cur, rows)  # the null map
        cur.pos += rows
        yield from self.inner.data(cur, rows)


class Array(Column):
    def __init__(self, inner: Column) -> None:
        self.inner = inner
        self.has_prefix = inner.has_prefix

    def prefix(self, cur: Buffer) -> Parse:
        yield from self.inner.prefix(cur)

    def data(self, cur: Buffer, rows: int) -> Parse:
        if not rows:
            return
        yield from _need(cur, 8 * rows)
        # Offsets are cumulative, so the last one is the number of nested values.
        total = _U64.unpack_from(cur.buf, cur.pos + 8 * (rows - 1))[0]
        cur.pos += 8 * rows
        yield from self.inner.data(cur, total)


class Tuple(Column):
    def __init__(self, elements: Sequence[Column]) -> None:
        self.elements = list(elements)
        self.has_prefix = any(e.has_prefix for e in self.elements)

    def prefix(self, cur: Buffer) -> Parse:
        for element in self.elements:
            yield from element.prefix(cur)

    def data(self, cur: Buffer, rows: int) -> Parse:
        for element in self.elements:
            yield from element.data(cur, rows)


class LowCardinality(Column):
    """Granules of (flags, optional dictionary keys, index width, row count, indexes)."""

    has_prefix = True
    _NEED_GLOBAL_DICTIONARY = 1 << 8
    _HAS_ADDITIONAL_KEYS = 1 << 9
    _NEED_UPDATE_DICTIONARY = 1 << 10
    _INDEX_SIZES = (1, 2, 4, 8)

    def __init__(self, keys: Column) -> None:
        self.keys = keys  # the dictionary's type: the inner type without Nullable

    def prefix(self, cur: Buffer) -> Parse:
        yield from _need(cur, 8)  # key serialization version
        cur.pos += 8

    def data(self, cur: Buffer, rows: int) -> Parse:
        first = True
        while rows > 0:
            flags = yield from _read_u64(cur)
            index_type = flags & 0xFF
            if index_type >= len(self._INDEX_SIZES):
                raise ProtocolError(f"Invalid LowCardinality index type {index_type}", 117)
            global_dictionary = flags & self._NEED_GLOBAL_DICTIONARY
            if global_dictionary and (first or flags & self._NEED_UPDATE_DICTIONARY):
                count = yield from _read_u64(cur)
                yield from self.keys.data(cur, count)
            if flags & self._HAS_ADDITIONAL_KEYS:
                count = yield from _read_u64(cur)
                yield from self.keys.data(cur, count)
            granule_rows = yield from _read_u64(cur)
            if granule_rows == 0 or granule_rows > rows:
                raise ProtocolError("Invalid LowCardinality granule size", 117)
            size = self._INDEX_SIZES[index_type] * granule_rows
            yield from _need(cur, size)
            cur.pos += size
            rows -= granule_rows
            first = False


class Variant(Column):
    """Basic discriminator mode: one UInt8 per row, then each variant's values in order."""

    has_prefix = True

    def __init__(self, variants: Sequence[Column]) -> None:
        self.variants = list(variants)

    def prefix(self, cur: Buffer) -> Parse:
        mode = yield from _read_u64(cur)
        if mode != 0:
            raise ProtocolError(
                "Compact Variant discriminators are not supported by this server. "
                "(NOT_IMPLEMENTED)",
                NOT_IMPLEMENTED,
            )
        for variant in self.variants:
            yield from variant.prefix(cur)

    def data(self, cur: Buffer, rows: int) -> Parse:
        yield from _need(cur, rows)
        start = cur.pos
        counts = [cur.buf.count(i, start, start + rows) for i in range(len(self.variants))]
        cur.pos += rows
        for variant, count in zip(self.variants, counts, strict=True):
            yield from variant.data(cur, count)


_FIXED_SIZES = {
    **dict.fromkeys(["UInt8", "Int8", "Bool", "Enum8", "Nothing"], 1),
    **dict.fromkeys(["UInt16", "Int16", "Date", "Enum16", "BFloat16"], 2),
    **dict.fromkeys(
        ["UInt32", "Int32", "Float32", "Date32", "DateTime", "IPv4", "Decimal32", "Time"], 4
    ),
    **dict.fromkeys(["UInt64", "Int64", "Float64", "DateTime64", "Decimal64", "Time64"], 8),
    **dict.fromkeys(["UInt128", "Int128", "UUID", "IPv6", "Decimal128"], 16),
    **dict.fromkeys(["UInt256", "Int256", "Decimal256"], 32),
}
# Decimal(P, S) is stored in the smallest of Decimal32/64/128/256 that holds P digits.
_DECIMAL_SIZES = ((9, 4), (18, 8), (38, 16), (76, 32))
_ALIASES = {
    "Point": "Tuple(Float64, Float64)",
    "Ring": "Array(Point)",
    "LineString": "Array(Point)",
    "Polygon": "Array(Ring)",
    "MultiLineString": "Array(Ring)",
    "MultiPolygon": "Array(Polygon)",
}
_TYPE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.S)
_ELEMENT_NAME_RE = re.compile(r"^(`(?:[^`\\]|\\.)*`|[A-Za-z_][A-Za-z0-9_]*)\s+(?=\S)", re.S)


def _unsupported(spec: str) -> ProtocolError:
    return ProtocolError(
        f"Type {spec} is not supported over the native protocol by this server; "
        "cast it, e.g. to String. (NOT_IMPLEMENTED)",
        NOT_IMPLEMENTED,
    )


def _element_type(arg: str) -> str:
    """A Tuple/Nested element without its name: 'a UInt8' -> 'UInt8', 'UInt8' -> 'UInt8'.

    Type names never have a space right after a leading identifier ('Nullable(String)',
    'DateTime64(3, ...)'), so 'identifier whitespace rest' is always a named element.
    """
    match = _ELEMENT_NAME_RE.match(arg)
    return arg[match.end() :] if match else arg


@lru_cache(maxsize=1024)
def column_for(spec: str) -> Column:
    """The layout of a type as ClickHouse names it, e.g. 'Array(Nullable(String))'."""
    match = _TYPE_RE.match(spec)
    if not match:
        raise _unsupported(spec)
    name, inner = match.group(1), match.group(2)
    args = split_type_arguments(inner) if inner is not None else []
    if name in _ALIASES and inner is None:
        return column_for(_ALIASES[name])
    if name in _FIXED_SIZES:
        return Fixed(_FIXED_SIZES[name])
    if name.startswith("Interval"):
        return Fixed(8)
    if name == "Decimal" and args:
        precision = int(args[0])
        return Fixed(next(size for limit, size in _DECIMAL_SIZES if precision <= limit))
    if name == "String" or (name == "FixedString" and not args):
        return String()
    if name == "FixedString":
        return Fixed(int(args[0]))
    if name == "Nullable" and len(args) == 1:
        return Nullable(column_for(args[0]))
    if name == "Array" and len(args) == 1:
        return Array(column_for(args[0]))
    if name == "Tuple":
        return Tuple([column_for(_element_type(a)) for a in args])
    if name == "Nested":
        return Array(Tuple([column_for(_element_type(a)) for a in args]))
    if name == "Map" and len(args) == 2:
        return Array(Tuple([column_for(args[0]), column_for(args[1])]))
    if name == "LowCardinality" and len(args) == 1:
        keys = column_for(args[0])
        return LowCardinality(keys.inner if isinstance(keys, Nullable) else keys)
    if name == "SimpleAggregateFunction" and len(args) >= 2:
        return column_for(args[-1])
    if name == "Variant":
        return Variant([column_for(a) for a in args])
    raise _unsupported(spec)


# -- blocks -----------------------------------------------------------------------------------


@dataclass
class ColumnSpan:
    name: str
    type: str
    header_start: int  # the name and type, as encoded
    header_end: int
    data_start: int  # the state prefix and the values
    data_end: int


@dataclass
class BlockLayout:
    rows: int
    columns: list[ColumnSpan]
    start: int
    end: int

    @property
    def data_bytes(self) -> int:
        return sum(c.data_end - c.data_start for c in self.columns)


def parse_block(cur: Buffer, *, block_info: bool, custom_flags: bool):
    """Find the columns of one block starting at `cur.pos`; leaves `cur.pos` after it.

    A generator: yields a required buffer length whenever `cur.buf` is too short, and returns a
    BlockLayout. `block_info`/`custom_flags` say whether the block is in the TCP form (BlockInfo
    first, a serialization byte per column) or the plain Native form.
    """
    start = cur.pos
    if block_info:
        while field_number := (yield from _read_varint(cur)):
            if field_number == 1:
                yield from _need(cur, 1)
                cur.pos += 1
            elif field_number == 2:
                yield from _need(cur, 4)
                cur.pos += 4
            else:
                raise ProtocolError(f"Unknown BlockInfo field number {field_number}", 117)
    num_columns = yield from _read_varint(cur)
    rows = yield from _read_varint(cur)
    columns = []
    for _ in range(num_columns):
        header_start = cur.pos
        name = yield from _read_string(cur)
        spec = yield from _read_string(cur)
        header_end = cur.pos
        if custom_flags:
            yield from _need(cur, 1)
            has_custom = cur.buf[cur.pos]
            cur.pos += 1
            if has_custom:
                raise ProtocolError(
                    f"Column {name}: custom (sparse) serialization is not supported by this "
                    "server. (NOT_IMPLEMENTED)",
                    NOT_IMPLEMENTED,
                )
        data_start = cur.pos
        if rows:  # zero rows are encoded as zero bytes, prefix included
            layout = column_for(spec)
            if layout.has_prefix:
                yield from layout.prefix(cur)
            yield from layout.data(cur, rows)
        columns.append(ColumnSpan(name, spec, header_start, header_end, data_start, cur.pos))
    return BlockLayout(rows=rows, columns=columns, start=start, end=cur.pos)


def run_complete(parse: Generator[int, None, BlockLayout]) -> BlockLayout:
    """Drive a parse over a buffer that holds everything: asking for more means it is cut short."""
    try:
        needed = next(parse)
    except StopIteration as stop:
        return stop.value
    raise ProtocolError(f"Truncated Native block (needs {needed} bytes)", 33)


def split_native(data: bytes | bytearray) -> list[BlockLayout]:
    """The blocks of engine output in Native format (zero or more blocks back to back)."""
    cur = Cursor(data)
    blocks = []
    while cur.pos < len(data):
        blocks.append(run_complete(parse_block(cur, block_info=False, custom_flags=False)))
    return blocks


def _assemble(
    buf: bytes | bytearray, layout: BlockLayout, lead: bytes, flag: bytes, with_data: bool
) -> bytes:
    view = memoryview(buf)
    rows = layout.rows if with_data else 0
    parts: list[bytes | memoryview] = [lead, varint(len(layout.columns)), varint(rows)]
    for column in layout.columns:
        parts.append(view[column.header_start : column.header_end])
        if flag:
            parts.append(flag)
        if with_data:
            parts.append(view[column.data_start : column.data_end])
    return b"".join(parts)


def to_tcp(
    buf: bytes | bytearray, layout: BlockLayout, *, custom_flags: bool, header_only: bool = False
) -> bytes:
    """A Native block as a Data packet's block: BlockInfo first, a 0 flag per column if needed."""
    return _assemble(buf, layout, BLOCK_INFO, b"\x00" if custom_flags else b"", not header_only)


def to_native(buf: bytes | bytearray, layout: BlockLayout) -> bytes:
    """A client's block in the plain Native format chDB reads: no BlockInfo, no flag bytes."""
    return _assemble(buf, layout, b"", b"", True)


def header_block(columns: Sequence[tuple[str, str]], *, custom_flags: bool) -> bytes:
    """A block with columns and no rows, as sent before a result or to ask for INSERT data."""
    parts = [BLOCK_INFO, varint(len(columns)), varint(0)]
    for name, spec in columns:
        parts += [string(name), string(spec)]
        if custom_flags:
            parts.append(b"\x00")
    return b"".join(parts)


EMPTY_BLOCK = BLOCK_INFO + b"\x00\x00"
