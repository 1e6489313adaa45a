"""The dbt project in transform/: raw data of scale xs from `stir seed`, then `dbt build`, as
the tier flows run it, against the embedded ClickHouse.

Asserts that every model builds and every data and unit test passes, that the staging layer
covers the sources, a few real values of the marts, that entities whose visibility changed (a
hidden subscriber count, likes hidden later, a deleted then restored account) show their newest
state against a recomputation in Python from the raw rows, and that the incremental post facts
stay exact after an increment of late and new rows. dbt writes into databases of its own
(STIR_CLICKHOUSE_DATABASE) and keeps its target and logs in a temporary directory, so the
checkout stays clean.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from conftest import ClickHouseServer, PostgresService, S3Service, isolated_stir_env

from stir.domain.tiers import get_tier
from stir.settings import Settings, get_settings
from stir.sources.seed import Seeder

PROJECT = Path(__file__).resolve().parent.parent / "transform"
DBT = Path(sys.executable).parent / "dbt"
SEED = 42
SCHEMA = "dbt_project_test"  # marts; staging and intermediate models go to <SCHEMA>_<layer>
# The unit tests of transform/models/intermediate/_unit_tests.yml that pin the NULL semantics of
# latest(), latest_before() and last_known() (macros/latest.sql).
NULL_SEMANTICS_UNIT_TESTS = {
    "channel_subscribers_hidden_now_are_null",
    "profile_fields_omitted_keep_their_last_known_value",
    "post_likes_hidden_since_are_null",
    "video_likes_hidden_since_are_null",
    "restored_profile_is_not_deleted",
}
GRADED_METRICS = 19
# The core tier's build as its flow runs it (stir/domain/tiers.py).
CORE_TIER = tuple(get_tier("core").dbt_build_args)
TIERS = {
    "monitoring",
    "core",
    "collections",
    "profile-ranking",
    "post-ranking",
    "leaderboards",
    "growth",
}


@dataclass
class Dbt:
    """The dbt CLI in a subprocess, pointed at the test servers and transform/."""

    env: dict[str, str]
    work: Path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(DBT), *args, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
        result = subprocess.run(
            command, env=self.env, cwd=self.work, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        return result

    def run_results(self) -> list[dict[str, Any]]:
        return json.loads((self.work / "target" / "run_results.json").read_text())["results"]

    def ls(self, *select: str) -> set[str]:
        result = self(
            "ls", "--quiet", "--resource-type", "model", "--output", "name", "--select", *select
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return {line.strip() for line in result.stdout.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def stir_env(
    clickhouse: ClickHouseServer, postgres: PostgresService, s3: S3Service
) -> dict[str, str]:
    """STIR_* variables pointing at the session's servers (PostgreSQL by port: embedded)."""
    return {
        "STIR_CLICKHOUSE_HTTP_PORT": str(clickhouse.http_port),
        "STIR_CLICKHOUSE_NATIVE_PORT": str(clickhouse.native_port),
        "STIR_POSTGRES_PORT": str(postgres.port),
        **s3.env,
    }


