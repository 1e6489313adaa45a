"""`stir stack up|down|status|logs` with real processes on free loopback ports.

Every test has its own STIR_STATE_DIR and ports, so tests neither collide with each other nor
with a developer's running stack.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest

from stir.settings import get_settings
from stir.stack.services import Stack

SERVICES = ("clickhouse", "s3", "postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Settings of a private stack: its own state directory and free ports."""
    env = {
        "STIR_STATE_DIR": str(tmp_path / "state"),
        "STIR_CLICKHOUSE_HTTP_PORT": str(free_port()),
        "STIR_CLICKHOUSE_NATIVE_PORT": str(free_port()),
        "STIR_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "STIR_POSTGRES_PORT": str(free_port()),
    }
    env.update(extra)
    return env


def stir(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("STIR_")}
    return subprocess.run(
        [sys.executable, "-m", "stir.cli", *args],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def pids(env: dict[str, str]) -> dict[str, int]:
    state = Path(env["STIR_STATE_DIR"])
    found = {}
    for name in SERVICES:
        pid_file = state / name / f"{name}.pid"
        if pid_file.exists():
            found[name] = int(pid_file.read_text())
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def status_rows(output: str) -> dict[str, str]:
    """service -> the rest of its line in the `stir stack status` table."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if cells and cells[0] in SERVICES:
            rows[cells[0]] = " | ".join(cells[1:])
    return rows


def clickhouse_query(env: dict[str, str], sql: str) -> str:
    url = f"http://127.0.0.1:{env['STIR_CLICKHOUSE_HTTP_PORT']}/"
    request = urllib.request.Request(url, data=sql.encode(), method="POST")
    if "STIR_CLICKHOUSE_PASSWORD" in env:
        request.add_header("X-ClickHouse-User", "default")
        request.add_header("X-ClickHouse-Key", env["STIR_CLICKHOUSE_PASSWORD"])
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http to loopback
        return response.read().decode()


def postgres_query(env: dict[str, str], sql: str) -> object:
    async def run() -> object:
        conn = await asyncpg.connect(
            f"postgresql://stir@127.0.0.1:{env['STIR_POSTGRES_PORT']}/stir", timeout=10
        )
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


Stopper = Callable[[dict[str, str]], None]


@pytest.fixture
def stopper(tmp_path: Path) -> Iterator[Stopper]:
    """Make sure every stack a test started is stopped, even when the test fails."""
    envs: list[dict[str, str]] = []
    yield envs.append
    for env in envs:
        stir(tmp_path, env, "stack", "down")


def test_up_status_down_lifecycle(tmp_path: Path, stopper: Stopper) -> None:
    env = stack_env(tmp_path, STIR_CLICKHOUSE_PASSWORD="ch-pass-4417")
    stopper(env)

    up = stir(tmp_path, env, "stack", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.count("started") == 3
    started = pids(env)
    assert set(started) == set(SERVICES)
    assert all(alive(pid) for pid in started.values())
    # The ClickHouse password travels in the environment, never in the process list.
    ch_cmdline = " ".join(psutil.Process(started["clickhouse"]).cmdline())
    assert "ch-pass-4417" not in ch_cmdline

    status = stir(tmp_path, env, "stack", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = status_rows(status.stdout)
    assert set(rows) == set(SERVICES)
    for name in SERVICES:
        assert rows[name].startswith("up"), rows[name]
        assert str(started[name]) in rows[name]
    assert f"127.0.0.1:{env['STIR_CLICKHOUSE_HTTP_PORT']}" in rows["clickhouse"]
    assert "ch-pass-4417" not in status.stdout + up.stdout

    # The services really answer their clients.
    assert clickhouse_query(env, "SELECT 1").strip() == "1"
    assert postgres_query(env, "SELECT current_database()") == "stir"

    again = stir(tmp_path, env, "stack", "up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already running") == 3
    assert pids(env) == started

    logs = stir(tmp_path, env, "stack", "logs", "postgres", "-n", "50")
    assert logs.returncode == 0
    assert "ready to accept connections" in logs.stdout

    down = stir(tmp_path, env, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert down.stdout.count("stopped") == 3
    assert not any(alive(pid) for pid in started.values())
    assert pids(env) == {}  # PID files removed
    # Nothing of ours keeps listening.
    for process in psutil.process_iter(["cmdline"]):
        assert env["STIR_STATE_DIR"] not in " ".join(process.info["cmdline"] or [])

    twice = stir(tmp_path, env, "stack", "down")
    assert twice.returncode == 0
    assert twice.stdout.count("not running") == 3

    after = stir(tmp_path, env, "stack", "status")
    assert after.returncode == 1  # not everything is up: scripts can test it
    assert all(row.startswith("down") for row in status_rows(after.stdout).values())


def test_data_survives_down_and_up(tmp_path: Path, stopper: Stopper) -> None:
    env = stack_env(tmp_path, STIR_S3_EMBEDDED="false")  # S3 keeps nothing across restarts
    stopper(env)
    assert stir(tmp_path, env, "stack", "up").returncode == 0

    clickhouse_query(env, "CREATE TABLE kept (id UInt32) ENGINE = MergeTree ORDER BY id")
    clickhouse_query(env, "INSERT INTO kept VALUES (1), (2), (3)")
    postgres_query(env, "CREATE TABLE kept AS SELECT generate_series(1, 5) AS id")

    assert stir(tmp_path, env, "stack", "down").returncode == 0
    up = stir(tmp_path, env, "stack", "up")
    assert up.returncode == 0, up.stdout + up.stderr

    assert clickhouse_query(env, "SELECT sum(id) FROM kept").strip() == "6"
    assert postgres_query(env, "SELECT count(*) FROM kept") == 5
    status = stir(tmp_path, env, "stack", "status")
    sizes = status_rows(status.stdout)
    assert "0 B" not in sizes["postgres"]


def test_port_in_use_is_named_with_its_setting(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    marker = Path(env["STIR_STATE_DIR"]) / "clickhouse" / "data" / "keep-me"
    marker.parent.mkdir(parents=True)
    marker.write_text("data")
    port = int(env["STIR_CLICKHOUSE_HTTP_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = stir(tmp_path, env, "stack", "up")

    assert result.returncode == 1
    assert f"port {port} is in use" in result.stderr
    assert "STIR_CLICKHOUSE_HTTP_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was started, and the data is untouched.
    assert pids(env) == {}
    assert marker.read_text() == "data"


def test_a_server_that_fails_to_start_shows_its_log(tmp_path: Path) -> None:
    dead = free_port()
    env = stack_env(
        tmp_path,
        STIR_CLICKHOUSE_EMBEDDED="false",
        STIR_CLICKHOUSE_HTTP_PORT=str(dead),
        STIR_S3_EMBEDDED="false",
        STIR_S3_ENDPOINT_URL=f"http://127.0.0.1:{dead}",
    )
    # A broken data directory: PG_VERSION present (so no initdb), the rest missing.
    data = Path(env["STIR_STATE_DIR"]) / "postgres" / "data"
    data.mkdir(parents=True, mode=0o700)
    (data / "PG_VERSION").write_text("9\n")
    result = stir(tmp_path, env, "stack", "up", "--timeout", "20")
    assert result.returncode == 1
    assert "postgres exited during start-up" in result.stderr
    # The tail of the server's own log says why.
    assert "postgresql.conf" in result.stderr
    assert pids(env) == {}
    assert (data / "PG_VERSION").read_text() == "9\n"  # data untouched


def test_two_services_on_one_port_is_a_config_error(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    env["STIR_POSTGRES_PORT"] = env["STIR_CLICKHOUSE_HTTP_PORT"]
    result = stir(tmp_path, env, "stack", "up")
    assert result.returncode == 2
    assert "STIR_CLICKHOUSE_HTTP_PORT" in result.stderr
    assert "STIR_POSTGRES_PORT" in result.stderr


def test_stale_pid_files_are_cleaned_and_never_kill_strangers(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    state = Path(env["STIR_STATE_DIR"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        for name, pid in (("clickhouse", gone.pid), ("s3", stranger.pid), ("postgres", 0)):
            (state / name).mkdir(parents=True)
            (state / name / f"{name}.pid").write_text(f"{pid}\n")

        status = stir(tmp_path, env, "stack", "status")
        assert all(row.startswith("down") for row in status_rows(status.stdout).values())
        assert pids(env) == {}  # stale files removed

        for name, pid in (("s3", stranger.pid),):
            (state / name / f"{name}.pid").write_text(f"{pid}\n")
        down = stir(tmp_path, env, "stack", "down")
        assert down.returncode == 0
        assert alive(stranger.pid)  # a recycled PID is not ours to kill
    finally:
        stranger.kill()
        stranger.wait()


def test_external_services_are_checked_never_started(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens there
    env = {
        "STIR_STATE_DIR": str(tmp_path / "state"),
        "STIR_CLICKHOUSE_EMBEDDED": "false",
        "STIR_CLICKHOUSE_HTTP_PORT": str(dead),
        "STIR_S3_EMBEDDED": "false",
        "STIR_S3_ENDPOINT_URL": f"http://127.0.0.1:{dead}",
        "STIR_POSTGRES_DSN": f"postgresql://app:pg-pass-1207@127.0.0.1:{dead}/serving",
    }
    up = stir(tmp_path, env, "stack", "up")
    assert up.returncode == 0, up.stderr
    assert up.stdout.count("not started") == 3
    assert pids(env) == {}

    status = stir(tmp_path, env, "stack", "status")
    assert status.returncode == 1
    rows = status_rows(status.stdout)
    assert all(row.startswith("external-unreachable") for row in rows.values()), rows
    assert "pg-pass-1207" not in status.stdout + status.stderr + up.stdout


def test_external_servers_that_answer_are_ok(
    tmp_path: Path,
    clickhouse: Any,  # conftest's session servers
    postgres: Any,
    s3: Any,
) -> None:
    env = {
        "STIR_STATE_DIR": str(tmp_path / "state"),
        "STIR_CLICKHOUSE_EMBEDDED": "false",
        "STIR_CLICKHOUSE_HTTP_PORT": str(clickhouse.http_port),
        **postgres.env,
        **s3.env,
    }
    status = stir(tmp_path, env, "stack", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = status_rows(status.stdout)
    assert all(row.startswith("external-ok") for row in rows.values()), rows
    # `down` leaves servers it did not start alone.
    assert stir(tmp_path, env, "stack", "down").returncode == 0
    assert postgres_query({"STIR_POSTGRES_PORT": str(postgres.port)}, "SELECT 1") == 1


def test_up_with_prefect_starts_a_prefect_server_and_down_stops_it(
    stir_env: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    stir_env.setenv("STIR_PREFECT_SERVER_PORT", str(port))
    stack = Stack(get_settings(), with_prefect=True)
    prefect = stack.service("prefect")
    try:
        outcome = prefect.up(timeout=120)
        assert outcome.ok, outcome.message
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as answer:
            assert answer.read() == b"true"
        # Once it runs, a plain Stack (no flag) knows it: commands use it, down stops it.
        assert Stack(get_settings()).prefect_api_url() == f"http://127.0.0.1:{port}/api"
        pid = prefect.running_pid()
    finally:
        prefect.down()
    assert pid is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert Stack(get_settings()).prefect_api_url() is None
