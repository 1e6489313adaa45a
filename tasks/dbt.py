"""Build a dbt selection (a tier's tag) inside the running flow, each dbt node a Prefect task.

prefect-dbt's `PrefectDbtRunner` turns every model, seed and test that dbt runs into a Prefect task
run of the calling flow, so the Prefect UI shows the tier's models one by one, and a failing model
or test fails the flow (`raise_on_failure`). dbt reads its connection from `transform/profiles.yml`,
which takes the same STIR_CLICKHOUSE_* settings as the rest of Stir.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dbt_common.events.base_types import EventLevel
from prefect.settings import get_current_settings
from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

log = logging.getLogger("stir.dbt")

TRANSFORM_DIR = Path(__file__).resolve().parent.parent / "transform"


@dataclass(frozen=True)
class DbtBuildResult:
    selector: str
    seconds: float
    statuses: dict[str, int] = field(default_factory=dict)  # dbt status -> node count
    manifest_path: Path | None = None  # dbt's manifest.json of this build

    def manifest(self) -> dict:
        """The dbt manifest (models, their tags and `meta.serve` declarations)."""
        if self.manifest_path is None or not self.manifest_path.exists():
            raise FileNotFoundError(f"dbt wrote no manifest for `build --select {self.selector}`")
        return json.loads(self.manifest_path.read_text())

    @property
    def nodes(self) -> int:
        return sum(self.statuses.values())


def _dbt_log_level() -> EventLevel:
    """dbt's log level: DBT_LOG_LEVEL, else Prefect's logging level in dbt's words.

    prefect-dbt derives it from PREFECT_LOGGING_LEVEL by lower-casing, which fails for WARNING
    and CRITICAL (dbt says "warn" and "error"): a user quieting Prefect's logs would fail
    every tier.
    """
    level = os.environ.get("DBT_LOG_LEVEL") or get_current_settings().logging.level
    level = level.lower()
    return EventLevel({"warning": "warn", "critical": "error"}.get(level, level))


def dbt_settings(project_dir: Path, target_path: Path | None) -> PrefectDbtSettings:
    settings = PrefectDbtSettings(
        project_dir=project_dir, profiles_dir=project_dir, log_level=_dbt_log_level()
    )
    if target_path is not None:
        settings.target_path = target_path
    return settings


def _build(
    selector: str, exclude: str | None, project_dir: Path, target_path: Path | None
) -> DbtBuildResult:
    settings = dbt_settings(project_dir, target_path)
    target = settings.target_path
    target = target if target.is_absolute() else project_dir / target
    # No Prefect assets per dbt node: with ~1,300 nodes, emitting an asset and its upstream
    # assets for each doubled the build's time (core at xs: 12-18 s against 8-9 s without); the
    # lineage lives in dbt's docs and exposures, and each node is still a task of the run.
    runner = PrefectDbtRunner(settings=settings, raise_on_failure=True, disable_assets=True)
    started = time.monotonic()
    # cautious: a test runs only when every model it reads is built in this run (a relationship
    # test into a model of no tier, or of another tier, would read a table that may not exist).
    args = ["build", "--select", selector, "--indirect-selection", "cautious"]
    if exclude:
        args += ["--exclude", *exclude.split()]
    result = runner.invoke(args)
    statuses = Counter(str(node.status) for node in getattr(result.result, "results", []) or [])
    built = DbtBuildResult(
        selector, time.monotonic() - started, dict(statuses), target / "manifest.json"
    )
    log.info("dbt build %s: %d nodes in %.1f s %s", selector, built.nodes, built.seconds, statuses)
    return built


async def build_selection(
    selector: str,
    exclude: str | None = None,
    project_dir: Path = TRANSFORM_DIR,
    target_path: Path | None = None,
) -> DbtBuildResult:
    """`dbt build --select <selector> [--exclude <exclude>]` in the current flow run; raises
    when a node fails.

    dbt blocks, so it runs in a worker thread; the thread inherits the flow's context, which is
    how prefect-dbt attaches each node's task run to this flow run.
    """
    return await asyncio.to_thread(_build, selector, exclude, project_dir, target_path)


def _parse(project_dir: Path, target_path: Path | None) -> dict:
    from dbt.cli.main import dbtRunner

    target = target_path or project_dir / "target"
    args = ["parse", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    result = dbtRunner().invoke([*args, "--target-path", str(target), "--quiet"])
    if not result.success:
        raise RuntimeError(f"dbt parse of {project_dir} failed: {result.exception}")
    return json.loads((target / "manifest.json").read_text())


async def parse_manifest(
    project_dir: Path = TRANSFORM_DIR, target_path: Path | None = None
) -> dict:
    """dbt's manifest of the project (models, tags, `meta.serve`), without touching a database."""
    return await asyncio.to_thread(_parse, project_dir, target_path)
