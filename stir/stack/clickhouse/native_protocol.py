"""The wire format of ClickHouse's native TCP protocol, as the server side speaks it.

Everything here is about bytes: packet type numbers and protocol revisions, the varint/string
encodings, the packets this server sends, parsing of the packets a client sends, and the
compressed-block framing (a CityHash128 checksum, a method byte, two sizes, the payload) that
wraps Data packets when the client asks for compression. Block contents are handled by
`native_blocks`; what a query does is decided in `native`.

Field layouts follow what clickhouse-driver 0.2.11 reads and writes at each revision, which is also
what ClickHouse's own TCPHandler does.
"""

from __future__ import annotations

import asyncio
import secrets
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import lz4.block
import zstandard
from clickhouse_cityhash.cityhash import CityHash128

# The newest revision clickhouse-driver 0.2.11 knows (DBMS_MIN_REVISION_WITH_SYSTEM_KEYWORDS_TABLE).
# Newer clients negotiate down to it: both sides use min(client revision, server revision).
PROTOCOL_REVISION = 54468
# Settings travel as strings from this revision on; older clients send typed binary values that a
# server can only decode with a table of every setting's type, so they are refused.
MIN_CLIENT_REVISION = 54429


class Rev:
    """Protocol revisions at which a field appears (names as in ClickHouse's ProtocolDefines.h)."""

    TEMPORARY_TABLES = 50264
    TOTAL_ROWS_IN_PROGRESS = 51554
    BLOCK_INFO = 51903
    CLIENT_INFO = 54032
    SERVER_TIMEZONE = 54058
    QUOTA_KEY_IN_CLIENT_INFO = 54060
    SERVER_DISPLAY_NAME = 54372
    VERSION_PATCH = 54401
    CLIENT_WRITE_INFO = 54420
    SETTINGS_SERIALIZED_AS_STRINGS = 54429
    INTERSERVER_SECRET = 54441
    OPENTELEMETRY = 54442
    X_FORWARDED_FOR_IN_CLIENT_INFO = 54443
    REFERER_IN_CLIENT_INFO = 54447
    DISTRIBUTED_DEPTH = 54448
    INITIAL_QUERY_START_TIME = 54449
    PARALLEL_REPLICAS = 54453
    CUSTOM_SERIALIZATION = 54454
    PROFILE_EVENTS_IN_INSERT = 54456
    ADDENDUM = 54458
    PARAMETERS = 54459
    SERVER_QUERY_TIME_IN_PROGRESS = 54460
    PASSWORD_COMPLEXITY_RULES = 54461
    INTERSERVER_SECRET_V2 = 54462
    TOTAL_BYTES_IN_PROGRESS = 54463


class ClientPacket(IntEnum):
    HELLO = 0
    QUERY = 1
    DATA = 2
    CANCEL = 3
    PING = 4
    TABLES_STATUS_REQUEST = 5
    SCALAR = 7


class ServerPacket(IntEnum):
    HELLO = 0
    DATA = 1
    EXCEPTION = 2
    PROGRESS = 3
    PONG = 4
    END_OF_STREAM = 5
    PROFILE_INFO = 6
    TOTALS = 7
    EXTREMES = 8
    TABLES_STATUS_RESPONSE = 9
    LOG = 10
    TABLE_COLUMNS = 11
    PROFILE_EVENTS = 14


class QueryStage(IntEnum):
    """How far a query runs: a shard of a distributed query may stop before the end."""

    FETCH_COLUMNS = 0
    WITH_MERGEABLE_STATE = 1
    COMPLETE = 2
    WITH_MERGEABLE_STATE_AFTER_AGGREGATION = 3
    WITH_MERGEABLE_STATE_AFTER_AGGREGATION_AND_LIMIT = 4


class QueryKind(IntEnum):
    """ClientInfo's query_kind: a client's own query, or one a server sends to a shard."""

    NO_QUERY = 0
    INITIAL_QUERY = 1
    SECONDARY_QUERY = 2


class CompressionMethod(IntEnum):
    """The method byte that starts every compressed frame."""

    NONE = 0x02
    LZ4 = 0x82
    ZSTD = 0x90


SETTING_IMPORTANT = 0x1
SETTING_CUSTOM = 0x2

# ClickHouse error codes this module and the front end raise themselves.
UNKNOWN_PACKET_FROM_CLIENT = 100
UNEXPECTED_PACKET_FROM_CLIENT = 101
CHECKSUM_DOESNT_MATCH = 40
UNKNOWN_COMPRESSION_METHOD = 89
NOT_IMPLEMENTED = 48
UNKNOWN_DATABASE = 81
AUTHENTICATION_FAILED = 516
SOCKET_TIMEOUT = 209
TOO_LARGE_STRING_SIZE = 131
TOO_LARGE_ARRAY_SIZE = 128

