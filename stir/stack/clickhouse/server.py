"""The embedded ClickHouse server process: one chDB engine, its protocol listeners on loopback.

Run as `python -m stir.stack.clickhouse --data-dir DIR --http-port 8123 [--native-port 9000]`.
The password, when there is one, comes from the environment variable STIR_CLICKHOUSE_PASSWORD so
that it never shows in the process list. `stir stack up` starts this process; tests start it
directly on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import tempfile
from pathlib import Path

from stir.stack.clickhouse.engine import Engine, write_engine_config
from stir.stack.clickhouse.http import HttpFrontEnd

log = logging.getLogger("stir.clickhouse")

PASSWORD_ENV = "STIR_CLICKHOUSE_PASSWORD"  # noqa: S105 - the name of a variable, not a secret


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stir.stack.clickhouse",
        description="Embedded ClickHouse (chDB) speaking ClickHouse's HTTP and native protocols.",
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="where tables persist")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback)")
    parser.add_argument("--http-port", type=int, default=8123)
    parser.add_argument("--native-port", type=int, default=0, help="0 disables the native port")
    parser.add_argument("--user", default="default")
    parser.add_argument(
        "--config-file",
        type=Path,
        help="more ClickHouse configuration (XML), e.g. remote_servers for Distributed tables",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="stir-clickhouse-") as config_dir:
        config = write_engine_config(Path(config_dir), args.native_port, args.config_file)
        await _serve(args, config)


async def _serve(args: argparse.Namespace, config: Path) -> None:
    engine = Engine(args.data_dir, config)
    await engine.start()
    engines = [engine]
    password = os.environ.get(PASSWORD_ENV, "")
    front_ends = [HttpFrontEnd(engine, args.host, args.http_port, args.user, password)]
    if args.native_port:
        from stir.stack.clickhouse.native import NativeFrontEnd

        # Only ClickHouse servers send shard queries, and only to the native port.
        peer = Engine(args.data_dir, config)
        await peer.start()
        engines.append(peer)
        front_ends.append(
            NativeFrontEnd(engine, args.host, args.native_port, args.user, password, peer=peer)
        )
    for front_end in front_ends:
        await front_end.start()
    log.info("ClickHouse %s (chDB) ready, data in %s", engine.version, args.data_dir)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    for front_end in front_ends:
        await front_end.stop()
    for each in engines:
        await each.close()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
