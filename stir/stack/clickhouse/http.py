"""ClickHouse's HTTP interface over the embedded engine.

Behaves as a ClickHouse server does for the clients Stir uses (clickhouse-connect, dbt-clickhouse,
curl): `GET /ping`, queries by GET (read-only) and POST, the query in the `query` parameter and/or
the body, settings and `param_<name>` query parameters in the URL, `database`, `default_format`,
`FORMAT` in the query, inserts whose data follows the statement in the body, gzip/deflate/zstd/lz4
request and response compression, the `X-ClickHouse-*` headers, ClickHouse's error text and
status codes (and, after a result started, the tagged exception block of 26.x), sessions with
their SET and USE, `readonly`, and basic or header authentication.

Where the embedded engine differs from a server (checked against chDB 26.9): an INSERT with its
data in the body is all or nothing (a server commits block by block); `client_protocol_version`
is accepted and ignored, so Native results are those of revision 0 (a `DateTime('tz')` column is
sent as `DateTime`, as a server does for such a client; clickhouse-connect probes for this and
adapts); temporary tables live in the one engine session that all clients share.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import secrets
import string
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import lz4.frame
import zstandard
from aiohttp import web

from stir.stack.clickhouse.engine import (
    Engine,
    EngineError,
    InsertSpool,
    StatementContext,
    file_function,
)

log = logging.getLogger("stir.clickhouse.http")

# URL parameters that steer the HTTP handler itself; every other parameter is a setting.
# (`client_protocol_version` is taken and ignored: chDB writes Native as for revision 0.)
_HANDLER_PARAMS = {
    "query", "database", "default_format", "query_id", "session_id", "session_timeout",
    "session_check", "compress", "decompress", "user", "password", "quota_key", "buffer_size",
    "wait_end_of_query", "role", "stacktrace", "client_protocol_version", "close_session",
}  # fmt: skip

# chDB streams only SELECTs; every other statement runs to completion before it answers.
_STREAMED_KEYWORDS = {"SELECT", "WITH", "("}
_READ_ONLY_KEYWORDS = _STREAMED_KEYWORDS | {
    "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS", "USE", "SET", "CHECK",
}  # fmt: skip

_FIRST_WORD_RE = re.compile(rb"^\s*(\(|[A-Za-z]+)")
# Data follows `FORMAT <name>` after the blanks and at most one line break (ParserInsertQuery).
_INSERT_FORMAT_RE = re.compile(
    rb"^\s*(INSERT\s+INTO\s+.*?)\s+FORMAT\s+([A-Za-z0-9_]+)[ \t]*(\r?\n)?",
    re.IGNORECASE | re.DOTALL,
)
# While the body is still arriving, the format name is complete only once whitespace follows it.
_INSERT_HEAD_COMPLETE_RE = re.compile(
    rb"^\s*INSERT\s+INTO\s+.*?\s+FORMAT\s+[A-Za-z0-9_]+[ \t\r\n]", re.IGNORECASE | re.DOTALL
)
# `INSERT ... VALUES (...)` and `INSERT ... SELECT` carry their rows in the statement: a FORMAT
# inside those rows (a string literal, say) must not be taken for the start of body data.
_INLINE_ROWS_RE = re.compile(rb"\b(VALUES|SELECT|WITH)\b", re.IGNORECASE)
_OUTPUT_FORMAT_RE = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_SET_RE = re.compile(r"^\s*SET\s+(.*?);?\s*$", re.IGNORECASE | re.DOTALL)
_SET_ITEM_RE = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|[^,']+?)\s*(?:,|$)", re.DOTALL
)
_NESTED_ERROR_RE = re.compile(
    r"^Code: (\d+)\. DB::Exception: (Code: \1\. DB::Exception: .*?)"
    r"(?: \(version [^)]*\))?\. \([A-Z0-9_]+\)(?: \(version [^)]*\))?$",
    re.DOTALL,
)
_USE_RE = re.compile(r"^\s*USE\s+`?([A-Za-z0-9_]+)`?\s*;?\s*$", re.IGNORECASE)

_INSERT_FLUSH_BYTES = 1 << 20  # hand inserted data to the engine in ~1 MiB pieces
_MAX_QUERY_BYTES = 64 << 20

# An INSERT with its data in the body is all or nothing. chDB's streaming insert, like ClickHouse,
# commits a part for every block of `max_insert_block_size` rows as it goes: checked here, 4.2 M
# CSV rows and then a malformed one, sent over HTTP, left 2.1 M rows in the table (8 M sent straight
# to chDB left 5.2 M); up to about 3 M rows nothing was left, as chDB had not flushed a block yet.
# One block is atomic: every row is parsed before the sink writes a part (one per partition), so a
# malformed row anywhere leaves the table as it was. So, unless the client chose its own block
# sizes, the whole insert is squashed into one block. The price is memory in proportion to the
# insert, and max_partitions_per_insert_block (100) counts partitions of the whole insert; right for
# a local stack. A client that sets any of these settings gets ClickHouse's block-by-block commits.
_ONE_BLOCK = str(1 << 40)
_ATOMIC_INSERT_SETTINGS = {
    "max_insert_block_size": _ONE_BLOCK,
    "min_insert_block_size_rows": _ONE_BLOCK,
    "min_insert_block_size_bytes": _ONE_BLOCK,
}

# Settings the engine could not undo. A request's settings are SET on the one chDB session and SET
# back to DEFAULT after it. In `readonly` mode ClickHouse refuses to change any setting, `readonly`
# included; another `dialect`, or a parser limit below what `SET name = DEFAULT` needs, makes that
# reset unparseable (each checked here: one request with readonly=2, dialect=prql,
# max_parser_depth=1 or max_query_size=5 left the server in that state for every later client).
# So `readonly` is enforced by this front end instead, and the rest is refused below these floors.
_PARSER_FLOORS = {
    "max_query_size": 1024,
    "max_parser_depth": 64,
    "max_parser_backtracks": 10_000,
    "max_ast_depth": 64,
    "max_ast_elements": 1024,
    "max_expanded_ast_elements": 1024,
}

_DEFAULT_SESSION_TIMEOUT = 60.0  # seconds, as a server's default_session_timeout
_MAX_SESSION_TIMEOUT = 3600.0  # as a server's max_session_timeout

# The status of an error response, transcribed from ClickHouse's
# src/Server/HTTP/exceptionCodeToHTTPStatus.cpp; every other code is a 500 (READONLY included).
_STATUS_BY_CODE = {
    194: 401,  # REQUIRED_PASSWORD
    **dict.fromkeys((192, 193, 516, 512, 497), 403),  # UNKNOWN_USER .. ACCESS_DENIED
    **dict.fromkeys(
        (36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8, 167, 168, 223,
         62, 117, 53, 321),
        400,
    ),  # BAD_ARGUMENTS, CANNOT_PARSE_*, SYNTAX_ERROR, INCORRECT_DATA, TYPE_MISMATCH, ...
    **dict.fromkeys((60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511), 404),  # UNKNOWN_*
    229: 413,  # QUERY_IS_TOO_LARGE
    48: 501,  # NOT_IMPLEMENTED
    209: 503,  # SOCKET_TIMEOUT
    76: 503,  # CANNOT_OPEN_FILE
    381: 411,  # HTTP_LENGTH_REQUIRED
    159: 408,  # TIMEOUT_EXCEEDED
    439: 503,  # CANNOT_SCHEDULE_TASK
    779: 415,  # UNSUPPORTED_MEDIA_TYPE
}  # fmt: skip

_CONTENT_TYPES = (
    ("TabSeparated", "text/tab-separated-values; charset=UTF-8"),
    ("TSV", "text/tab-separated-values; charset=UTF-8"),
    ("CSV", "text/csv; charset=UTF-8"),
    ("JSON", "application/json; charset=UTF-8"),
    ("Pretty", "text/plain; charset=UTF-8"),
    ("Vertical", "text/plain; charset=UTF-8"),
    ("Values", "text/plain; charset=UTF-8"),
    ("Markdown", "text/markdown; charset=UTF-8"),
    ("XML", "application/xml; charset=UTF-8"),
)


def content_type_for(fmt: str) -> str:
    for prefix, content_type in _CONTENT_TYPES:
        if fmt.startswith(prefix):
            return content_type
    return "application/octet-stream"


# -- compression -----------------------------------------------------------------------------


class _Decompressor:
    """An incremental decoder for one request Content-Encoding.

    A body may hold several frames (gzip members, zstd or lz4 frames) one after the other:
    clickhouse-connect compresses every block of a large insert on its own, and ClickHouse reads
    such a body whole. A corrupt or truncated body is the client's error, reported with the code
    ClickHouse uses for that codec, never an internal error nor a silently short insert.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding in ("gzip", "x-gzip"):
            self._new: Callable[[], Any] = lambda: zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            self._code = 354  # ZLIB_INFLATE_FAILED
        elif encoding == "deflate":
            self._new = zlib.decompressobj
            self._code = 354
        elif encoding == "zstd":
            self._new = lambda: zstandard.ZstdDecompressor().decompressobj()
            self._code = 561  # ZSTD_DECODER_FAILED
        elif encoding == "lz4":
            self._new = lz4.frame.LZ4FrameDecompressor
            self._code = 618  # LZ4_DECODER_FAILED
        else:
            raise EngineError(
                f"Unknown HTTP Content-Encoding '{encoding}'. (UNKNOWN_COMPRESSION_METHOD)",
                code=89,
            )
        self._obj = self._new()
        self._frame_started = False

    def decompress(self, data: bytes) -> bytes:
        out = []
        try:
            while data:
                self._frame_started = True
                out.append(self._obj.decompress(data))
                if not self._obj.eof:
                    break
                # A frame ended: what follows it is the next frame.
                data = self._obj.unused_data
                self._obj = self._new()
                self._frame_started = False
        except Exception as exc:  # zlib.error, ZstdError, RuntimeError from lz4
            raise EngineError(
                f"Cannot decode the {self.encoding} request body: {exc}", code=self._code
            ) from None
        return b"".join(out)

    def finish(self) -> None:
        if self._frame_started:
            raise EngineError(
                f"Unexpected end of the {self.encoding} request body", code=self._code
            )


