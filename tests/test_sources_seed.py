"""The raw sources and `stir seed`: schemas, invariants of the generated data, determinism,
increments, and clear errors for bad input. Everything runs at scale xs against real servers:
an embedded ClickHouse of this module's own (with its native port), the session's PostgreSQL and
S3."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import boto3
import pytest
import pytest_asyncio
from conftest import (
    PostgresService,
    S3Service,
    free_port,
    isolated_stir_env,
    start_clickhouse,
    stop_process,
)
from typer.testing import CliRunner

from stir.cli import app
from stir.clickhouse import ClickHouse
from stir.settings import Settings, get_settings
from stir.sources.seed import COFFEE_TABLES, RAW_DATABASES, Seeder, SeedError

SEED = 7
RAW_TABLES = {
    "raw_instagram": {"account_snapshots", "posts", "post_snapshots", "comments"},
    "raw_youtube": {"channels", "channel_snapshots", "videos", "video_snapshots"},
    "raw_beat": {"scrape_requests"},
    "raw_coffee": set(COFFEE_TABLES),
    "raw_shopify": {"orders", "order_line_items"},
    "raw_vidooly": {"channel_estimates"},
}
# The key each table is unique on once repeated deliveries and older versions collapse.
KEYS = {
    "raw_instagram.account_snapshots": "profile_id, scraped_at",
    "raw_instagram.posts": "post_id",
    "raw_instagram.post_snapshots": "post_id, scraped_at",
    "raw_instagram.comments": "comment_id",
    "raw_youtube.channels": "channel_id",
    "raw_youtube.channel_snapshots": "channel_id, scraped_at",
    "raw_youtube.videos": "video_id",
    "raw_youtube.video_snapshots": "video_id, scraped_at",
    "raw_beat.scrape_requests": "request_id",
    "raw_shopify.orders": "order_id",
    "raw_shopify.order_line_items": "line_item_id",
    "raw_vidooly.channel_estimates": "channel_id",
    **{f"raw_coffee.{t}": "id" for t in COFFEE_TABLES},
}


# --- servers and settings -------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An embedded ClickHouse for this module alone: seeding replaces whole databases, which
    other modules' tests must not see."""
    server = start_clickhouse(tmp_path_factory.mktemp("seed-clickhouse") / "data")
    try:
        yield {
            "STIR_CLICKHOUSE_HTTP_PORT": str(server.http_port),
            "STIR_CLICKHOUSE_NATIVE_PORT": str(server.native_port),
        }
    finally:
        stop_process(server.process)


@pytest.fixture(scope="module")
def seed_env(
    seed_clickhouse: dict[str, str], postgres: PostgresService, s3: S3Service
) -> dict[str, str]:
    """STIR_* variables pointing at this module's servers. PostgreSQL is given by port (the
    embedded one), not by DSN, so `stir seed` needs no --force."""
    return {**seed_clickhouse, **s3.env, "STIR_POSTGRES_PORT": str(postgres.port)}


def settings_for(env: dict[str, str], cwd: Path) -> Settings:
    patch = isolated_stir_env(cwd, **env)
    try:
        return get_settings()
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def seed_settings(seed_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings_for(seed_env, tmp_path_factory.mktemp("seed-cwd"))


@pytest_asyncio.fixture(loop_scope="session")
async def ch(seed_settings: Settings) -> AsyncIterator[ClickHouse]:
    async with ClickHouse(seed_settings.clickhouse) as client:
        yield client


async def ensure_base(settings: Settings, ch: ClickHouse) -> None:
    """The base seed SEED at scale xs, and nothing else (re-seeded when a test changed it)."""
    exists = await ch.fetch_value(
        "SELECT count() FROM system.tables WHERE database = 'stir_seed' AND name = 'batches'"
    )
    batches = await ch.fetch("SELECT batch, seed, scale FROM stir_seed.batches") if exists else []
    if batches != [(1, SEED, "xs")]:
        await Seeder(settings).seed("xs", SEED)


@pytest_asyncio.fixture(loop_scope="session")
async def seeded(seed_settings: Settings, ch: ClickHouse) -> ClickHouse:
    await ensure_base(seed_settings, ch)
    return ch


async def value(ch: ClickHouse, query: str) -> object:
    return await ch.fetch_value(query)


# --- schema ---------------------------------------------------------------------------------


async def test_schema_is_applied_idempotently(seed_settings: Settings, ch: ClickHouse) -> None:
    seeder = Seeder(seed_settings)
    await seeder.apply_schema()
    await seeder.apply_schema()
    rows = await ch.fetch(
        "SELECT database, name, engine FROM system.tables WHERE database IN {dbs:Array(String)}",
        {"dbs": list(RAW_DATABASES)},
    )
    found: dict[str, set[str]] = {}
    for database, name, _ in rows:
        found.setdefault(database, set()).add(name)
    assert found == RAW_TABLES
    engines = {f"{db}.{name}": engine for db, name, engine in rows}
    assert engines["raw_beat.scrape_requests"] == "MergeTree"
    assert engines["raw_instagram.account_snapshots"] == "ReplacingMergeTree"
    conn = await asyncpg.connect(seed_settings.postgres.effective_dsn())
    try:
        tables = {
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'coffee'"
            )
        }
        foreign_keys = await conn.fetchval(
            "SELECT count(*) FROM information_schema.table_constraints"
            " WHERE table_schema = 'coffee' AND constraint_type = 'FOREIGN KEY'"
        )
    finally:
        await conn.close()
    assert tables == set(COFFEE_TABLES)
    assert foreign_keys >= 6


