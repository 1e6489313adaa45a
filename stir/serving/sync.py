"""`sync_table`: one served table, ClickHouse mart → S3 → PostgreSQL, checked and swapped in.

Plain async code: each step is a function of `stir.serving.steps`, run through `run_step`, which
calls it directly (scripts, tests, the CLI) or, in a flow run, as its Prefect task
(`stir.tasks.sync` passes that runner).


export (skipped when the run's manifest already exists) → check the S3 checkpoint → load into an
incoming table → enrichment joins (when declared) → gates → keys, indexes, ANALYZE (SET LOGGED
for an enriched table) → the data diff against the live table and its gate (when declared) →
atomic swap → prune old S3 runs. Any failure before the swap leaves the live table untouched
and drops the incoming table; the run's S3 checkpoint stays, so `sync_table(decl,
run_id=<the failed run>)` retries without re-querying ClickHouse.

`diff_table` (`stir diff`) runs the same steps up to the swap, diffs, and swaps nothing: it drops
its incoming table and its S3 run.

The load's transfer is the table's `meta.serve.transfer`, else `STIR_SYNC_TRANSFER`: `stream`
(`load-incoming`: S3 → COPY FROM STDIN through asyncpg) or `ssh` (`load-incoming-ssh`: the
PostgreSQL host fetches each part over SSH and PostgreSQL COPYs it from the file).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from stir.domain.declaration import ServedTable
from stir.locks import process_label, table_lock
from stir.serving.diff import TableDiff
from stir.serving.export import ExportResult
from stir.serving.gates import GateError, GateReport, check_changed_fraction
from stir.serving.load import LoadResult
from stir.serving.manifest import Manifest
from stir.serving.naming import check_run_id, new_run_id
from stir.serving.steps import (
    check_checkpoint,
    check_gates,
    delete_s3_run,
    diff_incoming,
    drop_incoming,
    enrich_incoming,
    export_and_load,
    export_to_s3,
    finalize_incoming,
    load_incoming,
    load_incoming_ssh,
    prune_s3,
    swap_in,
)
from stir.settings import Settings, get_settings

# Runs one step: `await run_step(step, *args)`; the Prefect layer runs it as the step's task.
StepRunner = Callable[..., Awaitable[Any]]


async def call_step(step: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """Run a step as the plain function it is."""
    return await step(*args, **kwargs)


log = logging.getLogger("stir.sync")


@dataclass(frozen=True)
class PhaseStats:
    phase: str
    rows: int
    bytes: int
    seconds: float
    detail: str = ""  # e.g. the transfer of the load phase: "stream" or "ssh"


@dataclass(frozen=True)
class SyncSummary:
    ref: str  # the served table as schema.table
    run_id: str
    rows: int
    bytes: int
    reused_export: bool
    phases: tuple[PhaseStats, ...]
    gates: GateReport
    backup: str | None
    views: tuple[str, ...]
    pruned_runs: tuple[str, ...]
    seconds: float
    transfer: str = "stream"  # how the parts reached PostgreSQL: stream or ssh
    diff: TableDiff | None = None  # against the live table, when the table declares a diff

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class DiffRun:
    """What `diff_table` found: the diff, and the gates that would refuse the swap."""

    run_id: str
    diff: TableDiff
    refusals: tuple[str, ...]  # each failed gate's message (the diff gate's included)
    phases: tuple[PhaseStats, ...]
    seconds: float


async def sync_table(
    decl: ServedTable,
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
    keep_runs: int = 3,
    parallel: int = 2,
    lock_timeout_ms: int = 2000,
    swap_attempts: int = 5,
    run_step: StepRunner = call_step,
    holder: str | None = None,
) -> SyncSummary:
    """Sync one table; pass the `run_id` of a failed run to retry it from S3.

    Holds the table's lock (named after `holder`) throughout: a second sync of the same table
    (another tier, the `sync-table` deployment, a rollback) waits for this one instead of
    dropping its incoming table.
    """
    settings = settings if settings is not None else get_settings()
    dsn = settings.postgres.effective_dsn()
    async with table_lock(dsn, decl.ref, holder or process_label()):
        return await _sync_table(
            decl, settings, run_id, keep_runs, parallel, lock_timeout_ms, swap_attempts, run_step
        )


async def _sync_table(
    decl: ServedTable,
    settings: Settings,
    run_id: str | None,
    keep_runs: int,
    parallel: int,
    lock_timeout_ms: int,
    swap_attempts: int,
    run_step: StepRunner,
) -> SyncSummary:
    run_id = check_run_id(run_id) if run_id else new_run_id()
    transfer = decl.transfer or settings.sync.transfer  # the table's choice, else the default
    started = time.monotonic()
    phases: list[PhaseStats] = []
    diff = None

    try:
        exported, loaded = await _stage(
            decl, settings, run_id, transfer, parallel, run_step, phases
        )
        manifest = exported.manifest
        t0 = time.monotonic()
        report = await run_step(check_gates, decl, manifest, loaded.incoming, settings, loaded.rows)
        phases.append(PhaseStats("gates", report.rows, 0, time.monotonic() - t0))
        # The keys gate is the primary key's build, in finalize.
        seconds = await run_step(finalize_incoming, decl, loaded.incoming, settings, manifest)
        phases.append(PhaseStats("finalize", loaded.rows, 0, seconds))
        if decl.keys:
            report = replace(report, passed=(*report.passed, "keys"))
        if decl.diffs:  # after finalize: the incoming keys are unique, the table analyzed
            diff = await run_step(diff_incoming, decl, loaded.incoming, settings)
            phases.append(PhaseStats("diff", diff.new_rows, 0, diff.seconds))
            if decl.gates.max_changed_fraction is not None:
                report = replace(report, passed=(*report.passed, "max_changed_fraction"))
        swapped = await run_step(
            swap_in, decl, loaded.incoming, settings, lock_timeout_ms, swap_attempts
        )
        phases.append(PhaseStats("swap", loaded.rows, 0, swapped.seconds))
    except BaseException:
        await _drop_incoming_quietly(decl, settings, run_step)
        raise

    try:  # the table is already swapped in: an S3 hiccup here must not fail the sync
        pruned = await run_step(prune_s3, decl, keep_runs, run_id, settings)
    except Exception:
        log.warning("could not prune old S3 runs of %s", decl.ref, exc_info=True)
        pruned = []
    summary = SyncSummary(
        ref=decl.ref,
        run_id=run_id,
        rows=loaded.rows,
        bytes=manifest.bytes,
        reused_export=exported.reused,
        phases=tuple(phases),
        gates=report,
        backup=swapped.backup,
        views=swapped.views,
        pruned_runs=tuple(pruned),
        seconds=time.monotonic() - started,
        transfer=transfer,
        diff=diff,
    )
    log.info(
        "sync %s run %s: %s rows, %s bytes in %.2f s (%s rows/s); %s",
        decl.ref, run_id, f"{summary.rows:,}", f"{summary.bytes:,}", summary.seconds,
        f"{summary.rows_per_second:,.0f}",
        ", ".join(
            f"{p.phase}{f' ({p.detail})' if p.detail else ''} {p.seconds:.2f} s" for p in phases
        ),
    )  # fmt: skip
    return summary


async def _stage(
    decl: ServedTable,
    settings: Settings,
    run_id: str,
    transfer: str,
    parallel: int,
    run_step: StepRunner,
    phases: list[PhaseStats],
) -> tuple[ExportResult, LoadResult]:
    """Export, load and enrich run `run_id` into its incoming table; its phases to `phases`."""
    loaded = None
    if transfer == "stream":  # parts load while later parts are still being exported
        exported, loaded = await run_step(export_and_load, decl, run_id, settings, parallel)
    else:
        exported = await run_step(export_to_s3, decl, run_id, settings, parallel)
    manifest: Manifest = exported.manifest
    exported_ref = f"{manifest.extra.get('schema')}.{manifest.table}"
    if exported_ref != decl.ref:
        raise ValueError(f"run {run_id} is an export of {exported_ref}, not {decl.ref}")
    phases.append(PhaseStats("export", manifest.rows, manifest.bytes, exported.seconds))
    if loaded is None:  # a retry from S3, or the ssh transfer: check the run, then load it
        t0 = time.monotonic()
        await run_step(check_checkpoint, decl, run_id, settings)
        phases.append(PhaseStats("check", len(manifest.parts), 0, time.monotonic() - t0))
        load_step = load_incoming_ssh if transfer == "ssh" else load_incoming
        loaded = await run_step(load_step, decl, manifest, settings, parallel)
        detail = transfer
    else:
        detail = "stream, overlapping the export"
    phases.append(PhaseStats("load", loaded.rows, loaded.bytes, loaded.seconds, detail))
    if decl.enrich:
        seconds = await run_step(
            enrich_incoming, decl, manifest, loaded.incoming, loaded.rows, settings
        )
        phases.append(PhaseStats("enrich", loaded.rows, 0, seconds))
    return exported, loaded


async def _drop_incoming_quietly(
    decl: ServedTable, settings: Settings, run_step: StepRunner
) -> None:
    try:
        await run_step(drop_incoming, decl.table, decl.schema, settings)
    except Exception:  # the next run drops it; the original error matters more
        log.exception("could not drop the incoming table of %s", decl.ref)


async def diff_table(
    decl: ServedTable,
    *,
    settings: Settings | None = None,
    parallel: int = 2,
    run_step: StepRunner = call_step,
    holder: str | None = None,
) -> DiffRun:
    """The diff a sync of `decl` would see now, without the swap: the same export, load,
    enrichment, gates and finalize into an incoming table, the diff against the live table, then
    the incoming table and the run's S3 checkpoint are dropped. A failed gate does not stop it
    (its message is in `refusals`), but a failed keys gate does: the diff needs unique keys.

    Holds the table's lock like a sync: a sync of the table waits for it, and it for the sync.
    """
    if not decl.keys:
        raise ValueError(f"{decl.ref} declares no keys: a diff matches rows by key")
    settings = settings if settings is not None else get_settings()
    dsn = settings.postgres.effective_dsn()
    async with table_lock(dsn, decl.ref, holder or process_label()):
        run_id = new_run_id()
        transfer = decl.transfer or settings.sync.transfer
        started = time.monotonic()
        phases: list[PhaseStats] = []
        refusals: list[str] = []
        try:
            exported, loaded = await _stage(
                decl, settings, run_id, transfer, parallel, run_step, phases
            )
            manifest = exported.manifest
            t0 = time.monotonic()
            try:
                await run_step(check_gates, decl, manifest, loaded.incoming, settings, loaded.rows)
            except GateError as refused:
                refusals.append(str(refused))
            phases.append(PhaseStats("gates", loaded.rows, 0, time.monotonic() - t0))
            seconds = await run_step(finalize_incoming, decl, loaded.incoming, settings, manifest)
            phases.append(PhaseStats("finalize", loaded.rows, 0, seconds))
            diff = await run_step(diff_incoming, decl, loaded.incoming, settings, enforce=False)
            phases.append(PhaseStats("diff", diff.new_rows, 0, diff.seconds))
            try:
                check_changed_fraction(decl, diff)
            except GateError as refused:
                refusals.append(str(refused).splitlines()[0])
        finally:
            await _drop_incoming_quietly(decl, settings, run_step)
            try:
                await run_step(delete_s3_run, decl, run_id, settings)
            except Exception:  # a later sync prunes it with the table's old runs
                log.warning("could not delete S3 run %s of %s", run_id, decl.ref, exc_info=True)
    return DiffRun(run_id, diff, tuple(refusals), tuple(phases), time.monotonic() - started)
