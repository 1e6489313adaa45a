"""Production's dbt state in S3, and a change built against it in CI databases (`stir ci`).

Publishing: every tier run uploads the `manifest.json` and `run_results.json` of its dbt build
to `s3://<bucket>/<prefix>/dbt-state/<tier>/latest/` and to `.../history/<UTC time>/` (the
newest HISTORY_KEEP runs of each tier are kept). Every tier's manifest describes the whole
project as production built it (each node's code, config and relation), so the newest one of
any tier is production's state (`fetch_state`).

CI (`run_ci`): `dbt build --select state:modified+ --defer --state <production's>` with the
target schema `<database>_ci_<id>`, so that dbt's models land in `<database>_ci_<id>` and its
`_staging` and `_intermediate` siblings, never in production's databases. The parents it does
not build are read from production: dbt defers a ref to the state's relation when the CI
databases have none (they start empty). Every model's database is checked to be a CI database
before anything is built; the CI databases are dropped afterwards unless kept.

Plain Python and dbt's own runner, no Prefect: the tier flow and the CLI call this.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stir.clickhouse import quote_identifier
from stir.connections import clickhouse
from stir.dbt_project import NOT_OK, DbtError, dbt_workspace, node_message
from stir.serving.s3 import delete_keys, head, list_keys, s3_client
from stir.settings import MASK, Settings

log = logging.getLogger("stir.dbt_state")

STATE_FOLDER = "dbt-state"
MANIFEST = "manifest.json"
RUN_RESULTS = "run_results.json"
# About a day of the core tier (every 15 minutes); the weekly tier's cover two years.
HISTORY_KEEP = 100
# A CI id becomes part of database names: no underscore, so that `<database>_ci_<id>_...` can
# only be one run's (another id cannot end in `_staging`).
CI_ID = re.compile(r"[a-z0-9]{1,24}")
# What dbt writes relations for: every one must be in a CI database.
_RELATIONAL = frozenset({"model", "seed", "snapshot"})


class StateError(RuntimeError):
    """No dbt state to publish or to compare against."""


class CiSetupError(RuntimeError):
    """`stir ci` cannot run as asked (an invalid id, CI databases that already exist, a model
    that would be written outside the CI databases): a usage or configuration error."""


# --- production's state in S3 --------------------------------------------------------------


def state_prefix(settings: Settings, tier: str | None = None) -> str:
    """`<prefix>/dbt-state/` (or a tier's folder under it), with its trailing slash."""
    parts = (settings.s3.prefix.strip("/"), STATE_FOLDER, tier or "")
    return "/".join(part for part in parts if part) + "/"


def _url(settings: Settings, key: str) -> str:
    return f"s3://{settings.s3.bucket}/{key}"


@dataclass(frozen=True)
class PublishedState:
    """One tier's dbt state in S3."""

    tier: str
    published_at: datetime
    url: str  # the `latest/` folder (publish_state) or the manifest fetched (fetch_state)


async def publish_state(
    settings: Settings, tier: str, target: Path, now: datetime | None = None
) -> PublishedState:
    """Upload the manifest and run results in `target` (a dbt target folder, after a build) as
    `tier`'s latest state and one more entry of its history; prune its history to HISTORY_KEEP.

    History first, then latest: a `latest/` manifest always has its history entry. The two
    files of `latest/` are replaced one after the other; a reader between the two sees the new
    manifest beside the previous run's results (`stir ci` reads the manifest only).
    """
    files = await asyncio.to_thread(_artifacts, target, settings)
    if MANIFEST not in files:
        raise StateError(f"dbt wrote no {MANIFEST} in {target}: no state to publish")
    now = now or datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S.%fZ")  # sorts as it reads
    prefix = state_prefix(settings, tier)
    metadata = {"tier": tier, "published-at": now.isoformat()}
    async with s3_client(settings.s3) as client:
        for folder in (f"history/{stamp}/", "latest/"):
            for name, data in files.items():
                await client.put_object(
                    Bucket=settings.s3.bucket,
                    Key=prefix + folder + name,
                    Body=data,
                    ContentType="application/json",
                    Metadata=metadata,
                )
        await _prune_history(client, settings, prefix + "history/")
    log.info("published the dbt state of %s to %s", tier, _url(settings, prefix + "latest/"))
    return PublishedState(tier, now, _url(settings, prefix + "latest/"))


def _without_secrets(name: str, data: bytes, settings: Settings) -> bytes:
    """The artifact `name` with the S3 keys masked where dbt put them: without a named
    collection it inlines them in the SQL of the S3-backed models (each node's and result's
    compiled code) and they are in its `--vars` (the run results' args). Only there: a key
    equal to some other text (the embedded stack's `stir-local` is a macro's default) must
    not change a macro, or every model using it would look modified to CI."""
    keys = (settings.s3.access_key_id, settings.s3.secret_access_key)
    values = sorted({key.get_secret_value() for key in keys if key is not None} - {""}, key=len)
    if not values:
        return data

    def mask(text: str) -> str:
        for value in reversed(values):  # the longest first: one key may contain the other
            text = text.replace(value, MASK)
        return text

    document = json.loads(data)
    compiled = document.get("nodes", {}).values() if name == MANIFEST else document["results"]
    for node in compiled:
        if node.get("compiled_code"):
            node["compiled_code"] = mask(node["compiled_code"])
    args = document.get("args", {})
    if args.get("vars"):
        args["vars"] = json.loads(mask(json.dumps(args["vars"])))
    return json.dumps(document).encode()


def _artifacts(target: Path, settings: Settings) -> dict[str, bytes]:
    """The manifest and run results in `target` (those there), their S3 keys masked."""
    return {
        name: _without_secrets(name, (target / name).read_bytes(), settings)
        for name in (MANIFEST, RUN_RESULTS)
        if (target / name).is_file()
    }


async def _prune_history(client: Any, settings: Settings, prefix: str) -> None:
    runs: dict[str, list[str]] = {}
    for key in await list_keys(client, settings.s3.bucket, prefix):
        runs.setdefault(key[len(prefix) :].split("/", 1)[0], []).append(key)
    for stamp in sorted(runs, reverse=True)[HISTORY_KEEP:]:
        await delete_keys(client, settings.s3.bucket, runs[stamp])


async def fetch_state(settings: Settings, into: Path) -> PublishedState | None:
    """Download the newest `latest/` manifest of any tier (and its run results) into `into`;
    None when no tier has published one under the settings' bucket and prefix.

    Newest by the time each run stamped on it (S3's modification time counts whole seconds)."""
    prefix = state_prefix(settings)
    candidates: list[tuple[datetime, str]] = []
    async with s3_client(settings.s3) as client:
        paginator = client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=settings.s3.bucket, Prefix=prefix, Delimiter="/")
        async for page in pages:
            for folder in page.get("CommonPrefixes", []):  # one per tier
                key = folder["Prefix"] + "latest/" + MANIFEST
                found = await head(client, settings.s3.bucket, key)
                if found is not None:
                    stamped = found.get("Metadata", {}).get("published-at")
                    when = datetime.fromisoformat(stamped) if stamped else found["LastModified"]
                    candidates.append((when, key))
        if not candidates:
            return None
        published_at, key = max(candidates)
        fetched: dict[str, bytes] = {}
        for name in (MANIFEST, RUN_RESULTS):
            try:
                response = await client.get_object(
                    Bucket=settings.s3.bucket, Key=key.rpartition("/")[0] + "/" + name
                )
            except client.exceptions.NoSuchKey:
                continue  # the run results are informative only
            async with response["Body"] as body:
                fetched[name] = await body.read()
    await asyncio.to_thread(_write_files, into, fetched)
    tier = key[len(prefix) :].split("/", 1)[0]
    return PublishedState(tier, published_at, _url(settings, key))


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