# ClickHouse refuses a TablesStatusRequest naming more tables than this (DEFAULT_MAX_STRING_SIZE).
MAX_TABLES_IN_STATUS_REQUEST = 1 << 30

# A ClickHouse server refuses frames above 1 GiB; a corrupt size must not make us allocate more.
MAX_FRAME_SIZE = 1 << 30
# Frames we send carry at most this much uncompressed data (ClickHouse's max_compress_block_size).
SEND_FRAME_SIZE = 1 << 20


class ProtocolError(Exception):
    """An error to report to the client as a ClickHouse exception, with ClickHouse's code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ConnectionClosed(Exception):
    """The client went away (EOF or a reset), possibly in the middle of a packet."""


# -- encoding ---------------------------------------------------------------------------------

_U8 = struct.Struct("<B")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_U128 = struct.Struct("<QQ")


def varint(value: int) -> bytes:
    """ClickHouse's VarUInt: unsigned LEB128, at most 10 bytes for a 64-bit value."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return varint(len(data)) + data


def u8(value: int) -> bytes:
    return _U8.pack(value)


def i32(value: int) -> bytes:
    return _I32.pack(value)


def u64(value: int) -> bytes:
    return _U64.pack(value)


def parse_version(version: str) -> tuple[int, int, int]:
    """'26.9.2.1' -> (26, 9, 2); missing parts are 0."""
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


# -- server packets ---------------------------------------------------------------------------


def hello_packet(
    revision: int, version: str, timezone: str, display_name: str, server_name: str = "ClickHouse"
) -> bytes:
    """The server's Hello; `revision` is the negotiated one, which decides the optional fields."""
    major, minor, patch = parse_version(version)
    out = [varint(ServerPacket.HELLO), string(server_name), varint(major), varint(minor)]
    # The server always announces its own revision; fields below depend on the negotiated one.
    out.append(varint(PROTOCOL_REVISION))
    if revision >= Rev.SERVER_TIMEZONE:
        out.append(string(timezone))
    if revision >= Rev.SERVER_DISPLAY_NAME:
        out.append(string(display_name))
    if revision >= Rev.VERSION_PATCH:
        out.append(varint(patch))
    if revision >= Rev.PASSWORD_COMPLEXITY_RULES:
        out.append(varint(0))  # no password complexity rules
    if revision >= Rev.INTERSERVER_SECRET_V2:
        out.append(u64(secrets.randbits(64)))  # nonce, only used by interserver auth
    return b"".join(out)


def pong_packet() -> bytes:
    return varint(ServerPacket.PONG)


def end_of_stream_packet() -> bytes:
    return varint(ServerPacket.END_OF_STREAM)


def exception_packet(code: int, message: str) -> bytes:
    """An Exception packet; `message` is ClickHouse's text with or without its 'Code: N. ' lead.

    A real server sends name 'DB::Exception' and displayText() ('DB::Exception: ...') as the
    message; clients print 'Code: N. ' + message themselves.
    """
    if message.startswith("Code: "):
        _, _, message = message.partition(". ")
    if not message.startswith("DB::Exception"):
        message = f"DB::Exception: {message}"
    return b"".join(
        [
            varint(ServerPacket.EXCEPTION),
            i32(code),
            string("DB::Exception"),
            string(message),
            string(""),  # stack trace: none to give
            u8(0),  # no nested exception
        ]
    )


@dataclass
class Progress:
    rows: int = 0
    bytes: int = 0
    total_rows: int = 0
    total_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    elapsed_ns: int = 0

    def __bool__(self) -> bool:
        return bool(self.rows or self.bytes or self.written_rows or self.written_bytes)


def progress_packet(revision: int, progress: Progress) -> bytes:
    out = [varint(ServerPacket.PROGRESS), varint(progress.rows), varint(progress.bytes)]
    if revision >= Rev.TOTAL_ROWS_IN_PROGRESS:
        out.append(varint(progress.total_rows))
    if revision >= Rev.TOTAL_BYTES_IN_PROGRESS:
        out.append(varint(progress.total_bytes))
    if revision >= Rev.CLIENT_WRITE_INFO:
        out += [varint(progress.written_rows), varint(progress.written_bytes)]
    if revision >= Rev.SERVER_QUERY_TIME_IN_PROGRESS:
        out.append(varint(progress.elapsed_ns))
    return b"".join(out)


