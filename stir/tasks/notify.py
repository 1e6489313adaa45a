"""Failure alerts to Slack: the real failure, one message per outage, never fatal.

What an alert says (`Failure`): the tier, the root cause (`root_cause`: a refused connection
reads `cannot reach PostgreSQL at host:port`, not the cleanup error that followed it), its
class, the step that failed first (the task *name*, e.g. `export-and-load`, with the run's name),
the run's link and the command that retries it (`prefect deployment run 'tier/core'`, or
`stir run core` where there is no deployment).

Folding: a tier that fails every five minutes for the same reason posts once, then stays quiet
for `REPEAT_AFTER`; the next message says how many runs failed meanwhile. The fold key is the
tier, the failing step's task name and the root error's class: never the message text, whose
addresses, ids and timings differ between repeats of one outage. The fold state is one small
Prefect Variable per key (`stir-alert-<fingerprint>`), so it cannot outgrow a Variable's 5,000
characters; creating it is the atomic decision of who posts (the API answers 409 to everyone
else), and an expired entry is taken over by whoever deletes it by id (everyone else gets 404).
It lives in Prefect, not in the serving PostgreSQL, because a PostgreSQL outage is exactly what
must fold. Entries are pruned `KEEP_FOR` after their alert. See docs/decisions.md.

Without a token the alert is logged as a warning instead; a Slack outage (or a Prefect API
error in the fold state) is logged and swallowed: an alert must never turn a run's outcome into
something else, and the token never appears in a log.

Crashes: a run that crashes before its flow is loaded (a worker that cannot find the code) runs
no hook; the automation `CRASH_AUTOMATION` (created by `stir deploy`, deployments/alerts.py)
posts those. A crash the flow's own hook sees is posted by the hook only where that automation
does not cover the run, so each crashed run alerts exactly once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sys
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from prefect import Task
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType, TaskRun
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_UI_URL
from prefect.states import State
from slack_sdk.web.async_client import AsyncWebClient

from stir.errors import ServiceUnavailable
from stir.settings import SlackSettings, get_settings
from stir.tasks.credentials import slack_with_block

log = logging.getLogger("stir.notify")

REPEAT_AFTER = 3600.0  # seconds before the same failure is posted again
# An entry outlives its window by one more, so the alert after the window can still say how
# many runs failed during it; then it is pruned.
KEEP_FOR = 2 * REPEAT_AFTER
FOLD_PREFIX = "stir-alert-"
FOLD_TAG = "stir-alert"
CRASH_AUTOMATION = "stir: alert on crashed runs"
STIR_TAG = "stir"  # the tag of every Stir deployment's runs (prefect.yaml)
TIER_FLOW = "tier"
# Task runs reach the API as events, a moment after they end: how long the hook waits for the
# failed one to be recorded before it alerts without naming the step.
STEP_WAIT_SECONDS = 5.0
_VOLATILE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f-]{27}\b|\b\d+(\.\d+)?\b")
# prefect-dbt runs every dbt node as a task of this one function; its run name says which node.
_DBT_NODE_TASK = "execute_dbt_node"
_FAILED_TYPES = [StateType.FAILED, StateType.CRASHED]
_UNFINISHED_TYPES = [StateType.PENDING, StateType.RUNNING, StateType.SCHEDULED]


# -- what failed ---------------------------------------------------------------------------


def root_cause(exc: BaseException) -> BaseException:
    """The error that started it: a tier's `first` sync error, an exception group's first leaf,
    the `__cause__` an error was raised from. A `ServiceUnavailable` is a root already (its own
    cause is the driver's unnamed `ConnectionRefusedError`)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        first = getattr(exc, "first", None)
        if isinstance(first, BaseException):
            exc = first
        elif isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        elif isinstance(exc, ServiceUnavailable) or exc.__cause__ is None:
            return exc
        else:
            exc = exc.__cause__
    return exc


@dataclass(frozen=True)
class FailedStep:
    """The task run that failed first: its task's name (`export-and-load`) and its run's name
    (`export and load public.x (run ...)`)."""

    task: str
    run: str


@dataclass(frozen=True)
class Failure:
    """What a person on call needs from one failed run."""

    tier: str
    error: str  # the root cause's text
    error_class: str = ""  # the root cause's class: part of the fold key
    step: FailedStep | None = None
    outcome: str | None = None  # the run's own summary, when it says more than the root cause
    flow_run_url: str | None = None
    retry_command: str | None = None
    crashed: bool = False

    @property
    def fingerprint(self) -> str:
        """Tier + failing step + error class: stable across the repeats of one outage."""
        kind = self.error_class
        if not kind:  # no class known: the error's first line, ids and numbers blanked
            kind = _VOLATILE.sub("#", self.error.splitlines()[0] if self.error else "")
        step = self.step.task if self.step else "-"
        return hashlib.sha256(f"{self.tier}|{step}|{kind}".encode()).hexdigest()[:16]

    def text(self, repeats: int) -> str:
        verb = "crashed" if self.crashed else "failed"
        lines = [f":rotating_light: Stir tier *{self.tier}* {verb}"]
        if repeats:
            lines[0] += f" (and {repeats} more time(s) since the last alert)"
        if self.step:
            run = f" (`{self.step.run}`)" if self.step.run != self.step.task else ""
            lines.append(f"*Failing step:* `{self.step.task}`{run}")
        kind = f"`{self.error_class}`: " if self.error_class else ""
        lines.append(f"*Error:* {kind}{self.error[:1500]}")
        if self.outcome:
            lines.append(f"*Outcome:* {self.outcome[:500]}")
        if self.flow_run_url:
            lines.append(f"*Run:* {self.flow_run_url}")
        if self.retry_command:
            lines.append(f"*Retry:* `{self.retry_command}`")
        return "\n".join(lines)


def _known_task_names() -> dict[str, str]:
    """task_key → task name of every Prefect task defined at a module's top level.

    The API keeps a task run's name and its function's key, not the task's `name=`; the tasks
    that ran in this process are in its loaded modules."""
    names: dict[str, str] = {}
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for value in list(namespace.values()):
            # type(), not isinstance(): a proxy object's __class__ may raise
            if issubclass(type(value), Task):
                names.setdefault(value.task_key, value.name)
    return names


def _step_of(run: TaskRun, names: dict[str, str]) -> FailedStep:
    task = names.get(run.task_key) or run.task_key.rsplit("-", 1)[0]
    if task == _DBT_NODE_TASK:  # every dbt node is this task: the node is the step
        task = run.name
    return FailedStep(task=task, run=run.name)


async def first_failed_step(
    client: PrefectClient, flow_run_id: UUID, wait: float = STEP_WAIT_SECONDS
) -> FailedStep | None:
    """The task run of the flow run's latest attempt that failed first (by when it ended).

    Task runs are recorded from events, so the failed one may reach the API a moment after the
    flow fails: poll until one is there, or until no task run is unfinished twice in a row
    (nothing failed in a task: the flow body did), at most `wait` seconds."""
    deadline = time.monotonic() + wait
    of_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    settled_once = False
    attempt = (await client.read_flow_run(flow_run_id)).run_count
    while True:
        failed = await client.read_task_runs(
            flow_run_filter=of_run,
            task_run_filter=TaskRunFilter(
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=_FAILED_TYPES))
            ),
        )
        # A retried flow run keeps the task runs of its earlier attempts.
        failed = [r for r in failed if r.flow_run_run_count >= attempt]
        if failed:
            first = min(failed, key=_ended_at)
            return _step_of(first, _known_task_names())
        unfinished = await client.read_task_runs(
            flow_run_filter=of_run,
            task_run_filter=TaskRunFilter(
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=_UNFINISHED_TYPES))
            ),
            limit=1,
        )
        if not unfinished and settled_once:
            return None
        settled_once = not unfinished
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.25)


