"""Stir run the way its users run it: a real Prefect server, `stir deploy`, process workers.

    async with PrefectPlatform(tmp_path) as platform:
        await platform.deploy(env)             # `stir deploy`, then every deployment paused
        await platform.start_workers(2, env)   # `prefect worker start --pool stir --name w<i>`
        ids = await platform.run_deployments(["core", "monitoring"])
        outcomes = await platform.wait_final(ids, timeout=600)

`env` holds the STIR_* settings that point at the servers of the test or benchmark (its stack);
the caller's own STIR_* and PREFECT_* variables never reach the child processes, so a developer's
running stack or Prefect profile cannot leak in. Every process logs to a file under `root`;
`log_tails()` gives their last lines for an assertion message.

A plain module, not a conftest: tests and `bench/schedule_soak.py` import it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    LogFilter,
    LogFilterFlowRunId,
    LogFilterTextSearch,
)
from prefect.client.schemas.objects import TERMINAL_STATES, FlowRun, Log, StateType, WorkerStatus
from prefect.client.schemas.sorting import LogSort
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Scheduled, State

PROJECT_DIR = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent  # the virtualenv's `prefect` and `stir` scripts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """This process's environment without Stir's or Prefect's settings.

    A developer's PREFECT_API_URL would send workers to another server, and their STIR_* to
    their own stack; children get only what the platform and the caller set.
    """
    return {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(("STIR_", "PREFECT_"))
    }


@dataclass(frozen=True)
class RunOutcome:
    """Where one flow run ended (or stands, if it has not ended)."""

    id: UUID
    name: str
    deployment_id: UUID | None
    state_type: StateType | None
    state_name: str | None
    message: str | None
    start_time: datetime | None
    end_time: datetime | None

    @property
    def final(self) -> bool:
        return self.state_type in TERMINAL_STATES

    @property
    def seconds(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()

    @classmethod
    def of(cls, run: FlowRun) -> RunOutcome:
        state = run.state
        return cls(
            id=run.id,
            name=run.name,
            deployment_id=run.deployment_id,
            state_type=state.type if state else None,
            state_name=state.name if state else None,
            message=state.message if state else None,
            start_time=run.start_time,
            end_time=run.end_time,
        )


class PrefectPlatform:
    """A `prefect server start` of its own (SQLite under `root`), deployments and workers."""

    def __init__(
        self,
        root: Path,
        *,
        project_dir: Path = PROJECT_DIR,
        bin_dir: Path = BIN_DIR,
        port: int | None = None,
        startup_timeout: float = 120.0,
        server_env: Mapping[str, str] | None = None,
    ) -> None:
        """`server_env`: more settings of the server (e.g. PREFECT_SERVER_DATABASE_TIMEOUT). Its
        database stays SQLite unless one is given there: Prefect's PostgreSQL schema needs the
        pg_trgm extension, which the embedded PostgreSQL does not ship."""
        self.root = root
        self.server_env = dict(server_env or {})
        self.project_dir = project_dir  # the working directory of every process
        # Where `stir deploy` and the workers' `prefect` come from: this virtualenv, or an
        # installed Stir elsewhere (tests/test_installed_wheel.py).
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api"
        self.logs_dir = root / "logs"
        self.server_log = self.logs_dir / "prefect-server.log"
        self.deploy_log = self.logs_dir / "stir-deploy.log"
        self.worker_logs: list[Path] = []
        self.pool = "stir"
        self._server: asyncio.subprocess.Process | None = None
        self._workers: list[asyncio.subprocess.Process] = []
        self._client: PrefectClient | None = None
        self._deployments: dict[str, UUID] = {}  # "tier/core" -> id

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def client(self) -> PrefectClient:
        """A client of this server (not of PREFECT_API_URL: the caller may have its own)."""
        if self._client is None:
            raise RuntimeError("the platform is not started")
        return self._client

    async def start(self) -> None:
        """Start the server and wait until `GET /api/health` answers."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **clean_env(),
            "PREFECT_HOME": str(self.root / "server-home"),  # its SQLite database lives here
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_UI_ENABLED": "false",  # nobody looks at it; saves the UI build at start
            # Uvicorn's access lines for every worker poll would fill the log over a soak.
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            **self.server_env,
        }
        command = ["server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        self._server = await self._spawn(BIN_DIR / "prefect", command, env, self.server_log)
        deadline = time.monotonic() + self.startup_timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                if self._server.returncode is not None:
                    raise RuntimeError(f"prefect server exited:\n{self.log_tails()}")
                try:
                    if (await http.get(f"{self.api_url}/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no /api/health after {self.startup_timeout:.0f} s")
                await asyncio.sleep(0.5)
        self._client = PrefectClient(self.api_url)
        await self._client.__aenter__()

    async def stop(self) -> None:
        """Workers first (they would report the server gone), then the server."""
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None
        await asyncio.gather(*(_end(process) for process in self._workers))
        self._workers.clear()
        if self._server is not None:
            await _end(self._server)
            self._server = None

    # --- what users do -------------------------------------------------------------------------

    def client_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """The environment of `stir deploy` and the workers: the caller's STIR_* settings, this
        server as their Prefect API."""
        return {
            **clean_env(),
            "PREFECT_HOME": str(self.root / "client-home"),  # not the developer's ~/.prefect
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            **env,
            "PREFECT_API_URL": self.api_url,
            "STIR_PREFECT_API_URL": self.api_url,
        }

    async def deploy(self, env: Mapping[str, str]) -> list[str]:
        """Run `stir deploy`, then pause every deployment: the caller triggers the runs itself.

        Pausing also deletes the runs the scheduler has already created for them. Returns the
        deployments' full names (`tier/core`, ...).
        """
        self.pool = env.get("STIR_PREFECT_WORK_POOL", "stir")
        process = await self._spawn(
            self.bin_dir / "stir", ["deploy"], self.client_env(env), self.deploy_log
        )
        if await process.wait() != 0:
            tail = _tail(self.deploy_log, 60)
            raise RuntimeError(f"stir deploy failed (exit {process.returncode}):\n{tail}")
        flows = {flow.id: flow.name for flow in await self.client.read_flows()}
        self._deployments.clear()
        for deployment in await self.client.read_deployments():
            await self.client.pause_deployment(deployment.id)
            self._deployments[f"{flows[deployment.flow_id]}/{deployment.name}"] = deployment.id
        await self._delete_scheduler_runs()
        return sorted(self._deployments)

    async def _delete_scheduler_runs(self, quiet_reads: int = 2) -> None:
        """Delete the runs the scheduler created for the deployments, until it has stopped.

        Pausing deletes the scheduled runs that exist, but a scheduler pass that read the
        deployments just before the pause inserts its runs just after. A worker would pick such a
        run up, and the caller's own run of that deployment would then be cancelled by the
        deployment's concurrency limit ("Deployment concurrency limit reached"). So: delete what
        is there until `quiet_reads` reads a second apart find nothing.
        """
        quiet = 0
        while quiet < quiet_reads:
            runs = await self.client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=list(self._deployments.values()))
                )
            )
            for run in runs:
                await self.client.delete_flow_run(run.id)
            quiet = 0 if runs else quiet + 1
            await asyncio.sleep(1)

    async def start_workers(
        self,
        n: int,
        env: Mapping[str, str],
        timeout: float = 60,  # noqa: ASYNC109
    ) -> None:
        """Start `n` process workers on the pool and wait until the server sees them online.

        (A `timeout` argument rather than asyncio.timeout: the error then carries the logs.)
        """
        worker_env = {
            **self.client_env(env),
            # Poll often: a run created now should start within seconds, as in the tests'
            # time scale, not within the default 10-15 s.
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        }
        names = [f"w{len(self._workers) + i + 1}" for i in range(n)]
        for name in names:
            log = self.logs_dir / f"worker-{name}.log"
            command = ["worker", "start", "--pool", self.pool, "--name", name]
            worker = await self._spawn(self.bin_dir / "prefect", command, worker_env, log)
            self._workers.append(worker)
            self.worker_logs.append(log)
        deadline = time.monotonic() + timeout
        while True:
            workers = await self.client.read_workers_for_work_pool(self.pool)
            online = {w.name for w in workers if w.status == WorkerStatus.ONLINE}
            if online.issuperset(names):
                return
            if any(p.returncode is not None for p in self._workers) or time.monotonic() > deadline:
                raise RuntimeError(f"workers {names} not online:\n{self.log_tails()}")
            await asyncio.sleep(1)

    async def run_deployments(
        self,
        names: Iterable[str],
        scheduled_time: datetime | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> list[UUID]:
        """Create one flow run per deployment at once, as the scheduler does for runs due in the
        same minute; a name is `tier/core` or just `core`. `parameters` override the
        deployments' own (the ad-hoc ones need `table`). Returns their ids, in order."""
        state = Scheduled(scheduled_time=scheduled_time or datetime.now(UTC))
        deployment_ids = [await self._deployment_id(name) for name in names]
        runs = await asyncio.gather(
            *(self._create_run(id_, state, parameters) for id_ in deployment_ids)
        )
        return [run.id for run in runs]

    async def _create_run(
        self, deployment_id: UUID, state: State, parameters: Mapping[str, Any] | None
    ) -> FlowRun:
        """Create a run; a server on SQLite under load answers 503 at times, and Prefect's own
        scheduler tries again, so this does too (a few times, then the error stands)."""
        for attempt in range(5):
            try:
                return await self.client.create_flow_run_from_deployment(
                    deployment_id, state=state.model_copy(), parameters=dict(parameters or {})
                )
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code < 500 or attempt == 4:
                    raise
                await asyncio.sleep(2 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _deployment_id(self, name: str) -> UUID:
        if "/" in name:
            if name not in self._deployments:
                self._deployments[name] = (await self.client.read_deployment_by_name(name)).id
            return self._deployments[name]
        # A bare deployment name, whatever the flow's name: deployments are named after tiers.
        matches = [id_ for full, id_ in self._deployments.items() if full.split("/")[1] == name]
        if len(matches) != 1:
            raise KeyError(
                f"{len(matches)} deployments named {name!r}: {sorted(self._deployments)}"
            )
        return matches[0]

    async def read_runs(self, ids: list[UUID]) -> dict[UUID, RunOutcome]:
        """Where each run stands now."""
        outcomes: dict[UUID, RunOutcome] = {}
        for start in range(0, len(ids), 200):  # the API's page size
            chunk = ids[start : start + 200]
            runs = await self.client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=len(chunk)
            )
            outcomes.update((run.id, RunOutcome.of(run)) for run in runs)
        return outcomes

    async def completed_deployments(self) -> set[str]:
        """The deployments (by bare name: the tier) with a run that did its work: Completed, not
        Skipped (a Completed state of another name)."""
        runs = await self.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
            ),
            limit=200,
        )
        by_id = {id_: full.split("/")[1] for full, id_ in self._deployments.items()}
        return {
            by_id[run.deployment_id]
            for run in runs
            if run.deployment_id in by_id and run.state_name == "Completed"
        }

    async def wait_final(
        self,
        ids: list[UUID],
        timeout: float,  # noqa: ASYNC109 - on timeout: the unfinished runs, or them named
        *,
        raise_on_timeout: bool = True,
    ) -> dict[UUID, RunOutcome]:
        """Wait until every run is in a final state; its outcome, by id.

        After `timeout` seconds: a TimeoutError naming the unfinished runs, with the logs' tails;
        or, with raise_on_timeout=False, the outcomes as they stand (`outcome.final` False).
        """
        deadline = time.monotonic() + timeout
        while True:
            outcomes = await self.read_runs(ids)
            if len(outcomes) == len(ids) and all(o.final for o in outcomes.values()):
                return outcomes
            if time.monotonic() > deadline:
                if not raise_on_timeout:
                    return outcomes
                waiting = [f"{o.name}: {o.state_name}" for o in outcomes.values() if not o.final]
                raise TimeoutError(
                    f"runs not final after {timeout:.0f} s: {', '.join(waiting)}\n"
                    f"{self.log_tails()}"
                )
            await asyncio.sleep(1)

    async def read_logs(self, flow_run_id: UUID, text: str | None = None) -> list[Log]:
        """A flow run's log lines (oldest first), those matching the search `text` if given."""
        log_filter = LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]),
            text=LogFilterTextSearch(query=text) if text else None,
        )
        logs: list[Log] = []
        while page := await self.client.read_logs(
            log_filter, limit=200, offset=len(logs), sort=LogSort.TIMESTAMP_ASC
        ):
            logs.extend(page)
        return logs

    # --- diagnostics ---------------------------------------------------------------------------

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of every log the platform wrote, for a failure message."""
        files = [self.server_log, self.deploy_log, *self.worker_logs]
        return "\n".join(f"--- {path} ---\n{_tail(path, lines)}" for path in files if path.exists())

    async def _spawn(
        self, program: Path, args: list[str], env: dict[str, str], log: Path
    ) -> asyncio.subprocess.Process:
        with log.open("ab") as out:
            return await asyncio.create_subprocess_exec(
                str(program), *args,
                env=env, cwd=self.project_dir, stdout=out, stderr=asyncio.subprocess.STDOUT,
                # Its own process group: a worker's flow-run processes stop with it.
                start_new_session=True,
            )  # fmt: skip


async def _end(process: asyncio.subprocess.Process, grace: float = 20) -> None:
    """SIGTERM to the process's group; SIGKILL to whatever of it is left after `grace` s.

    The whole group, because a worker's flow-run processes (mid-dbt-build) outlive it otherwise.
    """
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return  # the group is gone already
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)  # anyone of the group left?
        except ProcessLookupError:
            break
        await asyncio.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
