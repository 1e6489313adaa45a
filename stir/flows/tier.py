"""The tier flow: take the tier's lock and the batch window, build the tier's dbt models, sync
its served tables.

There is one flow object per tier (`core`, `monitoring`, ... below), each carrying its tier's
timeout, retries and run name from `stir/domain/tiers.py`; `prefect.yaml`, `stir serve` and
`stir run` all use these objects, so every way of starting a tier applies the same definition.
Their flow name is `tier` (deployments are `tier/core`, ...), and their `tier` parameter is a
closed choice whose only accepted value is the object's own tier.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from prefect import Flow, flow
from prefect.artifacts import acreate_markdown_artifact
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler
from prefect.states import Completed, State

from stir import progress
from stir.dbt_project import DbtBuildResult, NodeProblem, dbt_workspace
from stir.domain.declaration import ServedTable
from stir.domain.tiers import TIERS, Tier, TierName, WindowRole, get_tier
from stir.flows.batch_window import WindowBusy, batch_window, free_window_of_crashed_run
from stir.lineage import model_docs_url, model_unique_id
from stir.locks import LockBusy, tier_lock
from stir.serving.dbt_state import publish_state
from stir.serving.privileges import needs_of_tier, require_privileges
from stir.settings import Settings, get_settings
from stir.tasks.credentials import settings_with_blocks
from stir.tasks.dbt import build_selection, models_not_built_yet, run_tests
from stir.tasks.health import HealthReport, check_health
from stir.tasks.locks import run_label
from stir.tasks.notify import alert_tier_run
from stir.tasks.shared_layer import refresh_shared_layer
from stir.tasks.sync import SyncSummary, sync_table

log = logging.getLogger("stir.tier")

SKIPPED = "Skipped"
SYNC_CONCURRENCY = 2  # tables synced at once: each export and COPY already uses the cores
RETRY_DELAY_SECONDS = 60


class TierError(RuntimeError):
    """A tier could not serve everything: failed dbt nodes (what they block was not served) or
    failed syncs (the other tables were swapped in). `first` is the first underlying error."""

    def __init__(self, message: str, first: BaseException | None = None) -> None:
        super().__init__(message)
        self.first = first


class _RunLogHandler(APILogHandler):
    """Send Stir's own log lines (`stir.*`: the window's waits, the locks, notify's warnings)
    to the Prefect run they happen in, so they show in the UI beside Prefect's; outside a run
    they stay local."""

    def emit(self, record: logging.LogRecord) -> None:
        if FlowRunContext.get() is not None or TaskRunContext.get() is not None:
            super().emit(record)


def _forward_stir_logs() -> None:
    stir_logger = logging.getLogger("stir")
    if not any(isinstance(h, _RunLogHandler) for h in stir_logger.handlers):
        stir_logger.addHandler(_RunLogHandler())
        stir_logger.setLevel(min(stir_logger.getEffectiveLevel(), logging.INFO))


_forward_stir_logs()


async def sync_tier_tables(
    tables: list[ServedTable], settings: Settings
) -> list[SyncSummary | BaseException]:
    """Sync every table, at most SYNC_CONCURRENCY at once; one failure does not stop the rest."""
    slots = asyncio.Semaphore(SYNC_CONCURRENCY)

    async def one(decl: ServedTable) -> SyncSummary:
        async with slots:
            try:
                summary = await sync_table(decl, settings=settings)
            except BaseException:
                progress.tell(progress.Kind.TABLE_SYNCED, 1, ok=False, detail=decl.ref)
                raise
            progress.tell(progress.Kind.TABLE_SYNCED, 1, detail=decl.ref)
            return summary

    progress.tell(progress.Kind.SYNC_PLANNED, len(tables), len(tables))

    return await asyncio.gather(*(one(decl) for decl in tables), return_exceptions=True)


def _summary_markdown(
    tier_name: str,
    builds: list[DbtBuildResult],
    synced: list[tuple[ServedTable, Any]],
    blocked: list[ServedTable],
    health: HealthReport | None = None,
    awaiting: dict[str, list[str]] | None = None,
    settings: Settings | None = None,
) -> str:
    # Each served table links to its model's page in the docs site (STIR_DOCS_URL): its
    # lineage from the sources, its columns, the exposures reading it.
    docs = settings or get_settings()

    def table(decl: ServedTable) -> str:
        return f"[{decl.ref}]({model_docs_url(docs, model_unique_id(decl.model))})"

    lines = [f"# Tier `{tier_name}`", ""]
    for built in builds:
        statuses = ", ".join(f"{n} {status}" for status, n in sorted(built.statuses.items()))
        lines.append(
            f"dbt `{built.command}`: {built.nodes} nodes ({statuses}) in {built.seconds:.1f} s"
        )
        lines += [f"- `{p.name}`: {p.status}: {p.message[:200]}" for p in built.failures]
    lines += [
        f"- `{test.split('.')[2]}`: not run yet: {', '.join(models)} not built by its tier yet"
        for test, models in (awaiting or {}).items()
    ]
    lines += ["", "| table | result | rows | seconds | phases (s) | gates | diff |"]
    lines.append("|---|---|---|---|---|---|---|")
    for decl, outcome in synced:
        if isinstance(outcome, BaseException):
            error = str(outcome).splitlines()[0][:200] if str(outcome) else type(outcome).__name__
            lines.append(f"| {table(decl)} | failed: {error} | | | | | |")
            continue
        phases = ", ".join(f"{p.phase} {p.seconds:.2f}" for p in outcome.phases)
        diff = outcome.diff.short if outcome.diff else ""  # only tables declaring a diff
        lines.append(
            f"| {table(decl)} | swapped (run {outcome.run_id}) | {outcome.rows:,} | "
            f"{outcome.seconds:.1f} | {phases} | {', '.join(outcome.gates.passed)} | {diff} |"
        )
    not_served = "not served: a dbt node it depends on failed"
    lines += [f"| {table(decl)} | {not_served} | | | | | |" for decl in blocked]
    if health is not None:
        lines += [
            "",
            f"Health: {health.line}",
            "",
            "| source | scrapes (1 h) | failures | rate |",
            "|---|---|---|---|",
            *(
                f"| {s.source} | {s.requests:,} | {s.failures:,} | {s.rate:.1%} |"
                for s in health.scrapes
            ),
        ]
    return "\n".join(lines) + "\n"


def _failure_message(
    problems: list[NodeProblem], blocked: list[ServedTable], failed_syncs: list[str], synced: int
) -> str:
    parts = []
    if problems:
        names = ", ".join(f"{p.name} ({p.status})" for p in problems[:5])
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        parts.append(
            f"dbt: {names}{more} failed; not served: "
            + (", ".join(sorted(decl.ref for decl in blocked)) or "no served table")
        )
    if failed_syncs:
        parts.append(
            f"{len(failed_syncs)} of {synced} served tables failed to sync: "
            + ", ".join(failed_syncs)
        )
    return "; ".join(parts)


async def run_tier(spec: Tier, settings: Settings | None = None) -> dict[str, Any] | State:
    """Run one tier now: its lock, the batch window, dbt, the syncs, a summary artifact.

    A second run of a tier while one runs, and a yielding tier that finds the daily batch window
    held, end in a Completed state named Skipped with the reason: not a failure (no alert), and
    not queued.
    """
    progress.set_subject(spec.name)
    progress.tell(progress.Kind.TIER_STARTED)
    # The secrets of the blocks the settings name, read once: every step below uses this copy.
    settings = await settings_with_blocks(settings or get_settings())
    holder = run_label()
    try:
        dsn = settings.postgres.effective_dsn()
        async with tier_lock(dsn, spec.name, holder), batch_window(spec):
            return await _build_and_serve(spec, settings, holder)
    except LockBusy as busy:
        message = f"{spec.name} is already running ({busy}); this run skips"
    except WindowBusy as busy:
        message = str(busy)
    log.info("%s", message)
    return Completed(name=SKIPPED, message=message)


async def _build_and_serve(spec: Tier, settings: Settings, holder: str) -> dict[str, Any]:
    # Before dbt: a missing GRANT fails the run now, naming it, not after the build.
    await require_privileges(settings, await needs_of_tier(spec, settings))
    with dbt_workspace(settings, name=spec.name) as workspace:
        # The daily holder runs alone in the window: it rebuilds and tests the shared staging
        # layer; the others only make sure it exists and matches the code.
        shared = await refresh_shared_layer(
            settings, workspace, holder, force=spec.window is WindowRole.HOLDER
        )
        built = await build_selection(spec.dbt_selector, workspace)
        # Production's dbt state for `stir ci`, now: the cross-owner tests below rewrite the
        # target's run results. Not publishing it costs CI a fresh comparison, never the data:
        # it is logged and noted in the artifact, and the tier goes on.
        try:
            published = await publish_state(settings, spec.name, workspace.target)
            state_note = f"dbt state: published to {published.url}"
        except Exception as exc:
            log.warning("could not publish the dbt state of %s: %s", spec.name, exc)
            published, state_note = None, f"dbt state: **not published**: {exc}"
        manifest = built.manifest()
        cross = spec.cross_owner_tests(manifest)
        awaiting = await models_not_built_yet(cross, manifest, settings)
        for test, models in awaiting.items():
            log.info("not running %s yet: %s not built yet", test, ", ".join(models))
        runnable = [test for test in cross if test not in awaiting]
        tested = await run_tests(runnable, workspace) if runnable else None
        builds = [b for b in (shared, built, tested) if b is not None]
    blocked_ids = frozenset().union(*(b.blocked for b in builds))
    problems = [p for b in builds for p in b.failures]
    nodes = manifest["nodes"]
    tables = spec.served_tables({"nodes": {k: n for k, n in nodes.items() if k not in blocked_ids}})
    blocked = spec.served_tables({"nodes": {k: n for k, n in nodes.items() if k in blocked_ids}})

    sync_started = time.monotonic()
    outcomes = await sync_tier_tables(tables, settings)
    sync_seconds = time.monotonic() - sync_started
    synced = list(zip(tables, outcomes, strict=True))
    health_started = time.monotonic()
    health = await check_health(manifest, settings) if spec.checks_health else None
    health_seconds = time.monotonic() - health_started
    await acreate_markdown_artifact(
        key=f"tier-{spec.name}",
        markdown=_summary_markdown(
            spec.name, builds, synced, blocked, health, awaiting, settings=settings
        )
        + f"\n{state_note}\n",
        description=f"What the {spec.name} tier built and served",
    )
    failed = [decl.ref for decl, outcome in synced if isinstance(outcome, BaseException)]
    if problems or failed:
        first = next((o for o in outcomes if isinstance(o, BaseException)), None)
        raise TierError(_failure_message(problems, blocked, failed, len(tables)), first)
    return {
        "tier": spec.name,
        "dbt_nodes": sum(b.nodes for b in builds),
        "dbt_seconds": sum(b.seconds for b in builds),
        "sync_seconds": sync_seconds,
        "health_seconds": health_seconds,
        "tables": {o.ref: o.rows for o in outcomes if isinstance(o, SyncSummary)},
        "alerting": list(health.alerting) if health else [],
        "dbt_state": published.url if published else None,
    }


def _run_name(spec: Tier) -> Callable[[], str]:
    """`core-2026-11-28T20:00`: the tier and the minute it was due."""

    def name() -> str:
        from prefect.runtime import flow_run

        due = flow_run.scheduled_start_time
        return f"{spec.name}-{due:%Y-%m-%dT%H:%M}"

    return name


def tier_flow(spec: Tier) -> Flow[..., Any]:
    """The flow of one tier, with its timeout, retries, run name and alerts."""

    own = TierName(spec.name)

    async def tier(tier: TierName = own) -> dict[str, Any] | State:
        if tier != spec.name:
            raise ValueError(
                f"this is the {spec.name} tier's flow; it does not run {tier}: run "
                f"`prefect deployment run 'tier/{tier}'` or `stir run {tier}`"
            )
        return await run_tier(spec)

    tier.__doc__ = f"The {spec.name} tier: {spec.description}"
    return flow(
        tier,
        name="tier",
        flow_run_name=_run_name(spec),
        timeout_seconds=spec.timeout_seconds,
        retries=spec.retries,
        retry_delay_seconds=RETRY_DELAY_SECONDS,
        persist_result=True,
        log_prints=False,
        on_failure=[alert_tier_run],
        on_crashed=[free_window_of_crashed_run, alert_tier_run],
    )


TIER_FLOWS: dict[str, Flow[..., Any]] = {spec.name: tier_flow(spec) for spec in TIERS}

# The entrypoints of the deployments (`stir.flows.tier:<tier>`, `Tier.entrypoint`), one per tier.
monitoring = TIER_FLOWS["monitoring"]
core = TIER_FLOWS["core"]
collections = TIER_FLOWS["collections"]
profile_ranking = TIER_FLOWS["profile-ranking"]
post_ranking = TIER_FLOWS["post-ranking"]
leaderboards = TIER_FLOWS["leaderboards"]
growth = TIER_FLOWS["growth"]


def flow_of(tier_name: str) -> Flow[..., Any]:
    """The flow of the tier called `tier_name` (the error lists the tiers)."""
    return TIER_FLOWS[get_tier(tier_name).name]