# --- invariants of the generated data -------------------------------------------------------


@pytest.mark.parametrize("table", sorted(KEYS))
async def test_keys_are_unique_once_collapsed(seeded: ClickHouse, table: str) -> None:
    key = KEYS[table]
    final = "" if table == "raw_beat.scrape_requests" else "FINAL"
    total, distinct = (
        await seeded.fetch(f"SELECT count(), uniqExact({key}) FROM {table} {final}")
    )[0]
    assert total > 0, f"{table} is empty"
    assert total == distinct, f"{table}: {total - distinct} duplicate keys after collapsing"


async def test_repeated_deliveries_and_late_rows_are_in_the_raw_layer(seeded: ClickHouse) -> None:
    stored = await value(seeded, "SELECT count() FROM raw_instagram.account_snapshots")
    collapsed = await value(seeded, "SELECT count() FROM raw_instagram.account_snapshots FINAL")
    assert 0.005 * collapsed < stored - collapsed < 0.05 * collapsed
    late_share = await value(
        seeded,
        "SELECT avg(_ingested_at - scraped_at > 3600) FROM raw_instagram.account_snapshots",
    )
    assert 0.01 < late_share < 0.06
    # Shopify orders: each update is a new version of the order.
    versions = await value(seeded, "SELECT count() / uniqExact(order_id) FROM raw_shopify.orders")
    assert 1.5 < versions < 2.5


