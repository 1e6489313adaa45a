"""What `stir status` shows: is everything all right, and if not, what needs attention.

Each part is read from what already knows it, on its own and within a time limit, so a service
that is down shows as down instead of failing the rest:

- services: the stack's own status (`stir stack status`), and the Prefect API when one is
  configured (STIR_PREFECT_API_URL, the stack's Prefect server, or Prefect's own setting);
- tiers: with a Prefect API, each tier's newest flow run that started (state, start, duration)
  and the next scheduled run of its deployment `tier/<tier>`; without one, the newest sync stamp
  of its tables (the scheduler is then not configured: nothing is known of runs);
- the batch window: the session in PostgreSQL holding the holder tier's lock (`tier:<holder>`).
  The holder's run takes that lock before it announces itself in Prefect's window limits and
  lets go of it after it leaves the window, so whoever holds the lock holds the window (or is
  about to, once the fast runs in flight end). The session is named after the run, and it went
  idle the moment it took the lock: that is "since". With a Prefect API, the limits' slots say
  whether the holder still waits for fast runs;
- served tables: each one's sync stamp against its tier's SLA (`freshness_report`);
- alerts: the newest failure alert (the fold entries `stir-alert-*`) or health alert
  (`stir-health-last-alert`), and the health conditions alerting now; they live in Prefect
  Variables, so they are known only with a Prefect API.

Needs attention (`PlatformStatus.problems`, exit 1 in `stir status`): a service that is not
healthy; a part that could not be read; a tier whose newest run failed or crashed, or runs past
its timeout; the window held longer than its holder's timeout; a served table past its SLA or
never synced; a source's scrape failure rate alerting now. A held window, a skipped run, a tier
without a deployment are what normal operation looks like, and are shown, not flagged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tomllib
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from stir.domain.tiers import TIERS, Tier, WindowRole
from stir.locks import LockHolder, lock_holder, tier_lock_name
from stir.serving.freshness import (
    NEVER_SYNCED,
    STALE,
    FreshnessCounts,
    TableFreshness,
    freshness_report,
)
from stir.settings import Settings
from stir.stack.services import ServiceStatus, Stack

T = TypeVar("T")

# How long one part may take before it is reported as not answering: a stuck server must not
# hold the whole screen. dbt's parse of the project is the slowest part (a few seconds with its
# partial-parse cache, more without).
PART_TIMEOUT_SECONDS = 15.0
MANIFEST_TIMEOUT_SECONDS = 60.0
RECENT_RUNS = 10  # flow runs read per tier to find its newest one


@dataclass(frozen=True)
class RunSummary:
    """One flow run of a tier, as the Prefect API has it."""

    name: str
    state: str  # the state's name: Completed, Skipped, Failed, TimedOut, Running, ...
    state_type: str  # COMPLETED, FAILED, CRASHED, RUNNING, ...
    started_at: datetime | None
    ended_at: datetime | None
    seconds: float | None  # how long it ran (so far, while it runs)
    message: str | None

    @property
    def failed(self) -> bool:
        return self.state_type in ("FAILED", "CRASHED")


@dataclass(frozen=True)
class LastSync:
    """The newest sync of a tier's tables, from their stamps."""

    at: datetime
    run_id: str
    tables_synced: int
    tables: int


@dataclass(frozen=True)
class TierStatus:
    name: str
    schedule: str  # cron, UTC
    timeout: timedelta
    last_sync: LastSync | None
    # With a Prefect API:
    last_run: RunSummary | None = None
    deployment: str | None = None  # `tier/<name>` when registered
    paused: bool = False
    next_run_at: datetime | None = None


@dataclass(frozen=True)
class WindowStatus:
    state: str  # free | held | unknown
    holder: str | None = None  # the run (or process) holding it, as it named itself
    since: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class LastAlert:
    at: datetime
    text: str


@dataclass(frozen=True)
class AlertStatus:
    known: bool  # False: no Prefect API, where the alert state lives
    last: LastAlert | None = None
    alerting_now: tuple[str, ...] = ()  # the health conditions breached at the last check


