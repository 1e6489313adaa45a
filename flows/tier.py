"""The tier flow: take the batch window, build the tier's dbt tag, sync its served tables.

One flow serves all seven deployments (`prefect.yaml`); its `tier` parameter picks the tier from
`deployments/tiers.py`, which also gives its timeout and retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_UI_URL
from prefect.states import Completed, State

from deployments.tiers import get_tier
from flows.batch_window import WindowBusy, batch_window
from stir.serving.declaration import ServedTable
from stir.settings import get_settings
from tasks.dbt import DbtBuildResult, build_selection
from tasks.health import HealthReport, check_health
from tasks.notify import Failure, notify_failure
from tasks.sync import SyncSummary, sync_table

log = logging.getLogger("stir.tier")

SKIPPED = "Skipped"


SYNC_CONCURRENCY = 2  # tables synced at once: each export and COPY already uses the cores


class TierSyncError(RuntimeError):
    """Some served tables of a tier failed to sync; the others were swapped in."""


async def sync_tier_tables(tables: list[ServedTable]) -> list[SyncSummary | BaseException]:
    """Sync every table, at most SYNC_CONCURRENCY at once; one failure does not stop the rest."""
    slots = asyncio.Semaphore(SYNC_CONCURRENCY)

    async def one(decl: ServedTable) -> SyncSummary:
        async with slots:
            return await sync_table(decl)

    return await asyncio.gather(*(one(decl) for decl in tables), return_exceptions=True)


def _summary_markdown(
    tier_name: str,
    built: DbtBuildResult,
    synced: list[tuple[ServedTable, Any]],
    health: HealthReport | None = None,
) -> str:
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(built.statuses.items()))
    lines = [
        f"# Tier `{tier_name}`",
        "",
        f"dbt `build --select {built.selector}`: {built.nodes} nodes ({statuses}) "
        f"in {built.seconds:.1f} s",
        "",
        "| table | result | rows | seconds | phases (s) | gates |",
        "|---|---|---|---|---|---|",
    ]
    for decl, outcome in synced:
        if isinstance(outcome, BaseException):
            error = str(outcome).splitlines()[0][:200] if str(outcome) else type(outcome).__name__
            lines.append(f"| {decl.ref} | failed: {error} | | | | |")
            continue
        phases = ", ".join(f"{p.phase} {p.seconds:.2f}" for p in outcome.phases)
        lines.append(
            f"| {decl.ref} | swapped (run {outcome.run_id}) | {outcome.rows:,} | "
            f"{outcome.seconds:.1f} | {phases} | {', '.join(outcome.gates.passed)} |"
        )
    if health is not None:
        stale = [f for f in health.freshness if f.state == "STALE"]
        lines += [
            "",
            f"Health: {len(health.freshness)} served tables, {len(stale)} past their SLA; "
            f"alerting: {', '.join(health.alerting) or 'nothing'}"
            + (f"; recovered: {', '.join(health.recovered)}" if health.recovered else ""),
            "",
            "| source | scrapes (1 h) | failures | rate |",
            "|---|---|---|---|",
            *(
                f"| {s.source} | {s.requests:,} | {s.failures:,} | {s.rate:.1%} |"
                for s in health.scrapes
            ),
        ]
    return "\n".join(lines) + "\n"


async def alert_on_failure(flow: Any, flow_run: FlowRun, state: State) -> None:
    """Post a failed or crashed tier run to Slack: tier, run link, failing task, retry command."""
    tier_name = str(flow_run.parameters.get("tier", "?"))
    failing_task = None
    async with get_client() as client:
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        )
    failed = [run.name for run in task_runs if run.state is not None and run.state.is_failed()]
    if failed:
        failing_task = failed[0]
    ui_url = PREFECT_UI_URL.value()
    failure = Failure(
        tier=tier_name,
        error=state.message or state.name or "failed",
        flow_run_url=f"{ui_url}/runs/flow-run/{flow_run.id}" if ui_url else None,
        failing_task=failing_task,
        retry_command=f"stir run {tier_name}",
    )
    await notify_failure(failure, get_settings().slack)


@flow(
    name="tier",
    log_prints=False,
    on_failure=[alert_on_failure],
    on_crashed=[alert_on_failure],
)
async def tier(tier: str) -> dict[str, Any] | State:
    """Run one tier now: batch window, dbt build of its tag, sync of its served tables.

    A yielding tier that finds the daily batch window held ends in a Completed state named
    Skipped, with the reason: not a failure (no alert), and not queued.
    """
    spec = get_tier(tier)
    try:
        async with batch_window(spec):
            built = await build_selection(spec.dbt_selector, spec.dbt_exclude)
            tables = spec.served_tables(built.manifest())
            sync_started = time.monotonic()
            outcomes = await sync_tier_tables(tables)
            sync_seconds = time.monotonic() - sync_started
            synced = list(zip(tables, outcomes, strict=True))
            health_started = time.monotonic()
            health = await check_health(built.manifest()) if spec.checks_health else None
            health_seconds = time.monotonic() - health_started
            await acreate_markdown_artifact(
                key=f"tier-{spec.name}",
                markdown=_summary_markdown(spec.name, built, synced, health),
                description=f"What the {spec.name} tier built and served",
            )
            failed = [decl.ref for decl, outcome in synced if isinstance(outcome, BaseException)]
            if failed:
                first = next(o for o in outcomes if isinstance(o, BaseException))
                raise TierSyncError(
                    f"{len(failed)} of {len(tables)} served tables failed to sync: "
                    f"{', '.join(failed)}; first error: {first}"
                )
            return {
                "tier": spec.name,
                "dbt_nodes": built.nodes,
                "dbt_seconds": built.seconds,
                "sync_seconds": sync_seconds,
                "health_seconds": health_seconds,
                "tables": {o.table: o.rows for o in outcomes if isinstance(o, SyncSummary)},
                "alerting": list(health.alerting) if health else [],
            }
    except WindowBusy as busy:
        log.info("%s", busy)
        return Completed(name=SKIPPED, message=str(busy))