async def test_scraped_data_matches_beat_requests(seeded: ClickHouse) -> None:
    checks = {
        "account snapshot without its successful profile request": """
            SELECT count() FROM raw_instagram.account_snapshots AS s
            LEFT ANTI JOIN (SELECT request_id, target_id FROM raw_beat.scrape_requests
                            WHERE endpoint = 'profile' AND status = 'success') AS r
                ON r.request_id = s.request_id AND r.target_id = toString(s.profile_id)""",
        "post snapshot without its successful profile request": """
            SELECT count() FROM raw_instagram.post_snapshots AS s
            LEFT ANTI JOIN (SELECT request_id FROM raw_beat.scrape_requests
                            WHERE endpoint = 'profile' AND status = 'success') AS r
                ON r.request_id = s.request_id""",
        "post snapshot of an unknown post": """
            SELECT count() FROM raw_instagram.post_snapshots AS s
            LEFT ANTI JOIN raw_instagram.posts AS p ON p.post_id = s.post_id""",
        "post snapshot from before the post was published": """
            SELECT count() FROM raw_instagram.post_snapshots AS s
            INNER JOIN raw_instagram.posts AS p ON p.post_id = s.post_id
            WHERE s.scraped_at < p.posted_at""",
        "comment without its successful comments request": """
            SELECT count() FROM raw_instagram.comments AS c
            LEFT ANTI JOIN (SELECT request_id, target_id FROM raw_beat.scrape_requests
                            WHERE endpoint = 'comments' AND status = 'success') AS r
                ON r.request_id = c.request_id AND r.target_id = toString(c.post_id)""",
        # A comment fetch can land before its post's (late) profile delivery: only the
        # comments older than the longest delivery delay must find their post.
        "comment on an unknown post or written before it": """
            SELECT count() FROM raw_instagram.comments AS c
            LEFT JOIN raw_instagram.posts AS p ON p.post_id = c.post_id
            WHERE c.scraped_at < (SELECT max(scraped_at) - INTERVAL 3 DAY
                                  FROM raw_instagram.comments)
              AND (p.post_id = 0 OR c.commented_at < p.posted_at
                   OR c.commented_at > c.scraped_at)""",
        "channel snapshot without its successful channel request": """
            SELECT count() FROM raw_youtube.channel_snapshots AS s
            LEFT ANTI JOIN (SELECT request_id, target_id FROM raw_beat.scrape_requests
                            WHERE endpoint = 'channel' AND status = 'success') AS r
                ON r.request_id = s.request_id AND r.target_id = s.channel_id""",
        "video snapshot of an unknown video": """
            SELECT count() FROM raw_youtube.video_snapshots AS s
            LEFT ANTI JOIN raw_youtube.videos AS v ON v.video_id = s.video_id""",
        "video of an unknown channel": """
            SELECT count() FROM raw_youtube.videos AS v
            LEFT ANTI JOIN raw_youtube.channels AS c ON c.channel_id = v.channel_id""",
        "posts shown by a private profile": """
            SELECT count() FROM raw_instagram.post_snapshots AS s
            INNER JOIN raw_instagram.account_snapshots AS a
                ON a.request_id = s.request_id AND a.profile_id = s.profile_id
            WHERE a.is_private""",
        # One deletion per account: its 404s form one run (a restored account succeeds again
        # only after its last 404).
        "a successful request while the account was deleted": """
            SELECT count() FROM raw_beat.scrape_requests AS r
            INNER JOIN (SELECT target_id, min(started_at) AS gone, max(started_at) AS last_404
                        FROM raw_beat.scrape_requests
                        WHERE error_class = 'NotFound' GROUP BY target_id) AS d
                ON d.target_id = r.target_id
            WHERE r.endpoint = 'profile' AND r.status = 'success'
              AND r.started_at > d.gone AND r.started_at < d.last_404""",
    }
    problems = {what: await value(seeded, query) for what, query in checks.items()}
    assert problems == dict.fromkeys(checks, 0)


async def test_visibility_changes_over_time(seeded: ClickHouse) -> None:
    """Entities change what they show: channels hide their subscriber count (some show it
    again), posts get their likes hidden after publication, deleted accounts come back. The
    changes are transitions between an entity's consecutive scrapes, so the newest row of an
    entity can be NULL where an older one was not."""
    # Per entity, its NULL flags in scrape order, and how often they switch each way.
    transitions = """
        SELECT
            countIf(arrayExists((h, i) -> i > 1 AND h AND NOT hidden[i - 1],
                                hidden, arrayEnumerate(hidden))) AS hid,
            countIf(arrayExists((h, i) -> i > 1 AND NOT h AND hidden[i - 1],
                                hidden, arrayEnumerate(hidden))) AS showed
        FROM (SELECT {key}, arrayMap(x -> x.2, arraySort(groupArray(({time}, {value} IS NULL))))
                  AS hidden
              FROM {table} FINAL GROUP BY {key})"""
    channels_hid, channels_showed = (
        await seeded.fetch(
            transitions.format(
                key="channel_id", time="scraped_at", value="subscribers",
                table="raw_youtube.channel_snapshots",
            )
        )
    )[0]  # fmt: skip
    posts_hid, posts_showed = (
        await seeded.fetch(
            transitions.format(
                key="post_id", time="scraped_at", value="likes",
                table="raw_instagram.post_snapshots",
            )
        )
    )[0]  # fmt: skip
    restored = await value(
        seeded,
        """SELECT count() FROM
           (SELECT target_id, max(started_at) AS last_404 FROM raw_beat.scrape_requests
            WHERE error_class = 'NotFound' GROUP BY target_id) AS d
           INNER JOIN
           (SELECT target_id, max(started_at) AS last_success FROM raw_beat.scrape_requests
            WHERE source = 'instagram' AND endpoint = 'profile' AND status = 'success'
            GROUP BY target_id) AS s ON s.target_id = d.target_id
           WHERE s.last_success > d.last_404""",
    )
    assert channels_hid > 0  # a channel hid a count it had shown
    assert channels_showed > 0  # ... and one showed it again
    assert posts_hid > 0  # likes hidden after publication
    assert posts_showed == 0  # hidden likes stay hidden
    assert restored > 0  # an account deleted, then back
    # A channel's metadata says whether its count is hidden at its newest scrape.
    disagreeing = await value(
        seeded,
        """SELECT count() FROM
           (SELECT channel_id, argMax(hidden_subscriber_count, scraped_at) AS flagged
            FROM raw_youtube.channels GROUP BY channel_id) AS c
           INNER JOIN
           (SELECT channel_id, argMax(tuple(subscribers), scraped_at).1 IS NULL AS hidden
            FROM raw_youtube.channel_snapshots GROUP BY channel_id) AS s USING channel_id
           WHERE c.flagged != s.hidden""",
    )
    assert disagreeing == 0