class _Compressor:
    """An incremental encoder for one response Content-Encoding."""

    # ClickHouse's order of preference (chooseHTTPCompressionMethod), less br and the rare ones.
    SUPPORTED = ("zstd", "lz4", "gzip", "deflate")

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding == "gzip":
            obj = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
            self._compress, self._flush = obj.compress, obj.flush
        elif encoding == "deflate":
            obj = zlib.compressobj()
            self._compress, self._flush = obj.compress, obj.flush
        elif encoding == "zstd":
            obj = zstandard.ZstdCompressor().compressobj()
            self._compress, self._flush = obj.compress, obj.flush
        else:
            frame = lz4.frame.LZ4FrameCompressor()
            header = frame.begin()
            self._compress = lambda data: (
                (header if not self._started else b"") + frame.compress(data)
            )
            self._flush = frame.flush
        self._started = False

    def compress(self, data: bytes) -> bytes:
        out = self._compress(data)
        self._started = True
        return out

    def flush(self) -> bytes:
        if not self._started:
            self.compress(b"")
        return self._flush()


def _choose_response_encoding(accept_encoding: str) -> str | None:
    offered = {part.split(";")[0].strip().lower() for part in accept_encoding.split(",")}
    for encoding in _Compressor.SUPPORTED:
        if encoding in offered:
            return encoding
    return None


