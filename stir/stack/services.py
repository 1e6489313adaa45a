"""The embedded local stack: ClickHouse (chDB), S3 (moto) and PostgreSQL 16 on loopback.

`Stack(settings).up()` starts every embedded service in the background and returns once each
answers its health check; `down()` stops them; `status()` reports each one, including the real
servers that the settings point at instead (`STIR_CLICKHOUSE_EMBEDDED=false`,
`STIR_S3_EMBEDDED=false`, `STIR_POSTGRES_DSN=...`), which the stack never starts or stops.

Layout under `STIR_STATE_DIR` (default `.stir`): `<service>/<service>.pid`,
`<service>/<service>.log` and `<service>/data`.

Persistence: ClickHouse and PostgreSQL keep their data in `<service>/data` across down/up.
The embedded S3 (moto) keeps objects in memory only: they are gone after `down`. That is by
design: S3 only holds checkpoints, which a retry within one run re-reads, never a store
of record; the bucket itself is re-created on every `up`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from stir.settings import (
    ClickHouseSettings,
    PostgresSettings,
    S3Settings,
    Settings,
    mask_url,
)
from stir.stack import postgres as pg
from stir.stack.process import (
    ProcessFiles,
    StackConfigError,
    StackError,
    dir_size,
    locked,
    port_in_use,
    port_open,
    spawn,
    terminate,
    wait_gone,
    wait_until,
)

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
CHECK_TIMEOUT = 3.0


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when an event loop already runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without Stir's own settings (secrets among them)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("STIR_")}
    env.update(extra)
    return env


@dataclass(frozen=True)
class PortSetting:
    """A port an embedded service listens on, and the setting that changes it."""

    port: int
    env: str
    hint: str = "a free port"


@dataclass
class ServiceStatus:
    """One row of `stir stack status`."""

    name: str
    state: str  # up | unhealthy | down | external-ok | external-unreachable
    address: str
    data_bytes: int | None
    pid: int | None
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.state in ("up", "external-ok")


@dataclass
class Outcome:
    """What `up` or `down` did to one service."""

    name: str
    ok: bool
    message: str


class Service(ABC):
    """One service of the stack: embedded (we run it) or external (we only check it)."""

    name: str

    def __init__(self, settings: Settings, state_dir: Path) -> None:
        self.settings = settings
        self.files = ProcessFiles(self.name, state_dir / self.name)
        self._last_error: str | None = None

    # --- what each service defines -------------------------------------------------------

    @property
    @abstractmethod
    def embedded(self) -> bool: ...

    @property
    @abstractmethod
    def address(self) -> str:
        """Where clients reach it, safe to print (no secrets)."""

    @abstractmethod
    def ports(self) -> list[PortSetting]:
        """The loopback ports the embedded service listens on."""

    @abstractmethod
    def markers(self) -> list[str]:
        """Strings in the command line that identify our process behind a PID."""

    # The Python package the embedded service runs on; it comes with the `local` extra.
    package: str | None = None

    @abstractmethod
    def _spawn(self) -> tuple[int, int]:
        """Start the process; return its PID and the log offset of this run."""

    @abstractmethod
    def _check(self) -> None:
        """Raise if the service does not answer correctly (used by `healthy`)."""

    def _ready(self) -> None:
        """The check used while starting; by default the health check itself."""
        self._check()

    def _after_start(self) -> None:  # noqa: B027 - optional hook, most services need nothing
        """Create what clients expect (bucket, database) once the server answers."""

    def _stop(self, pid: int, timeout: float) -> None:
        terminate(pid, timeout)

    # --- shared behaviour ----------------------------------------------------------------

    def _probe(self, check: Any) -> bool:
        try:
            check()
        except Exception as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            return False
        self._last_error = None
        return True

    def healthy(self) -> bool:
        return self._probe(self._check)

    def running_pid(self) -> int | None:
        return self.files.running_pid(self.markers())

    def check_installed(self) -> None:
        """The embedded service's package is there: a worker image installs Stir without the
        embedded stack (the `local` extra), and talks to real servers instead."""
        if self.package and importlib.util.find_spec(self.package) is None:
            raise StackConfigError(
                f"the embedded {self.name} needs the `{self.package}` package, which comes with "
                f"Stir's `local` extra: pip install 'stir[local]'; or point Stir at a real server "
                f"(set {self.embedded_setting}; see README.md, Configuration)"
            )

    @property
    def embedded_setting(self) -> str:
        """The setting that turns the embedded service off."""
        if self.name == "postgres":
            return "STIR_POSTGRES_DSN=postgresql://..."  # a DSN means a real server
        return f"STIR_{self.name.upper()}_EMBEDDED=false"

    def check_ports(self) -> None:
        """Fail before starting anything when a port is taken by something that is not ours."""
        for setting in self.ports():
            if port_in_use(setting.port):
                raise StackError(
                    f"{self.name}: port {setting.port} is in use by another program; "
                    f"set {setting.env} to {setting.hint} (nothing was started, data is intact)"
                )

    def up(self, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
        if not self.embedded:
            return Outcome(self.name, True, f"external at {self.address}, not started")
        pid = self.running_pid()
        if pid is not None:
            wait_until(
                lambda: self._probe(self._check),
                timeout=timeout,
                pid=pid,
                what=f"{self.name} (already running, PID {pid}) at {self.address}",
                log=self.files.log_file,
                last_error=lambda: self._last_error,
            )
            return Outcome(self.name, True, f"already running (PID {pid}) at {self.address}")
        self.check_ports()
        started = time.monotonic()
        pid, offset = self._spawn()
        try:
            wait_until(
                lambda: self._probe(self._ready),
                timeout=timeout,
                pid=pid,
                what=self.name,
                log=self.files.log_file,
                log_offset=offset,
                last_error=lambda: self._last_error,
            )
            self._after_start()
        except BaseException:
            # Do not leave a half-started server behind; its data stays where it is.
            self._stop(pid, 10)
            self.files.pid_file.unlink(missing_ok=True)
            raise
        took = time.monotonic() - started
        return Outcome(self.name, True, f"started (PID {pid}) at {self.address} in {took:.1f}s")

    def down(self, timeout: float = 30.0) -> Outcome:
        pid = self.running_pid()
        if not self.embedded and pid is None:
            # An external server is never ours to stop. (If ours still runs because the settings
            # switched to an external one since, it is stopped below.)
            return Outcome(self.name, True, "external, left alone")
        if pid is None:
            return Outcome(self.name, True, "not running")
        self._stop(pid, timeout)
        if not wait_gone(pid, 5):
            return Outcome(self.name, False, f"PID {pid} did not exit")
        self.files.pid_file.unlink(missing_ok=True)
        return Outcome(self.name, True, f"stopped (PID {pid})")

    def status(self) -> ServiceStatus:
        if not self.embedded:
            ok = self.healthy()
            return ServiceStatus(
                self.name,
                "external-ok" if ok else "external-unreachable",
                self.address,
                None,
                None,
                "" if ok else (self._last_error or ""),
            )
        pid = self.running_pid()
        size = dir_size(self.files.data_dir)
        if pid is None:
            return ServiceStatus(self.name, "down", self.address, size, None)
        ok = self.healthy()
        return ServiceStatus(
            self.name,
            "up" if ok else "unhealthy",
            self.address,
            size,
            pid,
            "" if ok else (self._last_error or ""),
        )


def _http_get(url: str, timeout: float = CHECK_TIMEOUT) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - http(s) from settings
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class ClickHouse(Service):
    """Our chDB server (`python -m stir.stack.clickhouse`), or a real ClickHouse."""

    name = "clickhouse"
    package = "chdb"

    @property
    def cfg(self) -> ClickHouseSettings:
        return self.settings.clickhouse

    @property
    def embedded(self) -> bool:
        return self.cfg.embedded

    @property
    def address(self) -> str:
        return f"{self.cfg.http_url} (native :{self.cfg.native_port})"

    def ports(self) -> list[PortSetting]:
        return [
            PortSetting(self.cfg.http_port, "STIR_CLICKHOUSE_HTTP_PORT"),
            PortSetting(self.cfg.native_port, "STIR_CLICKHOUSE_NATIVE_PORT"),
        ]

    def markers(self) -> list[str]:
        return ["stir.stack.clickhouse", str(self.files.data_dir)]

    def _spawn(self) -> tuple[int, int]:
        command = [
            sys.executable, "-m", "stir.stack.clickhouse",
            "--data-dir", str(self.files.data_dir),
            "--host", "127.0.0.1",
            "--http-port", str(self.cfg.http_port),
            "--native-port", str(self.cfg.native_port),
            "--user", self.cfg.user,
        ]  # fmt: skip
        self.files.data_dir.mkdir(parents=True, exist_ok=True)
        # The password travels in the environment, never on the command line (`ps` shows it).
        env = child_env(STIR_CLICKHOUSE_PASSWORD=self.cfg.password.get_secret_value())
        return spawn(self.files, command, env)

    def _check(self) -> None:
        status, body = _http_get(f"{self.cfg.http_url}/ping")
        if status != 200 or body.strip() != b"Ok.":
            raise RuntimeError(f"GET /ping answered {status} {body[:80]!r}")
        if self.embedded and not port_open("127.0.0.1", self.cfg.native_port):
            raise RuntimeError(f"native port {self.cfg.native_port} is not listening")


class S3(Service):
    """moto's S3 server with the project's bucket, or real S3."""

    name = "s3"
    package = "moto"

    @property
    def cfg(self) -> S3Settings:
        return self.settings.s3

    @property
    def embedded(self) -> bool:
        return self.cfg.embedded

    @property
    def address(self) -> str:
        return f"{mask_url(self.cfg.endpoint_url)} bucket {self.cfg.bucket}"

    def ports(self) -> list[PortSetting]:
        return [
            PortSetting(
                self.cfg.port,
                "STIR_S3_ENDPOINT_URL",
                f"a URL with a free port, e.g. http://127.0.0.1:{self.cfg.port + 1}",
            )
        ]

    def markers(self) -> list[str]:
        return ["moto.server"]

    def client(self):  # type: ignore[no-untyped-def]
        import boto3  # slow import: only when S3 is used
        from botocore.config import Config

        keys = {}  # none: boto3's default credential chain (an instance role)
        if self.cfg.access_key_id is not None and self.cfg.secret_access_key is not None:
            keys = {
                "aws_access_key_id": self.cfg.access_key_id.get_secret_value(),
                "aws_secret_access_key": self.cfg.secret_access_key.get_secret_value(),
            }
        return boto3.client(
            "s3",
            endpoint_url=self.cfg.endpoint_url,
            region_name=self.cfg.region,
            **keys,
            config=Config(
                connect_timeout=CHECK_TIMEOUT,
                read_timeout=CHECK_TIMEOUT,
                retries={"max_attempts": 1},
                s3={"addressing_style": "path"},
            ),
        )

    def _spawn(self) -> tuple[int, int]:
        self.files.data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.cfg.port)]
        return spawn(self.files, command, child_env())

    def _ready(self) -> None:
        status, _ = _http_get(f"{self.cfg.endpoint_url}/moto-api/")
        if status >= 500:
            raise RuntimeError(f"moto answered {status}")

    def _after_start(self) -> None:
        client = self.client()
        try:
            client.head_bucket(Bucket=self.cfg.bucket)
        except client.exceptions.ClientError:
            extra = {}
            if self.cfg.region != "us-east-1":
                extra = {"CreateBucketConfiguration": {"LocationConstraint": self.cfg.region}}
            client.create_bucket(Bucket=self.cfg.bucket, **extra)

    def _check(self) -> None:
        self.client().head_bucket(Bucket=self.cfg.bucket)


class Postgres(Service):
    """PostgreSQL 16 from the pgserver wheel, or the server of `STIR_POSTGRES_DSN`."""

    name = "postgres"
    package = "pgserver"

    @property
    def cfg(self) -> PostgresSettings:
        return self.settings.postgres

    @property
    def embedded(self) -> bool:
        return self.cfg.embedded

    @property
    def address(self) -> str:
        return mask_url(self.cfg.effective_dsn())

    def ports(self) -> list[PortSetting]:
        return [PortSetting(self.cfg.port, "STIR_POSTGRES_PORT")]

    def markers(self) -> list[str]:
        return ["postgres", str(self.files.data_dir)]

    @property
    def socket_dir(self) -> Path:
        return self.files.dir / "run"

    def _spawn(self) -> tuple[int, int]:
        who = pg.run_as()
        self.files.dir.mkdir(parents=True, exist_ok=True)
        if who.switches:
            # The server user must reach its data directory and the wheel's binaries.
            pg.make_traversable(self.files.dir)
            pg.make_traversable(pg.bin_dir())
            if self.files.data_dir.exists() and self.files.data_dir.stat().st_uid != who.uid:
                pg.chown_tree(self.files.data_dir, who)
        pg.initdb(self.files.data_dir, self.cfg.user, who, self.files.log_file)
        pg.clear_stale_lock(self.files.data_dir)
        socket_dir = pg.socket_dir_or_none(self.socket_dir)
        if socket_dir is not None:
            socket_dir.mkdir(exist_ok=True)
            pg.chown_tree(socket_dir, who)
        command = [
            pg.binary("postgres"), "-D", str(self.files.data_dir),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"port={self.cfg.port}",
            # Too long a path for a Unix socket: TCP only, which is what clients use anyway.
            "-c", f"unix_socket_directories={socket_dir or ''}",
        ]  # fmt: skip
        return spawn(
            self.files,
            command,
            pg.server_env(),
            cwd=self.files.data_dir,
            user=who.uid,
            group=who.gid,
        )

    async def _select_one(self, dsn: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(dsn, timeout=CHECK_TIMEOUT)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    def _admin_dsn(self) -> str:
        # The `postgres` database always exists; ours may not yet.
        return f"postgresql://{self.cfg.user}@127.0.0.1:{self.cfg.port}/postgres"

    def _ready(self) -> None:
        run_async(self._select_one(self._admin_dsn()))

    def _after_start(self) -> None:
        async def create_database() -> None:
            import asyncpg

            conn = await asyncpg.connect(self._admin_dsn(), timeout=CHECK_TIMEOUT)
            try:
                exists = await conn.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", self.cfg.database
                )
                if not exists:
                    quoted = '"' + self.cfg.database.replace('"', '""') + '"'
                    await conn.execute(f"CREATE DATABASE {quoted}")
            finally:
                await conn.close()

        run_async(create_database())

    def _check(self) -> None:
        run_async(self._select_one(self.cfg.effective_dsn()))

    def _stop(self, pid: int, timeout: float) -> None:
        """`pg_ctl stop -m fast`: roll back open transactions, checkpoint, exit."""
        who = pg.run_as()
        subprocess.run(
            [
                pg.binary("pg_ctl"), "stop", "-D", str(self.files.data_dir),
                "-m", "fast", "-w", "-t", str(int(timeout)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=pg.server_env(),
            cwd=self.files.data_dir,
            check=False,
            **who.popen_kwargs(),  # type: ignore[arg-type]
        )  # fmt: skip
        # Whatever pg_ctl managed, make sure the postmaster (our PID) is gone.
        terminate(pid, 5)


class PrefectServer(Service):
    """`prefect server start` (SQLite under the state directory) for the UI and schedules.

    Optional: `stir stack up --with-prefect` starts it; once it runs, `down` and `status` include
    it, and Stir's commands use it when STIR_PREFECT_API_URL is not set.
    """

    name = "prefect"

    @property
    def embedded(self) -> bool:
        return True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.prefect.server_port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def address(self) -> str:
        return self.url

    def ports(self) -> list[PortSetting]:
        return [PortSetting(self.settings.prefect.server_port, "STIR_PREFECT_SERVER_PORT")]

    def markers(self) -> list[str]:
        return ["prefect", "server", "start"]

    def _spawn(self) -> tuple[int, int]:
        self.files.data_dir.mkdir(parents=True, exist_ok=True)
        port = str(self.settings.prefect.server_port)
        prefect = str(Path(sys.executable).parent / "prefect")
        command = [prefect, "server", "start", "--host", "127.0.0.1", "--port", port]
        env = child_env(
            PREFECT_HOME=str(self.files.data_dir),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_API_URL=self.api_url,
        )
        return spawn(self.files, command, env)

    def _check(self) -> None:
        status, body = _http_get(f"{self.api_url}/health")
        if status != 200:
            raise RuntimeError(f"GET /api/health answered {status} {body[:80]!r}")


SERVICES: tuple[type[Service], ...] = (ClickHouse, S3, Postgres)
OPTIONAL_SERVICES: tuple[type[Service], ...] = (PrefectServer,)
SERVICE_NAMES: tuple[str, ...] = tuple(cls.name for cls in SERVICES + OPTIONAL_SERVICES)


class Stack:
    """The services of the local stack under one state directory."""

    def __init__(self, settings: Settings, with_prefect: bool = False) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.expanduser().resolve()
        self.services: list[Service] = [cls(settings, self.state_dir) for cls in SERVICES]
        # Optional services take part when asked for, or while they run (so down stops them).
        for cls in OPTIONAL_SERVICES:
            service = cls(settings, self.state_dir)
            if with_prefect or service.running_pid() is not None:
                self.services.append(service)

    def prefect_api_url(self) -> str | None:
        """The API of the stack's Prefect server, when it runs."""
        for service in self.services:
            if isinstance(service, PrefectServer) and service.running_pid() is not None:
                return service.api_url
        return None

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def _preflight(self) -> None:
        """Check every port before starting anything, so a conflict starts nothing at all."""
        seen: dict[int, str] = {}
        for service in self.services:
            if not service.embedded:
                continue
            for setting in service.ports():
                if setting.port in seen:
                    raise StackConfigError(
                        f"{seen[setting.port]} and {setting.env} both use port {setting.port};"
                        " give each service its own port"
                    )
                seen[setting.port] = setting.env
        for service in self.services:
            if service.embedded and service.running_pid() is None:
                service.check_installed()
                service.check_ports()

    def up(self, timeout: float = DEFAULT_TIMEOUT) -> list[Outcome]:
        """Start every embedded service (in parallel) and wait until each is healthy."""
        with locked(self.state_dir):
            self._preflight()

            def start(service: Service) -> Outcome:
                try:
                    return service.up(timeout)
                except StackError as exc:
                    return Outcome(service.name, False, str(exc))
                except Exception as exc:
                    # Report it beside the other services' outcomes rather than lose them.
                    return Outcome(service.name, False, f"unexpected {type(exc).__name__}: {exc}")

            with ThreadPoolExecutor(max_workers=len(self.services)) as pool:
                return list(pool.map(start, self.services))

    def down(self, timeout: float = 30.0) -> list[Outcome]:
        """Stop every service we started; data stays on disk."""
        with locked(self.state_dir), ThreadPoolExecutor(len(self.services)) as pool:
            return list(pool.map(lambda s: s.down(timeout), self.services))

    def status(self) -> list[ServiceStatus]:
        with ThreadPoolExecutor(max_workers=len(self.services)) as pool:
            return list(pool.map(lambda s: s.status(), self.services))

    def log_file(self, name: str) -> Path:
        return self.service(name).files.log_file


__all__ = [
    "S3",
    "SERVICE_NAMES",
    "ClickHouse",
    "Outcome",
    "Postgres",
    "Service",
    "ServiceStatus",
    "Stack",
    "StackConfigError",
    "StackError",
    "run_async",
]