@pytest.fixture(scope="module")
def settings(stir_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    patch = isolated_stir_env(tmp_path_factory.mktemp("dbt-project-cwd"), **stir_env)
    try:
        return get_settings()
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def ch(clickhouse: ClickHouseServer) -> Iterator[Client]:
    client = clickhouse_connect.get_client(host=clickhouse.host, port=clickhouse.http_port)
    yield client
    client.close()


@pytest.fixture(scope="module")
def dbt(
    stir_env: dict[str, str],
    settings: Settings,
    ch: Client,
    tmp_path_factory: pytest.TempPathFactory,
) -> Dbt:
    """Raw data of scale xs and a fresh `dbt build` of the whole project."""
    asyncio.run(Seeder(settings).seed("xs", SEED))
    for layer in ("", "_staging", "_intermediate"):
        ch.command(f"DROP DATABASE IF EXISTS {SCHEMA}{layer}")
    work = tmp_path_factory.mktemp("dbt-project")
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("STIR_")}
    env.update(stir_env)
    env.update(
        STIR_CLICKHOUSE_DATABASE=SCHEMA,
        DBT_TARGET_PATH=str(work / "target"),
        DBT_LOG_PATH=str(work / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    runner = Dbt(env, work)
    result = runner("build")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return runner


def built_models(results: list[dict[str, Any]]) -> set[str]:
    return {r["unique_id"].split(".")[-1] for r in results if r["unique_id"].startswith("model.")}


def models_in(layer: str) -> set[str]:
    """The models of a layer as the files on disk name them (one model per .sql file)."""
    return {path.stem for path in (PROJECT / "models" / layer).rglob("*.sql")}


def test_every_model_builds_and_every_test_passes(dbt: Dbt) -> None:
    results = dbt.run_results()
    failed = [(r["unique_id"], r["status"], r["message"]) for r in results]
    # Exposures are nodes of the build too: nothing to run, "no-op".
    failed = [f for f in failed if f[1] not in ("success", "pass", "no-op")]
    assert failed == []
    assert built_models(results) == dbt.ls("*")
    # Every data test and unit test of the project ran (and, above, passed): the build's results
    # name exactly the manifest's tests, so a test dbt skipped or never selected shows here.
    manifest = json.loads((dbt.work / "target" / "manifest.json").read_text())
    declared = {
        uid for uid, node in manifest["nodes"].items() if node["resource_type"] == "test"
    } | set(manifest["unit_tests"])
    ran = {r["unique_id"] for r in results if r["unique_id"].startswith(("test.", "unit_test."))}
    assert ran == declared
    unit_tests = {uid.split(".")[-1] for uid in ran if uid.startswith("unit_test.")}
    assert unit_tests >= NULL_SEMANTICS_UNIT_TESTS


def test_every_model_is_documented_and_tested(dbt: Dbt) -> None:
    manifest = json.loads((dbt.work / "target" / "manifest.json").read_text())
    nodes = manifest["nodes"].values()
    models = {n["unique_id"]: n["name"] for n in nodes if n["resource_type"] == "model"}
    tested = {
        parent for n in nodes if n["resource_type"] == "test" for parent in n["depends_on"]["nodes"]
    }
    assert sorted(name for uid, name in models.items() if uid not in tested) == []
    undocumented = [
        n["name"] for n in nodes if n["resource_type"] == "model" and not n["description"]
    ]
    assert undocumented == []


def test_no_not_null_test_on_a_column_the_contract_makes_non_nullable(dbt: Dbt) -> None:
    # An enforced contract fixes the column's ClickHouse type; a type that is not Nullable cannot
    # hold NULL, so such a test could never fail and would only cost a query on every run.
    manifest = json.loads((dbt.work / "target" / "manifest.json").read_text())
    nodes = manifest["nodes"]
    unfailable = []
    for node in nodes.values():
        test = node.get("test_metadata") or {}
        if node["resource_type"] != "test" or test.get("name") != "not_null":
            continue
        model = nodes[node["depends_on"]["nodes"][0]]
        column = model["columns"].get(test["kwargs"].get("column_name")) or {}
        declared = (column.get("data_type") or "").lower()
        contracted = model["config"].get("contract", {}).get("enforced")
        if contracted and declared and "nullable" not in declared:
            unfailable.append(f"{model['name']}.{column['name']} ({column['data_type']})")
    assert unfailable == []


def test_every_variable_is_read_without_a_default_and_declared_in_dbt_project_yml() -> None:
    """One value per setting: a default at a call site would be a second copy that silently
    differs from dbt_project.yml's once either changes."""
    import yaml

    declared = set(yaml.safe_load((PROJECT / "dbt_project.yml").read_text())["vars"])
    calls = [
        (path.relative_to(PROJECT), call)
        for path in sorted(PROJECT.glob("[mt]*/**/*"))
        if path.suffix in (".sql", ".yml") and "target" not in path.parts
        for call in re.findall(r"\bvar\(([^)]*)\)", path.read_text())
    ]
    assert len(calls) > 50  # the scan found the project's calls
    with_default = [(str(path), call) for path, call in calls if "," in call]
    assert with_default == []
    # (`var(setting)` in a generic test reads the name its caller passes, itself a declared var.)
    names = {call.strip().strip("'\"") for _, call in calls if call.strip()[0] in "'\""}
    assert names <= declared, f"read but not declared: {sorted(names - declared)}"


def test_staging_covers_every_source(dbt: Dbt) -> None:
    staging = dbt.ls("path:models/staging")
    assert staging == models_in("staging")
    sources = {name.split("__")[0].removeprefix("stg_") for name in staging}
    assert sources == {"instagram", "youtube", "beat", "coffee", "shopify", "vidooly", "drops"}


def test_every_mart_has_one_tier_a_contract_and_a_serving_declaration(dbt: Dbt) -> None:
    manifest = json.loads((dbt.work / "target" / "manifest.json").read_text())
    marts = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["path"].startswith("marts/")
    }
    assert set(marts) == models_in("marts") == dbt.ls("path:models/marts")
    tiers_with_a_mart = set()
    for name, node in marts.items():
        tiers = set(node["tags"]) & TIERS
        assert len(tiers) == 1, (name, node["tags"])
        tiers_with_a_mart |= tiers
        assert node["config"]["contract"]["enforced"], name
        serve = node["config"]["meta"]["serve"]
        assert serve["table"], name
        assert serve["keys"], name
        assert set(serve["keys"]) <= set(node["columns"]), name
        assert all(column.get("data_type") for column in node["columns"].values()), name
    assert tiers_with_a_mart == TIERS


def test_every_served_mart_is_read_by_a_declared_exposure(dbt: Dbt) -> None:
    """dbt exposures say which app screen reads each served table."""
    manifest = json.loads((dbt.work / "target" / "manifest.json").read_text())
    served = {
        uid for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and "serve" in node["config"].get("meta", {})
    }  # fmt: skip
    exposed = {uid for e in manifest["exposures"].values() for uid in e["depends_on"]["nodes"]}
    assert sorted(uid.split(".")[-1] for uid in served - exposed) == []
    assert all(e["owner"]["email"] and e["description"] for e in manifest["exposures"].values())


def test_percentile_grades(dbt: Dbt, ch: Client) -> None:
    columns = [
        row[0]
        for row in ch.query(f"DESCRIBE TABLE {SCHEMA}.mart_instagram_account_grades").result_rows
    ]
    grades = [c for c in columns if c.endswith("_grade")]
    percentiles = [c for c in columns if c.endswith("_percentile")]
    assert len(grades) == len(percentiles) == GRADED_METRICS
    assert len(grades) + len(percentiles) == 38
    for grade in ("followers_grade", "engagement_rate_grade"):
        counts = dict(
            ch.query(
                f"SELECT {grade}, count() FROM {SCHEMA}.mart_instagram_account_grades "
                f"WHERE {grade} IS NOT NULL GROUP BY 1"
            ).result_rows
        )
        assert set(counts) == {1, 2, 3, 4, 5}
        # Fifths: every bucket holds about a fifth of the graded accounts.
        total = sum(counts.values())
        assert all(abs(n - total / 5) <= total * 0.02 + 1 for n in counts.values()), counts


def test_leaderboards_cover_28_dimensions(dbt: Dbt, ch: Client) -> None:
    dimensions = ch.command(f"SELECT uniqExact(dimension) FROM {SCHEMA}.mart_leaderboards")
    assert dimensions == 28
    # The top profile of the platform leaderboard is the platform's largest profile.
    top, largest = ch.query(
        f"""
        SELECT
            (SELECT profile_key FROM {SCHEMA}.mart_leaderboards
             WHERE dimension = 'platform' AND dimension_value = 'instagram' AND audience_rank = 1),
            (SELECT argMax(profile_key, audience) FROM {SCHEMA}.mart_profile_metrics
             WHERE platform = 'instagram' AND NOT is_deleted)
        """
    ).result_rows[0]
    assert top == largest


def test_account_metrics_agree_with_the_raw_data(dbt: Dbt, ch: Client) -> None:
    # The latest followers of each account are those of its newest raw snapshot.
    mismatched = ch.command(
        f"""
        SELECT count()
        FROM {SCHEMA}.mart_instagram_account_metrics AS m
        INNER JOIN (
            SELECT profile_id, argMax(followers, scraped_at) AS followers
            FROM raw_instagram.account_snapshots GROUP BY profile_id
        ) AS raw ON raw.profile_id = m.profile_id
        WHERE raw.followers != m.followers
        """
    )
    assert mismatched == 0
    accounts, engaged, median_rate = ch.query(
        f"SELECT count(), countIf(engagement_rate IS NOT NULL), median(engagement_rate) "
        f"FROM {SCHEMA}.mart_instagram_account_metrics"
    ).result_rows[0]
    raw_profiles = ch.command("SELECT uniqExact(profile_id) FROM raw_instagram.account_snapshots")
    assert accounts == raw_profiles
    assert engaged > accounts * 0.8  # private accounts have no posts
    assert 0.005 < median_rate < 0.2
    profiles = ch.command(f"SELECT count() FROM {SCHEMA}.mart_profile_metrics")
    channels = ch.command(f"SELECT count() FROM {SCHEMA}.mart_youtube_channel_metrics")
    assert profiles == accounts + channels


# --- entities whose visibility changed: the newest raw row, recomputed in Python ---------------
#
# The oracle never uses ClickHouse's aggregates: it reads raw rows (key, time, value) and keeps,
# per key, the value of the row with the greatest time (a repeated delivery is byte-identical, so
# ties agree). The seed makes channels hide and show their subscriber count, posts hide their
# likes after publication and accounts come back after a deletion (docs/sources.md).

Row = tuple[Any, Any, Any]


def newest(rows: list[Row], *, known_only: bool = False) -> dict[Any, Any]:
    """Per key, the value of its newest row (of its newest row with a value if `known_only`)."""
    best: dict[Any, tuple[Any, Any]] = {}
    for key, time, value in rows:
        if known_only and value is None:
            continue
        if key not in best or time > best[key][0]:
            best[key] = (time, value)
    return {key: value for key, (_, value) in best.items()}


def became(rows: list[Row], *, hidden: bool) -> set[Any]:
    """The keys whose value is NULL in their newest row but not in every row (`hidden`), or
    present in their newest row but NULL in an earlier one (not `hidden`)."""
    history: dict[Any, list[tuple[Any, bool]]] = {}
    for key, time, value in rows:
        history.setdefault(key, []).append((time, value is None))
    changed = set()
    for key, seen in history.items():
        nulls = [is_null for _, is_null in sorted(seen)]
        if nulls[-1] == hidden and (not hidden) in nulls:
            changed.add(key)
    return changed


def test_a_hidden_subscriber_count_is_null_while_it_is_hidden(dbt: Dbt, ch: Client) -> None:
    rows = ch.query(
        "SELECT channel_id, scraped_at, subscribers FROM raw_youtube.channel_snapshots"
    ).result_rows
    now = newest(rows)
    as_of = max(time for _, time, _ in rows)
    week_before = newest([row for row in rows if row[1] <= as_of - timedelta(days=7)])
    hid, showed = became(rows, hidden=True), became(rows, hidden=False)
    assert hid, "the seed has no channel that hid its count after showing it"
    assert showed, "the seed has no channel that showed its count again"
    mart = {
        channel: (subscribers, hidden)
        for channel, subscribers, hidden in ch.query(
            f"SELECT channel_id, subscribers, hidden_subscriber_count"
            f" FROM {SCHEMA}.mart_youtube_channel_metrics"
        ).result_rows
    }
    assert set(mart) == set(now)
    # Hidden now: NULL, and flagged hidden, not the last count it showed.
    assert {c: mart[c] for c in hid} == {c: (None, True) for c in hid}
    assert {c: mart[c] for c in showed} == {c: (now[c], False) for c in showed}
    assert {c: subscribers for c, (subscribers, _) in mart.items()} == now
    assert [c for c, (subscribers, hidden) in mart.items() if hidden != (subscribers is None)] == []
    # 7 days back: the newest scrape at or before the cut-off, NULL when it was hidden then.
    back = dict(
        ch.query(
            f"SELECT channel_id, subscribers_7d_ago"
            f" FROM {SCHEMA}_intermediate.int_youtube__channels"
        ).result_rows
    )
    assert back == {c: week_before.get(c) for c in now}


def test_likes_hidden_after_publication_are_null(dbt: Dbt, ch: Client) -> None:
    rows = ch.query(
        "SELECT post_id, scraped_at, likes FROM raw_instagram.post_snapshots"
    ).result_rows
    hid = became(rows, hidden=True)
    assert hid, "the seed has no post whose likes were hidden after publication"
    facts = dict(
        ch.query(
            f"SELECT post_id, likes FROM {SCHEMA}_intermediate.int_instagram__post_metrics FINAL"
        ).result_rows
    )
    assert {p: facts[p] for p in hid} == dict.fromkeys(hid)
    assert facts == newest(rows)


def test_a_restored_account_is_not_deleted(dbt: Dbt, ch: Client) -> None:
    rows = ch.query(
        "SELECT toUInt64(target_id), started_at, error_class FROM raw_beat.scrape_requests"
        " WHERE source = 'instagram' AND endpoint = 'profile'"
    ).result_rows
    outcome = newest(rows)
    was_deleted = {profile for profile, _, error in rows if error == "NotFound"}
    restored = {p for p in was_deleted if outcome[p] != "NotFound"}
    assert restored, "the seed has no account restored after a deletion"
    assert was_deleted - restored, "the seed has no account deleted for good"
    accounts = dict(
        ch.query(
            f"SELECT toUInt64(profile_id), is_deleted FROM {SCHEMA}.mart_instagram_account_metrics"
        ).result_rows
    )
    assert restored <= set(accounts)
    assert {p for p, deleted in accounts.items() if deleted} == {
        p for p in accounts if outcome.get(p) == "NotFound"
    }


def test_fields_the_source_omits_keep_their_last_known_value(dbt: Dbt, ch: Client) -> None:
    rows = ch.query(
        "SELECT profile_id, scraped_at, category, country FROM raw_instagram.account_snapshots"
    ).result_rows
    categories = [(profile, time, category) for profile, time, category, _ in rows]
    countries = [(profile, time, country) for profile, time, _, country in rows]
    omitted = became(categories, hidden=True)
    assert omitted, "no profile's newest scrape omits a category it had"
    profiles = {
        profile: (category, country)
        for profile, category, country in ch.query(
            f"SELECT profile_id, source_category, country"
            f" FROM {SCHEMA}_intermediate.int_instagram__profiles"
        ).result_rows
    }
    known_category = newest(categories, known_only=True)
    known_country = newest(countries, known_only=True)
    assert all(known_category[p] is not None for p in omitted)
    assert {p: category for p, (category, _) in profiles.items()} == {
        p: known_category.get(p) for p in profiles
    }
    assert {p: country for p, (_, country) in profiles.items()} == {
        p: known_country.get(p) for p in profiles
    }


def test_incremental_post_facts_stay_exact_after_an_increment(
    dbt: Dbt, settings: Settings, ch: Client
) -> None:
    before = ch.command(f"SELECT count() FROM {SCHEMA}_intermediate.int_instagram__post_metrics")
    asyncio.run(Seeder(settings).increment())
    result = dbt(*CORE_TIER)
    assert result.returncode == 0, result.stdout[-4000:]
    after = ch.command(f"SELECT count() FROM {SCHEMA}_intermediate.int_instagram__post_metrics")
    assert after > before  # appended, not rebuilt
    # assert_post_metrics_match_snapshots compares it with a full recompute from staging: a test
    # that reads another owner's models, which the tier runs after its build.
    manifest = json.loads((dbt.work / "target" / "manifest.json").read_text())
    cross = [uid.split(".")[2] for uid in get_tier("core").cross_owner_tests(manifest)]
    assert "assert_post_metrics_match_snapshots" in cross
    tested = dbt("test", "--select", *cross)
    assert tested.returncode == 0, tested.stdout[-4000:]
    assert "assert_post_metrics_match_snapshots" in {
        r["unique_id"].split(".")[2] for r in dbt.run_results()
    }


def test_incremental_post_facts_rebuild_when_the_source_is_replaced(
    dbt: Dbt, settings: Settings, ch: Client
) -> None:
    # A base seed rewrites the raw history (as a restore would): the newest raw row is now older
    # than the facts' watermark, and the next run must rebuild instead of keeping stale posts.
    asyncio.run(Seeder(settings).seed("xs", SEED + 1))
    result = dbt(*CORE_TIER)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "rebuilding it" in result.stdout
    facts = ch.command(
        f"SELECT count() FROM {SCHEMA}_intermediate.int_instagram__post_metrics FINAL"
    )
    posts = ch.command("SELECT uniqExact(post_id) FROM raw_instagram.post_snapshots")
    assert facts == posts


# The core tier's per-key incremental models, and the columns whose values are the run's rather
# than the data's (a full rebuild stamps every row with the newest; an incremental run only the
# rows it recomputed): readers take the table's newest as_of.
CORE_INCREMENTAL = {
    "int_instagram__profiles": {"as_of", "requests_ingested_at"},
    "int_instagram__profile_post_stats": {"as_of"},
    "int_youtube__channels": {"as_of"},
    "int_youtube__video_metrics": set(),
}
CORE_MARTS = (
    "mart_instagram_account_metrics",
    "mart_instagram_account_grades",
    "mart_youtube_channel_metrics",
    "mart_profile_metrics",
)


@dataclass
class RowCountWatch:
    """Counts a table's rows over and over from another connection while a build runs: what a
    reader in another tier would have seen."""

    clickhouse: ClickHouseServer
    table: str
    counts: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RowCountWatch:
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _watch(self) -> None:
        client = clickhouse_connect.get_client(
            host=self.clickhouse.host, port=self.clickhouse.http_port
        )
        try:
            while not self.stop.is_set():
                self.counts.append(client.command(f"SELECT count() FROM {self.table}"))
                self.stop.wait(0.01)
        finally:
            client.close()


def test_core_tier_after_increments_equals_a_full_rebuild_and_never_shows_a_half(
    dbt: Dbt, settings: Settings, ch: Client, clickhouse: ClickHouseServer
) -> None:
    # Two increments, each followed by the tier's incremental run, as the schedule runs them;
    # then every core mart and incremental model, all columns of all rows, against a
    # --full-refresh of the same data. Meanwhile a reader counts the profiles: an increment only
    # adds profiles, so any count below the one before means it saw rows replaced in place.
    profiles = f"{SCHEMA}_intermediate.int_instagram__profiles"
    for _ in range(2):
        asyncio.run(Seeder(settings).increment())
        before = ch.command(f"SELECT count() FROM {profiles}")
        with RowCountWatch(clickhouse, profiles) as watch:
            result = dbt(*CORE_TIER)
        assert result.returncode == 0, result.stdout[-4000:]
        assert "rebuilding it" not in result.stdout  # incremental runs, not a rewind's rebuild
        after = ch.command(f"SELECT count() FROM {profiles}")
        assert len(watch.counts) > 10
        assert min(watch.counts) == before
        assert set(watch.counts) <= {before, after}
        results = dbt.run_results()
        compiled = {r["unique_id"].split(".")[-1]: r.get("compiled_code") or "" for r in results}
        # a scheduled build runs the data tests, not the unit tests (fixed rows, run in CI)
        assert any(r["unique_id"].startswith("test.") for r in results)
        assert not any(r["unique_id"].startswith("unit_test.") for r in results)
        for model in CORE_INCREMENTAL:
            assert "touched" in compiled[model], f"{model} did not run incrementally"
    tables = {f"{SCHEMA}_intermediate.{model}": skip for model, skip in CORE_INCREMENTAL.items()}
    tables.update({f"{SCHEMA}.{mart}": set() for mart in CORE_MARTS})
    copies = f"{SCHEMA}_incremental_copies"
    ch.command(f"DROP DATABASE IF EXISTS {copies}")
    ch.command(f"CREATE DATABASE {copies}")
    try:
        columns: dict[str, str] = {}
        for table, skip in tables.items():
            database, name = table.split(".")
            names = ch.query(
                "SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String}"
                " ORDER BY position",
                parameters={"d": database, "t": name},
            ).result_columns[0]
            columns[table] = ", ".join(f"`{c}`" for c in names if c not in skip)
            ch.command(
                f"CREATE TABLE {copies}.{name} ENGINE = MergeTree ORDER BY tuple() "
                f"AS SELECT {columns[table]} FROM {table}"
            )
        rebuilt = dbt(*CORE_TIER, "--full-refresh")
        assert rebuilt.returncode == 0, rebuilt.stdout[-4000:]
        for table in tables:
            name = table.split(".")[1]
            incremental, full = f"{copies}.{name}", f"SELECT {columns[table]} FROM {table}"
            rows = ch.command(f"SELECT count() FROM {incremental}")
            assert rows > 0
            assert ch.command(f"SELECT count() FROM {table}") == rows, table
            for left, right in ((f"SELECT * FROM {incremental}", full),
                                (full, f"SELECT * FROM {incremental}")):  # fmt: skip
                differing = ch.command(f"SELECT count() FROM ({left} EXCEPT ALL {right})")
                assert differing == 0, f"{table}: {differing} rows differ from a full rebuild"
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {copies}")


def test_docs_show_the_lineage_from_sources_to_every_served_mart(dbt: Dbt) -> None:
    docs = dbt("docs", "generate")
    assert docs.returncode == 0, docs.stdout[-4000:]
    target = dbt.work / "target"
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    assert not catalog.get("errors")
    parents: dict[str, list[str]] = manifest["parent_map"]

    def sources_of(node: str) -> set[str]:
        found: set[str] = set()
        stack, seen = [node], set()
        while stack:
            current = stack.pop()
            for parent in parents.get(current, []):
                if parent.startswith("source."):
                    found.add(parent)
                elif parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return found

    served = [
        unique_id
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["config"].get("meta", {}).get("serve")
    ]
    assert len(served) >= 7  # one per tier at least
    for unique_id in served:
        assert unique_id in catalog["nodes"], f"{unique_id} missing from the docs catalog"
        assert sources_of(unique_id), f"{unique_id} has no lineage back to a source"
