"""ClickHouse's HTTP interface over the embedded engine.

Behaves as a ClickHouse server does for the clients Stir uses (clickhouse-connect, dbt-clickhouse,
curl): `GET /ping`, queries by GET (read-only) and POST, the query in the `query` parameter and/or
the body, settings and `param_<name>` query parameters in the URL, `database`, `default_format`,
`FORMAT` in the query, inserts whose data follows the statement in the body, gzip/deflate/zstd/lz4
request and response compression, the `X-ClickHouse-*` headers, ClickHouse's error text and
status codes, and basic or header authentication.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import lz4.frame
import zstandard
from aiohttp import web

from stir.stack.clickhouse.engine import Engine, EngineError, StatementContext

log = logging.getLogger("stir.clickhouse.http")

# URL parameters that steer the HTTP handler itself; every other parameter is a setting.
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
_INSERT_FORMAT_RE = re.compile(
    rb"^\s*(INSERT\s+INTO\s+.*?)\s+FORMAT\s+([A-Za-z0-9_]+)[ \t]*(\r?\n)?", re.IGNORECASE | re.DOTALL
)
# While the body is still arriving, the format name is complete only once whitespace follows it.
_INSERT_HEAD_COMPLETE_RE = re.compile(
    rb"^\s*INSERT\s+INTO\s+.*?\s+FORMAT\s+[A-Za-z0-9_]+[ \t\r\n]", re.IGNORECASE | re.DOTALL
)
_OUTPUT_FORMAT_RE = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_SET_RE = re.compile(r"^\s*SET\s+(.*?);?\s*$", re.IGNORECASE | re.DOTALL)
_SET_ITEM_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|[^,]+)\s*(?:,|$)")
_USE_RE = re.compile(r"^\s*USE\s+`?([A-Za-z0-9_]+)`?\s*;?\s*$", re.IGNORECASE)

_INSERT_FLUSH_BYTES = 1 << 20  # hand inserted data to the engine in ~1 MiB pieces
_MAX_QUERY_BYTES = 64 << 20

# ClickHouse answers some errors with a status other than 500 (HTTPHandler's mapping).
_STATUS_BY_CODE = {
    516: 401,  # AUTHENTICATION_FAILED
    164: 403,  # READONLY
    497: 403,  # ACCESS_DENIED
    60: 404,  # UNKNOWN_TABLE
    81: 404,  # UNKNOWN_DATABASE
    46: 404,  # UNKNOWN_FUNCTION
    62: 400,  # SYNTAX_ERROR
    115: 400,  # UNKNOWN_SETTING
    27: 400,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    456: 400,  # UNKNOWN_QUERY_PARAMETER
    73: 400,  # UNKNOWN_FORMAT
}

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


def _decompressor(encoding: str) -> Callable[[bytes], bytes]:
    """An incremental decoder for one request Content-Encoding."""
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress
    if encoding == "deflate":
        return zlib.decompressobj().decompress
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress
    if encoding == "lz4":
        return lz4.frame.LZ4FrameDecompressor().decompress
    raise EngineError(f"Unknown Content-Encoding of HTTP request: {encoding}", code=1)


class _Compressor:
    """An incremental encoder for one response Content-Encoding."""

    SUPPORTED = ("lz4", "zstd", "gzip", "deflate")

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
            self._compress = lambda data: (header if not self._started else b"") + frame.compress(
                data
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


def _unquote_setting(literal: str) -> str:
    literal = literal.strip()
    if len(literal) >= 2 and literal[0] == literal[-1] == "'":
        return re.sub(r"\\(.)", r"\1", literal[1:-1])
    return literal


def _first_keyword(text: bytes) -> str:
    match = _FIRST_WORD_RE.match(text)
    return match.group(1).decode().upper() if match else ""


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

    def _headers(self, query_id: str, fmt: str | None = None) -> dict[str, str]:
        headers = {
            "X-ClickHouse-Server-Display-Name": "stir-chdb",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.engine.timezone,
            "Keep-Alive": "timeout=10",
        }
        if fmt is not None:
            headers["X-ClickHouse-Format"] = fmt
            headers["Content-Type"] = content_type_for(fmt)
        return headers

    def _error(self, error: EngineError, query_id: str) -> web.Response:
        headers = self._headers(query_id)
        headers["X-ClickHouse-Exception-Code"] = str(error.code)
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        body = f"{error.message} (version {self.engine.version})\n"
        return web.Response(
            status=_STATUS_BY_CODE.get(error.code, 500), text=body, headers=headers
        )

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
        user_ok = hmac.compare_digest(user or self.user, self.user)
        if not (user_ok and hmac.compare_digest(password, self._password)):
            raise EngineError(
                f"{user}: Authentication failed: password is incorrect, or there is no user "
                "with such name. (AUTHENTICATION_FAILED)",
                code=516,
            )

    async def _body_chunks(self, request: web.Request) -> AsyncIterator[bytes]:
        """The request body, decoded from its Content-Encoding, as it arrives."""
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        decode = _decompressor(encoding) if encoding and encoding != "identity" else None
        async for chunk in request.content.iter_any():
            data = decode(chunk) if decode else chunk
            if data:
                yield data

    def _context(self, request: web.Request, session: _Session | None) -> StatementContext:
        params = {k[6:]: v for k, v in request.query.items() if k.startswith("param_")}
        settings = dict(session.settings) if session else {}
        settings.update(
            (k, v)
            for k, v in request.query.items()
            if k not in _HANDLER_PARAMS and not k.startswith("param_")
        )
        database = (
            request.query.get("database")
            or request.headers.get("X-ClickHouse-Database")
            or (session.database if session else None)
            or "default"
        )
        return StatementContext(database=database, settings=settings, params=params)

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
        try:
            self._authenticate(request)
            if request.method not in ("GET", "POST", "HEAD"):
                raise EngineError(f"HTTP method {request.method} is not allowed", code=1)
            session_id = request.query.get("session_id")
            session = self._sessions.setdefault(session_id, _Session()) if session_id else None
            context = self._context(request, session)
            async with self.engine.lock:
                return await self._run(request, query_id, context, session)
        except EngineError as error:
            return self._error(error, query_id)

    async def _run(
        self,
        request: web.Request,
        query_id: str,
        context: StatementContext,
        session: _Session | None,
    ) -> web.StreamResponse:
        head = request.query.get("query", "").encode()
        body = self._body_chunks(request) if request.method == "POST" else None
        # Read the body until the statement is known: an INSERT's data may follow it.
        first = b""
        if body is not None:
            async for chunk in body:
                first += chunk
                seen = head + b" " + first if head else first
                if _INSERT_HEAD_COMPLETE_RE.match(seen) or len(first) > (1 << 16):
                    break
        text = (head + b" " + first) if head and first else (head or first)
        if not text.strip():
            raise EngineError("Empty query. (SYNTAX_ERROR)", code=62)

        insert = _INSERT_FORMAT_RE.match(text)
        if insert is not None:
            if request.method == "GET":
                raise EngineError("Cannot execute query in readonly mode. (READONLY)", code=164)
            statement, fmt = insert.group(1).decode(), insert.group(2).decode()
            data = text[insert.end() :]
            return await self._insert(query_id, statement, fmt, data, body, context)

        if body is not None:
            async for chunk in body:
                text += chunk
                if len(text) > _MAX_QUERY_BYTES:
                    raise EngineError("Query is too large. (QUERY_IS_TOO_LARGE)", code=393)
        sql = text.decode("utf-8", errors="replace")
        keyword = _first_keyword(text)
        if request.method == "GET" and keyword not in _READ_ONLY_KEYWORDS:
            raise EngineError(
                "Cannot execute query in readonly mode. For queries over HTTP, method GET "
                "implies readonly. You should use method POST for modifying queries. (READONLY)",
                code=164,
            )
        output = _OUTPUT_FORMAT_RE.search(sql)
        fmt = output.group(1) if output else request.query.get("default_format", "TabSeparated")
        if keyword in _STREAMED_KEYWORDS:
            return await self._stream(request, query_id, sql, fmt, context)
        result = await self.engine.call(self.engine.execute, sql, fmt, context)
        if session is not None:
            self._remember(session, sql)
        headers = self._headers(query_id, fmt)
        headers["X-ClickHouse-Summary"] = self._summary(
            result.rows_read, result.bytes_read, result.rows_written, result.bytes_written,
            result.elapsed,
        )  # fmt: skip
        return web.Response(body=result.data, headers=headers)

    @staticmethod
    def _remember(session: _Session, sql: str) -> None:
        """Keep a session's SET and USE for its later requests, as a server session does."""
        if match := _SET_RE.match(sql):
            for name, literal in _SET_ITEM_RE.findall(match.group(1)):
                session.settings[name] = _unquote_setting(literal)
        elif match := _USE_RE.match(sql):
            session.database = match.group(1)

    async def _stream(
        self, request: web.Request, query_id: str, sql: str, fmt: str, context: StatementContext
    ) -> web.StreamResponse:
        stream = await self.engine.call(self.engine.open_stream, sql, fmt, context)
        chunks = stream.chunks()
        try:
            # Errors found before the first block still get a proper error status.
            first = await anext(chunks, b"")
            headers = self._headers(query_id, fmt)
            headers["X-ClickHouse-Summary"] = self._summary(
                stream.rows_read, stream.bytes_read, 0, 0, 0.0
            )
            encoding = None
            if request.query.get("enable_http_compression") in ("1", "true"):
                encoding = _choose_response_encoding(request.headers.get("Accept-Encoding", ""))
            compressor = _Compressor(encoding) if encoding else None
            if encoding:
                headers["Content-Encoding"] = encoding
            response = web.StreamResponse(headers=headers)
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                if first:
                    await response.write(compressor.compress(first) if compressor else first)
                async for chunk in chunks:
                    await response.write(compressor.compress(chunk) if compressor else chunk)
            except EngineError as error:
                # Headers are gone: like ClickHouse, put the exception at the end of the body.
                tail = f"\n{error.message} (version {self.engine.version})\n".encode()
                await response.write(compressor.compress(tail) if compressor else tail)
                log.warning("query %s failed while streaming: %s", query_id, error.message)
            if compressor:
                await response.write(compressor.flush())
            await response.write_eof()
            return response
        finally:
            await chunks.aclose()

    async def _insert(
        self,
        query_id: str,
        statement: str,
        fmt: str,
        data: bytes,
        body: AsyncIterator[bytes] | None,
        context: StatementContext,
    ) -> web.Response:
        inserter = await self.engine.call(self.engine.open_insert, statement, fmt, context)
        try:
            pending = data
            if body is not None:
                async for chunk in body:
                    pending += chunk
                    if len(pending) >= _INSERT_FLUSH_BYTES:
                        await self.engine.call(inserter.append, pending)
                        pending = b""
            if pending:
                await self.engine.call(inserter.append, pending)
            result = await self.engine.call(inserter.finish)
        except BaseException:
            await self.engine.call(inserter.cancel)
            raise
        headers = self._headers(query_id, fmt)
        headers["X-ClickHouse-Summary"] = self._summary(
            0, 0, result.rows_written, result.bytes_written, result.elapsed
        )
        return web.Response(body=b"", headers=headers)
