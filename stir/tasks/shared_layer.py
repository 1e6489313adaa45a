"""The shared layer: the staging models every tier reads, built by no fast tier.

Each model has exactly one owner. Intermediate models and marts carry the tag of the tier that
builds them; the staging layer (dbt tag `shared`: 1:1 views over the raw sources, and the tables
read from files dropped in S3) is read by every tier and built by none of the fast ones, so no
two runs ever replace the same relation at once and no tier reads a view another is replacing.

- The daily batch holder rebuilds and tests the shared layer at the start of its run: it holds
  the batch window, so no other tier reads staging meanwhile. This is also when the S3-backed
  staging tables pick up new files (docs/decisions.md: what this costs in freshness), and when
  the full-history tests of the append-only logs run (dbt tag `data_quality`); every other
  build of the layer tests the logs' recent rows only.
- Every other tier only makes sure the layer exists and matches the project's code
  (`ensure_shared_layer`): a fingerprint of the staging SQL, the macros and the project file is
  kept in ClickHouse beside the views; when it differs (a new deploy) or is missing (a new
  database), the first tier to notice rebuilds the layer under a lock, and the others wait for it
  and then find it current.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from stir.clickhouse import quote_identifier
from stir.connections import clickhouse
from stir.dbt_project import DbtBuildResult, DbtWorkspace
from stir.locks import wait_lock
from stir.settings import Settings
from stir.tasks.dbt import build_selection

log = logging.getLogger("stir.shared_layer")

# The selectors of transform/selectors.yml: the staging models and their tests (those of the
# append-only logs bounded to recent rows), and the same with the full-history data-quality tests.
SELECTOR = "shared_layer"
DAILY_SELECTOR = "data_quality"
VERSION_TABLE = "stir_layer_version"
LOCK = "dbt:shared-layer"
LOCK_WAIT_SECONDS = 900.0
# What the staging layer's relations are made of; a change to any of them means a rebuild.
SOURCES = ("models/staging", "macros", "dbt_project.yml")


class SharedLayerError(RuntimeError):
    """The shared layer could not be built; no tier can read its sources."""


def fingerprint(project_dir: Path) -> str:
    """A hash of every file the staging layer is made of (paths and contents)."""
    digest = hashlib.sha256()
    for source in SOURCES:
        root = project_dir / source
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file():
                digest.update(str(path.relative_to(project_dir)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _version_table(settings: Settings) -> str:
    # Beside the views themselves (dbt puts staging in `<database>_staging`): dropping that
    # database drops the record with them.
    database = f"{settings.clickhouse.database}_staging"
    return f"{quote_identifier(database)}.{quote_identifier(VERSION_TABLE)}"


async def _built_fingerprint(settings: Settings) -> str | None:
    table = _version_table(settings)
    async with clickhouse(settings) as ch:
        exists = await ch.fetch_value(
            "SELECT count() FROM system.tables"
            " WHERE database = {db:String} AND name = {name:String}",
            {"db": f"{settings.clickhouse.database}_staging", "name": VERSION_TABLE},
        )
        if not exists:
            return None
        return await ch.fetch_value(f"SELECT argMax(fingerprint, built_at) FROM {table}")


async def _record(settings: Settings, value: str) -> None:
    database = quote_identifier(f"{settings.clickhouse.database}_staging")
    table = _version_table(settings)
    async with clickhouse(settings) as ch:
        await ch.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        await ch.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (fingerprint String, built_at DateTime64(3)) "
            "ENGINE = MergeTree ORDER BY built_at"
        )
        await ch.execute(
            f"INSERT INTO {table} SELECT {{fingerprint:String}}, now64(3)", {"fingerprint": value}
        )


async def refresh_shared_layer(
    settings: Settings,
    workspace: DbtWorkspace,
    holder: str,
    *,
    force: bool = False,
) -> DbtBuildResult | None:
    """Build and test the shared layer if it is missing or older than the project's code (or
    always, with `force`: the daily holder). None when it was current: one small query.

    The fingerprint is recorded once every model of the layer was built: a failing data test
    does not make the views stale (the holder's run reports it and blocks what it tests).
    """
    wanted = fingerprint(workspace.project_dir)
    if not force and await _built_fingerprint(settings) == wanted:
        return None
    dsn = settings.postgres.effective_dsn()
    async with wait_lock(dsn, LOCK, holder, timeout_seconds=LOCK_WAIT_SECONDS):
        if not force and await _built_fingerprint(settings) == wanted:
            return None  # another tier built it while we waited
        log.info("building the shared staging layer (%s)", "daily" if force else "out of date")
        built = await build_selection(DAILY_SELECTOR if force else SELECTOR, workspace)
        failed_models = [p for p in built.problems if p.unique_id.startswith("model.")]
        if failed_models:
            raise SharedLayerError(
                "the shared staging layer failed to build: "
                + "; ".join(f"{p.name} {p.status}: {p.message}" for p in failed_models)
            )
        await _record(settings, wanted)
        return built