# -- request interpretation -----------------------------------------------------------------


@dataclass
class _Session:
    """What a client's `session_id` carries between requests: SET settings and USE database."""

    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    timeout: float = _DEFAULT_SESSION_TIMEOUT
    expires: float = 0.0


def _unquote_setting(literal: str) -> str:
    literal = literal.strip()
    if len(literal) >= 2 and literal[0] == literal[-1] == "'":
        return re.sub(r"\\(.)", r"\1", literal[1:-1])
    return literal


def _parse_set(sql: str) -> dict[str, str]:
    """The settings of `SET a = 1, b = 'x'`, or SYNTAX_ERROR for what this parser doesn't know."""
    match = _SET_RE.match(sql)
    items = match.group(1) if match else ""
    settings: dict[str, str] = {}
    position = 0
    while position < len(items):
        item = _SET_ITEM_RE.match(items, position)
        if item is None or item.end() == position:
            raise EngineError(
                f"Cannot parse the SET statement at position {position}: {items[position:]!r}. "
                "The embedded server understands `SET name = value[, ...]`. (SYNTAX_ERROR)",
                code=62,
            )
        settings[item.group(1)] = _unquote_setting(item.group(2))
        position = item.end()
    if not settings:
        raise EngineError("Empty SET statement. (SYNTAX_ERROR)", code=62)
    return settings


