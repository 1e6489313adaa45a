"""Build a dbt selection inside the running flow, each dbt node a Prefect task.

prefect-dbt's `PrefectDbtRunner` turns every model, seed and test that dbt runs into a Prefect task
run of the calling flow, so the Prefect UI shows the tier's models one by one.

Every build runs in its own workspace (`dbt_workspace`): a private folder holding the dbt
profile written from Stir's settings (the ones `stir config` shows: `.env`, environment,
defaults; dbt never reads the environment on its own), the target folder (manifest, run
results) and dbt's log. Concurrent builds on one host therefore never overwrite each other's
manifest. dbt's partial-parse cache is carried from one build to the next, so a private target
folder does not cost a full parse.

A failing test does not raise: the result says which nodes failed and which models they block
(the tested model and everything downstream of it), so the caller can serve the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dbt_common.events.base_types import EventLevel
from prefect.settings import get_current_settings
from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

from stir.settings import Settings, get_settings

log = logging.getLogger("stir.dbt")

TRANSFORM_DIR = Path(__file__).resolve().parent.parent / "transform"
PROFILE = "stir"  # dbt_project.yml's `profile:`
PARTIAL_PARSE = "partial_parse.msgpack"
# dbt statuses of a node that did not do its job: a model that errored or was skipped because
# something upstream failed, a test that failed or could not run.
NOT_OK = frozenset({"error", "fail", "skipped", "runtime error"})


class DbtError(RuntimeError):
    """dbt could not run the command at all (bad project, unreachable database, ...)."""


@dataclass(frozen=True)
class NodeProblem:
    unique_id: str
    status: str
    message: str

    @property
    def name(self) -> str:
        return self.unique_id.split(".")[2]


@dataclass(frozen=True)
class DbtBuildResult:
    command: str  # what ran, e.g. `build --select tag:core`
    seconds: float
    statuses: dict[str, int] = field(default_factory=dict)  # dbt status -> node count
    manifest_path: Path | None = None  # dbt's manifest.json of this build
    problems: tuple[NodeProblem, ...] = ()  # nodes that errored, failed or were skipped
    blocked: frozenset[str] = frozenset()  # models not to serve: failed, tested failing, or below

    def manifest(self) -> dict:
        """The dbt manifest (models, their tags and `meta.serve` declarations)."""
        if self.manifest_path is None or not self.manifest_path.exists():
            raise FileNotFoundError(f"dbt wrote no manifest for `{self.command}`")
        return json.loads(self.manifest_path.read_text())

    @property
    def nodes(self) -> int:
        return sum(self.statuses.values())

    @property
    def failures(self) -> tuple[NodeProblem, ...]:
        """The nodes that failed on their own (not merely skipped because of another)."""
        return tuple(p for p in self.problems if p.status != "skipped")


def dbt_profile(settings: Settings) -> dict[str, Any]:
    """dbt's `profiles.yml` for Stir's ClickHouse settings (dbt-clickhouse over HTTP)."""
    ch = settings.clickhouse
    return {
        PROFILE: {
            "target": "stir",
            "outputs": {
                "stir": {
                    "type": "clickhouse",
                    "driver": "http",
                    "host": ch.host,
                    "port": ch.http_port,
                    "user": ch.user,
                    "password": ch.password.get_secret_value(),
                    "schema": ch.database,
                    "secure": ch.secure,
                    "threads": 2,
                }
            },
        }
    }


@dataclass(frozen=True)
class DbtWorkspace:
    """One build's private folder: profile, target and logs."""

    root: Path
    profiles_dir: Path

    @property
    def target(self) -> Path:
        return self.root / "target"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def _partial_parse_cache(settings: Settings, project_dir: Path) -> Path:
    """Where the partial-parse file of `project_dir` is kept between builds (one per project)."""
    project = hashlib.sha256(str(project_dir.resolve()).encode()).hexdigest()[:12]
    return (settings.state_dir / "dbt" / f"{project}-{PARTIAL_PARSE}").resolve()


@contextlib.contextmanager
def dbt_workspace(
    settings: Settings | None = None,
    name: str = "build",
    profiles_dir: Path | None = None,
    project_dir: Path = TRANSFORM_DIR,
) -> Iterator[DbtWorkspace]:
    """A private dbt workspace for one build, removed afterwards.

    The profile is written from `settings` (mode 0600: it holds the ClickHouse password) unless
    `profiles_dir` gives one (tests of other dbt projects). dbt's partial-parse file of
    `project_dir` is copied in from `<STIR_STATE_DIR>/dbt/` and back out after the build.
    """
    settings = settings or get_settings()
    root = Path(tempfile.mkdtemp(prefix=f"stir-dbt-{name}-"))  # mode 0700
    try:
        (root / "target").mkdir()
        if profiles_dir is None:
            profiles_dir = root
            profile = root / "profiles.yml"
            profile.touch(mode=0o600)
            profile.write_text(yaml.safe_dump(dbt_profile(settings)))
        cache = _partial_parse_cache(settings, project_dir)
        if cache.is_file():
            shutil.copyfile(cache, root / "target" / PARTIAL_PARSE)
        workspace = DbtWorkspace(root, profiles_dir)
        yield workspace
        _save_partial_parse(workspace.target / PARTIAL_PARSE, cache)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _save_partial_parse(built: Path, cache: Path) -> None:
    if not built.is_file():
        return
    try:  # write aside, then rename: a concurrent build reads either the old or the new file
        cache.parent.mkdir(parents=True, exist_ok=True)
        aside = cache.with_name(f"{cache.name}.{os.getpid()}")
        shutil.copyfile(built, aside)
        aside.replace(cache)
    except OSError:  # a read-only state dir costs a full parse next time, nothing more
        log.debug("could not keep dbt's partial-parse file in %s", cache.parent, exc_info=True)