async def test_coffee_is_consistent_with_scrapes_and_postgres(
    seeded: ClickHouse, seed_settings: Settings
) -> None:
    # Every tracked profile is a scraped profile or channel.
    unknown = await value(
        seeded,
        """SELECT count() FROM raw_coffee.tracked_profiles AS t
           LEFT ANTI JOIN (SELECT DISTINCT 'instagram' AS platform, toString(profile_id) AS id
                           FROM raw_instagram.account_snapshots
                           UNION ALL
                           SELECT 'youtube', channel_id FROM raw_youtube.channels) AS s
               ON s.platform = t.platform AND s.id = t.platform_id""",
    )
    assert unknown == 0
    counts = {
        t: await value(seeded, f"SELECT count() FROM raw_coffee.{t} FINAL") for t in COFFEE_TABLES
    }
    conn = await asyncpg.connect(seed_settings.postgres.effective_dsn())
    try:
        pg_counts = {
            t: await conn.fetchval(f"SELECT count(*) FROM coffee.{t}") for t in COFFEE_TABLES
        }
        # The identity sequences were moved past the copied ids: the app can insert.
        new_id = await conn.fetchval(
            "INSERT INTO coffee.brands"
            " (name, slug, industry, country, plan, created_at, updated_at)"
            " VALUES ('New', 'new-brand-test', 'food', 'IN', 'starter', now(), now()) RETURNING id"
        )
        await conn.execute("DELETE FROM coffee.brands WHERE id = $1", new_id)
    finally:
        await conn.close()
    assert pg_counts == counts
    assert all(counts.values())
    assert new_id > counts["brands"]


async def test_orders_are_attributable_to_collection_members(seeded: ClickHouse) -> None:
    unattributable = await value(
        seeded,
        """SELECT count() FROM
           (SELECT shop_domain, arrayJoin(discount_codes) AS code
            FROM raw_shopify.orders FINAL) AS o
           LEFT ANTI JOIN
           (SELECT b.shopify_domain AS shop_domain, m.discount_code AS code
            FROM raw_coffee.collection_members AS m
            INNER JOIN raw_coffee.collections AS c ON c.id = m.collection_id
            INNER JOIN raw_coffee.brands AS b ON b.id = c.brand_id
            WHERE m.discount_code IS NOT NULL) AS codes
               ON codes.shop_domain = o.shop_domain AND codes.code = o.code
           WHERE o.code != 'WELCOME10'""",
    )
    assert unattributable == 0
    share = await value(
        seeded,
        "SELECT avg(length(discount_codes) > 0 AND discount_codes[1] != 'WELCOME10')"
        " FROM raw_shopify.orders FINAL",
    )
    assert 0.05 < share < 0.4
    # Order totals add up from their line items.
    mismatched = await value(
        seeded,
        """SELECT count() FROM raw_shopify.orders AS o FINAL
           INNER JOIN (SELECT order_id, sum(price * quantity) AS subtotal
                       FROM raw_shopify.order_line_items FINAL GROUP BY order_id) AS l
               ON l.order_id = o.order_id
           WHERE o.subtotal_price != l.subtotal""",
    )
    assert mismatched == 0