def _engine_settings(settings: dict[str, str]) -> tuple[dict[str, str], int]:
    """The settings safe to hand to the engine, and the `readonly` level split off from them."""
    settings = dict(settings)
    level = settings.pop("readonly", "0").strip().strip("'")
    if level not in ("0", "1", "2"):
        raise EngineError(
            f"Setting readonly must be 0, 1 or 2, not '{level}'. (BAD_ARGUMENTS)", code=36
        )
    dialect = settings.get("dialect", "clickhouse").strip().strip("'")
    if dialect.lower() != "clickhouse":
        raise EngineError(
            f"The embedded server runs the clickhouse dialect only, not '{dialect}'. "
            "(BAD_ARGUMENTS)",
            code=36,
        )
    for name, floor in _PARSER_FLOORS.items():
        try:
            value = int(settings.get(name, floor))
        except ValueError:
            continue  # the engine refuses it, with ClickHouse's own message
        if value < floor and not (value == 0 and name != "max_query_size"):  # 0: no limit
            raise EngineError(
                f"Setting {name} = {value} is below {floor}, the least the embedded server "
                "accepts (it shares one engine session between requests). (BAD_ARGUMENTS)",
                code=36,
            )
    return settings, int(level)


def _first_keyword(text: bytes) -> str:
    match = _FIRST_WORD_RE.match(text)
    return match.group(1).decode().upper() if match else ""