def _dbt_log_level() -> EventLevel:
    """dbt's log level: DBT_LOG_LEVEL, else Prefect's logging level in dbt's words.

    prefect-dbt derives it from PREFECT_LOGGING_LEVEL by lower-casing, which fails for WARNING
    and CRITICAL (dbt says "warn" and "error"): a user quieting Prefect's logs would fail
    every tier.
    """
    level = os.environ.get("DBT_LOG_LEVEL") or get_current_settings().logging.level
    level = level.lower()
    return EventLevel({"warning": "warn", "critical": "error"}.get(level, level))


def dbt_settings(project_dir: Path, workspace: DbtWorkspace | None) -> PrefectDbtSettings:
    settings = PrefectDbtSettings(
        project_dir=project_dir,
        profiles_dir=workspace.profiles_dir if workspace else project_dir,
        log_level=_dbt_log_level(),
    )
    if workspace is not None:
        settings.target_path = workspace.target
    return settings


def blocked_models(manifest: dict[str, Any], problems: tuple[NodeProblem, ...]) -> frozenset[str]:
    """The models not to serve: those that failed or were skipped, those a failing test reads,
    and every model downstream of them."""
    nodes = manifest["nodes"]
    blocked: set[str] = set()
    for problem in problems:
        node = nodes.get(problem.unique_id, {})
        if node.get("resource_type") == "test":
            blocked.update(p for p in node["depends_on"]["nodes"] if p.startswith("model."))
        elif problem.unique_id.startswith("model."):
            blocked.add(problem.unique_id)
    children = manifest.get("child_map", {})
    pending = list(blocked)
    while pending:
        for child in children.get(pending.pop(), []):
            if child.startswith("model.") and child not in blocked:
                blocked.add(child)
                pending.append(child)
    return frozenset(blocked)


def _build(
    args: list[str], command: str, project_dir: Path, workspace: DbtWorkspace
) -> DbtBuildResult:
    settings = dbt_settings(project_dir, workspace)
    # No Prefect assets per dbt node: with ~1,300 nodes, emitting an asset and its upstream
    # assets for each doubled the build's time (core at xs: 12-18 s against 8-9 s without); the
    # lineage lives in dbt's docs and exposures, and each node is still a task of the run.
    runner = PrefectDbtRunner(settings=settings, raise_on_failure=False, disable_assets=True)
    started = time.monotonic()
    result = runner.invoke(args, log_path=str(workspace.logs))
    results = getattr(result.result, "results", None)
    if not result.success and not results:  # dbt did not get as far as running nodes
        raise DbtError(f"dbt {' '.join(args)} failed: {result.exception}")
    statuses = Counter(str(node.status) for node in results or [])
    problems = tuple(
        NodeProblem(node.node.unique_id, str(node.status), str(node.message or ""))
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


async def build_selection(
    selector: str,
    workspace: DbtWorkspace,
    project_dir: Path = TRANSFORM_DIR,
) -> DbtBuildResult:
    """`dbt build --select <selector>` (tests only when all they read is built) in the current
    flow run, in `workspace`; raises `DbtError` only when dbt could not run at all.

    dbt blocks, so it runs in a worker thread; the thread inherits the flow's context, which is
    how prefect-dbt attaches each node's task run to this flow run.
    """
    # cautious: a test runs only when every model it reads is built in this run; tests that also
    # read another owner's models run separately (`run_tests`).
    args = ["build", "--select", *selector.split(), "--indirect-selection", "cautious"]
    return await asyncio.to_thread(
        _build, args, f"build --select {selector}", project_dir, workspace
    )


async def run_tests(
    unique_ids: list[str], workspace: DbtWorkspace, project_dir: Path = TRANSFORM_DIR
) -> DbtBuildResult:
    """`dbt test` of exactly these tests (by unique id), in the current flow run."""
    names = [unique_id.split(".")[2] for unique_id in unique_ids]
    args = ["test", "--select", *names]
    command = f"test of {len(names)} tests that read another owner's models"
    return await asyncio.to_thread(_build, args, command, project_dir, workspace)


def _parse(project_dir: Path, target_path: Path | None) -> dict:
    from dbt.cli.main import dbtRunner

    with dbt_workspace(name="parse", project_dir=project_dir) as workspace:
        target = target_path or workspace.target
        args = ["parse", "--project-dir", str(project_dir)]
        args += ["--profiles-dir", str(workspace.profiles_dir), "--log-path", str(workspace.logs)]
        result = dbtRunner().invoke([*args, "--target-path", str(target), "--quiet"])
        if not result.success:
            raise DbtError(f"dbt parse of {project_dir} failed: {result.exception}")
        return json.loads((target / "manifest.json").read_text())


async def parse_manifest(
    project_dir: Path = TRANSFORM_DIR, target_path: Path | None = None
) -> dict:
    """dbt's manifest of the project (models, tags, `meta.serve`), without touching a database."""
    return await asyncio.to_thread(_parse, project_dir, target_path)