async def test_distributions_are_within_bounds(seeded: ClickHouse) -> None:
    latest = """SELECT profile_id, argMax(followers, scraped_at) AS followers,
                       argMax(country, scraped_at) AS country
                FROM raw_instagram.account_snapshots GROUP BY profile_id"""
    median, p99, top = (
        await seeded.fetch(
            f"SELECT median(followers), quantile(0.99)(followers), max(followers) FROM ({latest})"
        )
    )[0]
    assert 2_000 < median < 10_000
    assert p99 > 20 * median  # a heavy tail
    assert top < 700e6
    india = await value(
        seeded, f"SELECT avg(country = 'IN') FROM ({latest}) WHERE country IS NOT NULL"
    )
    assert 0.3 < india < 0.55
    # Engagement falls with audience size.
    small, large = (
        await seeded.fetch(
            """SELECT medianIf(er, followers < 10000), medianIf(er, followers >= 100000)
               FROM (SELECT s.profile_id, avg(s.likes / a.followers) AS er,
                            any(a.followers) AS followers
                     FROM raw_instagram.post_snapshots AS s
                     INNER JOIN raw_instagram.account_snapshots AS a
                         ON a.request_id = s.request_id AND a.profile_id = s.profile_id
                     INNER JOIN raw_instagram.posts AS p ON p.post_id = s.post_id
                     WHERE s.likes IS NOT NULL AND s.scraped_at - p.posted_at > 3 * 86400
                     GROUP BY s.profile_id)"""
        )
    )[0]
    assert small > 1.5 * large
    # Many snapshots per profile over 90 days, with growth and decline.
    per_profile, grew, shrank = (
        await seeded.fetch(
            """SELECT avg(n), avg(last > first), avg(last < first) FROM
               (SELECT count() AS n, argMin(followers, scraped_at) AS first,
                       argMax(followers, scraped_at) AS last
                FROM raw_instagram.account_snapshots FINAL GROUP BY profile_id)"""
        )
    )[0]
    assert per_profile >= 10
    assert grew > 0.3
    assert shrank > 0.2
    # A share of failed scrapes per source, and deleted accounts answering 404.
    failures = dict(
        await seeded.fetch(
            "SELECT source, avg(status = 'failure') FROM raw_beat.scrape_requests GROUP BY source"
        )
    )
    assert 0.04 < failures["instagram"] < 0.2
    assert 0.005 < failures["youtube"] < 0.05
    assert (
        await value(seeded, "SELECT count() FROM raw_beat.scrape_requests WHERE http_status = 404")
        > 0
    )
    # Nulls where the APIs leave fields out.
    null_names = await value(
        seeded, "SELECT avg(full_name IS NULL) FROM raw_instagram.account_snapshots"
    )
    assert 0.03 < null_names < 0.2
    assert await value(
        seeded, "SELECT countIf(views IS NOT NULL) FROM raw_instagram.posts AS p"
        " INNER JOIN raw_instagram.post_snapshots AS s ON s.post_id = p.post_id"
        " WHERE p.media_type IN ('image', 'carousel')"
    ) == 0  # fmt: skip
    assert (
        await value(
            seeded, "SELECT countIf(subscribers IS NULL) FROM raw_youtube.channel_snapshots"
        )
        > 0
    )
    assert (
        await value(seeded, "SELECT countIf(is_private) FROM raw_instagram.account_snapshots") > 0
    )


async def test_s3_drops_are_readable_through_clickhouse(
    seeded: ClickHouse, seed_settings: Settings
) -> None:
    from stir.sources.seed import drops_url

    s3 = seed_settings.s3
    credentials = {
        "key": s3.access_key_id.get_secret_value(),
        "secret": s3.secret_access_key.get_secret_value(),
    }
    base = drops_url(seed_settings)
    categories = await seeded.fetch(
        "SELECT source, count()"
        " FROM s3({url:String}, {key:String}, {secret:String}, 'CSVWithNames')"
        " GROUP BY source ORDER BY source",
        {"url": f"{base}/taxonomy/categories.csv", **credentials},
    )
    assert dict(categories) == {"instagram": 20, "vidooly": 12, "youtube": 15}
    files, handles, known = (
        await seeded.fetch(
            """SELECT uniqExact(_file), count(),
                      countIf(lower(trim(BOTH ' ' FROM replaceRegexpAll(handle,
                          '^@|^https://www\\\\.(instagram|youtube)\\\\.com/|/$', ''))) IN
                          (SELECT lower(replaceAll(username, '@', ''))
                           FROM raw_coffee.tracked_profiles))
               FROM s3({url:String}, {key:String}, {secret:String}, 'CSVWithNames')""",
            {"url": f"{base}/influencer_lists/*.csv", **credentials},
        )
    )[0]
    assert files >= 2
    assert 0.5 < known / handles < 1  # mostly tracked profiles, a few unknown handles


# --- determinism and increments -------------------------------------------------------------