def _ended_at(run: TaskRun) -> float:
    when = run.end_time or (run.state.timestamp if run.state else None)
    return when.timestamp() if when else float("inf")


async def retry_command(client: PrefectClient, flow_run: FlowRun, tier: str) -> str:
    """The deployment's run command when the run came from one (`prefect deployment run
    'tier/core'`), else `stir run <tier>`."""
    if flow_run.deployment_id is None:
        return f"stir run {tier}"
    flow_name, name = TIER_FLOW, tier
    try:
        deployment = await client.read_deployment(flow_run.deployment_id)
        name = deployment.name
        flow_name = (await client.read_flow(deployment.flow_id)).name
    except Exception as exc:  # deleted meanwhile: tier deployments are named after their tier
        log.warning("could not read the deployment of flow run %s: %s", flow_run.id, exc)
    return f"prefect deployment run '{flow_name}/{name}'"


def _run_url(flow_run: FlowRun) -> str | None:
    ui_url = PREFECT_UI_URL.value()
    return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run.id}" if ui_url else None


async def failure_of_run(
    client: PrefectClient, flow: Any, flow_run: FlowRun, state: State
) -> Failure:
    """The `Failure` of a failed or crashed flow run, from its state and the API."""
    tier = flow_run.parameters.get("tier") if flow_run.parameters else None
    tier_name = str(tier) if tier is not None else getattr(flow, "name", flow_run.name)
    try:
        result = await state.aresult(raise_on_failure=False)
    except Exception as exc:  # a persisted result that cannot be read back: the message stays
        log.warning("could not read the error of flow run %s: %s", flow_run.id, exc)
        result = None
    if isinstance(result, BaseException):
        root = root_cause(result)
        error = str(root) or type(root).__name__
        error_class = type(root).__name__
        outcome = str(result) if root is not result and str(result) else None
    else:
        error, error_class = state.message or state.name or "failed", ""
        outcome = None
    return Failure(
        tier=tier_name,
        error=error,
        error_class=error_class,
        step=await first_failed_step(client, flow_run.id),
        outcome=outcome,
        flow_run_url=_run_url(flow_run),
        retry_command=await retry_command(client, flow_run, tier_name),
        crashed=state.is_crashed(),
    )