# --- a change built against it ---------------------------------------------------------------


def ci_database(settings: Settings, ci_id: str) -> str:
    """The CI run's target database; dbt puts staging and intermediate models beside it."""
    if not CI_ID.fullmatch(ci_id):
        raise CiSetupError(
            f"--id {ci_id!r}: use 1 to 24 lowercase letters and digits (it names the databases)"
        )
    return f"{settings.clickhouse.database}_ci_{ci_id}"


def new_ci_id() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True)
class NodeOutcome:
    """What dbt did with one node of the CI build."""

    unique_id: str
    resource_type: str  # model, test, unit_test, seed, snapshot
    status: str  # dbt's: success, error, skipped (models); pass, fail, warn, error (tests)
    message: str = ""
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.unique_id.split(".")[2]  # a test's id ends with a hash, a model's version

    @property
    def ok(self) -> bool:
        return self.status not in NOT_OK


@dataclass(frozen=True)
class CiResult:
    database: str  # the CI target database
    databases: tuple[str, ...]  # every CI database the build created
    outcomes: tuple[NodeOutcome, ...]  # every node dbt ran, in dbt's order
    deferred: dict[str, str] = field(default_factory=dict)  # parent read from production: relation
    kept: bool = False

    @property
    def failures(self) -> tuple[NodeOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def ok(self) -> bool:
        return not self.failures

    def count(self, resource_types: set[str], status: str) -> int:
        return sum(
            1 for o in self.outcomes if o.resource_type in resource_types and o.status == status
        )


async def ci_databases(settings: Settings, database: str) -> list[str]:
    """The databases of the CI run whose target is `database` (itself and `<database>_...`)."""
    async with clickhouse(settings) as ch:
        rows = await ch.fetch(
            "SELECT name FROM system.databases"
            " WHERE name = {db:String} OR startsWith(name, {prefix:String}) ORDER BY name",
            {"db": database, "prefix": database + "_"},
        )
    return [name for (name,) in rows]


async def drop_ci_databases(settings: Settings, database: str) -> list[str]:
    """Drop the CI run's databases; the names dropped."""
    names = await ci_databases(settings, database)
    async with clickhouse(settings) as ch:
        for name in names:
            await ch.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)}")
    return names