def profile_info_packet(
    rows: int, blocks: int, nbytes: int, applied_limit: bool = False, rows_before_limit: int = 0
) -> bytes:
    return b"".join(
        [
            varint(ServerPacket.PROFILE_INFO),
            varint(rows),
            varint(blocks),
            varint(nbytes),
            u8(int(applied_limit)),
            varint(rows_before_limit),
            u8(int(applied_limit)),  # calculated_rows_before_limit
        ]
    )


def tables_status_response_packet(tables: Sequence[tuple[str, str]]) -> bytes:
    """TablesStatusResponse: one entry per existing (database, table), none for missing ones.

    Each entry is the two names and `is_replicated`; only a replicated table's entry goes on
    with its replication delay, and no table here is replicated.
    """
    out = [varint(ServerPacket.TABLES_STATUS_RESPONSE), varint(len(tables))]
    for database, table in tables:
        out += [string(database), string(table), u8(0)]
    return b"".join(out)


def data_packet(block: bytes, compression: CompressionMethod | None, kind: int = ServerPacket.DATA):
    """A Data-like packet: type, external table name (empty), then the block, maybe compressed."""
    body = block if compression is None else compress(block, compression)
    return varint(kind) + string("") + body


# -- compression ------------------------------------------------------------------------------


def _checksum(frame_body: bytes | bytearray | memoryview) -> bytes:
    value = CityHash128(bytes(frame_body))
    # clickhouse-driver writes the 128-bit hash as (high 64 bits, low 64 bits), little-endian each.
    return _U128.pack(value >> 64, value & 0xFFFFFFFFFFFFFFFF)


def compress(data: bytes | bytearray | memoryview, method: CompressionMethod) -> bytes:
    """Frame `data` as ClickHouse compressed blocks of at most SEND_FRAME_SIZE input bytes each."""
    frames = []
    view = memoryview(data)
    for start in range(0, max(len(view), 1), SEND_FRAME_SIZE):
        piece = view[start : start + SEND_FRAME_SIZE]
        if method == CompressionMethod.LZ4:
            payload = lz4.block.compress(piece, store_size=False)
        elif method == CompressionMethod.ZSTD:
            payload = zstandard.ZstdCompressor().compress(piece)
        else:
            payload = bytes(piece)
        # 9 = method byte + compressed size (u32) + uncompressed size (u32); the size covers them.
        body = u8(method) + _U32.pack(len(payload) + 9) + _U32.pack(len(piece)) + payload
        frames.append(_checksum(body) + body)
    return b"".join(frames)


def decompress_frame(method: int, body: bytes, uncompressed_size: int) -> bytes:
    if method == CompressionMethod.LZ4:
        return lz4.block.decompress(body, uncompressed_size=uncompressed_size)
    if method == CompressionMethod.ZSTD:
        return zstandard.ZstdDecompressor().decompress(body, max_output_size=uncompressed_size)
    if method == CompressionMethod.NONE:
        return body
    raise ProtocolError(
        f"Unknown compression method: {method:#x}. (UNKNOWN_COMPRESSION_METHOD)",
        UNKNOWN_COMPRESSION_METHOD,
    )


def compression_for(settings: Mapping[str, str]) -> CompressionMethod:
    """The method for Data we send: the `network_compression_method` setting, LZ4 by default."""
    method = settings.get("network_compression_method", "lz4").lower()
    if method == "zstd":
        return CompressionMethod.ZSTD
    if method == "none":
        return CompressionMethod.NONE
    return CompressionMethod.LZ4


# -- reading ----------------------------------------------------------------------------------


