"""ClickHouse's native TCP protocol in front of the embedded chDB engine.

Each connection is an asyncio task with its own session state (database, SET settings, SET
param_ values); the engine is shared, so a query holds `Engine.lock` from its first engine call
until its last Data packet is sent or its last client block is inserted. Results stream: every
chunk the engine produces is re-framed (see `native_blocks`) and sent before the next one is used,
and a client that sends Cancel or goes away ends the statement, which releases the engine.

What a query turns into:

- `USE db`, `SET ...`: handled here, per connection (the engine session is shared);
- `INSERT INTO t ... VALUES` without rows: the sample block goes to the client, the client's Data
  blocks are spooled as Native bytes until the empty block, then loaded by one statement
  (`engine.InsertSpool` says why);
- anything else: a streaming SELECT when chDB can stream it, else a one-shot execution whose
  Native result is sent as blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Generator, Mapping, Sequence

from stir.stack.clickhouse.engine import (
    Engine,
    EngineError,
    InsertSpool,
    ResultStream,
    StatementContext,
)
from stir.stack.clickhouse.native_blocks import (
    EMPTY_BLOCK,
    BlockLayout,
    header_block,
    parse_block,
    split_native,
    to_native,
    to_tcp,
)
from stir.stack.clickhouse.native_protocol import (
    AUTHENTICATION_FAILED,
    MIN_CLIENT_REVISION,
    NOT_IMPLEMENTED,
    PROTOCOL_REVISION,
    UNEXPECTED_PACKET_FROM_CLIENT,
    UNKNOWN_DATABASE,
    UNKNOWN_PACKET_FROM_CLIENT,
    ClientPacket,
    CompressedInput,
    CompressionMethod,
    ConnectionClosed,
    InputBuffer,
    Progress,
    ProtocolError,
    QueryKind,
    QueryPacket,
    QueryStage,
    Rev,
    ServerPacket,
    compression_for,
    data_packet,
    end_of_stream_packet,
    exception_packet,
    hello_packet,
    pong_packet,
    profile_info_packet,
    progress_packet,
    read_hello_body,
    read_query_body,
    read_tables_status_request,
    tables_status_response_packet,
    unquote,
)
from stir.stack.clickhouse.native_sql import (
    InsertStatement,
    parse_client_insert,
    parse_set,
    parse_use,
    strip_format,
    tokenize,
)

log = logging.getLogger("stir.clickhouse.native")

# chDB refuses to stream anything but a SELECT; this is how it says so (code 36, BAD_ARGUMENTS).
_NOT_STREAMABLE = "Streaming query is not supported"
# How often a query that produces no chunk for a while still reports its progress.
PROGRESS_INTERVAL = 0.1
_TABLE_EXISTS = "SELECT 1 FROM system.tables WHERE database = {d:String} AND name = {t:String}"
_HTTP_METHODS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"OPTI", b"DELE")
_HTTP_ANSWER = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
    b"Port {port} is for clickhouse-client program.\r\n"
    b"You must use the HTTP port for HTTP.\r\n"
)


class NativeFrontEnd:
    """Listens on host:port and serves ClickHouse's native protocol from `engine`."""

    def __init__(
        self,
        engine: Engine,
        host: str,
        port: int,
        user: str,
        password: str,
        *,
        display_name: str = "stir-chdb",
        receive_timeout: float = 300.0,
        send_timeout: float = 300.0,
        peer: Engine | None = None,
    ) -> None:
        self.engine = engine
        # Runs what other ClickHouse servers ask of this one as a shard (see `engine.Engine`).
        self.peer = peer or engine
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.display_name = display_name
        # ClickHouse's receive_timeout/send_timeout: how long a query that holds the engine
        # waits for a silent client before giving up.
        self.receive_timeout = receive_timeout
        self.send_timeout = send_timeout
        # Every setting the engine knows, with the value it has when no statement changed it.
        self.default_settings: dict[str, str] = {}
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        async with self.engine.lock:
            result = await self.engine.call(
                self.engine.execute,
                "SELECT name, value FROM system.settings",
                "TabSeparated",
                StatementContext(),
            )
        for line in result.data.decode().splitlines():
            name, _, value = line.partition("\t")
            self.default_settings[name] = _tsv_unescape(value)
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        log.info("native protocol on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await NativeConnection(self, reader, writer).run()
        except asyncio.CancelledError:
            # Only stop() cancels these tasks, and it waits for them. Ending normally matters:
            # asyncio's stream callback logs a connection task that ends cancelled as an error.
            pass
        finally:
            self._connections.discard(task)


class NativeConnection:
    """One client connection: handshake, then packets until the client leaves."""

    def __init__(
        self, front: NativeFrontEnd, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.front = front
        # The engine of the current request: the clients' one, or the peer one for a shard query.
        self.engine = front.engine
        self.inbuf = InputBuffer(reader)
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.revision = PROTOCOL_REVISION
        self.database = "default"
        self.settings: dict[str, str] = {}  # from SET statements, for the connection's life
        self.params: dict[str, str] = {}  # from SET param_x = ...
        # False while a packet is half read: an error then leaves the byte stream unusable, so
        # the connection is closed after the exception is sent.
        self._in_sync = True
        # True between the sample block and the empty block of an INSERT: after an error, the
        # client's remaining blocks must be read and dropped before the next packet.
        self._insert_pending = False
        self._data_in: InputBuffer | CompressedInput = self.inbuf
        self._compression: CompressionMethod | None = None
        self._watch_seen = False

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def custom_flags(self) -> bool:
        return self.revision >= Rev.CUSTOM_SERIALIZATION

    def _write(self, *packets: bytes) -> None:
        if self.writer.is_closing():
            raise ConnectionClosed("connection closed")
        self.writer.write(b"".join(packets))

    async def _flush(self) -> None:
        try:
            async with asyncio.timeout(self.front.send_timeout):
                await self.writer.drain()
        except TimeoutError:
            raise ConnectionClosed("timed out sending to the client") from None
        except OSError as exc:
            raise ConnectionClosed(str(exc)) from None

    async def _send(self, *packets: bytes) -> None:
        self._write(*packets)
        await self._flush()

    def _data(self, block: bytes, kind: int = ServerPacket.DATA) -> bytes:
        return data_packet(block, self._compression, kind)

    async def _close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self.writer.wait_closed()

    # -- connection life --------------------------------------------------------------------

    async def run(self) -> None:
        try:
            if await self._handshake():
                await self._serve()
        except ConnectionClosed:
            log.debug("client %s disconnected", self.peer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours: tell the client, then drop the connection
            log.exception("native connection %s failed", self.peer)
            with contextlib.suppress(Exception):
                await self._send(exception_packet(1001, f"{type(exc).__name__}: {exc}"))
        finally:
            await self._close()

    async def _handshake(self) -> bool:
        await self.inbuf.ensure(4)
        if bytes(self.inbuf.buf[:4]) in _HTTP_METHODS:
            # Someone pointed an HTTP client at the native port: say so, like ClickHouse does.
            await self._send(_HTTP_ANSWER.replace(b"{port}", str(self.front.port).encode()))
            return False
        packet = await self.inbuf.read_varint()
        if packet != ClientPacket.HELLO:
            await self._send(
                exception_packet(
                    UNEXPECTED_PACKET_FROM_CLIENT,
                    f"Unexpected packet from client (expected Hello, got {packet}). "
                    "(UNEXPECTED_PACKET_FROM_CLIENT)",
                )
            )
            return False
        hello = await read_hello_body(self.inbuf)
        if hello.revision < MIN_CLIENT_REVISION:
            await self._send(
                exception_packet(
                    UNEXPECTED_PACKET_FROM_CLIENT,
                    f"Client protocol revision {hello.revision} is older than the oldest this "
                    f"server speaks ({MIN_CLIENT_REVISION}). (UNEXPECTED_PACKET_FROM_CLIENT)",
                )
            )
            return False
        self.revision = min(hello.revision, PROTOCOL_REVISION)
        user = hello.user or "default"
        if user != self.front.user or not hmac.compare_digest(
            hello.password.encode(), self.front.password.encode()
        ):
            await self._send(
                exception_packet(
                    AUTHENTICATION_FAILED,
                    f"{user}: Authentication failed: password is incorrect, or there is no user "
                    "with such name. (AUTHENTICATION_FAILED)",
                )
            )
            return False
        self.database = hello.database or "default"
        await self._send(
            hello_packet(
                self.revision, self.engine.version, self.engine.timezone, self.front.display_name
            )
        )
        if self.revision >= Rev.ADDENDUM:
            await self.inbuf.read_str(1 << 16)  # quota key: no quotas here
        log.debug(
            "client %s (%s) connected, revision %d", self.peer, hello.client_name, self.revision
        )
        return True

    async def _serve(self) -> None:
        while True:
            self.inbuf.compact()
            packet = await self.inbuf.read_varint()
            if packet == ClientPacket.PING:
                await self._send(pong_packet())
            elif packet == ClientPacket.QUERY:
                if not await self._query():
                    return
            elif packet == ClientPacket.CANCEL:
                pass  # the query it meant to cancel has already finished
            elif packet == ClientPacket.TABLES_STATUS_REQUEST:
                if not await self._tables_status():
                    return
            else:
                if packet in ClientPacket.__members__.values():
                    code, name = UNEXPECTED_PACKET_FROM_CLIENT, "UNEXPECTED_PACKET_FROM_CLIENT"
                else:
                    code, name = UNKNOWN_PACKET_FROM_CLIENT, "UNKNOWN_PACKET_FROM_CLIENT"
                message = f"Unexpected packet {packet} from client. ({name})"
                await self._send(exception_packet(code, message))
                return

    async def _tables_status(self) -> bool:
        """Answer a TablesStatusRequest; False when the connection must close."""
        self.inbuf.timeout = self.front.receive_timeout
        try:
            self._in_sync = False
            requested = await read_tables_status_request(self.inbuf)
            self._in_sync = True
            # Only a ClickHouse server choosing a replica asks this, just before its shard query.
            self.engine = self.front.peer
            existing = []
            async with self.engine.lock:
                for database, table in requested:
                    result = await self.engine.call(
                        self.engine.execute,
                        _TABLE_EXISTS,
                        "TabSeparated",
                        StatementContext(params={"d": _escape(database), "t": _escape(table)}),
                    )
                    if result.data.strip():
                        existing.append((database, table))
            await self._send(tables_status_response_packet(existing))
        except (EngineError, ProtocolError) as exc:
            await self._send(exception_packet(exc.code, exc.message))
            return self._in_sync
        finally:
            self.inbuf.timeout = None
        return True

    async def _query(self) -> bool:
        """Run one Query packet to its end; False when the connection must close."""
        self.inbuf.timeout = self.front.receive_timeout
        try:
            self._in_sync = False
            query = await read_query_body(self.inbuf, self.revision)
            self._in_sync = True
            secondary = query.kind == QueryKind.SECONDARY_QUERY
            self.engine = self.front.peer if secondary else self.front.engine
            if query.compression:
                chosen = {**self.settings, **{k: v.value for k, v in query.settings.items()}}
                self._compression = compression_for(chosen)
                self._data_in = CompressedInput(self.inbuf)
            else:
                self._compression = None
                self._data_in = self.inbuf
            await self._receive_external_tables()
            if query.stage != QueryStage.COMPLETE:
                raise ProtocolError(_partial_stage_message(query.stage), NOT_IMPLEMENTED)
            await self._dispatch(query)
        except (EngineError, ProtocolError) as exc:
            if self._in_sync:
                log.debug("query failed: %s", exc)
            else:
                log.info("client %s sent unreadable data: %s", self.peer, exc)
            await self._send(exception_packet(exc.code, exc.message))
            if not self._in_sync:
                return False
            if self._insert_pending:
                return await self._skip_insert_data()
        finally:
            self.inbuf.timeout = None
            self._insert_pending = False
        return True

    # -- client data blocks -----------------------------------------------------------------

    async def _read_block(self) -> tuple[str, BlockLayout, bytes | bytearray]:
        """A client Data or Scalar packet (after its type): its name, block layout and buffer.

        The name is an external table's or a scalar's; INSERT data has none.
        """
        self._in_sync = False
        name = await self.inbuf.read_str(1 << 16)
        source = self._data_in
        parse: Generator[int, None, BlockLayout] = parse_block(
            source, block_info=True, custom_flags=self.custom_flags
        )
        try:
            need = next(parse)
            while True:
                await source.ensure(need)
                need = parse.send(None)
        except StopIteration as stop:
            layout: BlockLayout = stop.value
        self._in_sync = True
        return name, layout, source.buf

    def _release_block(self) -> None:
        self._data_in.compact()
        self.inbuf.compact()

    async def _receive_external_tables(self) -> None:
        """Every query is followed by scalars, external tables' Data packets and an empty block."""
        tables = False
        while True:
            packet = await self.inbuf.read_varint()
            if packet == ClientPacket.SCALAR:
                # A ClickHouse server sends a shard its scalars (_shard_num, _shard_count, the
                # values of scalar subqueries). chDB takes none from outside: a shard computes
                # its own, and shardNum()/shardCount() answer as on a server of one shard.
                name, _, _ = await self._read_block()
                self._release_block()
                log.debug("scalar %s from %s ignored", name, self.peer)
                continue
            if packet != ClientPacket.DATA:
                self._in_sync = False
                raise ProtocolError(
                    f"Unexpected packet {packet} from client after Query (expected Data). "
                    "(UNEXPECTED_PACKET_FROM_CLIENT)",
                    UNEXPECTED_PACKET_FROM_CLIENT,
                )
            _, layout, _ = await self._read_block()
            self._release_block()
            if not layout.columns:
                break
            tables = True
        if tables:
            raise ProtocolError(
                "External tables are not supported by this server. (NOT_IMPLEMENTED)",
                NOT_IMPLEMENTED,
            )

    async def _skip_insert_data(self) -> bool:
        """After a failed INSERT, drop the blocks the client still sends, up to the empty one."""
        self._insert_pending = False
        while True:
            packet = await self.inbuf.read_varint()
            if packet == ClientPacket.CANCEL:
                return True
            if packet != ClientPacket.DATA:
                return False
            _, layout, _ = await self._read_block()
            self._release_block()
            if not layout.columns:
                return True

    # -- statements -------------------------------------------------------------------------

    def _context(self, query: QueryPacket) -> StatementContext:
        settings = dict(self.settings)
        for name, setting in query.settings.items():
            default = self.front.default_settings.get(name)
            if default is None and not setting.important:
                # Like ClickHouse, ignore settings the server does not know unless the client
                # marked them important (clickhouse-driver's settings_is_important).
                continue
            if setting.value == default:
                # Already in effect. A ClickHouse server forwarding a query sends every setting
                # its session changed, and some of those (run_query_in_background) cannot be SET.
                settings.pop(name, None)
            else:
                settings[name] = setting.value
        return StatementContext(
            database=self.database, settings=settings, params={**self.params, **query.params}
        )

    async def _dispatch(self, query: QueryPacket) -> None:
        sql = query.query
        database = parse_use(sql)
        if database is not None:
            await self._use(database)
            return
        assignments = parse_set(sql)
        if assignments is not None:
            await self._set(assignments, self._context(query))
            return
        context = self._context(query)
        insert = parse_client_insert(sql)
        if insert is not None:
            await self._insert(insert, context)
        else:
            await self._select(strip_format(sql), context)

    async def _use(self, database: str) -> None:
        async with self.engine.lock:
            result = await self.engine.call(
                self.engine.execute,
                "SELECT 1 FROM system.databases WHERE name = {db:String}",
                "TabSeparated",
                StatementContext(params={"db": _escape(database)}),
            )
        if not result.data.strip():
            raise ProtocolError(
                f"Database {database} does not exist. (UNKNOWN_DATABASE)", UNKNOWN_DATABASE
            )
        self.database = database
        await self._send(end_of_stream_packet())

    async def _set(self, assignments: Sequence[tuple[str, str | None]], base: StatementContext):
        settings = dict(self.settings)
        params = dict(self.params)
        for name, value in assignments:
            if name.startswith("param_"):
                target, key = params, name[len("param_") :]
            else:
                target, key = settings, name
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        # Apply the new settings once so that a bad name or value fails the SET, as it would on
        # a real server, instead of every later query.
        check = StatementContext(database=base.database, settings=settings)
        async with self.engine.lock:
            await self.engine.call(self.engine.execute, "SELECT 1", "TabSeparated", check)
        self.settings, self.params = settings, params
        await self._send(end_of_stream_packet())

    async def _insert(self, insert: InsertStatement, context: StatementContext) -> None:
        """Ask for the client's blocks with the sample block, then insert them as one statement.

        The blocks are spooled to a Native file and loaded with INSERT ... SELECT FROM file()
        rather than fed to chDB's streaming insert, because that one loses every error raised
        after parsing (constraints, DEFAULT/MATERIALIZED expressions, materialized views): it
        reports success and the rows are dropped or half applied. A side benefit: the engine is
        free for other connections while a slow client uploads.
        """
        async with self.engine.lock:
            sample = await self.engine.call(
                self.engine.execute, insert.sample_query(), "TabSeparated", context
            )
        columns = _described_columns(sample.data)
        started = time.monotonic_ns()
        await self._send(self._data(header_block(columns, custom_flags=self.custom_flags)))
        self._insert_pending = True
        with InsertSpool() as spool:
            names: list[str] | None = None
            while True:
                packet = await self.inbuf.read_varint()
                if packet == ClientPacket.CANCEL:
                    self._insert_pending = False
                    await self._send(end_of_stream_packet())
                    return
                if packet != ClientPacket.DATA:
                    self._in_sync = False
                    raise ProtocolError(
                        f"Unexpected packet {packet} from client during INSERT (expected Data). "
                        "(UNEXPECTED_PACKET_FROM_CLIENT)",
                        UNEXPECTED_PACKET_FROM_CLIENT,
                    )
                _, layout, buf = await self._read_block()
                if not layout.columns:  # the empty block: end of data
                    self._release_block()
                    self._insert_pending = False
                    break
                if layout.rows:
                    if names is None:
                        names = [column.name for column in layout.columns]
                    native = to_native(buf, layout)
                    self._release_block()
                    await spool.write(native)
                else:
                    self._release_block()
                if self.revision >= Rev.PROFILE_EVENTS_IN_INSERT:
                    # clickhouse-driver waits for this after every block it sends.
                    await self._send(self._profile_events())
            progress = _ProgressTracker()
            if names:
                await spool.close()
                async with self.engine.lock:
                    await self.engine.call(self.engine.set_progress_callback, progress)
                    try:
                        result = await self.engine.call(
                            self.engine.execute,
                            insert.from_file(names, spool.path),
                            "Native",
                            context,
                        )
                    finally:
                        await self.engine.call(self.engine.set_progress_callback, None)
                progress.written(result.rows_written, result.bytes_written)
        packets = []
        if self.revision >= Rev.PROFILE_EVENTS_IN_INSERT:
            packets.append(self._profile_events())
        delta = progress.delta(time.monotonic_ns() - started)
        if delta:
            packets.append(progress_packet(self.revision, delta))
        packets.append(end_of_stream_packet())
        await self._send(*packets)

    def _profile_events(self) -> bytes:
        # ProfileEvents blocks are never compressed; ours is empty (no counters to report).
        return data_packet(EMPTY_BLOCK, None, ServerPacket.PROFILE_EVENTS)

    async def _select(self, sql: str, context: StatementContext) -> None:
        # Watch the socket while results stream: the client may send Cancel or disappear.
        watch = asyncio.ensure_future(self.inbuf.wait_readable())
        self._watch_seen = False
        try:
            async with self.engine.lock:
                state = self._interrupted(watch)
                if state == "gone":
                    raise ConnectionClosed("client left before its query ran")
                if state == "cancel":
                    await self._send(end_of_stream_packet())
                    return
                try:
                    stream = await self.engine.call(self.engine.open_stream, sql, "Native", context)
                except EngineError as exc:
                    if exc.code == 36 and _NOT_STREAMABLE in exc.message:
                        await self._execute(sql, context)
                        return
                    raise
                await self._stream(stream, sql, context, watch)
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    def _interrupted(self, watch: asyncio.Future[bool]) -> str | None:
        """'gone' if the client closed, 'cancel' if it sent Cancel (consumed), else None."""
        if not watch.done() or watch.cancelled():
            return None
        if not watch.result():
            return "gone"
        if self._watch_seen:  # already looked at what arrived: only one answer per watch
            return None
        self._watch_seen = True
        if self.inbuf.buf[self.inbuf.pos] == ClientPacket.CANCEL:
            self.inbuf.pos += 1
            return "cancel"
        return None  # some other packet; it waits in the buffer until the query is over

    async def _stream(
        self, stream: ResultStream, sql: str, context: StatementContext, watch: asyncio.Future[bool]
    ) -> None:
        sent = _Sent()
        progress = _ProgressTracker()
        last = time.monotonic_ns()
        await self.engine.call(self.engine.set_progress_callback, progress)
        # Fetch the next chunk on the engine thread while this one is encoded and sent.
        pending = asyncio.ensure_future(self.engine.call(stream.fetch))
        cancelled = False
        try:
            while True:
                while not pending.done():
                    # A chunk can take long (a big aggregation): report progress meanwhile.
                    await asyncio.wait({pending}, timeout=PROGRESS_INTERVAL)
                    if not pending.done():
                        last = await self._send_progress(progress, last)
                chunk = pending.result()
                if chunk is None:
                    break
                pending = asyncio.ensure_future(self.engine.call(stream.fetch))
                self._write_result(chunk, sent)
                progress.result(sent.rows, sent.bytes)
                last = await self._send_progress(progress, last)
                state = self._interrupted(watch)
                if state == "gone":
                    raise ConnectionClosed("client left during its query")
                if state == "cancel":
                    cancelled = True
                    break
        finally:
            if not pending.done():
                await asyncio.gather(pending, return_exceptions=True)
            await self.engine.call(stream.close)
            await self.engine.call(self.engine.set_progress_callback, None)
        if cancelled:
            await self._send(end_of_stream_packet())
            return
        if not sent.header:
            await self._send_described_header(sql, context)
        packets = [profile_info_packet(sent.rows, sent.blocks, sent.bytes)]
        delta = progress.delta(time.monotonic_ns() - last)
        if delta:
            packets.append(progress_packet(self.revision, delta))
        packets.append(end_of_stream_packet())
        await self._send(*packets)

    async def _send_progress(self, progress: _ProgressTracker, last: int) -> int:
        """Send what was read since the last report (and flush queued data); returns the time."""
        now = time.monotonic_ns()
        delta = progress.delta(now - last)
        if delta:
            self._write(progress_packet(self.revision, delta))
        await self._flush()
        return now if delta else last

    async def _execute(self, sql: str, context: StatementContext) -> None:
        """A statement chDB cannot stream (DDL, INSERT ... SELECT, SHOW, ...): run it whole."""
        started = time.monotonic_ns()
        progress = _ProgressTracker()
        await self.engine.call(self.engine.set_progress_callback, progress)
        try:
            result = await self.engine.call(self.engine.execute, sql, "Native", context)
        finally:
            await self.engine.call(self.engine.set_progress_callback, None)
        sent = _Sent()
        self._write_result(result.data, sent)
        progress.result(sent.rows, sent.bytes)
        progress.written(result.rows_written, result.bytes_written)
        packets = []
        if sent.blocks:
            packets.append(profile_info_packet(sent.rows, sent.blocks, sent.bytes))
        delta = progress.delta(time.monotonic_ns() - started)
        if delta:
            packets.append(progress_packet(self.revision, delta))
        packets.append(end_of_stream_packet())
        await self._send(*packets)

    def _write_result(self, native: bytes, sent: _Sent) -> None:
        """Queue the blocks of engine output as Data packets, the header block first."""
        for layout in split_native(native):
            if not sent.header:
                # Clients take column names and types from a first block without rows.
                self._write(
                    self._data(
                        to_tcp(native, layout, custom_flags=self.custom_flags, header_only=True)
                    )
                )
                sent.header = True
            if layout.rows:
                self._write(self._data(to_tcp(native, layout, custom_flags=self.custom_flags)))
                sent.rows += layout.rows
                sent.blocks += 1
                sent.bytes += layout.data_bytes

    async def _send_described_header(self, sql: str, context: StatementContext) -> None:
        """An empty result still tells the client its columns: ask the engine for them."""
        tokens = tokenize(sql)
        if not tokens or not (tokens[0].is_word("SELECT", "WITH") or tokens[0].text == "("):
            return
        try:
            result = await self.engine.call(
                self.engine.execute, f"DESCRIBE TABLE ({sql})", "TabSeparated", context
            )
        except EngineError:
            return
        columns = _described_columns(result.data)
        if columns:
            await self._send(self._data(header_block(columns, custom_flags=self.custom_flags)))


def _partial_stage_message(stage: int) -> str:
    try:
        name = QueryStage(stage).name
    except ValueError:
        name = str(stage)
    return (
        f"This server (the embedded ClickHouse, chDB) runs queries to the end only; it was asked "
        f"for stage {name}, which a distributed query asks of its shards to merge their results "
        "(aggregation, ORDER BY, LIMIT). chDB cannot stop a query at a stage. Ask the shards for "
        "complete results instead: distributed_group_by_no_merge = 1 on the initiator, and "
        "aggregate or sort those in an outer query. (NOT_IMPLEMENTED)"
    )


class _ProgressTracker:
    """Turns chDB's growing per-statement counters into the increments Progress packets carry.

    The engine thread calls it with each report; the event loop asks for `delta`. Counters are
    kept as maxima because the SET statements around a statement report zeros of their own.
    """

    _FIELDS = ("read_rows", "read_bytes", "total_rows_to_read", "written_rows", "written_bytes")

    def __init__(self) -> None:
        self._latest = dict.fromkeys(self._FIELDS, 0)
        self._reported = dict.fromkeys(self._FIELDS, 0)

    def __call__(self, payload: Mapping[str, int]) -> None:
        latest = dict(self._latest)
        for name in self._FIELDS:
            latest[name] = max(latest[name], int(payload.get(name, 0) or 0))
        self._latest = latest  # one assignment: the loop never sees a half update

    def result(self, rows: int, nbytes: int) -> None:
        """Rows sent so far: a floor for rows read, for engines that report no progress."""
        self(dict(read_rows=rows, read_bytes=nbytes))

    def written(self, rows: int, nbytes: int) -> None:
        self(dict(written_rows=rows, written_bytes=nbytes))

    def delta(self, elapsed_ns: int) -> Progress:
        latest, before = self._latest, self._reported
        self._reported = latest
        return Progress(
            rows=latest["read_rows"] - before["read_rows"],
            bytes=latest["read_bytes"] - before["read_bytes"],
            total_rows=latest["total_rows_to_read"] - before["total_rows_to_read"],
            written_rows=latest["written_rows"] - before["written_rows"],
            written_bytes=latest["written_bytes"] - before["written_bytes"],
            elapsed_ns=elapsed_ns,
        )


class _Sent:
    """What a query has sent so far, for the header decision and ProfileInfo."""

    __slots__ = ("blocks", "bytes", "header", "rows")

    def __init__(self) -> None:
        self.header = False
        self.rows = self.blocks = self.bytes = 0


def _tsv_unescape(text: str) -> str:
    return unquote("'" + text + "'") if "\\" in text else text


def _escape(text: str) -> str:
    """A query parameter value in the escaped text form chDB parses."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _described_columns(tsv: bytes) -> list[tuple[str, str]]:
    """(name, type) of each column in DESCRIBE output (TabSeparated)."""
    columns = []
    for line in tsv.decode().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            columns.append((_tsv_unescape(fields[0]), _tsv_unescape(fields[1])))
    return columns