async def fingerprint(ch: ClickHouse, settings: Settings) -> dict[str, tuple[int, int]]:
    """Row count and an order-independent hash of every raw table and Coffee in PostgreSQL."""
    result: dict[str, tuple[int, int]] = {}
    for database, tables in RAW_TABLES.items():
        for table in sorted(tables):
            count, digest = (
                await ch.fetch(f"SELECT count(), groupBitXor(sipHash64(*)) FROM {database}.{table}")
            )[0]
            result[f"{database}.{table}"] = (count, digest)
    conn = await asyncpg.connect(settings.postgres.effective_dsn())
    try:
        for table in COFFEE_TABLES:
            count, digest = await conn.fetchrow(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY id), ''))"
                f" FROM coffee.{table} AS t"
            )
            result[f"coffee.{table}"] = (count, int(digest[:15], 16))
    finally:
        await conn.close()
    return result


async def test_the_same_seed_gives_identical_data(seed_settings: Settings, ch: ClickHouse) -> None:
    await ensure_base(seed_settings, ch)
    first = await fingerprint(ch, seed_settings)
    seeder = Seeder(seed_settings)
    await seeder.seed("xs", SEED + 1)
    other = await fingerprint(ch, seed_settings)
    await seeder.seed("xs", SEED)
    again = await fingerprint(ch, seed_settings)
    assert again == first
    differing = [name for name in first if first[name] != other[name]]
    assert len(differing) >= len(first) - 2  # a different seed changes (nearly) everything


async def test_increment_appends_newer_rows_and_changes_latest_state(
    seed_settings: Settings, ch: ClickHouse
) -> None:
    await ensure_base(seed_settings, ch)
    latest = """SELECT profile_id, argMax(followers, scraped_at), max(scraped_at)
                FROM raw_instagram.account_snapshots GROUP BY profile_id ORDER BY profile_id"""
    before_latest = await ch.fetch(latest)
    before_max = await value(ch, "SELECT max(scraped_at) FROM raw_instagram.account_snapshots")
    seeder = Seeder(seed_settings)
    before = await seeder.table_rows(ch)

    result = await seeder.increment(timedelta(hours=6))

    assert result.batch == 2
    assert result.window_hi - result.window_lo == timedelta(hours=6)
    after = await seeder.table_rows(ch)
    for table in (
        "raw_beat.scrape_requests",
        "raw_instagram.account_snapshots",
        "raw_instagram.post_snapshots",
        "raw_youtube.channel_snapshots",
        "raw_shopify.orders",
    ):
        assert after[table] > before[table], f"{table} got no new rows"
    assert after["raw_coffee.brands"] == before["raw_coffee.brands"]
    new_rows, newer, in_window = (
        await ch.fetch(
            """SELECT count(), countIf(scraped_at > {before:DateTime64(3)}),
                      countIf(_ingested_at > {lo:DateTime64(3)}
                              AND _ingested_at <= {hi:DateTime64(3)})
               FROM raw_instagram.account_snapshots WHERE _ingested_at > {lo:DateTime64(3)}""",
            {"before": before_max, "lo": result.window_lo, "hi": result.window_hi},
        )
    )[0]
    assert new_rows == in_window > 0
    assert newer > 0
    # Posts seen again come back as newer versions of the same post.
    assert await value(ch, "SELECT count() - uniqExact(post_id) FROM raw_instagram.posts") > 0
    after_latest = await ch.fetch(latest)
    changed = [a for a, b in zip(before_latest, after_latest, strict=True) if a != b]
    assert changed, "no profile's latest state changed"

    second = await seeder.increment(timedelta(hours=6))
    assert second.batch == 3
    assert second.window_lo == result.window_hi
    # Leave the module's data as the base seed for the tests that follow.
    await seeder.seed("xs", SEED)


async def test_increments_are_deterministic(seed_settings: Settings, ch: ClickHouse) -> None:
    seeder = Seeder(seed_settings)
    prints = []
    for _ in range(2):
        await seeder.seed("xs", SEED)
        await seeder.increment(timedelta(hours=3))
        await seeder.increment(timedelta(hours=3))
        prints.append(await fingerprint(ch, seed_settings))
    assert prints[0] == prints[1]
    await seeder.seed("xs", SEED)


# --- the command and its errors -------------------------------------------------------------


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    patch = isolated_stir_env(cwd, **env)
    try:
        result = CliRunner().invoke(app, args)
    finally:
        patch.undo()
    return result.exit_code, result.output


