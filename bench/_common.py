"""What every benchmark shares: the machine line it prints, timing, and an embedded server."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The benchmark table: 4 columns of common types, filled from numbers().
TABLE_DDL = (
    "CREATE TABLE {table} (id UInt64, name String, score Float64, day Date) "
    "ENGINE = MergeTree ORDER BY id"
)
GENERATE = (
    "SELECT number AS id, toString(number) AS name, number * 0.5 AS score, "
    "toDate('2024-01-01') + (number % 365) AS day FROM numbers({rows})"
)


def machine_line() -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """`with timed() as t: ...` then `t["seconds"]`."""
    box: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - start


def best_of(runs: int, fn: Callable[[], int]) -> tuple[float, int]:
    """Fastest of `runs` runs (the least disturbed by a noisy machine) and what `fn` returned."""
    best, result = float("inf"), 0
    for _ in range(runs):
        with timed() as t:
            result = fn()
        best = min(best, t["seconds"])
    return best, result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class EmbeddedClickHouse:
    process: subprocess.Popen
    http_port: int
    native_port: int

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def start_embedded_clickhouse(data_dir: Path, native: bool = False) -> EmbeddedClickHouse:
    """Our chDB server on free loopback ports, as `stir stack up` runs it."""
    http_port, native_port = free_port(), free_port() if native else 0
    command = [sys.executable, "-m", "stir.stack.clickhouse", "--data-dir", str(data_dir),
               "--http-port", str(http_port), "--native-port", str(native_port)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    for port in filter(None, (http_port, native_port)):
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    raise SystemExit("the embedded ClickHouse did not start") from None
                time.sleep(0.2)
    return EmbeddedClickHouse(process, http_port, native_port)