async def _crash_automation_covers(client: PrefectClient, flow_run: FlowRun) -> bool:
    """True when this API's crash automation will post this run's crash (see module doc)."""
    if STIR_TAG not in (flow_run.tags or []):
        return False
    try:
        automations = await client.read_automations_by_name(CRASH_AUTOMATION)
    except Exception as exc:  # cannot tell: better two messages than none
        log.warning("could not read the crash automation (%s: %s)", type(exc).__name__, exc)
        return False
    return any(automation.enabled for automation in automations)


async def alert_tier_run(flow: Any, flow_run: FlowRun, state: State) -> None:
    """The tier flow's `on_failure` and `on_crashed` hook: post the run's `Failure`, folded.

    Never raises: whatever goes wrong here is logged, and the run keeps its own outcome."""
    try:
        async with get_client() as client:
            if state.is_crashed() and await _crash_automation_covers(client, flow_run):
                log.info("crash of %s: the automation %r posts it", flow_run.name, CRASH_AUTOMATION)
                return
            failure = await failure_of_run(client, flow, flow_run, state)
        await notify_failure(failure, await alert_slack_settings())
    except Exception:
        log.exception("could not send the alert for flow run %s", flow_run.id)


async def alert_slack_settings() -> SlackSettings:
    """The Slack settings with the token of STIR_SLACK_TOKEN_BLOCK's block, if it names one.

    A token block that cannot be read must not swallow the alert: it is then sent without it
    (post_message logs the alert's text as a warning when there is no token)."""
    slack = get_settings().slack
    try:
        return await slack_with_block(slack)
    except Exception as exc:  # the block's error names it and its command, never the token
        log.warning("alert token unavailable (%s: %s)", type(exc).__name__, exc)
        return slack


