"""Shared fixtures: real servers of the embedded stack, started on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} not listening after {timeout}s:\n{log.read_text()}")


@dataclass
class ClickHouseServer:
    """An embedded ClickHouse server process started for tests."""

    host: str
    http_port: int
    native_port: int
    password: str
    data_dir: Path
    process: subprocess.Popen

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"


def start_clickhouse(data_dir: Path, password: str = "") -> ClickHouseServer:
    http_port, native_port = free_port(), free_port()
    log = data_dir.parent / f"{data_dir.name}.log"
    env = {**os.environ, "STIR_CLICKHOUSE_PASSWORD": password}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "stir.stack.clickhouse",
            "--data-dir", str(data_dir),
            "--http-port", str(http_port),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    wait_for_port(http_port, process, log)
    return ClickHouseServer("127.0.0.1", http_port, native_port, password, data_dir, process)


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """One embedded ClickHouse (no password) for the whole test session."""
    server = start_clickhouse(tmp_path_factory.mktemp("clickhouse") / "data")
    yield server
    stop_process(server.process)