def outside_ci(manifest: dict[str, Any], database: str) -> list[str]:
    """The relations the project would write outside the CI databases (a model configured with
    a fixed schema): none may be built."""
    return sorted(
        f"{node['name']} ({node['schema']})"
        for node in manifest["nodes"].values()
        if node["resource_type"] in _RELATIONAL
        and node["config"].get("materialized") != "ephemeral"
        and not (node["schema"] == database or node["schema"].startswith(database + "_"))
    )


def deferred_parents(
    manifest: dict[str, Any], state: dict[str, Any], built: set[str]
) -> dict[str, str]:
    """The relations the nodes in `built` read without building them: those of production
    (the state's), by parent name. An ephemeral parent is compiled in: its own parents count."""
    nodes, found = manifest["nodes"], {}
    pending = [
        parent
        for uid in built
        for parent in nodes.get(uid, {}).get("depends_on", {}).get("nodes", [])
    ]
    seen: set[str] = set()
    while pending:
        parent = pending.pop()
        if parent in seen or parent in built or parent not in nodes:
            continue
        seen.add(parent)
        node = nodes[parent]
        if node["config"].get("materialized") == "ephemeral":
            pending += node["depends_on"]["nodes"]
        elif node["resource_type"] in _RELATIONAL:
            production = state["nodes"].get(parent)
            relation = production and (
                production.get("relation_name") or production["schema"] + "." + production["alias"]
            )
            found[node["name"]] = str(relation or "not in production's state")
    return dict(sorted(found.items()))


OnNode = Callable[[NodeOutcome], None]


