"""Shared fixtures: real servers of the embedded stack, started on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from aiohttp import web
from prefect.variables import Variable
from pydantic import SecretStr

from stir.clickhouse import ClickHouse
from stir.settings import (
    ClickHouseSettings,
    PostgresSettings,
    PrefectSettings,
    S3Settings,
    Settings,
    SlackSettings,
    StackSettings,
)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# pytest-xdist's workers set COLUMNS=80: the `stir` processes the tests start would wrap their
# piped output there, unlike a user's pipe. No terminal size, as in a script.
for _size in ("COLUMNS", "LINES"):
    os.environ.pop(_size, None)


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


def launch_clickhouse(
    data_dir: Path,
    http_port: int,
    native_port: int,
    password: str = "",
    config_file: Path | None = None,
) -> subprocess.Popen:
    """Start a server process without waiting for it (`config_file`: more ClickHouse
    configuration, e.g. a cluster's remote_servers)."""
    log = data_dir.parent / f"{data_dir.name}.log"
    env = {**os.environ, "STIR_CLICKHOUSE_PASSWORD": password}
    config = ["--config-file", str(config_file)] if config_file else []
    return subprocess.Popen(
        [
            sys.executable, "-m", "stir.stack.clickhouse",
            "--data-dir", str(data_dir),
            "--http-port", str(http_port),
            "--native-port", str(native_port),
            *config,
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )  # fmt: skip


def start_clickhouse(
    data_dir: Path,
    password: str = "",
    http_port: int = 0,
    native_port: int = 0,
    config_file: Path | None = None,
) -> ClickHouseServer:
    """Start a server; ports default to free ones (pass them to restart on the same ports)."""
    http_port, native_port = http_port or free_port(), native_port or free_port()
    process = launch_clickhouse(data_dir, http_port, native_port, password, config_file)
    log = data_dir.parent / f"{data_dir.name}.log"
    wait_for_port(http_port, process, log)
    wait_for_port(native_port, process, log)  # the native listener starts after the HTTP one
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


# --- the stack's PostgreSQL and S3, started through `stir.stack` (owned by the stack module) ---


def isolated_stir_env(cwd: Path, **values: str) -> pytest.MonkeyPatch:
    """A MonkeyPatch whose environment has no STIR_* variable but `values`, run from `cwd`.

    A developer's own settings (a running stack on the default ports, a DSN in their shell, a
    .env in the repository) must not leak into tests. `undo()` it when done.
    """
    patch = pytest.MonkeyPatch()
    for key in list(os.environ):
        if key.upper().startswith("STIR_"):
            patch.delenv(key)
    for key, value in values.items():
        patch.setenv(key, value)
    patch.chdir(cwd)  # no stray .env file
    return patch


@dataclass
class PostgresService:
    """The embedded PostgreSQL 16, started by the stack module on a free port."""

    dsn: str
    port: int
    state_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """The settings that point Stir at this server."""
        return {"STIR_POSTGRES_DSN": self.dsn}


@dataclass
class S3Service:
    """The embedded S3 (moto) with its bucket, started by the stack module on a free port."""

    endpoint_url: str
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str
    state_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """The settings that point Stir at this server (as an external one)."""
        return {
            "STIR_S3_ENDPOINT_URL": self.endpoint_url,
            "STIR_S3_BUCKET": self.bucket,
            "STIR_S3_REGION": self.region,
            "STIR_S3_ACCESS_KEY_ID": self.access_key_id,
            "STIR_S3_SECRET_ACCESS_KEY": self.secret_access_key,
            "STIR_S3_EMBEDDED": "false",
        }


def _stack_service(state_dir: Path, name: str, **env: str):
    """Settings from `env` alone, and the stack's service `name` under `state_dir`."""
    from stir.settings import get_settings
    from stir.stack.services import Stack

    patch = isolated_stir_env(state_dir, STIR_STATE_DIR=str(state_dir), **env)
    try:
        settings = get_settings()
    finally:
        patch.undo()
    return settings, Stack(settings).service(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresService]:
    """One embedded PostgreSQL (database `stir`, user `stir`, trust on loopback) per session.

    Its data lives outside pytest's temporary root: run as root, the server runs as a user of its
    own, and another pytest session on the machine resets that root to mode 700, after which the
    server can no longer reach its data and panics.
    """
    state_dir = Path(tempfile.mkdtemp(prefix="stir-test-postgres-"))
    state_dir.chmod(0o755)
    port = free_port()
    settings, service = _stack_service(state_dir, "postgres", STIR_POSTGRES_PORT=str(port))
    outcome = service.up(timeout=60)
    assert outcome.ok, outcome.message
    yield PostgresService(settings.postgres.effective_dsn(), port, state_dir)
    service.down()
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Service]:
    """One embedded S3 server (moto) with the bucket `stir-staging` per session."""
    state_dir = tmp_path_factory.mktemp("stack-s3")
    endpoint = f"http://127.0.0.1:{free_port()}"
    settings, service = _stack_service(state_dir, "s3", STIR_S3_ENDPOINT_URL=endpoint)
    outcome = service.up(timeout=60)
    assert outcome.ok, outcome.message
    cfg = settings.s3
    yield S3Service(
        endpoint_url=cfg.endpoint_url,
        bucket=cfg.bucket,
        region=cfg.region,
        access_key_id=cfg.access_key_id.get_secret_value(),
        secret_access_key=cfg.secret_access_key.get_secret_value(),
        state_dir=state_dir,
    )
    service.down()


@pytest.fixture
def stir_env(tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No STIR_* variable set and an empty temporary current directory; set more with it."""
    patch = isolated_stir_env(tmp_path)
    yield patch
    patch.undo()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real, temporary Prefect API (SQLite) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


async def databases_of_their_own(
    clickhouse: ClickHouseServer, postgres: PostgresService, name: str
) -> str:
    """A ClickHouse database and a fresh PostgreSQL database called `name`, for a module that
    serves data the session's other modules must not see; returns the PostgreSQL DSN."""
    import httpx

    auth = ("default", clickhouse.password) if clickhouse.password else None
    async with httpx.AsyncClient(auth=auth) as http:
        created = await http.post(clickhouse.http_url, content=f"CREATE DATABASE {name}")
        created.raise_for_status()
    conn = await asyncpg.connect(postgres.dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return postgres.dsn.rsplit("/", 1)[0] + f"/{name}"


async def incoming_tables(pg: asyncpg.Connection, table: str) -> list[str]:
    """The incoming tables of `table` in PostgreSQL (a run's, before its swap or once it failed)."""
    from stir.serving.naming import incoming_prefix

    rows = await pg.fetch(
        "SELECT relname FROM pg_class WHERE left(relname, length($1)) = $1",
        incoming_prefix(table),
    )
    return [r[0] for r in rows]


@contextlib.asynccontextmanager
async def window_held() -> AsyncIterator[None]:
    """The daily batch window held by its holder tier in the background, for the body."""
    from stir.domain.tiers import TIERS, WindowRole
    from stir.flows.batch_window import batch_window

    holder = next(tier for tier in TIERS if tier.window is WindowRole.HOLDER)
    release = asyncio.Event()

    async def hold() -> None:
        async with batch_window(holder):
            await release.wait()

    holding = asyncio.create_task(hold())
    await asyncio.sleep(1.0)  # the holder has the window before the body starts
    try:
        yield
    finally:
        release.set()
        await holding


def settings_for_servers(
    clickhouse: ClickHouseServer, s3: S3Service, postgres: PostgresService, s3_prefix: str
) -> Settings:
    """Stir's settings pointing at the session's servers, with an S3 prefix of the caller's."""
    return Settings(
        clickhouse=ClickHouseSettings(
            host=clickhouse.host, native_port=clickhouse.native_port,
            http_port=clickhouse.http_port,
        ),
        s3=S3Settings(
            endpoint_url=s3.endpoint_url, bucket=s3.bucket, region=s3.region,
            access_key_id=SecretStr(s3.access_key_id),
            secret_access_key=SecretStr(s3.secret_access_key),
            prefix=s3_prefix, embedded=False,
        ),
        postgres=PostgresSettings(dsn=SecretStr(postgres.dsn)),
        slack=SlackSettings(),
        prefect=PrefectSettings(),
        stack=StackSettings(),
    )  # fmt: skip


SLACK_TOKEN = "xoxb-test-token-not-real"


@dataclass
class SlackRecorder:
    url: str
    messages: list[dict] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    fail: bool = False

    @property
    def texts(self) -> list[str]:
        return [message["text"] for message in self.messages]


async def start_slack_recorder() -> tuple[SlackRecorder, web.AppRunner]:
    """A Slack Web API stand-in on loopback (the only fake: Slack is a SaaS we cannot run);
    stop it with the runner's `cleanup()`."""
    port = free_port()
    recorder = SlackRecorder(url=f"http://127.0.0.1:{port}/api/")

    async def post_message(request: web.Request) -> web.Response:
        if recorder.fail:
            return web.Response(status=503, text="down")
        recorder.auth_headers.append(request.headers.get("Authorization", ""))
        form = await request.post() if request.content_type != "application/json" else None
        recorder.messages.append(dict(form) if form is not None else await request.json())
        return web.json_response({"ok": True, "channel": "C1", "ts": "1.0"})

    app = web.Application()
    app.router.add_post("/api/chat.postMessage", post_message)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return recorder, runner


@pytest.fixture
async def slack(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SlackRecorder]:
    """The Slack stand-in; the settings point slack-sdk at it, and the alert state (fold
    entries, health Variable) starts empty."""
    from stir.tasks import health, notify

    recorder, runner = await start_slack_recorder()
    monkeypatch.setenv("STIR_SLACK_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("STIR_SLACK_BASE_URL", recorder.url)
    await notify.clear_fold_state()
    await Variable.aunset(health.STATE_VARIABLE)
    yield recorder
    await runner.cleanup()


# What the sync tests share; each module's own `settings` fixture says which servers.
@pytest.fixture
async def ch(settings: Settings) -> AsyncIterator[ClickHouse]:
    async with ClickHouse(settings.clickhouse) as client:
        yield client


@pytest.fixture
async def pg(postgres: PostgresService) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(postgres.dsn)
    yield conn
    await conn.close()


def s3_boto(settings: Settings) -> Any:
    """A plain boto3 client of the test's S3, to look at or tamper with what a sync wrote."""
    return boto3.client(
        "s3",
        endpoint_url=settings.s3.endpoint_url,
        region_name=settings.s3.region,
        aws_access_key_id=settings.s3.access_key_id.get_secret_value(),
        aws_secret_access_key=settings.s3.secret_access_key.get_secret_value(),
    )


# The modules that take minutes, slowest first (figures of a 2-core run, BENCHMARKS.md aside):
# with pytest-xdist's `loadfile`, modules go to workers in collection order, so starting these
# first keeps one long module from running alone at the end.
SLOWEST_MODULES = (
    "test_tiers_on_workers.py",
    "test_installed_wheel.py",
    "test_tiers_end_to_end.py",
    "test_dbt_project.py",
    "test_external_servers.py",
    "test_status.py",
    "test_deployments.py",
    "test_notify.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOWEST_MODULES.index(name) if name in SLOWEST_MODULES else len(SLOWEST_MODULES)

    items.sort(key=rank)  # stable: the order inside a module is kept
