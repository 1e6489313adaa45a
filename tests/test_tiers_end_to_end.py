"""A tier end to end at scale xs, run in this process as `stir run` runs it: dbt built, served
tables swapped into PostgreSQL, an artifact written, with Stir's settings only in `.env`; a failing
dbt test fails the tier and leaves the served tables as they were; the ad-hoc sync and rollback;
the monitoring tier's alerts; a tier past its timeout.

All seven tiers, started together on real workers, each serving every table it declares, are
`test_tiers_on_workers.py`'s: one built platform for both would share nothing here (these tests
break and mend the core tier), so this module builds the core tier only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from conftest import (
    ClickHouseServer,
    PostgresService,
    S3Service,
    SlackRecorder,
    isolated_stir_env,
)
from prefect.client.orchestration import get_client
from prefect.states import State

from stir.clickhouse import ClickHouse
from stir.dbt_project import parse_manifest
from stir.domain.tiers import Tier, get_tier
from stir.flows.adhoc import rollback_one_table, sync_one_table
from stir.flows.tier import flow_of, tier_flow
from stir.serving.freshness import STAMP_KEY, SyncStamp, freshness_report, read_stamp
from stir.settings import get_settings
from stir.sources.seed import Seeder
from stir.tasks.health import check_health
from stir.tasks.shared_layer import VERSION_TABLE

DATABASE = "tiers_test"
pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture(scope="module")
def platform(
    clickhouse: ClickHouseServer,
    postgres: PostgresService,
    s3: S3Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[pytest.MonkeyPatch]:
    """Stir's settings pointed at the session's servers, with raw data of scale xs."""
    # The database dbt builds into; the project's client connects to it.
    create = f"CREATE DATABASE IF NOT EXISTS {DATABASE}".encode()
    request = urllib.request.Request(clickhouse.http_url, data=create)  # noqa: S310
    urllib.request.urlopen(request).read()  # noqa: S310 - the test's own loopback server
    patch = isolated_stir_env(
        tmp_path_factory.mktemp("tiers-cwd"),
        STIR_CLICKHOUSE_HTTP_PORT=str(clickhouse.http_port),
        STIR_CLICKHOUSE_NATIVE_PORT=str(clickhouse.native_port),
        STIR_CLICKHOUSE_DATABASE=DATABASE,
        STIR_POSTGRES_PORT=str(postgres.port),
        **s3.env,
    )
    asyncio.run(Seeder(get_settings()).seed("xs", 7))
    yield patch
    patch.undo()


async def run_tier_now(name: str) -> State:
    """Run a tier's flow (the one its deployment runs) in this process; its final state."""
    return await flow_of(name)(name, return_state=True)


async def live_rows(table: str) -> int:
    conn = await asyncpg.connect(get_settings().postgres.effective_dsn())
    try:
        schema, _, name = table.rpartition(".")
        return await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{name}"')
    finally:
        await conn.close()


async def stamp_of(table: str) -> SyncStamp | None:
    conn = await asyncpg.connect(get_settings().postgres.effective_dsn())
    try:
        schema, _, name = table.rpartition(".")
        return await read_stamp(conn, schema, name)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def decoy_clickhouse_on_the_default_port() -> AsyncIterator[list[bytes] | None]:
    """A server on 8123 that answers every request with an error and records it; None when the
    port is taken (whatever listens there is the decoy then, but its requests are not seen)."""
    hits: list[bytes] = []

    async def decoy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.read(200))
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\ndecoy")
        await writer.drain()
        writer.close()

    try:
        server = await asyncio.start_server(decoy, "127.0.0.1", 8123)
    except OSError:
        yield None
        return
    async with server:
        yield hits