def _build(
    ci_settings: Settings,
    state_dir: Path,
    database: str,
    on_node: OnNode | None,
    log_dir: Path | None,
) -> tuple[list[NodeOutcome], dict[str, str]]:
    from dbt.cli.main import dbtRunner

    state = json.loads((state_dir / MANIFEST).read_text())
    with dbt_workspace(ci_settings, name="ci") as workspace:
        common = [
            "--project-dir", str(workspace.project_dir),
            "--profiles-dir", str(workspace.profiles_dir),
            "--log-path", str(log_dir or workspace.logs),
            "--target-path", str(workspace.target),
            "--log-level", "none",  # the caller reports each node (on_node); dbt's log has all
            *workspace.vars_args,
        ]  # fmt: skip
        selection = ["--select", "state:modified+", "--state", str(state_dir)]
        # Parse and select first: nothing is built before every relation is known to be a CI
        # database's (the parse is kept: the build's is a partial one).
        listed = dbtRunner().invoke(["ls", *selection, "--output", "json", *common])
        if not listed.success:
            raise DbtError(f"dbt could not select the modified models: {listed.exception}")
        manifest = json.loads((workspace.target / MANIFEST).read_text())
        outside = outside_ci(manifest, database)
        if outside:
            raise CiSetupError(
                f"these models would be built outside the CI databases ({database}*): "
                + ", ".join(outside)
            )
        if not listed.result:
            return [], {}

        def callback(event: Any) -> None:
            if event.info.name == "NodeFinished" and on_node is not None:
                info, result = event.data.node_info, event.data.run_result
                on_node(
                    NodeOutcome(
                        info.unique_id, info.resource_type, result.status,
                        node_message(str(result.message or "")), result.execution_time,
                    )
                )  # fmt: skip

        built = dbtRunner(callbacks=[callback]).invoke(["build", *selection, "--defer", *common])
        results = getattr(built.result, "results", None)
        if not built.success and not results:  # dbt did not get as far as running nodes
            raise DbtError(f"dbt build of the modified models failed: {built.exception}")
        outcomes = [
            NodeOutcome(
                r.node.unique_id, str(r.node.resource_type), str(r.status),
                node_message(str(r.message or "")), float(r.execution_time or 0),
            )
            for r in results or []
        ]  # fmt: skip
        manifest = json.loads((workspace.target / MANIFEST).read_text())
    return outcomes, deferred_parents(manifest, state, {o.unique_id for o in outcomes})


async def run_ci(
    settings: Settings,
    state_dir: Path,
    ci_id: str,
    *,
    keep: bool = False,
    on_node: OnNode | None = None,
    log_dir: Path | None = None,
) -> CiResult:
    """Build and test the models modified against the production manifest in `state_dir`, and
    everything downstream of them, in the CI databases of `ci_id`; drop those afterwards unless
    `keep`. Raises `CiSetupError` before building anything when it cannot run as asked, and
    `DbtError` when dbt could not run at all; a failing node is in the result."""
    database = ci_database(settings, ci_id)
    if not (state_dir / MANIFEST).is_file():
        raise CiSetupError(f"no {MANIFEST} in {state_dir}: --state names a folder holding one")
    existing = await ci_databases(settings, database)
    if existing:
        raise CiSetupError(
            f"CI databases of id {ci_id} exist already ({', '.join(existing)}): another run's, or"
            " kept; drop them or choose another --id"
        )
    # dbt-clickhouse's schema is the ClickHouse database: the profile's is the CI one.
    ci_clickhouse = settings.clickhouse.model_copy(update={"database": database})
    ci_settings = settings.model_copy(update={"clickhouse": ci_clickhouse})
    try:
        outcomes, deferred = await asyncio.to_thread(
            _build, ci_settings, state_dir, database, on_node, log_dir
        )
    except BaseException:
        if not keep:
            try:
                await drop_ci_databases(settings, database)
            except Exception:  # the build's error is the one to report
                log.warning("could not drop the CI databases %s*", database, exc_info=True)
        raise
    created = await (ci_databases if keep else drop_ci_databases)(settings, database)
    return CiResult(database, tuple(created), tuple(outcomes), deferred, keep)
