"""The dbt project (`transform/`): where it is, the profile and workspace of one dbt command,
parsing it, and what a build's result means. No Prefect: `stir.tasks.dbt` runs builds in flows.

Where the project is (`dbt_project_dir`): STIR_PROJECT_DIR when set; else the copy an installed
wheel carries inside the package (`stir/project/`); else the source checkout the package is
imported from. Every entry point (the CLI, the tier flows, the ad-hoc flows) resolves it here.

Every dbt command runs in its own workspace (`dbt_workspace`): a private folder holding the dbt
profile written from Stir's settings (the ones `stir config` shows: `.env`, environment,
defaults; dbt never reads the environment on its own), the target folder (manifest, run
results) and dbt's log. Concurrent builds on one host therefore never overwrite each other's
manifest, and an installed project can stay read-only. dbt's partial-parse cache is carried
from one build to the next, so a private target folder does not cost a full parse.
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import stir
from stir.serving.s3 import object_url
from stir.settings import Settings, SettingsError, get_settings

log = logging.getLogger("stir.dbt")

_PACKAGE = Path(stir.__file__).resolve().parent
# An installed wheel carries the project here (pyproject.toml maps transform/ and prefect.yaml).
BUNDLED_PROJECT = _PACKAGE / "project"
# A source checkout (editable install, tests): the folders beside the package.
CHECKOUT = _PACKAGE.parent


def project_home(settings: Settings | None = None) -> Path:
    """The folder holding `transform/` (the dbt project) and `prefect.yaml`."""
    settings = settings or get_settings()
    configured = settings.stack.project_dir
    if configured is not None:
        home = configured.expanduser().resolve()
        if not (home / "transform" / "dbt_project.yml").is_file():
            raise SettingsError(
                f"STIR_PROJECT_DIR={home} holds no dbt project (transform/dbt_project.yml); "
                "point it at a checkout of Stir, or unset it to use the installed package's copy"
            )
        return home
    for home in (BUNDLED_PROJECT, CHECKOUT):
        if (home / "transform" / "dbt_project.yml").is_file():
            return home
    raise SettingsError(
        f"no dbt project found: the installed package has none in {BUNDLED_PROJECT} and "
        f"{CHECKOUT} is no checkout of Stir; set STIR_PROJECT_DIR to a folder holding "
        "transform/dbt_project.yml"
    )


def dbt_project_dir(settings: Settings | None = None) -> Path:
    """The dbt project every tier builds (`transform/`)."""
    return project_home(settings) / "transform"


PROFILE = "stir"  # dbt_project.yml's `profile:`
PARTIAL_PARSE = "partial_parse.msgpack"
# dbt statuses of a node that did not do its job: a model that errored or was skipped because
# something upstream failed, a test that failed or could not run.
NOT_OK = frozenset({"error", "fail", "skipped", "runtime error"})


def node_message(message: str) -> str:
    """dbt's message of a failed node, led by what to change where dbt's own does not say it.

    A statement that outlives the profile's `send_receive_timeout` (STIR_DBT_QUERY_TIMEOUT)
    fails as the HTTP client's "Read timed out" and nothing more; ClickHouse goes on running it.
    The fix comes first, as alerts show only the start of a message."""
    if "Read timed out" in message:
        return (
            "a ClickHouse statement ran longer than STIR_DBT_QUERY_TIMEOUT allows (raise it, "
            f"or make the model cheaper): {message}"
        )
    return message


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
    command: str  # what ran, e.g. `build --selector tier_core`
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
    """dbt's `profiles.yml` for Stir's ClickHouse settings (dbt-clickhouse over HTTP).

    With STIR_CLICKHOUSE_CLUSTER, the output names the cluster: dbt-clickhouse then creates
    every database, table and view ON CLUSTER, the project's `engine_clause` makes their
    engines Replicated and the models that ask for it are Distributed (transform/README.md).
    Every query of the build then prefers GLOBAL IN/JOIN: a model reading a Distributed table
    joins it to tables the build filled on this server's shard only, which a plain JOIN would
    read, empty, on the other shards. Without the setting, neither key is written.
    """
    ch = settings.clickhouse
    output: dict[str, Any] = {
        "type": "clickhouse",
        "driver": "http",
        "host": ch.host,
        "port": ch.http_port,
        "user": ch.user,
        "password": ch.password.get_secret_value(),
        "schema": ch.database,
        "secure": ch.secure,
        "threads": settings.dbt.threads,
        "send_receive_timeout": settings.dbt.query_timeout,
    }
    if ch.cluster:
        output["cluster"] = ch.cluster
        output["custom_settings"] = {"prefer_global_in_and_join": 1}
    return {PROFILE: {"target": "stir", "outputs": {"stir": output}}}


def dbt_vars(settings: Settings) -> dict[str, Any]:
    """What the project's macros read of Stir's settings, as dbt vars (`s3_drop`: where files
    dropped in S3 are, and how ClickHouse reads them).

    Credentials: the named collection when there is one (production: nothing secret passes
    through dbt); else the keys when the settings have them (the embedded stack's, which are no
    secret: they end up in compiled SQL); else none, and ClickHouse uses its own credentials.
    """
    s3 = settings.s3
    drops = {
        "drops_url": object_url(s3, "/".join(p for p in (s3.prefix.strip("/"), "drops") if p)),
        "named_collection": s3.named_collection or "",
    }
    if not s3.named_collection and s3.access_key_id and s3.secret_access_key:
        drops["access_key_id"] = s3.access_key_id.get_secret_value()
        drops["secret_access_key"] = s3.secret_access_key.get_secret_value()
    return {"stir_s3": drops}


@dataclass(frozen=True)
class DbtWorkspace:
    """One dbt command's private folder (profile, target, logs) and the project it runs."""

    root: Path
    profiles_dir: Path
    project_dir: Path
    vars: dict[str, Any] = field(default_factory=dict)  # dbt `--vars`: Stir's settings for macros

    @property
    def vars_args(self) -> list[str]:
        return ["--vars", json.dumps(self.vars)] if self.vars else []

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
    project_dir: Path | None = None,
) -> Iterator[DbtWorkspace]:
    """A private dbt workspace for one build, removed afterwards.

    The profile is written from `settings` (mode 0600: it holds the ClickHouse password) unless
    `profiles_dir` gives one (tests of other dbt projects). dbt's partial-parse file of
    `project_dir` (default: Stir's, `dbt_project_dir`) is copied in from
    `<STIR_STATE_DIR>/dbt/` and back out after the build.
    """
    settings = settings or get_settings()
    project_dir = project_dir or dbt_project_dir(settings)
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
        workspace = DbtWorkspace(root, profiles_dir, project_dir, dbt_vars(settings))
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


def _parse(settings: Settings | None, target_path: Path | None) -> dict:
    from dbt.cli.main import dbtRunner

    with dbt_workspace(settings, name="parse") as workspace:
        target = target_path or workspace.target
        project_dir = workspace.project_dir
        args = ["parse", "--project-dir", str(project_dir)]
        args += ["--profiles-dir", str(workspace.profiles_dir), "--log-path", str(workspace.logs)]
        args += workspace.vars_args
        # Nothing on the console: a failure is raised with dbt's message (the log file has all).
        result = dbtRunner().invoke([*args, "--target-path", str(target), "--log-level", "none"])
        if not result.success:
            raise DbtError(f"dbt parse of {project_dir} failed: {result.exception}")
        return json.loads((target / "manifest.json").read_text())


async def parse_manifest(settings: Settings | None = None, target_path: Path | None = None) -> dict:
    """dbt's manifest of Stir's project (models, tags, `meta.serve`), without a database."""
    return await asyncio.to_thread(_parse, settings, target_path)
