"""The sync of a served table as Prefect tasks: each step of `stir.serving.steps`, unchanged, as a
task of the running flow, so that the UI shows the steps and an alert names the one that failed.

The choreography itself (order, overlap, retry from the S3 checkpoint, cleanup) is
`stir.serving.sync.sync_table`; this module only hands it a step runner and the run's name, and
publishes a table's data diff (when it declares one) as an artifact of the flow run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from prefect import task
from prefect.artifacts import acreate_markdown_artifact
from prefect.context import FlowRunContext

from stir.domain.declaration import ServedTable
from stir.serving import steps
from stir.serving.diff import TableDiff
from stir.serving.gates import GateError
from stir.serving.sync import SyncSummary
from stir.serving.sync import sync_table as sync_served_table
from stir.tasks.locks import run_label

log = logging.getLogger("stir.tasks.sync")

export_to_s3 = task(name="export-to-s3", task_run_name="export {decl.table} ({run_id})")(
    steps.export_to_s3
)
export_and_load = task(
    name="export-and-load", task_run_name="export and load {decl.table} ({run_id})"
)(steps.export_and_load)
check_checkpoint = task(
    name="check-checkpoint", task_run_name="check S3 checkpoint {run_id} of {decl.ref}"
)(steps.check_checkpoint)
load_incoming = task(name="load-incoming", task_run_name="load {decl.table}")(steps.load_incoming)
load_incoming_ssh = task(name="load-incoming-ssh", task_run_name="load {decl.table} over ssh")(
    steps.load_incoming_ssh
)
enrich_incoming = task(name="enrich-incoming", task_run_name="enrich {incoming}")(
    steps.enrich_incoming
)
check_gates = task(name="check-gates", task_run_name="gates {decl.table}")(steps.check_gates)
finalize_incoming = task(name="finalize-incoming", task_run_name="index {incoming}")(
    steps.finalize_incoming
)
diff_incoming = task(name="diff-incoming", task_run_name="diff {decl.table}")(steps.diff_incoming)
swap_in = task(name="swap-in", task_run_name="swap {decl.table}")(steps.swap_in)
drop_incoming = task(name="drop-incoming", task_run_name="drop incoming tables of {table}")(
    steps.drop_incoming
)
prune_s3 = task(name="prune-s3", task_run_name="prune S3 checkpoints of {decl.ref}")(steps.prune_s3)
delete_s3_run = task(name="delete-s3-run", task_run_name="delete S3 run {run_id} of {decl.ref}")(
    steps.delete_s3_run
)
rollback_table = task(name="rollback", task_run_name="rollback {table}")(steps.rollback_table)

_TASK_OF_STEP = {
    t.fn: t
    for t in (
        export_to_s3, export_and_load, check_checkpoint, load_incoming, load_incoming_ssh,
        enrich_incoming, check_gates, finalize_incoming, diff_incoming, swap_in, drop_incoming,
        prune_s3, delete_s3_run,
    )
}  # fmt: skip


async def run_step(step: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """A step as its Prefect task inside a flow run; as the plain function outside one (a task
    called outside a flow starts a temporary API server: seconds, for the same behaviour)."""
    if FlowRunContext.get() is not None:
        return await _TASK_OF_STEP[step](*args, **kwargs)
    return await step(*args, **kwargs)


async def sync_table(decl: ServedTable, **options: Any) -> SyncSummary:
    """`stir.serving.sync.sync_table` with each step a task, its lock named after this run; the
    table's data diff, swapped or refused by its gate, becomes an artifact of the flow run."""
    try:
        summary = await sync_served_table(decl, run_step=run_step, holder=run_label(), **options)
    except GateError as refused:
        if refused.diff is not None:
            await publish_diff(refused.diff, str(refused).splitlines()[0])
        raise
    if summary.diff is not None:
        await publish_diff(summary.diff, f"swapped in (run {summary.run_id})")
    return summary


def diff_artifact_key(ref: str) -> str:
    """`diff-public-account-metrics`: an artifact key is lowercase letters, digits and dashes."""
    return "diff-" + re.sub(r"[^a-z0-9]+", "-", ref.lower()).strip("-")


async def publish_diff(diff: TableDiff, outcome: str) -> None:
    """The diff as a markdown artifact of the running flow (none outside a flow); a failure to
    publish is logged, never raised: the sync's outcome stands."""
    if FlowRunContext.get() is None:
        return
    try:
        await acreate_markdown_artifact(
            key=diff_artifact_key(diff.ref),
            markdown=f"{diff.markdown()}\n**Outcome:** {outcome}\n",
            description=f"The data diff of {diff.ref} before its swap",
        )
    except Exception:
        log.warning("could not publish the diff of %s as an artifact", diff.ref, exc_info=True)