class InputBuffer:
    """Bytes from the client socket, read ahead into one buffer.

    `buf` and `pos` are public because the block parser (`native_blocks`) works directly on them:
    it asks for a buffer length with `ensure` and moves `pos` itself. `timeout` bounds each socket
    read while a query holds the engine, so a stalled client cannot keep the engine forever.
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self.buf = bytearray()
        self.pos = 0
        self.timeout: float | None = None

    async def _read_more(self, at_least: int, bounded: bool) -> None:
        timeout = self.timeout if bounded else None
        try:
            async with asyncio.timeout(timeout):
                data = await self._reader.read(max(at_least, 1 << 16))
        except TimeoutError:
            raise ProtocolError(
                f"Timeout exceeded while reading from client ({timeout} s). (SOCKET_TIMEOUT)",
                SOCKET_TIMEOUT,
            ) from None
        except OSError as exc:
            raise ConnectionClosed(str(exc)) from None
        if not data:
            raise ConnectionClosed("client closed the connection")
        self.buf += data

    async def ensure(self, end: int) -> None:
        """Read until the buffer holds at least `end` bytes."""
        while len(self.buf) < end:
            await self._read_more(end - len(self.buf), bounded=True)

    async def wait_readable(self) -> bool:
        """Wait for one more byte without consuming it; False once the client has closed."""
        if len(self.buf) > self.pos:
            return True
        try:
            await self._read_more(1, bounded=False)
        except ConnectionClosed:
            return False
        return True

    def compact(self) -> None:
        """Drop consumed bytes; only between packets, when no parser holds offsets into `buf`."""
        if self.pos and (self.pos == len(self.buf) or self.pos > 1 << 20):
            del self.buf[: self.pos]
            self.pos = 0

    async def read_bytes(self, n: int) -> bytes:
        await self.ensure(self.pos + n)
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return data

    async def read_varint(self) -> int:
        result = shift = 0
        for _ in range(10):
            await self.ensure(self.pos + 1)
            byte = self.buf[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
        raise ProtocolError("Too long VarUInt from client. (CANNOT_READ_ALL_DATA)", 33)

    async def read_u8(self) -> int:
        return (await self.read_bytes(1))[0]

    async def read_u64(self) -> int:
        return _U64.unpack(await self.read_bytes(8))[0]

    async def read_str(self, limit: int = 1 << 30) -> str:
        size = await self.read_varint()
        if size > limit:
            raise ProtocolError(
                f"Too large string size: {size}. (TOO_LARGE_STRING_SIZE)", TOO_LARGE_STRING_SIZE
            )
        return (await self.read_bytes(size)).decode("utf-8", errors="replace")

    async def read_frame(self) -> bytes:
        """Read one compressed frame, check its checksum and return the decompressed bytes."""
        header = await self.read_bytes(16 + 9)
        checksum, method = header[:16], header[16]
        size_with_header, uncompressed_size = struct.unpack_from("<II", header, 17)
        if not 9 <= size_with_header <= MAX_FRAME_SIZE or uncompressed_size > MAX_FRAME_SIZE:
            raise ProtocolError(
                f"Too large size ({size_with_header}) in compressed frame. "
                "(TOO_LARGE_SIZE_COMPRESSED)",
                306,
            )
        payload = await self.read_bytes(size_with_header - 9)
        if _checksum(header[16:] + payload) != checksum:
            raise ProtocolError(
                "Checksum doesn't match: corrupted data. (CHECKSUM_DOESNT_MATCH)",
                CHECKSUM_DOESNT_MATCH,
            )
        return decompress_frame(method, payload, uncompressed_size)


class CompressedInput:
    """The decompressed bytes of the frames that carry one query's Data blocks from the client.

    Same `buf`/`pos`/`ensure` shape as InputBuffer, so the block parser reads either. Frames are
    read only when the parser needs more bytes, so the first byte after a block's last frame (the
    next packet's type) is never taken for a frame.
    """

    def __init__(self, raw: InputBuffer) -> None:
        self._raw = raw
        self.buf = bytearray()
        self.pos = 0

    async def ensure(self, end: int) -> None:
        while len(self.buf) < end:
            self.buf += await self._raw.read_frame()

    def compact(self) -> None:
        if self.pos and (self.pos == len(self.buf) or self.pos > 1 << 20):
            del self.buf[: self.pos]
            self.pos = 0


# -- client packets ---------------------------------------------------------------------------


@dataclass
class ClientHello:
    client_name: str
    version_major: int
    version_minor: int
    revision: int
    database: str
    user: str
    password: str


async def read_hello_body(buf: InputBuffer) -> ClientHello:
    """The Hello fields after the packet type."""
    return ClientHello(
        client_name=await buf.read_str(1 << 16),
        version_major=await buf.read_varint(),
        version_minor=await buf.read_varint(),
        revision=await buf.read_varint(),
        database=await buf.read_str(1 << 16),
        user=await buf.read_str(1 << 16),
        password=await buf.read_str(1 << 16),
    )


async def read_tables_status_request(buf: InputBuffer) -> list[tuple[str, str]]:
    """The (database, table) pairs of a TablesStatusRequest, after the packet type.

    ClickHouse's own client (a server running remote() or a Distributed table) asks this before
    it sends a query to a shard, to choose among replicas by their replication delay.
    """
    count = await buf.read_varint()
    if count > MAX_TABLES_IN_STATUS_REQUEST:
        raise ProtocolError(
            f"Too large collection size: {count}. (TOO_LARGE_ARRAY_SIZE)", TOO_LARGE_ARRAY_SIZE
        )
    tables = []
    for _ in range(count):
        database = await buf.read_str(1 << 16)
        tables.append((database, await buf.read_str(1 << 16)))
    return tables


@dataclass
class Setting:
    value: str
    important: bool = False


@dataclass
class QueryPacket:
    query_id: str
    query: str
    stage: int
    compression: bool
    settings: dict[str, Setting] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    client_name: str = ""
    kind: int = QueryKind.NO_QUERY


async def _skip_client_info(buf: InputBuffer, revision: int) -> tuple[int, str]:
    """Read (and mostly ignore) ClientInfo; returns the query kind and the client name."""
    query_kind = await buf.read_u8()
    if query_kind == QueryKind.NO_QUERY:  # nothing follows
        return query_kind, ""
    await buf.read_str()  # initial_user
    await buf.read_str()  # initial_query_id
    await buf.read_str()  # initial_address
    if revision >= Rev.INITIAL_QUERY_START_TIME:
        await buf.read_bytes(8)
    interface = await buf.read_u8()
    client_name = ""
    if interface == 1:  # TCP
        await buf.read_str()  # os_user
        await buf.read_str()  # client_hostname
        client_name = await buf.read_str()
        await buf.read_varint()  # version major
        await buf.read_varint()  # version minor
        await buf.read_varint()  # client revision
    elif interface == 2:  # HTTP (sent by servers forwarding an HTTP query)
        await buf.read_u8()  # http method
        await buf.read_str()  # user agent
        if revision >= Rev.X_FORWARDED_FOR_IN_CLIENT_INFO:
            await buf.read_str()
        if revision >= Rev.REFERER_IN_CLIENT_INFO:
            await buf.read_str()
    if revision >= Rev.QUOTA_KEY_IN_CLIENT_INFO:
        await buf.read_str()
    if revision >= Rev.DISTRIBUTED_DEPTH:
        await buf.read_varint()
    if interface == 1 and revision >= Rev.VERSION_PATCH:
        await buf.read_varint()
    if revision >= Rev.OPENTELEMETRY and await buf.read_u8():
        await buf.read_bytes(16 + 8)  # trace id, span id
        await buf.read_str()  # tracestate
        await buf.read_u8()  # trace flags
    if revision >= Rev.PARALLEL_REPLICAS:
        for _ in range(3):
            await buf.read_varint()
    return query_kind, client_name


async def read_settings(buf: InputBuffer) -> dict[str, Setting]:
    """Settings serialized as strings: (name, flags, value)* then an empty name."""
    settings: dict[str, Setting] = {}
    while name := await buf.read_str(1 << 16):
        flags = await buf.read_varint()
        settings[name] = Setting(await buf.read_str(), important=bool(flags & SETTING_IMPORTANT))
    return settings


def unquote(value: str) -> str:
    """A ClickHouse single-quoted string literal to its text; anything else is returned as is."""
    if len(value) < 2 or value[0] != "'" or value[-1] != "'":
        return value
    out = []
    i, end = 1, len(value) - 1
    escapes = {
        "b": "\b",
        "f": "\f",
        "r": "\r",
        "n": "\n",
        "t": "\t",
        "0": "\0",
        "a": "\a",
        "v": "\v",
    }
    while i < end:
        ch = value[i]
        if ch == "\\" and i + 1 < end:
            nxt = value[i + 1]
            if nxt == "x" and i + 4 <= end:  # \xHH
                try:
                    out.append(chr(int(value[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                except ValueError:
                    pass
            out.append(escapes.get(nxt, nxt))
            i += 2
        elif ch == "'" and i + 1 < end and value[i + 1] == "'":
            out.append("'")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


async def read_query_body(buf: InputBuffer, revision: int) -> QueryPacket:
    """The Query fields after the packet type, at the negotiated revision."""
    query_id = await buf.read_str(1 << 16)
    kind, client_name = QueryKind.NO_QUERY, ""
    if revision >= Rev.CLIENT_INFO:
        kind, client_name = await _skip_client_info(buf, revision)
    settings = await read_settings(buf)
    if revision >= Rev.INTERSERVER_SECRET:
        await buf.read_str()
    stage = await buf.read_varint()
    compression = bool(await buf.read_varint())
    query = await buf.read_str()
    params: dict[str, str] = {}
    if revision >= Rev.PARAMETERS:
        # Parameters come as custom settings whose values are quoted literals (ClickHouse reads
        # them with readQuoted); the text inside is in escaped form, which chDB's params expect.
        params = {name: unquote(s.value) for name, s in (await read_settings(buf)).items()}
    return QueryPacket(
        query_id=query_id,
        query=query,
        stage=stage,
        compression=compression,
        settings=settings,
        params=params,
        client_name=client_name,
        kind=kind,
    )
