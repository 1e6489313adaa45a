"""Run a dbt command inside the running flow, each dbt node a Prefect task.

prefect-dbt's `PrefectDbtRunner` turns every model, seed and test that dbt runs into a Prefect task
run of the calling flow, so the Prefect UI shows the tier's models one by one. The project, the
workspace (profile, target, logs) and what a result means live in `stir.dbt_project`.

A failing test does not raise: the result says which nodes failed and which models they block
(the tested model and everything downstream of it), so the caller can serve the rest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prefect.settings
from dbt_common.events.base_types import EventLevel
from prefect.context import SettingsContext
from prefect.settings import PREFECT_API_SSL_CERT_FILE, get_current_settings
from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

from stir import progress
from stir.connections import clickhouse
from stir.dbt_project import (
    NOT_OK,
    DbtBuildResult,
    DbtError,
    DbtWorkspace,
    NodeProblem,
    blocked_models,
    node_message,
)
from stir.domain.tiers import dbt_build_args
from stir.settings import Settings

log = logging.getLogger("stir.dbt")


def dbt_log_level() -> EventLevel:
    """dbt's log level: DBT_LOG_LEVEL, else Prefect's logging level in dbt's words.

    prefect-dbt derives it from PREFECT_LOGGING_LEVEL by lower-casing, which fails for WARNING
    and CRITICAL (dbt says "warn" and "error"): a user quieting Prefect's logs would fail
    every tier.
    """
    level = os.environ.get("DBT_LOG_LEVEL") or get_current_settings().logging.level
    level = level.lower()
    return EventLevel({"warning": "warn", "critical": "error"}.get(level, level))


def _runner_settings(workspace: DbtWorkspace) -> PrefectDbtSettings:
    settings = PrefectDbtSettings(
        project_dir=workspace.project_dir,
        profiles_dir=workspace.profiles_dir,
        log_level=dbt_log_level(),
    )
    settings.target_path = workspace.target
    return settings


_NODE_OK = {"success", "pass", "warn"}
# One public root certificate (certifi's first): for a Prefect API on plain http, see below.
_PLAIN_HTTP_CA = Path(__file__).with_name("plain_http_ca.pem")


def _for_plain_http(settings: prefect.settings.Settings) -> prefect.settings.Settings:
    """Prefect builds a TLS context, loading every root certificate of the CA bundle (~16 ms of
    CPU), for each client it makes, and each node's task makes three; half a tier's CPU at xs.
    An API on plain http (a configured `http://` URL, or none: Prefect's temporary server on
    loopback) never uses that context, so its bundle can be one certificate. Over https the
    settings stay as they are."""
    url = settings.api.url
    if url is not None and not url.startswith("http://"):
        return settings
    return settings.copy_with_update(updates={PREFECT_API_SSL_CERT_FILE: str(_PLAIN_HTTP_CA)})


class _ReportingRunner(PrefectDbtRunner):
    """prefect-dbt's runner that also reports to `stir.progress`: how many nodes the command
    runs (from dbt's first "n of N" line) and each node as it finishes.

    dbt calls its callbacks from its own node threads, which do not carry the flow's context:
    the subject (the tier) is read once, here, in the thread that starts dbt.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._subject = progress.subject()
        self._total = 0
        self._done = 0
        self._contexts: tuple[dict[str, Any], dict[str, Any]] | None = None

    def _call_task(
        self, task_state: Any, manifest_node: Any, context: dict[str, Any], enable_assets: bool
    ) -> None:
        """Each node's task thread enters the flow's context twice (prefect-dbt's tracker, then
        Prefect's task engine), and each entry validated the serialized Prefect settings again,
        re-reading profiles.toml and pyproject.toml: a third of a tier's CPU at xs. The settings
        are validated once per command here and passed on as the objects they became."""
        return super()._call_task(task_state, manifest_node, self._settled(context), enable_assets)

    def _settled(self, context: dict[str, Any]) -> dict[str, Any]:
        if self._contexts is None or self._contexts[0] is not context:
            serialized = context.get("settings_context")
            if serialized and isinstance(serialized.get("settings"), dict):
                validated = SettingsContext(**serialized)
                settled = {
                    "profile": validated.profile,
                    "settings": _for_plain_http(validated.settings),
                }
                self._contexts = (context, {**context, "settings_context": settled})
            else:
                self._contexts = (context, context)
        return self._contexts[1]

    def _create_unified_callback(self, *args: Any, **kwargs: Any) -> Callable[[Any], None]:
        route = super()._create_unified_callback(*args, **kwargs)

        def callback(event: Any) -> None:
            route(event)
            self._observe(event)

        return callback

    def _tell(self, kind: progress.Kind, count: int, ok: bool = True) -> None:
        progress.report(progress.Event(kind, self._subject, count, ok=ok))

    def _observe(self, event: Any) -> None:
        name = event.info.name
        if name == "NodeFinished":
            self._done += 1
            self._tell(progress.Kind.DBT_NODE, 1, ok=event.data.node_info.node_status in _NODE_OK)
        elif not self._total and name == "LogStartLine":
            self._total = int(event.data.total)
            self._tell(progress.Kind.DBT_TOTAL, self._total)

    def settle(self, nodes: int) -> None:
        """The command is over and ran `nodes` nodes: count those no event announced (a node
        skipped after an upstream failure finishes without a NodeFinished), so the display ends
        at n of n."""
        if nodes > self._total:
            self._tell(progress.Kind.DBT_TOTAL, nodes - self._total)
        if max(nodes, self._total) > self._done:
            self._tell(progress.Kind.DBT_NODE, max(nodes, self._total) - self._done)


def _run(args: list[str], command: str, workspace: DbtWorkspace) -> DbtBuildResult:
    # No Prefect assets per dbt node: with ~1,300 nodes, emitting an asset and its upstream
    # assets for each doubled the build's time (core at xs: 12-18 s against 8-9 s without); the
    # lineage lives in dbt's docs and exposures, and each node is still a task of the run.
    runner = _ReportingRunner(
        settings=_runner_settings(workspace), raise_on_failure=False, disable_assets=True
    )
    started = time.monotonic()
    result = runner.invoke([*args, *workspace.vars_args], log_path=str(workspace.logs))
    results = getattr(result.result, "results", None)
    runner.settle(len(results or []))
    if not result.success and not results:  # dbt did not get as far as running nodes
        raise DbtError(f"dbt {' '.join(args)} failed: {result.exception}")
    statuses = Counter(str(node.status) for node in results or [])
    problems = tuple(
        NodeProblem(node.node.unique_id, str(node.status), node_message(str(node.message or "")))
        for node in results or []
        if str(node.status) in NOT_OK
    )
    manifest_path = workspace.target / "manifest.json"
    blocked = frozenset()
    if problems:
        blocked = blocked_models(json.loads(manifest_path.read_text()), problems)
    built = DbtBuildResult(
        command, time.monotonic() - started, dict(statuses), manifest_path, problems, blocked
    )
    log.info("dbt %s: %d nodes in %.1f s %s", command, built.nodes, built.seconds, statuses)
    return built


async def build_selection(selector: str, workspace: DbtWorkspace) -> DbtBuildResult:
    """`dbt build --selector <selector>` (a selector of transform/selectors.yml) in the current
    flow run, in `workspace`; raises `DbtError` only when dbt could not run at all.

    dbt blocks, so it runs in a worker thread; the thread inherits the flow's context, which is
    how prefect-dbt attaches each node's task run to this flow run.
    """
    args = dbt_build_args(selector)
    return await asyncio.to_thread(_run, args, " ".join(args), workspace)


async def run_tests(unique_ids: list[str], workspace: DbtWorkspace) -> DbtBuildResult:
    """`dbt test` of exactly these tests (by unique id), in the current flow run."""
    names = [unique_id.split(".")[2] for unique_id in unique_ids]
    command = f"test of {len(names)} tests that read another owner's models"
    return await asyncio.to_thread(_run, ["test", "--select", *names], command, workspace)


async def models_not_built_yet(
    unique_ids: list[str], manifest: dict[str, Any], settings: Settings
) -> dict[str, list[str]]:
    """The tests among these that read a model whose relation does not exist yet, with the
    models' names: the tests not to run now.

    A test that reads another owner's model (a relationship, a reconciliation against a log) can
    only run once that owner has built it; on a new platform the tiers start in any order. Such a
    test is not a failure: it runs in this tier's first run after the owner's.
    """
    nodes = manifest["nodes"]
    reads = {
        test: [
            nodes[parent]
            for parent in nodes[test]["depends_on"]["nodes"]
            if parent.startswith("model.")
            and nodes.get(parent, {}).get("config", {}).get("materialized") != "ephemeral"
        ]
        for test in unique_ids
    }
    wanted = {(model["schema"], model["alias"]) for models in reads.values() for model in models}
    if not wanted:
        return {}
    async with clickhouse(settings) as ch:
        rows = await ch.fetch(
            "SELECT database, name FROM system.tables WHERE database IN {databases:Array(String)}",
            {"databases": sorted({database for database, _ in wanted})},
        )
    existing = {(database, name) for database, name in rows}
    awaiting = {
        test: [
            model["name"] for model in models if (model["schema"], model["alias"]) not in existing
        ]
        for test, models in reads.items()
    }
    return {test: missing for test, missing in awaiting.items() if missing}
