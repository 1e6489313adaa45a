"""The sync of a served table as Prefect tasks: each step of `stir.serving.steps`, unchanged, as a
task of the running flow, so that the UI shows the steps and an alert names the one that failed.

The choreography itself (order, overlap, retry from the S3 checkpoint, cleanup) is
`stir.serving.sync.sync_table`; this module only hands it a step runner and the run's name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prefect import task
from prefect.context import FlowRunContext

from stir.domain.declaration import ServedTable
from stir.serving import steps
from stir.serving.sync import SyncSummary
from stir.serving.sync import sync_table as sync_served_table
from stir.tasks.locks import run_label

export_to_s3 = task(name="export-to-s3", task_run_name="export {decl.table} ({run_id})")(
    steps.export_to_s3
)
export_and_load = task(
    name="export-and-load", task_run_name="export and load {decl.table} ({run_id})"
)(steps.export_and_load)
check_staging = task(name="check-staging", task_run_name="check S3 run {run_id} of {table}")(
    steps.check_staging
)
load_staging = task(name="load-staging", task_run_name="load {decl.table}")(steps.load_staging)
load_staging_ssh = task(name="load-staging-ssh", task_run_name="load {decl.table} over ssh")(
    steps.load_staging_ssh
)
enrich_staging = task(name="enrich-staging", task_run_name="enrich {staging}")(steps.enrich_staging)
check_gates = task(name="check-gates", task_run_name="gates {decl.table}")(steps.check_gates)
finalize_staging = task(name="finalize-staging", task_run_name="index {staging}")(
    steps.finalize_staging
)
swap_in = task(name="swap-in", task_run_name="swap {decl.table}")(steps.swap_in)
drop_staging = task(name="drop-staging", task_run_name="drop staging of {table}")(
    steps.drop_staging
)
prune_s3 = task(name="prune-s3", task_run_name="prune S3 runs of {table}")(steps.prune_s3)
rollback_table = task(name="rollback", task_run_name="rollback {table}")(steps.rollback_table)

_TASK_OF_STEP = {
    t.fn: t
    for t in (
        export_to_s3, export_and_load, check_staging, load_staging, load_staging_ssh,
        enrich_staging, check_gates, finalize_staging, swap_in, drop_staging, prune_s3,
    )
}  # fmt: skip


async def run_step(step: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """A step as its Prefect task inside a flow run; as the plain function outside one (a task
    called outside a flow starts a temporary API server: seconds, for the same behaviour)."""
    if FlowRunContext.get() is not None:
        return await _TASK_OF_STEP[step](*args, **kwargs)
    return await step(*args, **kwargs)


async def sync_table(decl: ServedTable, **options: Any) -> SyncSummary:
    """`stir.serving.sync.sync_table` with each step a task, its lock named after this run."""
    return await sync_served_table(decl, run_step=run_step, holder=run_label(), **options)