def _exception_tag() -> str:
    """The random tag a 26.x server frames a mid-stream exception with (and sends as a header)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(16))


class HttpFrontEnd:
    """The HTTP listener: one aiohttp server whose every request goes through `Engine.lock`."""

    def __init__(self, engine: Engine, host: str, port: int, user: str, password: str) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self._sessions: dict[str, _Session] = {}
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=_MAX_QUERY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        # We decode Content-Encoding ourselves: aiohttp knows neither lz4 nor ClickHouse's names.
        self._runner = web.AppRunner(app, auto_decompress=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        log.info("HTTP interface on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- plumbing shared by every response --------------------------------------------------

    def _headers(self, query_id: str, tag: str, fmt: str | None = None) -> dict[str, str]:
        headers = {
            "X-ClickHouse-Server-Display-Name": "stir-chdb",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.engine.timezone,
            "X-ClickHouse-Exception-Tag": tag,
            "Keep-Alive": "timeout=10",
        }
        if fmt is not None:
            headers["X-ClickHouse-Format"] = fmt
            headers["Content-Type"] = content_type_for(fmt)
        return headers

    def _error_text(self, error: EngineError) -> str:
        # chDB wraps some errors in themselves ("Code: 73. DB::Exception: Code: 73. ..."), each
        # layer with its own suffix; a server reports the innermost one, once.
        message = error.message.rstrip()
        while nested := _NESTED_ERROR_RE.match(message):
            message = nested.group(2)
        # chDB's own messages sometimes end with the version; a server adds it exactly once.
        version = f"(version {self.engine.version})"
        return f"{message}\n" if message.endswith(version) else f"{message} {version}\n"

    def _error(self, error: EngineError, query_id: str, tag: str) -> web.Response:
        headers = self._headers(query_id, tag)
        headers["X-ClickHouse-Exception-Code"] = str(error.code)
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        return web.Response(
            status=_STATUS_BY_CODE.get(error.code, 500),
            text=self._error_text(error),
            headers=headers,
        )

    def _exception_block(self, error: EngineError, tag: str) -> bytes:
        """An error after the 200 went out, framed as 26.x does: clients find it by the tag."""
        message = self._error_text(error).rstrip("\n").encode()
        return (
            b"\r\n__exception__\r\n" + tag.encode() + b"\r\n" + message + b"\n"
            + str(len(message)).encode() + b" " + tag.encode() + b"\r\n__exception__\r\n"
        )  # fmt: skip

    @staticmethod
    def _summary(read_rows: int, read_bytes: int, written_rows: int, written_bytes: int,
                 elapsed: float, result_rows: int = 0) -> str:  # fmt: skip
        return json.dumps(
            {
                "read_rows": str(read_rows),
                "read_bytes": str(read_bytes),
                "written_rows": str(written_rows),
                "written_bytes": str(written_bytes),
                "total_rows_to_read": str(read_rows),
                "result_rows": str(result_rows),
                "result_bytes": "0",
                "elapsed_ns": str(int(elapsed * 1e9)),
            }
        )

    @staticmethod
    def _response_compressor(request: web.Request) -> _Compressor | None:
        """Compress a response only when asked twice, as ClickHouse does: setting and header."""
        if request.query.get("enable_http_compression") not in ("1", "true"):
            return None
        encoding = _choose_response_encoding(request.headers.get("Accept-Encoding", ""))
        return _Compressor(encoding) if encoding else None

    def _respond(self, request: web.Request, body: bytes, headers: dict[str, str]) -> web.Response:
        compressor = self._response_compressor(request)
        if compressor is not None and body:
            headers["Content-Encoding"] = compressor.encoding
            body = compressor.compress(body) + compressor.flush()
        return web.Response(body=body, headers=headers)

    def _authenticate(self, request: web.Request) -> None:
        user, password = self.user, ""
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                raise EngineError("Malformed Authorization header", code=516) from None
        user = request.headers.get("X-ClickHouse-User", request.query.get("user", user))
        password = request.headers.get("X-ClickHouse-Key", request.query.get("password", password))
        user_ok = hmac.compare_digest((user or self.user).encode(), self.user.encode())
        if not (user_ok and hmac.compare_digest(password.encode(), self._password.encode())):
            raise EngineError(
                f"{user}: Authentication failed: password is incorrect, or there is no user "
                "with such name. (AUTHENTICATION_FAILED)",
                code=516,
            )

    async def _body_chunks(self, request: web.Request) -> AsyncIterator[bytes]:
        """The request body, decoded from its Content-Encoding, as it arrives."""
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        decoder = _Decompressor(encoding) if encoding and encoding != "identity" else None
        async for chunk in request.content.iter_any():
            data = decoder.decompress(chunk) if decoder else chunk
            if data:
                yield data
        if decoder is not None:
            decoder.finish()

    def _session(self, request: web.Request) -> _Session | None:
        """The request's session, kept alive `session_timeout` seconds after its last use."""
        session_id = request.query.get("session_id")
        now = time.monotonic()
        # Forget idle sessions, as a server does, so that the table of them cannot only grow.
        for stale in [key for key, value in self._sessions.items() if value.expires < now]:
            del self._sessions[stale]
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            if request.query.get("session_check") in ("1", "true"):
                raise EngineError(f"Session {session_id} not found. (SESSION_NOT_FOUND)", code=372)
            session = self._sessions[session_id] = _Session()
        if "session_timeout" in request.query:
            try:
                timeout = float(request.query["session_timeout"])
            except ValueError:
                raise EngineError(
                    "Invalid session timeout: "
                    f"'{request.query['session_timeout']}'. (INVALID_SESSION_TIMEOUT)",
                    code=374,
                ) from None
            session.timeout = min(max(timeout, 0.0), _MAX_SESSION_TIMEOUT)
        session.expires = now + session.timeout
        return session

    def _context(
        self, request: web.Request, session: _Session | None
    ) -> tuple[StatementContext, int]:
        """The statement's database, settings and parameters, and its `readonly` level."""
        params = {k[6:]: v for k, v in request.query.items() if k.startswith("param_")}
        settings = dict(session.settings) if session else {}
        settings.update(
            (k, v)
            for k, v in request.query.items()
            if k not in _HANDLER_PARAMS and not k.startswith("param_")
        )
        settings, readonly = _engine_settings(settings)
        if request.method == "GET":
            readonly = readonly or 2  # GET implies readonly=2, as on a server
        database = (
            request.query.get("database")
            or request.headers.get("X-ClickHouse-Database")
            or (session.database if session else None)
            or "default"
        )
        return StatementContext(database=database, settings=settings, params=params), readonly

    # -- the handler ------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path in ("/ping", "/replicas_status") or (
            path == "" and request.method in ("GET", "HEAD") and "query" not in request.query
        ):
            return web.Response(text="Ok.\n")
        if path not in ("", "/query"):
            error = EngineError(f"There is no handle {request.path}. (UNKNOWN_HANDLER)", code=1)
            return web.Response(status=404, text=error.message + "\n")

        query_id = request.query.get("query_id") or str(uuid.uuid4())
        tag = _exception_tag()
        try:
            self._authenticate(request)
            if request.method not in ("GET", "POST", "HEAD"):
                raise EngineError(f"HTTP method {request.method} is not allowed", code=1)
            session = self._session(request)
            context, readonly = self._context(request, session)
            async with self.engine.lock:
                return await self._run(request, query_id, tag, context, readonly, session)
        except EngineError as error:
            return self._error(error, query_id, tag)
        except ConnectionError as exc:
            # The client went away while sending its body: the statement was cancelled (an
            # insert left nothing behind) and the answer below goes nowhere.
            log.info("query %s: client disconnected before the request was complete", query_id)
            return self._error(EngineError(f"Connection lost: {exc}", code=210), query_id, tag)
        except Exception as exc:
            # A fault of ours still reaches the client as ClickHouse's error, not aiohttp's page.
            log.exception("query %s failed inside the HTTP handler", query_id)
            return self._error(
                EngineError(f"{type(exc).__name__}: {exc}", code=1001), query_id, tag
            )

    async def _run(
        self,
        request: web.Request,
        query_id: str,
        tag: str,
        context: StatementContext,
        readonly: int,
        session: _Session | None,
    ) -> web.StreamResponse:
        head = request.query.get("query", "").encode()
        body = self._body_chunks(request) if request.method == "POST" else None
        # Read the body until the statement is known: an INSERT's data may follow it.
        first = b""
        if body is not None:
            async for chunk in body:
                first += chunk
                seen = head + b"\n" + first if head else first
                if _INSERT_HEAD_COMPLETE_RE.match(seen) or len(first) > (1 << 16):
                    break
        # ClickHouse reads the `query` parameter, a line break, then the body, as one text: the
        # line break (not a blank) keeps binary data that starts with a blank byte intact.
        text = (head + b"\n" + first) if head and first else (head or first)
        if not text.strip():
            raise EngineError("Empty query. (SYNTAX_ERROR)", code=62)

        insert = _INSERT_FORMAT_RE.match(text)
        if insert is not None and not _INLINE_ROWS_RE.search(insert.group(1)):
            if readonly:
                raise self._readonly_error(request)
            statement, fmt = insert.group(1).decode(), insert.group(2).decode()
            data = text[insert.end() :]
            return await self._insert(query_id, tag, statement, fmt, data, body, context)

        if body is not None:
            async for chunk in body:
                text += chunk
                if len(text) > _MAX_QUERY_BYTES:
                    raise EngineError("Query is too large. (QUERY_IS_TOO_LARGE)", code=229)
        sql = text.decode("utf-8", errors="replace")
        keyword = _first_keyword(text)
        if readonly and keyword not in _READ_ONLY_KEYWORDS:
            raise self._readonly_error(request)
        if readonly == 1 and keyword == "SET":
            raise EngineError("Cannot modify settings in readonly mode. (READONLY)", code=164)
        output = _OUTPUT_FORMAT_RE.search(sql)
        fmt = output.group(1) if output else request.query.get("default_format", "TabSeparated")
        if keyword in _STREAMED_KEYWORDS:
            return await self._stream(request, query_id, tag, sql, fmt, context)
        if keyword in ("SET", "USE"):
            return await self._session_statement(
                query_id, tag, keyword, sql, context, readonly, session
            )
        result = await self.engine.call(self.engine.execute, sql, fmt, context)
        headers = self._headers(query_id, tag, fmt)
        headers["X-ClickHouse-Summary"] = self._summary(
            result.rows_read, result.bytes_read, result.rows_written, result.bytes_written,
            result.elapsed,
        )  # fmt: skip
        return self._respond(request, result.data, headers)

    @staticmethod
    def _readonly_error(request: web.Request) -> EngineError:
        if request.method == "GET":
            return EngineError(
                "Cannot execute query in readonly mode. For queries over HTTP, method GET "
                "implies readonly. You should use method POST for modifying queries. (READONLY)",
                code=164,
            )
        return EngineError("Cannot execute query in readonly mode. (READONLY)", code=164)

    async def _session_statement(
        self,
        query_id: str,
        tag: str,
        keyword: str,
        sql: str,
        context: StatementContext,
        readonly: int,
        session: _Session | None,
    ) -> web.Response:
        """SET and USE change the session they run in, and without a session_id nothing.

        Run as they are, they would change the one chDB session that every client shares, and
        the next request of anyone would inherit them. So they are checked against the engine
        by a no-op statement that carries them (the engine undoes that afterwards) and, in a
        session, remembered for its later requests.
        """
        if keyword == "SET":
            settings = _parse_set(sql)
            if readonly and "readonly" in settings:
                raise EngineError(
                    "Cannot modify 'readonly' setting in readonly mode. (READONLY)", code=164
                )
            engine_settings, _ = _engine_settings({**context.settings, **settings})
            check = StatementContext(database=context.database, settings=engine_settings)
        else:
            match = _USE_RE.match(sql)
            if match is None:
                raise EngineError(f"Cannot parse the USE statement: {sql!r}. (SYNTAX_ERROR)", 62)
            check = StatementContext(database=match.group(1), settings=context.settings)
        await self.engine.call(self.engine.execute, "SELECT 1", "Null", check)
        if session is not None:
            if keyword == "SET":
                session.settings.update(settings)
            else:
                session.database = check.database
        return web.Response(body=b"", headers=self._headers(query_id, tag, "TabSeparated"))

    async def _stream(
        self,
        request: web.Request,
        query_id: str,
        tag: str,
        sql: str,
        fmt: str,
        context: StatementContext,
    ) -> web.StreamResponse:
        stream = await self.engine.call(self.engine.open_stream, sql, fmt, context)
        chunks = stream.chunks()
        try:
            # Errors found before the first block still get a proper error status.
            first = await anext(chunks, b"")
            if not first:
                # chDB streams nothing at all for an empty result, not even the format's frame
                # (the JSON envelope, a WithNames header). Run the statement whole to get it.
                await chunks.aclose()
                first = (await self.engine.call(self.engine.execute, sql, fmt, context)).data
            headers = self._headers(query_id, tag, fmt)
            headers["X-ClickHouse-Summary"] = self._summary(
                stream.rows_read, stream.bytes_read, 0, 0, 0.0
            )
            compressor = self._response_compressor(request)
            if compressor is not None:
                headers["Content-Encoding"] = compressor.encoding
            response = web.StreamResponse(headers=headers)
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                try:
                    if first:
                        await response.write(compressor.compress(first) if compressor else first)
                    async for chunk in chunks:
                        await response.write(compressor.compress(chunk) if compressor else chunk)
                except EngineError as error:
                    # Headers are gone: like ClickHouse, end the body with the framed exception.
                    block = self._exception_block(error, tag)
                    await response.write(compressor.compress(block) if compressor else block)
                    log.warning("query %s failed while streaming: %s", query_id, error.message)
                if compressor:
                    await response.write(compressor.flush())
                await response.write_eof()
            except ConnectionError:
                # The client hung up mid-result (a closed cursor, a killed script). Stop the
                # query now so that the engine is free for the next request.
                log.info("query %s: client disconnected, result stream cancelled", query_id)
            return response
        finally:
            await chunks.aclose()

    async def _insert(
        self,
        query_id: str,
        tag: str,
        statement: str,
        fmt: str,
        data: bytes,
        body: AsyncIterator[bytes] | None,
        context: StatementContext,
    ) -> web.Response:
        if not _ATOMIC_INSERT_SETTINGS.keys() & context.settings.keys():
            context.settings = {**_ATOMIC_INSERT_SETTINGS, **context.settings}
        # The data is spooled while it arrives, then loaded by one statement; see `InsertSpool`
        # for why not chDB's streaming insert.
        with InsertSpool() as spool:
            pending = data
            if body is not None:
                async for chunk in body:
                    pending += chunk
                    if len(pending) >= _INSERT_FLUSH_BYTES:
                        await spool.write(pending)
                        pending = b""
            if pending:
                await spool.write(pending)
            await spool.close()
            load = f"{statement} SELECT * FROM {file_function(spool.path, fmt)}"
            result = await self.engine.call(self.engine.execute, load, fmt, context)
        headers = self._headers(query_id, tag, fmt)
        headers["X-ClickHouse-Summary"] = self._summary(
            0, 0, result.rows_written, result.bytes_written, result.elapsed
        )
        return web.Response(body=b"", headers=headers)