@pytest.fixture(scope="module")
def manifest(platform: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The project's manifest, parsed with the platform's settings (its relations' database)."""
    return asyncio.run(parse_manifest(target_path=tmp_path_factory.mktemp("parse") / "target"))


@pytest.fixture(scope="module")
async def settings_in_dotenv_and_a_decoy(
    platform: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[bytes] | None]:
    """Stir's settings only in `.env` (not exported), a decoy ClickHouse on the default port, and
    the staging layer out of date (so the first tier rebuilds it, S3-backed models included).
    Yields the decoy's requests (None when the port was taken)."""
    folder = tmp_path_factory.mktemp("dotenv")
    settings = {key: value for key, value in os.environ.items() if key.startswith("STIR_")}
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    patch = pytest.MonkeyPatch()
    try:
        for key in settings:
            patch.delenv(key)
        patch.chdir(folder)
        assert get_settings().clickhouse.database == DATABASE  # from .env alone
        async with ClickHouse(get_settings().clickhouse) as ch:
            await ch.execute(f"DROP TABLE IF EXISTS {DATABASE}_staging.{VERSION_TABLE}")
        async with decoy_clickhouse_on_the_default_port() as hits:
            yield hits
    finally:
        patch.undo()


async def test_core_builds_and_serves_its_tables_with_settings_only_in_dotenv(
    manifest: dict, settings_in_dotenv_and_a_decoy: list[bytes] | None
) -> None:
    """The core tier (whose first run also builds the shared staging layer, the S3-backed models
    included) builds and serves all its tables, with Stir's settings only in `.env`."""
    await _run_and_check_tier(get_tier("core"), manifest)


async def test_every_component_used_the_configured_servers_and_core_is_fresh(
    manifest: dict, settings_in_dotenv_and_a_decoy: list[bytes] | None
) -> None:
    """After the tier above: nothing reached the decoy on the default port (dbt included), the
    staging layer read the files dropped in S3 with `.env`'s settings, and every table the core
    tier serves is fresh against its SLA."""
    assert settings_in_dotenv_and_a_decoy in (None, [])
    async with ClickHouse(get_settings().clickhouse) as ch:
        assert await ch.fetch_value(f"SELECT count() FROM {DATABASE}_staging.stg_drops__categories")
    core = {decl.ref for decl in get_tier("core").served_tables(manifest)}
    report = await freshness_report(manifest, get_settings())
    assert {f.ref: f.state for f in report if f.ref in core} == dict.fromkeys(core, "ok")


async def ensure_core_served(manifest: dict) -> dict[str, SyncStamp]:
    """The stamps of the core tier's served tables, running the tier first if one is missing."""
    tables = [decl.ref for decl in get_tier("core").served_tables(manifest)]
    stamps = {table: await stamp_of(table) for table in tables}
    if None in stamps.values():
        assert (await run_tier_now("core")).is_completed()
        stamps = {table: await stamp_of(table) for table in tables}
    return stamps


async def _run_and_check_tier(spec: Tier, manifest: dict) -> None:
    """Run the tier now; every served table of it is swapped in with the rows it reported."""
    state = await run_tier_now(spec.name)
    assert state.is_completed(), f"{spec.name}: {state.message}"
    result = await state.result()
    assert result["dbt_nodes"] > 0
    declared = {decl.ref: decl for decl in spec.served_tables(manifest)}
    assert set(result["tables"]) == set(declared)  # every served mart of the tier
    for table, rows in result["tables"].items():
        may_be_empty = declared[table].gates.allow_empty
        assert rows > 0 or may_be_empty, f"{spec.name}: {table} served no rows"
        assert await live_rows(table) == rows
    async with get_client() as client:
        artifact = await client.read_latest_artifacts()
    assert any(a.key == f"tier-{spec.name}" for a in artifact)


async def test_a_failing_dbt_test_blocks_only_what_it_tests_and_fails_the_tier(
    platform: pytest.MonkeyPatch, manifest: dict, slack: SlackRecorder
) -> None:
    """A duplicate in the shared category map duplicates YouTube channels in core's
    `int_youtube__channels`: its `unique` test fails. The YouTube marts built from it are not
    served (the live tables keep their previous version), the Instagram marts of the same tier
    are, and the run fails with the test's name and what it kept back."""
    before = await ensure_core_served(manifest)
    categories = f"{DATABASE}_staging.stg_drops__categories"
    async with ClickHouse(get_settings().clickhouse) as ch:
        await ch.execute(
            f"INSERT INTO {categories} SELECT * REPLACE ('Duplicate' AS category) "
            f"FROM {categories} WHERE source = 'youtube' LIMIT 1"
        )
        try:  # without retries: a retry would fail the same way, a minute later
            failed = await tier_flow(replace(get_tier("core"), retries=0))(
                "core", return_state=True
            )
        finally:
            await ch.execute(
                f"ALTER TABLE {categories} DELETE WHERE category = 'Duplicate'",
                settings={"mutations_sync": 2},
            )
    assert failed.is_failed()
    assert "unique_int_youtube__channels_channel_id" in failed.message
    kept_back = {"public.youtube_channel_metrics", "public.profile_metrics"}
    assert f"not served: {', '.join(sorted(kept_back))}" in failed.message
    after = {table: await stamp_of(table) for table in before}
    for table in kept_back:
        assert after[table] == before[table], f"{table} was swapped despite the failing test"
    for table in set(before) - kept_back:
        assert after[table].run_id != before[table].run_id, f"{table} was not served"
    assert len(slack.messages) == 1
    assert "unique_int_youtube__channels_channel_id" in slack.texts[0]


async def test_adhoc_sync_retry_from_s3_and_rollback(
    platform: pytest.MonkeyPatch, manifest: dict
) -> None:
    await ensure_core_served(manifest)  # the mart exists (its second sync below leaves a backup)
    first_table = "public.profile_metrics"
    first = await sync_one_table("profile_metrics")
    assert first["table"] == first_table
    assert first["rows"] > 0
    assert await live_rows(first["table"]) == first["rows"]
    assert (await stamp_of(first_table)).run_id == first["run_id"]
    # A retry of that run re-reads its S3 export: ClickHouse is not asked again.
    retry = await sync_one_table("profile_metrics", run_id=first["run_id"])
    assert retry["reused_export"] is True
    assert retry["rows"] == first["rows"]
    rolled = await rollback_one_table(first["table"])
    assert rolled["backup"]
    assert await live_rows(first["table"]) == first["rows"]
    # The stamp travels with the table: the version rolled back in is still run `first`'s.
    assert (await stamp_of(first_table)).run_id == first["run_id"]
    with pytest.raises(ValueError, match="no served table called 'nope'"):
        await sync_one_table("nope")


async def backdate_stamp(table: str, age: timedelta) -> None:
    """Make `table` look last synced `age` ago (as if its tier had stopped running)."""
    conn = await asyncpg.connect(get_settings().postgres.effective_dsn())
    try:
        schema, _, name = table.rpartition(".")
        stamp = await read_stamp(conn, schema, name)
        synced_at = (datetime.now(UTC) - age).isoformat()
        payload = {"run_id": stamp.run_id, "exported_at": synced_at, "synced_at": synced_at}
        comment = json.dumps({STAMP_KEY: payload}).replace("'", "''")
        await conn.execute(f'COMMENT ON TABLE "{schema}"."{name}" IS \'{comment}\'')
    finally:
        await conn.close()


async def add_scrapes(source: str, status: str, count: int, after_newest: timedelta) -> None:
    """`count` scrape requests of `source` with `status`, `after_newest` past the newest one."""
    async with ClickHouse(get_settings().clickhouse) as ch:
        await ch.execute(
            "INSERT INTO raw_beat.scrape_requests SELECT r.* REPLACE ("
            " top + 1 + n.number AS request_id,"
            " {status:String} AS status,"
            " if({status:String} = 'success', NULL, 'Timeout') AS error_class,"
            " newest + toIntervalSecond({offset:UInt32} + n.number) AS started_at,"
            " newest + toIntervalSecond({offset:UInt32} + n.number + 1) AS finished_at,"
            " newest + toIntervalSecond({offset:UInt32} + n.number + 1) AS _ingested_at)"
            " FROM (SELECT * FROM raw_beat.scrape_requests WHERE source = {source:String}"
            "       LIMIT 1) AS r,"
            " (SELECT max(started_at) AS newest, max(request_id) AS top"
            "  FROM raw_beat.scrape_requests) AS m,"
            " numbers({count:UInt32}) AS n",
            {
                "status": status,
                "source": source,
                "count": count,
                "offset": int(after_newest.total_seconds()),
            },
        )


async def test_monitoring_alerts_on_stale_tables_and_failing_scrapes_then_on_recovery(
    platform: pytest.MonkeyPatch, manifest: dict, slack: SlackRecorder
) -> None:
    table = "public.profile_metrics"  # the core tier's (SLA: 45 minutes)
    await ensure_core_served(manifest)
    async with ClickHouse(get_settings().clickhouse) as ch:
        seeded_requests = await ch.fetch_value(
            "SELECT max(request_id) FROM raw_beat.scrape_requests"
        )
    # The core tier stopped two hours ago, and YouTube's scrapes start failing.
    await backdate_stamp(table, timedelta(hours=2))
    await add_scrapes("youtube", "failure", 200, timedelta(minutes=1))
    breached = await run_tier_now("monitoring")
    assert breached.is_completed(), breached.message  # alerting is not failing
    assert sorted((await breached.result())["alerting"]) == ["freshness:" + table, "scrape:youtube"]
    assert len(slack.messages) == 1
    alert = slack.texts[0]
    assert table in alert
    assert "SLA" in alert
    assert "stir run core" in alert
    assert "source `youtube` failed 200 of" in alert

    # Still breached at the next check: no repeat.
    again = await check_health.fn(manifest)
    assert again.alerting == ("freshness:" + table, "scrape:youtube")
    assert again.opened == ()
    assert len(slack.messages) == 1

    # Core syncs again, and an hour of successful YouTube scrapes pushes the failures out.
    await backdate_stamp(table, timedelta(0))
    await add_scrapes("youtube", "success", 300, timedelta(hours=2))
    recovered = await run_tier_now("monitoring")
    assert (await recovered.result())["alerting"] == []
    assert len(slack.messages) == 2
    recovery = slack.texts[1]
    assert "recovered" in recovery
    assert table in recovery
    assert "youtube" in recovery

    # A healthy platform: nothing more to say (the monitoring marts are as the last run left
    # them; the tier's wiring of the check is proven by the two runs above).
    healthy = await check_health.fn(manifest)
    assert (healthy.alerting, healthy.opened, healthy.recovered) == ((), (), ())
    assert len(slack.messages) == 2
    async with ClickHouse(get_settings().clickhouse) as ch:  # the raw data as it was seeded
        await ch.execute(
            "ALTER TABLE raw_beat.scrape_requests DELETE WHERE request_id > {top:UInt64}",
            {"top": seeded_requests},
            settings={"mutations_sync": 2},
        )


async def test_a_tier_past_its_timeout_ends_timed_out_alerts_and_frees_the_window(
    platform: pytest.MonkeyPatch, slack: SlackRecorder
) -> None:
    """The tier's declared timeout applies to its flow; a run past it is TimedOut (a failure),
    posts its alert, and leaves neither its window slot nor its lock behind."""
    from stir.flows.batch_window import PENDING_LIMIT, WINDOW_LIMIT

    spec = replace(get_tier("core"), timeout=timedelta(seconds=3), retries=0)
    state = await tier_flow(spec)("core", return_state=True)
    assert state.is_failed()
    assert state.name == "TimedOut"
    assert len(slack.messages) == 1
    assert "*core*" in slack.texts[0]
    async with get_client() as client:
        for limit in (WINDOW_LIMIT, PENDING_LIMIT):
            assert (await client.read_global_concurrency_limit_by_name(limit)).active_slots == 0
    again = await run_tier_now("core")  # the tier's lock is free
    assert again.name == "Completed", again.message


# --- production's dbt state in S3, and `stir ci` against it ----------------------------------

# The change `stir ci` checks: a staging model and a core mart of few descendants, whose
# unchanged parents the core tier (and the shared layer it builds) has built in production.
CI_STAGING = "stg_drops__influencer_lists"  # its child: stg_drops__influencer_list_handles
CI_MART = "mart_instagram_account_grades"  # its parent: mart_instagram_account_metrics
CI_ID = "t1"


def _state_objects(prefix: str) -> dict[str, bytes]:
    """Every object under `prefix` of the platform's S3, read with plain boto3."""
    from conftest import s3_boto

    settings = get_settings()
    client = s3_boto(settings)
    listed = client.list_objects_v2(Bucket=settings.s3.bucket, Prefix=prefix)
    return {
        item["Key"]: client.get_object(Bucket=settings.s3.bucket, Key=item["Key"])["Body"].read()
        for item in listed.get("Contents", [])
    }


async def test_a_tier_run_publishes_its_dbt_state_to_s3(manifest: dict) -> None:
    """The core tier's run left its dbt build's manifest and run results in S3, as its latest
    state and in its history."""
    await ensure_core_served(manifest)
    prefix = f"{get_settings().s3.prefix}/dbt-state/core/"
    objects = _state_objects(prefix)
    latest = json.loads(objects[prefix + "latest/manifest.json"])
    assert "model.stir.mart_instagram_account_metrics" in latest["nodes"]  # the whole project
    assert "model.stir.mart_leaderboards" in latest["nodes"]
    # The run results of the tier's build (not of its cross-owner tests): its own models.
    results = json.loads(objects[prefix + "latest/run_results.json"])
    built = {r["unique_id"] for r in results["results"]}
    assert "model.stir.mart_instagram_account_metrics" in built
    assert results["args"]["selector"] == "tier_core"
    newest = max(k for k in objects if k.startswith(prefix + "history/"))
    newest = newest.rpartition("/")[0] + "/"
    for name in ("manifest.json", "run_results.json"):
        assert objects[newest + name] == objects[prefix + "latest/" + name]
    # dbt inlined the S3 keys in the SQL of the S3-backed staging models and in its --vars:
    # the state others read has them masked there.
    secret = get_settings().s3.secret_access_key.get_secret_value()
    assert all(secret not in (node.get("compiled_code") or "") for node in latest["nodes"].values())
    assert secret.encode() not in objects[prefix + "latest/run_results.json"]
    assert "**********" in json.dumps(results["args"]["vars"])


def _project_with_a_change(home: Path, *, break_a_test: bool = False) -> Path:
    """A copy of the dbt project with CI_STAGING and CI_MART changed (or with CI_STAGING
    breaking its accepted_values test on `platform`); returns the folder to give as
    STIR_PROJECT_DIR."""
    import shutil

    source = Path(__file__).resolve().parent.parent / "transform"
    project = home / "transform"
    shutil.copytree(
        source, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    staging = project / "models/staging/drops" / f"{CI_STAGING}.sql"
    mart = project / "models/marts/core" / f"{CI_MART}.sql"
    if break_a_test:
        text = staging.read_text().replace(
            "toLowCardinality(lower(trimBoth(platform))) as platform",
            "toLowCardinality('tiktok') as platform",
        )
        assert text != staging.read_text()
        staging.write_text(text)
        return home
    staging.write_text(staging.read_text() + "where platform = 'instagram'\n")
    text = mart.read_text().replace(
        "where not is_deleted", "where not is_deleted and profile_id % 2 = 0"
    )
    assert text != mart.read_text()
    mart.write_text(text)
    return home


def _stir_ci(project_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`stir ci ARGS` as CI runs it: a new process with the platform's settings (its
    environment, or the `.env` of the current folder) and the changed project."""
    return subprocess.run(
        [sys.executable, "-m", "stir.cli", "ci", "--id", CI_ID, *args],
        env={**os.environ, "STIR_PROJECT_DIR": str(project_home)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


async def _tables_of(ch: ClickHouse, prefix: str) -> set[tuple[str, str]]:
    rows = await ch.fetch(
        "SELECT database, name FROM system.tables WHERE startsWith(database, {prefix:String})",
        {"prefix": prefix},
    )
    return {(database, name) for database, name in rows}


async def _production_relations(ch: ClickHouse) -> dict[tuple[str, str], tuple]:
    """Each production relation's definition, change time and rows."""
    rows = await ch.fetch(
        "SELECT database, name, create_table_query, metadata_modification_time, total_rows"
        " FROM system.tables WHERE database IN {databases:Array(String)}",
        {"databases": [DATABASE, f"{DATABASE}_staging", f"{DATABASE}_intermediate"]},
    )
    return {(row[0], row[1]): row[2:] for row in rows}


async def test_stir_ci_builds_only_the_change_against_production_and_fails_on_a_test(
    manifest: dict, tmp_path: Path
) -> None:
    """`stir ci` with a staging model and a mart changed builds exactly those and the staging
    model's child into CI databases, reading their unchanged parents from production, which it
    leaves untouched; with --keep the CI databases stay, else they are dropped. A change that
    breaks a test exits 1 naming the test."""
    await ensure_core_served(manifest)
    ci = f"{DATABASE}_ci_{CI_ID}"
    async with ClickHouse(get_settings().clickhouse) as ch:
        before = await _production_relations(ch)
        changed = _stir_ci(_project_with_a_change(tmp_path / "changed"), "--keep")
        assert changed.returncode == 0, changed.stdout + changed.stderr
        try:
            assert await _tables_of(ch, ci) == {
                (f"{ci}_staging", CI_STAGING),
                (f"{ci}_staging", "stg_drops__influencer_list_handles"),
                (ci, CI_MART),
            }
            # The changes took effect, on production's data: the parents CI did not build
            # were read from production's databases.
            grades = await ch.fetch_value(f"SELECT count() FROM {ci}.{CI_MART}")
            assert grades == await ch.fetch_value(
                f"SELECT count() FROM {DATABASE}.mart_instagram_account_metrics"
                " WHERE NOT is_deleted AND profile_id % 2 = 0"
            )
            assert 0 < grades < await ch.fetch_value(f"SELECT count() FROM {DATABASE}.{CI_MART}")
            handles = f"{DATABASE}_staging.stg_drops__influencer_list_handles"
            assert await ch.fetch_value(
                f"SELECT count() FROM {ci}_staging.stg_drops__influencer_list_handles"
            ) == await ch.fetch_value(f"SELECT count() FROM {handles} WHERE platform = 'instagram'")
            assert await ch.fetch_value(
                f"SELECT count() FROM {handles} WHERE platform != 'instagram'"
            ), "the seeded lists have only Instagram handles: the change shows nothing"
        finally:
            for database in {database for database, _ in await _tables_of(ch, ci)} | {ci}:
                await ch.execute(f"DROP DATABASE IF EXISTS {database}")
        assert await _production_relations(ch) == before  # production untouched
    out = changed.stdout
    assert "read from production: mart_instagram_account_metrics" in out
    assert "read from production: stg_coffee__brands" in out  # the handles' relationships test
    assert f"kept: {ci}" in out

    # A change that breaks a test, against a state given as a folder.
    state = tmp_path / "state"
    state.mkdir()
    latest = f"{get_settings().s3.prefix}/dbt-state/core/latest/manifest.json"
    (state / "manifest.json").write_bytes(_state_objects(latest)[latest])
    broken = _stir_ci(_project_with_a_change(tmp_path / "broken", break_a_test=True),
                      "--state", str(state))  # fmt: skip
    assert broken.returncode == 1, broken.stdout + broken.stderr
    test_name = "accepted_values_stg_drops__influencer_lists_platform__instagram__youtube"
    assert f"FAIL test {test_name}" in broken.stdout
    assert test_name in broken.stderr
    async with ClickHouse(get_settings().clickhouse) as ch:
        assert await _tables_of(ch, ci) == set()
        assert not await ch.fetch_value(
            "SELECT count() FROM system.databases WHERE startsWith(name, {ci:String})", {"ci": ci}
        )