def test_cli_seeds_and_increments(seed_env: dict[str, str], tmp_path: Path) -> None:
    code, output = run_cli(["seed", "--scale", "xs", "--seed", str(SEED)], seed_env, tmp_path)
    assert code == 0, output
    # Progress (piped: one line when the seed is done), the steps in the log file it names.
    assert re.search(r"^seed +done .* step 12/12", output, re.M), output
    log_file = Path(re.search(r"^logs: (.+)$", output, re.M).group(1))
    logged = (log_file if log_file.is_absolute() else tmp_path / log_file).read_text()
    assert "seed step 12/12 state: done in" in logged
    assert "raw_instagram.post_snapshots" in output
    assert "rows/s" in output
    code, output = run_cli(["seed", "--increment"], seed_env, tmp_path)
    assert code == 0, output
    assert "batch 2: seed 7, scale xs" in output
    code, output = run_cli(["seed", "--schema-only"], seed_env, tmp_path)
    assert code == 0, output
    assert "raw schemas applied" in output
    asyncio.run(Seeder(settings_for(seed_env, tmp_path)).seed("xs", SEED))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["seed", "--scale", "xl"], "'xl' is not one of"),
        (["seed", "--seed", "-1"], "greater than or equal to 0"),
        (["seed", "--increment", "--schema-only"], "exclude each other"),
        (["seed", "--anchor", "yesterday"], "is not a date"),
        (["seed", "--increment", "--scale", "m"], "takes no --scale or --seed"),
    ],
)
def test_cli_rejects_bad_input(
    seed_env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    code, output = run_cli(args, seed_env, tmp_path)
    assert code == 2
    assert message in " ".join(output.split())


async def test_seeder_rejects_bad_input(seed_settings: Settings) -> None:
    seeder = Seeder(seed_settings)
    with pytest.raises(SeedError, match="unknown scale 'xl'") as bad_scale:
        await seeder.seed("xl", 1)
    assert bad_scale.value.exit_code == 2
    with pytest.raises(SeedError, match="seed must be an integer") as bad_seed:
        await seeder.seed("xs", -5)
    assert bad_seed.value.exit_code == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"STIR_CLICKHOUSE_NATIVE_PORT": "free"}, "cannot reach ClickHouse"),
        ({"STIR_POSTGRES_PORT": "free"}, "cannot reach PostgreSQL"),
        ({"STIR_S3_BUCKET": "no-such-bucket"}, "S3 bucket 'no-such-bucket' does not exist"),
    ],
)
def test_cli_names_the_server_that_is_down(
    seed_env: dict[str, str], tmp_path: Path, override: dict[str, str], message: str
) -> None:
    env = {**seed_env, **{k: str(free_port()) if v == "free" else v for k, v in override.items()}}
    code, output = run_cli(["seed", "--scale", "xs"], env, tmp_path)
    assert code == 1
    assert message in " ".join(output.split())


def test_cli_refuses_servers_outside_the_stack_without_force(
    seed_env: dict[str, str], postgres: PostgresService, tmp_path: Path
) -> None:
    env = {**seed_env, "STIR_POSTGRES_DSN": postgres.dsn}
    code, output = run_cli(["seed", "--scale", "xs"], env, tmp_path)
    assert code == 2
    assert "--force" in output


async def test_increment_without_a_base_seed_is_a_clear_error(
    seed_settings: Settings, ch: ClickHouse
) -> None:
    await ch.execute("TRUNCATE TABLE stir_seed.batches")
    try:
        with pytest.raises(SeedError, match="no seeded data to continue"):
            await Seeder(seed_settings).increment()
    finally:
        await Seeder(seed_settings).seed("xs", SEED)


def test_drops_are_replaced_by_a_new_seed(
    seed_env: dict[str, str], s3: S3Service, tmp_path: Path
) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
    )
    stale = "stir/drops/influencer_lists/brand_999999.csv"
    client.put_object(Bucket=s3.bucket, Key=stale, Body=b"brand_id,handle\n")
    asyncio.run(Seeder(settings_for(seed_env, tmp_path)).seed("xs", SEED))
    keys = [
        o["Key"] for o in client.list_objects_v2(Bucket=s3.bucket, Prefix="stir/drops/")["Contents"]
    ]
    assert stale not in keys
    assert "stir/drops/taxonomy/categories.csv" in keys
