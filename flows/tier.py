"""The tier flow: take the batch window, build the tier's dbt tag, publish what happened.

One flow serves all seven deployments (`prefect.yaml`); its `tier` parameter picks the tier from
`deployments/tiers.py`, which also gives its timeout and retries.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact
from prefect.states import Completed, State

from deployments.tiers import get_tier
from flows.batch_window import WindowBusy, batch_window
from tasks.dbt import DbtBuildResult, build_selection

log = logging.getLogger("stir.tier")

SKIPPED = "Skipped"


def _summary_markdown(tier_name: str, built: DbtBuildResult) -> str:
    rows = "\n".join(f"| {status} | {count} |" for status, count in sorted(built.statuses.items()))
    return (
        f"# Tier `{tier_name}`\n\n"
        f"dbt `build --select {built.selector}`: {built.nodes} nodes in {built.seconds:.1f} s\n\n"
        f"| dbt status | nodes |\n|---|---|\n{rows}\n"
    )


@flow(name="tier", log_prints=False)
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