@dataclass(frozen=True)
class PlatformStatus:
    checked_at: datetime
    services: tuple[ServiceStatus, ...]
    prefect_api: str | None
    tiers: tuple[TierStatus, ...]
    window: WindowStatus
    tables: tuple[TableFreshness, ...] | None  # None: could not be read
    alerts: AlertStatus
    problems: tuple[str, ...] = field(default=())

    @property
    def needs_attention(self) -> bool:
        return bool(self.problems)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values: times in ISO 8601 (UTC), durations (`sla`, `age`, `seconds`,
        `timeout`) in seconds; each table with its `state`, the counts beside them."""
        tables = None
        if self.tables is not None:
            items = [{**asdict(t), "state": t.state} for t in self.tables]
            tables = {**asdict(FreshnessCounts.of(self.tables)), "items": items}
        return _plain(
            {
                "checked_at": self.checked_at,
                "needs_attention": self.needs_attention,
                "problems": self.problems,
                "services": [{**asdict(s), "healthy": s.healthy} for s in self.services],
                "scheduler": {"configured": self.prefect_api is not None, "api": self.prefect_api},
                "tiers": [asdict(t) for t in self.tiers],
                "window": asdict(self.window),
                "tables": tables,
                "alerts": asdict(self.alerts),
            }
        )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


# --- gathering ----------------------------------------------------------------------------


def configured_prefect_api() -> str | None:
    """The Prefect API in effect, or None: then nothing of Prefect is read, since a client
    without one would start a temporary server of its own.

    `PREFECT_API_URL` in the environment (where `stir.cli._use_prefect_api` puts
    STIR_PREFECT_API_URL or the stack's server), else the one of Prefect's active profile. Read
    without importing Prefect, whose start-up (its plugins) would double the time of a status
    that needs none of it.
    """
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml")
    try:
        document = tomllib.loads(profiles.expanduser().read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or document.get("active")
    profile = document.get("profiles", {}).get(active, {}) if active else {}
    value = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return str(value) if value else None


async def _within(part: Awaitable[T], seconds: float, what: str) -> T:
    try:
        return await asyncio.wait_for(part, seconds)
    except TimeoutError:
        raise TimeoutError(f"{what} did not answer within {seconds:.0f} s") from None


def _error_text(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def gather_status(
    settings: Settings, prefect_api: str | None, manifest: Awaitable[dict[str, Any]]
) -> PlatformStatus:
    """Every part of the status, read at once; what cannot be read becomes a problem.

    `manifest` is dbt's parse of the project (the served tables and their tiers): the slowest
    part, so it starts first and the rest is read meanwhile.
    """
    now = datetime.now(UTC)
    problems: list[str] = []
    parsing = asyncio.ensure_future(manifest)
    services_part = asyncio.to_thread(lambda: Stack(settings).status())
    prefect_part = _prefect_health(prefect_api) if prefect_api else _nothing(None)
    services_result, prefect_row = await asyncio.gather(
        _within(services_part, PART_TIMEOUT_SECONDS, "the stack's services"),
        _within(prefect_part, PART_TIMEOUT_SECONDS, "the Prefect API"),
        return_exceptions=True,
    )
    services: list[ServiceStatus] = []
    if isinstance(services_result, BaseException):
        problems.append(f"could not read the stack's services ({_error_text(services_result)})")
    else:
        services = list(services_result)
    # The stack's own Prefect server is a row already.
    if isinstance(prefect_row, ServiceStatus) and not any(
        s.name == "prefect" and prefect_row.address == s.address for s in services
    ):
        services.append(prefect_row)
    prefect_up = isinstance(prefect_row, ServiceStatus) and prefect_row.healthy

    if _names_blocks(settings):  # the DSN may live in a block: read PostgreSQL as a run would
        from stir.tasks.credentials import settings_with_blocks

        try:
            if not prefect_up:
                raise RuntimeError("no Prefect API answers")
            settings = await _within(settings_with_blocks(settings), PART_TIMEOUT_SECONDS, "blocks")
        except Exception as exc:
            problems.append(
                f"could not read the Prefect blocks the settings name ({exc}); "
                "PostgreSQL is read with this environment's settings"
            )

    tables_part = _served_tables(settings, parsing)
    window_part = _window(settings, prefect_api if prefect_up else None)
    tiers_part = _tier_runs() if prefect_up else _nothing({})
    alerts_part = _alerts() if prefect_up else _nothing(AlertStatus(known=False))
    recheck_part = _recheck_unhealthy(settings, services)
    tables, window, runs, alerts, rechecked = await asyncio.gather(
        tables_part,
        _within(window_part, PART_TIMEOUT_SECONDS, "the batch window"),
        _within(tiers_part, PART_TIMEOUT_SECONDS, "the Prefect API's flow runs"),
        _within(alerts_part, PART_TIMEOUT_SECONDS, "the Prefect API's variables"),
        _within(recheck_part, PART_TIMEOUT_SECONDS, "the services' second check"),
        return_exceptions=True,
    )
    if not isinstance(rechecked, BaseException):
        services = rechecked
    problems += [_service_problem(s) for s in services if not s.healthy]
    if isinstance(tables, BaseException):
        problems.append(str(tables))
        tables = None
    if isinstance(window, BaseException):
        problems.append(f"could not read the batch window ({_error_text(window)})")
        window = WindowStatus("unknown", detail=_error_text(window))
    if isinstance(runs, BaseException):
        problems.append(f"could not read the tiers' runs from Prefect ({_error_text(runs)})")
        runs = {}
    if isinstance(alerts, BaseException):
        problems.append(f"could not read the alert state from Prefect ({_error_text(alerts)})")
        alerts = AlertStatus(known=False)

    tiers = tuple(_tier_status(spec, tables, runs.get(spec.name)) for spec in TIERS)
    problems += _tier_problems(tiers, now)
    problems += _window_problems(window, now)
    problems += _table_problems(tables or ())
    problems += _alert_problems(alerts)
    return PlatformStatus(
        now, tuple(services), prefect_api, tiers, window, tables, alerts, tuple(problems)
    )


class _PartError(Exception):
    """A part that could not be read; the message says which and why."""


async def _served_tables(
    settings: Settings, manifest: Awaitable[dict[str, Any]]
) -> tuple[TableFreshness, ...]:
    try:
        parsed = await _within(manifest, MANIFEST_TIMEOUT_SECONDS, "dbt's parse of the project")
    except Exception as exc:
        raise _PartError(
            f"could not read the served tables from the dbt project ({_error_text(exc)})"
        ) from exc
    try:
        report = await _within(
            freshness_report(parsed, settings), PART_TIMEOUT_SECONDS, "PostgreSQL"
        )
    except Exception as exc:
        raise _PartError(
            f"could not read the served tables' sync stamps ({_error_text(exc)})"
        ) from exc
    return tuple(report)


async def _nothing(value: T) -> T:
    return value


def _names_blocks(settings: Settings) -> bool:
    from stir.tasks.credentials import CREDENTIAL_BLOCKS

    return any(getattr(getattr(settings, b.section), b.name_field) for b in CREDENTIAL_BLOCKS)


async def _prefect_health(api_url: str) -> ServiceStatus:
    """The Prefect API as a service row: external-ok when `/health` answers."""
    address = api_url.removesuffix("/").removesuffix("/api")
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"{api_url.rstrip('/')}/health")
        ok, detail = response.status_code == 200, f"GET /health answered {response.status_code}"
    except httpx.HTTPError as exc:
        ok, detail = False, _error_text(exc)
    state = "external-ok" if ok else "external-unreachable"
    return ServiceStatus("prefect", state, address, None, None, "" if ok else detail)


async def _recheck_unhealthy(
    settings: Settings, services: list[ServiceStatus]
) -> list[ServiceStatus]:
    """The services, each one that did not answer its check asked once more: a single slow
    answer (a busy host, a server's first request) is not an outage. One that is down (no
    process of the stack's) is not asked again."""
    stack = Stack(settings)
    names = {service.name for service in stack.services}

    async def again(service: ServiceStatus) -> ServiceStatus:
        if service.healthy or service.state == "down" or service.name not in names:
            return service
        return await asyncio.to_thread(stack.service(service.name).status)

    return list(await asyncio.gather(*(again(service) for service in services)))


def _service_problem(service: ServiceStatus) -> str:
    detail = f" ({service.detail})" if service.detail else ""
    if service.state == "down":
        return f"{service.name} is down at {service.address}: start it with `stir stack up`"
    return f"{service.name} at {service.address} is {service.state}{detail}"


# --- tiers --------------------------------------------------------------------------------


async def _tier_runs() -> dict[str, tuple[RunSummary | None, Any, Any]]:
    """tier -> (its newest started run, its deployment or None, its next scheduled time)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        found = await asyncio.gather(*(_runs_of(client, spec) for spec in TIERS))
    return {spec.name: result for spec, result in zip(TIERS, found, strict=True)}


async def _runs_of(client: Any, spec: Tier) -> tuple[RunSummary | None, Any, Any]:
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterName,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import ObjectNotFound

    # Every run of a tier, from its deployment or from `stir run`, is a run of the flow `tier`
    # named `<tier>-<when it was due>` (stir.flows.tier).
    recent = await client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[spec.flow_name])),
        flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(like_=f"{spec.name}-"),
            start_time=FlowRunFilterStartTime(is_null_=False),
        ),
        sort=FlowRunSort.START_TIME_DESC,
        limit=RECENT_RUNS,
    )
    newest = next((run for run in recent if _is_run_of(run, spec)), None)
    deployment, next_at = None, None
    with contextlib.suppress(ObjectNotFound):  # not deployed: `stir run` only
        deployment = await client.read_deployment_by_name(
            f"{spec.flow_name}/{spec.deployment_name}"
        )
    if deployment is not None:
        scheduled = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=1,
        )
        if scheduled:
            next_at = scheduled[0].expected_start_time or scheduled[0].next_scheduled_start_time
    return (_summary(newest) if newest else None), deployment, next_at


def _is_run_of(run: Any, spec: Tier) -> bool:
    tier = (run.parameters or {}).get("tier")
    return run.name.startswith(f"{spec.name}-") and tier in (None, spec.name)


def _summary(run: Any) -> RunSummary:
    state = run.state
    started, ended = run.start_time, run.end_time
    if started is not None:
        end = ended or datetime.now(UTC)
        seconds: float | None = max((end - started).total_seconds(), 0.0)
    else:
        seconds = None
    return RunSummary(
        name=run.name,
        state=state.name if state else "unknown",
        state_type=state.type.value if state else "UNKNOWN",
        started_at=started,
        ended_at=ended,
        seconds=seconds,
        message=(state.message or None) if state else None,
    )


def _tier_status(
    spec: Tier,
    tables: Sequence[TableFreshness] | None,
    prefect: tuple[RunSummary | None, Any, Any] | None,
) -> TierStatus:
    mine = [t for t in tables or () if t.tier == spec.name]
    synced = [t for t in mine if t.synced_at is not None]
    newest = max(
        synced, key=lambda t: t.synced_at or datetime.min.replace(tzinfo=UTC), default=None
    )
    last_sync = (
        LastSync(newest.synced_at, newest.run_id or "", len(synced), len(mine))
        if newest is not None and newest.synced_at is not None
        else None
    )
    status = TierStatus(spec.name, spec.cron, spec.timeout, last_sync)
    if prefect is None:
        return status
    run, deployment, next_at = prefect
    return TierStatus(
        spec.name,
        spec.cron,
        spec.timeout,
        last_sync,
        last_run=run,
        deployment=f"{spec.flow_name}/{deployment.name}" if deployment is not None else None,
        paused=bool(getattr(deployment, "paused", False)),
        next_run_at=next_at,
    )


def _tier_problems(tiers: Sequence[TierStatus], now: datetime) -> list[str]:
    problems = []
    for tier in tiers:
        run = tier.last_run
        if run is None:
            continue
        if run.failed:
            message = f": {run.message.splitlines()[0][:200]}" if run.message else ""
            problems.append(
                f"tier {tier.name}: its last run {run.name} ended {run.state}{message}; "
                f"retry with `stir run {tier.name}`"
            )
        elif run.state_type == "RUNNING" and run.started_at is not None:
            running = now - run.started_at
            if running > tier.timeout:
                problems.append(
                    f"tier {tier.name}: run {run.name} has been running for "
                    f"{_duration(running)}, past its timeout of {_duration(tier.timeout)}: "
                    "its process may be gone (look at its worker)"
                )
    return problems


def _duration(value: timedelta) -> str:
    return str(value).split(".")[0]


# --- the batch window ---------------------------------------------------------------------


def holder_tier() -> Tier:
    return next(tier for tier in TIERS if tier.window is WindowRole.HOLDER)


async def _window(settings: Settings, api_url: str | None) -> WindowStatus:
    from stir.connections import postgres

    holder_spec = holder_tier()
    async with postgres(settings) as conn:
        holder: LockHolder | None = await lock_holder(conn, tier_lock_name(holder_spec.name))
    slots = await _window_slots() if api_url else None
    if holder is not None:
        detail = f"the {holder_spec.name} tier's run"
        if slots is not None:
            window_active, window_limit, pending = slots
            if window_active >= window_limit > 0:
                detail += ", alone in the window"
            elif pending:
                detail += f", waiting for {window_active} fast run(s) in flight to end"
        return WindowStatus("held", holder.label, holder.since, detail)
    if slots is not None:
        window_active, window_limit, pending = slots
        if pending or window_active >= window_limit > 0:
            return WindowStatus(
                "held",
                detail=f"Prefect's window slots are taken, but no session holds "
                f"{tier_lock_name(holder_spec.name)} in PostgreSQL: a crashed run's lease (it "
                "lapses within about 75 s), or a holder serving another PostgreSQL",
            )
        return WindowStatus("free", detail=f"{window_active} fast run(s) in flight")
    return WindowStatus("free")


async def _window_slots() -> tuple[int, int, bool]:
    """(active slots of the window, its size, whether the holder announced itself)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from stir.flows.batch_window import PENDING_LIMIT, WINDOW_LIMIT, WINDOW_SLOTS

    async with get_client() as client:
        try:
            window = await client.read_global_concurrency_limit_by_name(WINDOW_LIMIT)
            window_active, window_limit = window.active_slots, window.limit
        except ObjectNotFound:  # created by the first tier run that takes it
            window_active, window_limit = 0, WINDOW_SLOTS
        try:
            pending = (
                await client.read_global_concurrency_limit_by_name(PENDING_LIMIT)
            ).active_slots
        except ObjectNotFound:
            pending = 0
    return window_active, window_limit, pending > 0


def _window_problems(window: WindowStatus, now: datetime) -> list[str]:
    spec = holder_tier()
    if window.state != "held" or window.since is None or now - window.since <= spec.timeout:
        return []
    return [
        f"the batch window has been held by {window.holder} for {_duration(now - window.since)}, "
        f"longer than the {spec.name} tier's timeout ({_duration(spec.timeout)}): is its run "
        "stuck? Ending its PostgreSQL session frees the window"
    ]


# --- served tables ------------------------------------------------------------------------


def _table_problems(tables: Sequence[TableFreshness]) -> list[str]:
    problems = [
        f"{t.ref} ({t.tier} tier) was last synced {t.age_text} ago, past its SLA of "
        f"{_duration(t.sla)}: run `stir run {t.tier}` or look at that tier's runs"
        for t in tables
        if t.state == STALE
    ]
    for spec in TIERS:
        mine = [t for t in tables if t.tier == spec.name]
        never = [t.ref for t in mine if t.state == NEVER_SYNCED]
        if not never:
            continue
        # A tier none of whose tables was ever synced has not run: its tables need no listing.
        which = "all" if len(never) == len(mine) else f"{len(never)} of"
        listed = "" if len(never) == len(mine) else f" ({', '.join(never)})"
        problems.append(
            f"{which} {len(mine)} served tables of the {spec.name} tier never synced{listed}: "
            f"run `stir run {spec.name}`"
        )
    return problems


# --- alerts -------------------------------------------------------------------------------


async def _alerts() -> AlertStatus:
    from prefect.client.orchestration import get_client

    from stir.tasks.health import LAST_ALERT_VARIABLE, STATE_VARIABLE
    from stir.tasks.notify import FOLD_TAG

    candidates: list[LastAlert] = []
    async with get_client() as client:
        response = await client.request(
            "POST",
            "/variables/filter",
            json={"variables": {"tags": {"all_": [FOLD_TAG]}}, "limit": 200},
        )
        for row in response.json():
            value = row.get("value")
            if isinstance(value, dict) and "sent_at" in value:
                candidates.append(_failure_alert(value))
        last_health = await client.read_variable_by_name(LAST_ALERT_VARIABLE)
        if last_health is not None and isinstance(last_health.value, dict):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                at = datetime.fromisoformat(str(last_health.value["at"]))
                candidates.append(LastAlert(at, str(last_health.value.get("text", ""))))
        breached = await client.read_variable_by_name(STATE_VARIABLE)
    alerting = breached.value if breached is not None else []
    return AlertStatus(
        known=True,
        last=max(candidates, key=lambda alert: alert.at, default=None),
        alerting_now=tuple(str(key) for key in alerting) if isinstance(alerting, list) else (),
    )


def _failure_alert(entry: dict[str, Any]) -> LastAlert:
    """A fold entry (stir.tasks.notify) as the alert it stands for."""
    step = f" at step {entry['step']}" if entry.get("step") else ""
    error = f" ({entry['error_class']})" if entry.get("error_class") else ""
    repeats = int(entry.get("suppressed") or 0)
    folded = f"; {repeats} more failure(s) of it folded since" if repeats else ""
    text = f"tier {entry.get('tier', '?')} failed{step}{error}{folded}"
    return LastAlert(datetime.fromtimestamp(float(entry["sent_at"]), UTC), text)


def _alert_problems(alerts: AlertStatus) -> list[str]:
    # Freshness conditions are judged above from the stamps themselves; a source's scrape
    # failure rate is known only from the last health check.
    return [
        f"source {key.partition(':')[2]}: its scrape failure rate was over the threshold "
        "(STIR_ALERT_SCRAPE_FAILURE_RATE) at the monitoring tier's last check"
        for key in alerts.alerting_now
        if key.startswith("scrape:")
    ]
