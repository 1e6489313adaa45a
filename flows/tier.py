"""The tier flow: take the batch window, build the tier's dbt tag, publish what happened.

One flow serves all seven deployments (`prefect.yaml`); its `tier` parameter picks the tier from
`deployments/tiers.py`, which also gives its timeout and retries.
"""

from __future__ import annotations

import logging
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
from stir.settings import get_settings
from tasks.dbt import DbtBuildResult, build_selection
from tasks.notify import Failure, notify_failure

log = logging.getLogger("stir.tier")

SKIPPED = "Skipped"


def _summary_markdown(tier_name: str, built: DbtBuildResult) -> str:
    rows = "\n".join(f"| {status} | {count} |" for status, count in sorted(built.statuses.items()))
    return (
        f"# Tier `{tier_name}`\n\n"
        f"dbt `build --select {built.selector}`: {built.nodes} nodes in {built.seconds:.1f} s\n\n"
        f"| dbt status | nodes |\n|---|---|\n{rows}\n"
    )


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
    """Run one tier now: batch window, dbt build of its tag, summary artifact.

    A yielding tier that finds the daily batch window held ends in a Completed state named
    Skipped, with the reason: not a failure (no alert), and not queued.
    """
    spec = get_tier(tier)
    try:
        async with batch_window(spec):
            built = await build_selection(spec.dbt_selector)
            await acreate_markdown_artifact(
                key=f"tier-{spec.name}",
                markdown=_summary_markdown(spec.name, built),
                description=f"What the {spec.name} tier built",
            )
            return {"tier": spec.name, "dbt_nodes": built.nodes, "dbt_seconds": built.seconds}
    except WindowBusy as busy:
        log.info("%s", busy)
        return Completed(name=SKIPPED, message=str(busy))