# -- folding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    """This process won the right to post: the fold entry it created, and the repeats of the
    window before it (to report)."""

    variable_id: UUID
    repeats: int


async def _delete_variable(client: PrefectClient, variable_id: UUID) -> bool:
    """Delete one Variable by id; False when it was already gone (someone else deleted it)."""
    try:
        await client.request("DELETE", "/variables/{id}", path_params={"id": str(variable_id)})
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 404:
            return False
        raise
    return True


async def _claim(client: PrefectClient, failure: Failure, now: float) -> _Claim | None:
    """Decide, atomically across processes, whether this alert is posted: a `_Claim` if so,
    None when it is folded into an alert posted within `REPEAT_AFTER` (counted there)."""
    name = FOLD_PREFIX + failure.fingerprint
    carried = 0
    for _ in range(5):
        current = await client.read_variable_by_name(name)
        if current is None:
            entry = {
                "sent_at": now,
                "suppressed": 0,
                "tier": failure.tier,
                "step": failure.step.task if failure.step else None,
                "error_class": failure.error_class,
            }
            try:
                created = await client.create_variable(
                    VariableCreate(name=name, value=entry, tags=[FOLD_TAG])
                )
            except ObjectAlreadyExists:
                continue  # another run posted this failure just now: fold into its alert
            return _Claim(created.id, carried)
        entry = dict(current.value) if isinstance(current.value, dict) else {}
        if now - float(entry.get("sent_at", 0)) < REPEAT_AFTER:
            entry["suppressed"] = int(entry.get("suppressed", 0)) + 1
            try:  # best effort: two runs folding at the same instant may count once
                await client.update_variable(VariableUpdate(name=name, value=entry))
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 404:
                    raise
            return None
        # Expired: whoever deletes this very entry goes on to create the next one.
        carried = int(entry.get("suppressed", 0))
        await _delete_variable(client, current.id)
    raise RuntimeError(f"the fold state {name} kept changing")


async def _prune(client: PrefectClient, now: float) -> int:
    """Delete the fold entries whose alert is older than `KEEP_FOR`; how many."""
    stale: list[UUID] = []
    offset, page = 0, 200
    while True:
        response = await client.request(
            "POST",
            "/variables/filter",
            json={"variables": {"tags": {"all_": [FOLD_TAG]}}, "limit": page, "offset": offset},
        )
        rows = response.json()
        for row in rows:
            value = row.get("value")
            sent_at = float(value.get("sent_at", 0)) if isinstance(value, dict) else 0.0
            if now - sent_at > KEEP_FOR:
                stale.append(UUID(row["id"]))
        if len(rows) < page:
            break
        offset += page
    deleted = 0
    for variable_id in stale:
        deleted += await _delete_variable(client, variable_id)
    return deleted


async def notify_failure(failure: Failure, settings: SlackSettings) -> bool:
    """Post `failure` unless the same one was posted within `REPEAT_AFTER`; True if posted.

    When the fold state cannot be reached (the Prefect API failing), the alert is posted
    anyway: a repeated message is better than a silent outage."""
    now = time.time()
    try:
        async with get_client() as client:
            claim = await _claim(client, failure, now)
    except Exception as exc:
        log.warning("alert fold state unavailable (%s: %s); posting", type(exc).__name__, exc)
        return await post_message(failure.text(0), settings)
    if claim is None:
        log.info("alert for %s suppressed (already sent within the hour)", failure.tier)
        return False

    posted = await post_message(failure.text(claim.repeats), settings)
    try:
        async with get_client() as client:
            if not posted:  # not sent: the next run of this failure tries again
                await _delete_variable(client, claim.variable_id)
            else:
                await _prune(client, now)
    except Exception as exc:
        log.warning("could not update the alert fold state (%s: %s)", type(exc).__name__, exc)
    return posted


async def clear_fold_state() -> int:
    """Forget every folded alert (the next failure of each posts at once); how many entries."""
    async with get_client() as client:
        return await _prune_all(client)


async def _prune_all(client: PrefectClient) -> int:
    deleted = 0
    while True:
        response = await client.request(
            "POST",
            "/variables/filter",
            json={"variables": {"tags": {"all_": [FOLD_TAG]}}, "limit": 200},
        )
        rows = response.json()
        if not rows:
            return deleted
        for row in rows:
            deleted += await _delete_variable(client, UUID(row["id"]))


# -- Slack ---------------------------------------------------------------------------------


async def post_message(text: str, settings: SlackSettings) -> bool:
    """Post `text` to the alert channel; False (and the text logged) when it could not."""
    if settings.token is None:
        log.warning("STIR_SLACK_TOKEN is not set; alert not sent to Slack:\n%s", text)
        return False
    client = AsyncWebClient(
        token=settings.token.get_secret_value(),
        base_url=slack_base_url(settings),
        timeout=10,
    )
    try:
        await client.chat_postMessage(channel=settings.channel, text=text)
    except Exception as exc:  # Slack down, refused or slow: never fail the run over an alert
        # The token is never in the message: slack-sdk's errors carry the response, not headers.
        log.warning("could not post the alert to Slack (%s): %s", type(exc).__name__, text)
        return False
    return True


def slack_base_url(settings: SlackSettings) -> str:
    """Slack's Web API base URL, ending in a slash (tests point it at a local recorder)."""
    base = str(settings.base_url) if settings.base_url else "https://slack.com/api/"
    return base if base.endswith("/") else base + "/"
