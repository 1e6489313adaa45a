"""`stir ci`'s setup errors (exit 2, before dbt runs) and production's dbt state in S3.

`stir ci` end to end (a change built against the core tier's published state, a broken test
failing it) runs on the core platform of `test_tiers_end_to_end.py`, which builds it anyway.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ClickHouseServer, S3Service, s3_boto
from test_cli import stir

from stir.clickhouse import ClickHouse
from stir.serving import dbt_state
from stir.serving.dbt_state import fetch_state, publish_state
from stir.settings import Settings, get_settings


def _servers_env(clickhouse: ClickHouseServer, s3: S3Service, prefix: str) -> dict[str, str]:
    return {
        "STIR_CLICKHOUSE_HTTP_PORT": str(clickhouse.http_port),
        "STIR_CLICKHOUSE_NATIVE_PORT": str(clickhouse.native_port),
        **s3.env,
        "STIR_S3_PREFIX": prefix,
    }


def _settings(
    monkeypatch: pytest.MonkeyPatch, clickhouse: ClickHouseServer, s3: S3Service, prefix: str
) -> Settings:
    for key, value in _servers_env(clickhouse, s3, prefix).items():
        monkeypatch.setenv(key, value)
    return get_settings()


def test_an_invalid_id_exits_2(tmp_path: Path) -> None:
    result = stir(tmp_path, "ci", "--id", "Not_This")
    assert result.returncode == 2
    assert "--id 'Not_This'" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_published_state_exits_2_naming_where_it_looked(
    tmp_path: Path, clickhouse: ClickHouseServer, s3: S3Service
) -> None:
    """Checked before anything is built: CI's setup is wrong, not the change."""
    result = stir(tmp_path, "ci", **_servers_env(clickhouse, s3, "ci-nothing-published"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"no production dbt state in s3://{s3.bucket}/ci-nothing-published/dbt-state/" in (
        result.stderr
    )


def test_existing_ci_databases_of_the_id_exit_2_and_stay(
    tmp_path: Path, clickhouse: ClickHouseServer, s3: S3Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run's (or kept) CI databases: refused before dbt runs, and not dropped."""
    settings = _settings(monkeypatch, clickhouse, s3, "ci-taken")

    async def databases(statement: str) -> int:
        async with ClickHouse(settings.clickhouse) as ch:
            await ch.execute(statement)
            return await ch.fetch_value(
                "SELECT count() FROM system.databases WHERE name = 'default_ci_taken_staging'"
            )

    asyncio.run(databases("CREATE DATABASE IF NOT EXISTS default_ci_taken_staging"))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "manifest.json").write_text("{}")
    try:
        result = stir(
            tmp_path, "ci", "--id", "taken", "--state", str(tmp_path / "state"),
            **_servers_env(clickhouse, s3, "ci-taken"),
        )  # fmt: skip
        assert result.returncode == 2, result.stdout + result.stderr
        assert "default_ci_taken_staging" in result.stderr
        assert asyncio.run(databases("SELECT 1")) == 1
    finally:
        asyncio.run(databases("DROP DATABASE IF EXISTS default_ci_taken_staging"))


def test_the_newest_state_of_any_tier_is_fetched_and_history_is_pruned(
    tmp_path: Path, clickhouse: ClickHouseServer, s3: S3Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`latest/` and the history of each tier; CI reads the newest manifest of any tier."""
    settings = _settings(monkeypatch, clickhouse, s3, "ci-history")
    keep = 3
    monkeypatch.setattr(dbt_state, "HISTORY_KEEP", keep)
    target = tmp_path / "target"
    target.mkdir()
    start = datetime(2026, 1, 1, tzinfo=UTC)

    async def publish(tier: str, run: int) -> None:
        (target / "manifest.json").write_text(json.dumps({"tier": tier, "run": run}))
        (target / "run_results.json").write_text(json.dumps({"results": [], "run": run}))
        await publish_state(settings, tier, target, now=start + timedelta(minutes=run))

    async def scenario() -> None:
        for run in range(keep + 2):
            await publish("core", run)
        await publish("growth", keep + 2)

    asyncio.run(scenario())
    fetched = asyncio.run(fetch_state(settings, tmp_path / "fetched"))
    assert fetched is not None
    assert fetched.tier == "growth"
    assert json.loads((tmp_path / "fetched" / "manifest.json").read_text())["tier"] == "growth"
    keys = [
        item["Key"]
        for page in s3_boto(settings)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=s3.bucket, Prefix="ci-history/dbt-state/core/history/")
        for item in page.get("Contents", [])
    ]
    runs = sorted({key.split("/")[4] for key in keys})
    assert len(runs) == keep  # the two oldest pruned
    assert runs[0] == (start + timedelta(minutes=2)).strftime("%Y%m%dT%H%M%S.%fZ")


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings of the tests' servers only: no STIR_* of the developer's shell."""
    import os

    for key in list(os.environ):
        if key.startswith("STIR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
