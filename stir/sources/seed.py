"""`stir seed`: apply the raw schemas, and fill them with realistic, deterministic data.

The data is computed inside ClickHouse by the SQL in `generate/` (INSERT ... SELECT over
`numbers()` and hashes of the seed), so this module only orders the steps, binds their
parameters and reports progress; the Python process holds no data except Coffee's rows on their
way to PostgreSQL, which stream through in blocks.

Time is fixed, not read from the clock, so a seed always produces the same data: the base seed
covers the 90 days before an anchor date (2026-01-01 by default) and each `--increment` appends
the next hour (a batch: what the sources would have delivered between two tier runs). Every
batch is a window on *ingestion* time, and the last window is kept in `stir_seed.batches`, so an
increment continues exactly where the previous batch stopped, rows that were late for one batch
arrive in the next, and the same sequence of commands gives the same data.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import boto3
import botocore.exceptions
from botocore.config import Config

from stir.clickhouse import ClickHouse, ClickHouseError, quote_identifier
from stir.settings import Settings
from stir.sources import sql

# --- sizes, time and names --------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How much data a scale makes; everything is proportional to the Instagram profiles."""

    name: str
    profiles: int

    @property
    def channels(self) -> int:
        return max(50, self.profiles // 4)

    @property
    def brands(self) -> int:
        return max(20, self.profiles // 100)

    @property
    def orders_per_day(self) -> float:
        # About five orders per profile over the 90 days of history.
        return self.profiles * 5 / 90


SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        Scale("xs", 1_000),  # tests: a few seconds
        Scale("s", 20_000),
        Scale("m", 200_000),  # ~10 M post snapshots
        Scale("l", 2_000_000),  # ~100 M post snapshots
    )
}

DEFAULT_ANCHOR = date(2026, 1, 1)
HISTORY = timedelta(days=90)
DEFAULT_INCREMENT = timedelta(hours=1)
MAX_SEED = 2**63 - 1

RAW_DATABASES = (
    "raw_instagram",
    "raw_youtube",
    "raw_beat",
    "raw_coffee",
    "raw_shopify",
    "raw_vidooly",
)
STATE_DATABASE = "stir_seed"
# Coffee's tables in the order their foreign keys allow loading them.
COFFEE_TABLES = (
    "brands",
    "users",
    "tracked_profiles",
    "collections",
    "campaigns",
    "collection_members",
)
# What each generator step writes, for the rows it reports.
STEP_TABLES: dict[str, tuple[str, ...]] = {
    "world": ("stir_seed.instagram_profiles", "stir_seed.youtube_channels"),
    "coffee": tuple(f"raw_coffee.{t}" for t in COFFEE_TABLES),
    "beat": ("raw_beat.scrape_requests",),
    "instagram": (
        "raw_instagram.account_snapshots",
        "raw_instagram.posts",
        "raw_instagram.post_snapshots",
        "raw_instagram.comments",
    ),
    "youtube": (
        "raw_youtube.channels",
        "raw_youtube.channel_snapshots",
        "raw_youtube.videos",
        "raw_youtube.video_snapshots",
    ),
    "shopify": ("raw_shopify.orders", "raw_shopify.order_line_items"),
    "vidooly": ("raw_vidooly.channel_estimates",),
}
WORK_TABLES = (
    "stir_seed.deliveries",
    "stir_seed.post_observations",
    "stir_seed.video_observations",
    "stir_seed.order_plan",
)
BATCH_STEPS = ("beat", "instagram", "youtube", "shopify", "vidooly")

# Keep repeated deliveries as separate rows: by default ClickHouse would already collapse the
# duplicates of a ReplacingMergeTree inside each inserted block, hiding what the raw layer
# must show.
# The largest GROUP BYs (post metadata at scale l: ~45 M groups) spill to disk past 4 GiB
# instead of failing on memory.
_INSERT_SETTINGS: dict[str, Any] = {
    "optimize_on_insert": 0,
    "max_bytes_before_external_group_by": 4 << 30,
    "max_bytes_before_external_sort": 4 << 30,
}
# Generous: at scale l one statement writes over 100 M rows.
_STATEMENT_TIMEOUT = 4 * 3600
# On a cluster the raw tables are Replicated, and a Replicated table drops an inserted block
# identical to a recent one, even after a TRUNCATE (the block hashes stay in Keeper:
# ClickHouse issue 827): a base seed repeated with the same seed would insert nothing.
_CLUSTER_INSERT_SETTINGS: dict[str, Any] = {**_INSERT_SETTINGS, "insert_deduplicate": 0}

# The head of each DDL statement (its comments aside) and its engine, for `clickhouse_schema`.
_CREATE_RE = re.compile(r"^(CREATE\s+(?:DATABASE|TABLE)\s+IF\s+NOT\s+EXISTS\s+[\w.]+)", re.M)
_ENGINE_RE = re.compile(r"^(ENGINE\s*=\s*)(\w*MergeTree)\b", re.M)


class SeedError(Exception):
    """The seed cannot run or failed; the message is for the user (no secrets)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- progress -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepEvent:
    """One step starting (`seconds` is None) or finished."""

    index: int
    total: int
    name: str
    description: str
    seconds: float | None = None
    rows: int | None = None


OnStep = Callable[[StepEvent], None]


@dataclass
class SeedResult:
    """What a seed or an increment did."""

    batch: int
    seed: int
    scale: str
    window_lo: datetime
    window_hi: datetime
    seconds: float = 0.0
    steps: list[StepEvent] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)

    @property
    def rows_written(self) -> int:
        return sum(step.rows or 0 for step in self.steps)


# --- parameters -----------------------------------------------------------------------------


def _ts(value: datetime) -> str:
    """A DateTime64(3, 'UTC') parameter: UTC wall time as text, so no driver guesses a zone."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _anchor_datetime(anchor: date) -> datetime:
    return datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC)


@dataclass(frozen=True)
class Plan:
    """The parameters every generator statement is bound with, for one batch."""

    seed: int
    scale: Scale
    origin: datetime
    window_lo: datetime
    window_hi: datetime
    drops_url: str
    s3_key_id: str
    s3_secret: str

    def params(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "profiles": self.scale.profiles,
            "channels": self.scale.channels,
            "brands": self.scale.brands,
            "orders_per_day": float(self.scale.orders_per_day),
            "origin": _ts(self.origin),
            "anchor": _ts(self.origin + HISTORY),
            "lo": (self.window_lo - self.origin).total_seconds(),
            "hi": (self.window_hi - self.origin).total_seconds(),
            "drops": self.drops_url,
            "key_id": self.s3_key_id,
            "secret": self.s3_secret,
        }


def clickhouse_schema(cluster: str | None = None) -> list[str]:
    """The statements of the raw ClickHouse schema (`ddl/clickhouse/*.sql`), in order.

    Without a cluster they are the files' statements as written. On a cluster (the setting
    STIR_CLICKHOUSE_CLUSTER, the same one dbt's profile gets) every CREATE DATABASE and CREATE
    TABLE runs ON CLUSTER and every MergeTree-family engine becomes its Replicated twin without
    path arguments (the server's default_replica_path and default_replica_name apply), the rule
    the dbt project's `engine_clause` applies to the models (transform/macros/cluster.sql).
    """
    statements = [
        statement
        for path in sorted(sql.CLICKHOUSE_DDL.glob("*.sql"))
        for statement in sql.statements(path)
    ]
    if not cluster:
        return statements
    on_cluster = f"ON CLUSTER {quote_identifier(cluster)}"
    rewritten = []
    for statement in statements:
        created, count = _CREATE_RE.subn(rf"\1 {on_cluster}", statement, count=1)
        if not count:  # anything else would run on this server only
            raise ValueError(
                f"not a CREATE DATABASE/TABLE statement, cannot run ON CLUSTER:\n{statement}"
            )
        rewritten.append(_ENGINE_RE.sub(_replicated, created))
    return rewritten


def _replicated(engine: re.Match[str]) -> str:
    prefix, family = engine.group(1), engine.group(2)
    replicated = family if family.startswith("Replicated") else f"Replicated{family}"
    return f"{prefix}{replicated}"


def drops_url(settings: Settings) -> str:
    """The drops folder as a path-style URL (endpoint/bucket/prefix/drops), for s3()."""
    s3 = settings.s3
    parts = [s3.endpoint_url.rstrip("/"), s3.bucket]
    if s3.prefix.strip("/"):
        parts.append(s3.prefix.strip("/"))
    parts.append("drops")
    return "/".join(parts)


def drops_prefix(settings: Settings) -> str:
    """The object-key prefix of the drops folder."""
    prefix = settings.s3.prefix.strip("/")
    return f"{prefix}/drops/" if prefix else "drops/"


# --- the seeder -----------------------------------------------------------------------------


class Seeder:
    """Runs the schema, the base seed and increments against the configured servers."""

    def __init__(self, settings: Settings, *, on_step: OnStep | None = None) -> None:
        self.settings = settings
        self.on_step = on_step or (lambda event: None)
        s3 = settings.s3
        self._secrets = (
            s3.secret_access_key.get_secret_value(),
            s3.access_key_id.get_secret_value(),
        )

    # -- connections -------------------------------------------------------------------------

    def _clickhouse(self) -> ClickHouse:
        return ClickHouse(
            self.settings.clickhouse,
            pool_size=2,
            timeout_seconds=_STATEMENT_TIMEOUT,
            secrets=self._secrets,
        )

    def _pg_address(self) -> str:
        parts = urlsplit(self.settings.postgres.effective_dsn())
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"

    async def _postgres(self) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(self.settings.postgres.effective_dsn(), timeout=15)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            # The DSN may carry a password: name only the address.
            raise SeedError(
                f"cannot reach PostgreSQL at {self._pg_address()} ({type(exc).__name__}: "
                f"{_first_line(exc)}); check that it is running, and STIR_POSTGRES_DSN / "
                "STIR_POSTGRES_PORT"
            ) from None

    def _s3_client(self) -> Any:
        s3 = self.settings.s3
        return boto3.client(
            "s3",
            endpoint_url=s3.endpoint_url,
            region_name=s3.region,
            aws_access_key_id=s3.access_key_id.get_secret_value(),
            aws_secret_access_key=s3.secret_access_key.get_secret_value(),
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 2},
            ),
        )

    # -- checks ------------------------------------------------------------------------------

    async def _check_clickhouse(self, ch: ClickHouse) -> None:
        try:
            await ch.fetch_value("SELECT 1")
        except ClickHouseError as exc:
            raise SeedError(str(exc)) from None

    def _check_bucket(self) -> None:
        s3 = self.settings.s3
        try:
            self._s3_client().head_bucket(Bucket=s3.bucket)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise SeedError(
                    f"the S3 bucket {s3.bucket!r} does not exist at {s3.endpoint_url}; create it "
                    "(`stir stack up` does for the embedded S3) or set STIR_S3_BUCKET"
                ) from None
            raise SeedError(
                f"S3 at {s3.endpoint_url} refused access to bucket {s3.bucket!r} ({code}); check "
                "STIR_S3_ACCESS_KEY_ID / STIR_S3_SECRET_ACCESS_KEY"
            ) from None
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise SeedError(
                f"cannot reach S3 at {s3.endpoint_url} ({type(exc).__name__}); check that it is "
                "running, and STIR_S3_ENDPOINT_URL"
            ) from None

    async def _check_postgres(self) -> None:
        conn = await self._postgres()
        await conn.close()

    # -- schema ------------------------------------------------------------------------------

    async def apply_schema(self) -> None:
        """Create every raw database and table, in ClickHouse and PostgreSQL; idempotent."""
        async with self._clickhouse() as ch:
            await self._check_clickhouse(ch)
            await self._apply_clickhouse_schema(ch)
        conn = await self._postgres()
        try:
            await self._apply_postgres_schema(conn)
        finally:
            await conn.close()

    async def _apply_clickhouse_schema(self, ch: ClickHouse) -> None:
        for statement in clickhouse_schema(self.settings.clickhouse.cluster):
            await ch.execute(statement)

    async def _apply_postgres_schema(self, conn: asyncpg.Connection) -> None:
        # One script, one transaction: the schema is there whole or not at all.
        script = (sql.POSTGRES_DDL / "coffee.sql").read_text(encoding="utf-8")
        async with conn.transaction():
            await conn.execute(script)

    # -- the base seed -----------------------------------------------------------------------

    async def seed(self, scale: str, seed: int, anchor: date = DEFAULT_ANCHOR) -> SeedResult:
        """Replace all raw data with a fresh, deterministic 90-day history."""
        if scale not in SCALES:
            raise SeedError(
                f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}", exit_code=2
            )
        if not 0 <= seed <= MAX_SEED:
            raise SeedError(f"the seed must be an integer from 0 to {MAX_SEED}", exit_code=2)
        origin = _anchor_datetime(anchor) - HISTORY
        plan = self._plan(seed, SCALES[scale], origin, origin, origin + HISTORY)
        started = time.monotonic()
        async with self._clickhouse() as ch:
            await self._check_clickhouse(ch)
            await self._check_postgres()
            await asyncio.to_thread(self._check_bucket)
            steps: list[tuple[str, str, Callable[[], Awaitable[int | None]]]] = [
                ("schema", "apply the raw schemas", lambda: self._schema_step(ch)),
                ("reset", "empty the raw tables", lambda: self._reset(ch)),
                ("world", "profile and channel parameters",
                 lambda: self._generate(ch, "world", plan)),
                ("coffee", "Coffee (brands, collections, campaigns)",
                 lambda: self._generate(ch, "coffee", plan)),
                ("postgres", "copy Coffee into PostgreSQL", lambda: self._copy_coffee(ch)),
                *self._batch_steps(ch, plan),
                ("drops", "S3 drops (taxonomy, influencer lists)", lambda: self._drops(ch, plan)),
                ("state", "record the batch", lambda: self._record(ch, plan, batch=1)),
            ]  # fmt: skip
            result = SeedResult(1, seed, scale, plan.window_lo, plan.window_hi)
            await self._run_steps(steps, result)
            result.table_rows = await self.table_rows(ch)
        result.seconds = time.monotonic() - started
        return result

    async def increment(self, every: timedelta = DEFAULT_INCREMENT) -> SeedResult:
        """Append the next batch: what the sources deliver in the `every` after the watermark."""
        if every <= timedelta(0):
            raise SeedError("the increment must cover a positive time span", exit_code=2)
        started = time.monotonic()
        async with self._clickhouse() as ch:
            await self._check_clickhouse(ch)
            last = await self._last_batch(ch)
            if last is None:
                raise SeedError(
                    "there is no seeded data to continue: run `stir seed --scale xs` (or s, m, l) "
                    "first"
                )
            batch, seed, scale_name, anchor, hi = last
            origin = anchor - HISTORY
            plan = self._plan(seed, SCALES[scale_name], origin, hi, hi + every)
            steps = [
                *self._batch_steps(ch, plan),
                ("state", "record the batch", lambda: self._record(ch, plan, batch=batch + 1)),
            ]
            result = SeedResult(batch + 1, seed, scale_name, plan.window_lo, plan.window_hi)
            await self._run_steps(steps, result)
            result.table_rows = await self.table_rows(ch)
        result.seconds = time.monotonic() - started
        return result

    def _plan(self, seed: int, scale: Scale, origin: datetime, lo: datetime, hi: datetime) -> Plan:
        s3 = self.settings.s3
        return Plan(
            seed=seed,
            scale=scale,
            origin=origin,
            window_lo=lo,
            window_hi=hi,
            drops_url=drops_url(self.settings),
            s3_key_id=s3.access_key_id.get_secret_value(),
            s3_secret=s3.secret_access_key.get_secret_value(),
        )

    def _batch_steps(
        self, ch: ClickHouse, plan: Plan
    ) -> list[tuple[str, str, Callable[[], Awaitable[int | None]]]]:
        descriptions = {
            "beat": "Beat scrape requests",
            "instagram": "Instagram snapshots, posts, comments",
            "youtube": "YouTube channels, videos, statistics",
            "shopify": "Shopify orders and line items",
            "vidooly": "Vidooly estimates",
        }
        return [
            (name, descriptions[name], lambda name=name: self._generate(ch, name, plan))
            for name in BATCH_STEPS
        ]

    async def _run_steps(
        self,
        steps: list[tuple[str, str, Callable[[], Awaitable[int | None]]]],
        result: SeedResult,
    ) -> None:
        total = len(steps)
        for index, (name, description, run) in enumerate(steps, start=1):
            self.on_step(StepEvent(index, total, name, description))
            started = time.monotonic()
            try:
                rows = await run()
            except ClickHouseError as exc:
                raise SeedError(f"step {name!r} failed: {exc}") from None
            event = StepEvent(index, total, name, description, time.monotonic() - started, rows)
            result.steps.append(event)
            self.on_step(event)

    # -- steps -------------------------------------------------------------------------------

    async def _schema_step(self, ch: ClickHouse) -> None:
        await self._apply_clickhouse_schema(ch)
        conn = await self._postgres()
        try:
            await self._apply_postgres_schema(conn)
        finally:
            await conn.close()

    async def _reset(self, ch: ClickHouse) -> None:
        for table in await self._tables(ch, (*RAW_DATABASES, STATE_DATABASE)):
            await ch.execute(f"TRUNCATE TABLE {table}")

    async def _tables(self, ch: ClickHouse, databases: tuple[str, ...]) -> list[str]:
        rows = await ch.fetch(
            "SELECT database, name FROM system.tables WHERE database IN {databases:Array(String)}"
            " AND NOT is_temporary ORDER BY database, name",
            {"databases": list(databases)},
        )
        return [f"{quote_identifier(db)}.{quote_identifier(name)}" for db, name in rows]

    async def _count(self, ch: ClickHouse, tables: tuple[str, ...]) -> int:
        total = 0
        for table in tables:
            db, name = table.split(".")
            total += await ch.fetch_value(
                f"SELECT count() FROM {quote_identifier(db)}.{quote_identifier(name)}"
            )
        return total

    async def _generate(self, ch: ClickHouse, name: str, plan: Plan) -> int:
        """Run `generate/<name>.sql` for the plan; the rows it added to its tables."""
        tables = STEP_TABLES[name]
        before = await self._count(ch, tables)
        params = plan.params()
        settings = (
            _CLUSTER_INSERT_SETTINGS if self.settings.clickhouse.cluster else _INSERT_SETTINGS
        )
        for statement in sql.generator(name):
            await ch.execute(statement, params, settings=settings)
        return await self._count(ch, tables) - before

    async def _copy_coffee(self, ch: ClickHouse) -> int:
        """Replace Coffee's PostgreSQL tables with raw_coffee's rows, in one transaction.

        Rows stream from ClickHouse in blocks into COPY, so memory stays flat whatever the
        scale. The app's identity sequences are moved past the copied ids.
        """
        conn = await self._postgres()
        copied = 0
        try:
            async with conn.transaction():
                tables = ", ".join(f"coffee.{t}" for t in COFFEE_TABLES)
                await conn.execute(f"TRUNCATE {tables}")
                for table in COFFEE_TABLES:
                    columns = [
                        name
                        for (name,) in await ch.fetch(
                            "SELECT name FROM system.columns WHERE database = 'raw_coffee'"
                            " AND table = {table:String} ORDER BY position",
                            {"table": table},
                        )
                    ]
                    column_list = ", ".join(quote_identifier(c) for c in columns)
                    rows = ch.iter_rows(
                        f"SELECT {column_list} FROM raw_coffee.{quote_identifier(table)} FINAL"
                        " ORDER BY id"
                    )
                    status = await conn.copy_records_to_table(
                        table, schema_name="coffee", columns=columns, records=rows
                    )
                    copied += int(status.split()[-1])
                    await conn.execute(
                        "SELECT setval(pg_get_serial_sequence($1, 'id'),"
                        f" greatest((SELECT max(id) FROM coffee.{table}), 1))",
                        f"coffee.{table}",
                    )
        except asyncpg.PostgresError as exc:
            raise SeedError(f"copying Coffee into PostgreSQL failed: {_first_line(exc)}") from None
        finally:
            await conn.close()
        return copied

    async def _drops(self, ch: ClickHouse, plan: Plan) -> int:
        """Write the S3 drops afresh (old files of an earlier seed would mislead staging)."""
        await asyncio.to_thread(self._delete_drops)
        for statement in sql.generator("drops"):
            await ch.execute(statement, plan.params())
        return await asyncio.to_thread(self._count_drops)

    def _delete_drops(self) -> None:
        client = self._s3_client()
        bucket = self.settings.s3.bucket
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=drops_prefix(self.settings)):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

    def _count_drops(self) -> int:
        client = self._s3_client()
        paginator = client.get_paginator("list_objects_v2")
        return sum(
            page.get("KeyCount", 0)
            for page in paginator.paginate(
                Bucket=self.settings.s3.bucket, Prefix=drops_prefix(self.settings)
            )
        )

    async def _record(self, ch: ClickHouse, plan: Plan, *, batch: int) -> None:
        """Empty the batch's working tables (they hold a copy of its rows) and log the batch."""
        for table in WORK_TABLES:
            await ch.execute(f"TRUNCATE TABLE IF EXISTS {table}")
        await ch.execute(
            "INSERT INTO stir_seed.batches (batch, seed, scale, anchor, window_lo, window_hi,"
            " created_at) SELECT {batch:UInt32}, {seed:UInt64}, {scale:String},"
            " {anchor:DateTime64(3, 'UTC')}, {lo:DateTime64(3, 'UTC')},"
            " {hi:DateTime64(3, 'UTC')}, now64(3)",
            {
                "batch": batch,
                "seed": plan.seed,
                "scale": plan.scale.name,
                "anchor": _ts(plan.origin + HISTORY),
                "lo": _ts(plan.window_lo),
                "hi": _ts(plan.window_hi),
            },
        )

    async def _last_batch(self, ch: ClickHouse) -> tuple[int, int, str, datetime, datetime] | None:
        exists = await ch.fetch_value(
            "SELECT count() FROM system.tables WHERE database = 'stir_seed' AND name = 'batches'"
        )
        if not exists:
            return None
        rows = await ch.fetch(
            "SELECT batch, seed, scale, anchor, window_hi FROM stir_seed.batches"
            " ORDER BY batch DESC LIMIT 1"
        )
        if not rows:
            return None
        batch, seed, scale, anchor, hi = rows[0]
        return int(batch), int(seed), str(scale), _utc(anchor), _utc(hi)

    async def table_rows(self, ch: ClickHouse | None = None) -> dict[str, int]:
        """Rows per raw table (ClickHouse), as stored: repeated deliveries included."""
        if ch is None:
            async with self._clickhouse() as own:
                return await self.table_rows(own)
        rows = await ch.fetch(
            "SELECT concat(database, '.', name), total_rows FROM system.tables"
            " WHERE database IN {databases:Array(String)} ORDER BY database, name",
            {"databases": list(RAW_DATABASES)},
        )
        return {name: int(count or 0) for name, count in rows}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def guard_servers(settings: Settings, force: bool) -> None:
    """Refuse to overwrite servers that are not the embedded stack unless forced.

    A base seed empties every raw table and Coffee's schema: against production that would
    destroy real data, so it needs an explicit --force.
    """
    if force:
        return
    external = []
    if not settings.clickhouse.embedded:
        external.append("STIR_CLICKHOUSE_EMBEDDED=false")
    if not settings.postgres.embedded:
        external.append("STIR_POSTGRES_DSN is set")
    if external:
        raise SeedError(
            "stir seed replaces the raw tables in ClickHouse and Coffee's tables in PostgreSQL, "
            f"and these are not the embedded stack ({'; '.join(external)}); pass --force to seed "
            "them anyway",
            exit_code=2,
        )


def summarize(table_rows: Mapping[str, int]) -> list[tuple[str, int]]:
    """Table and row count pairs in a stable order, for printing."""
    return sorted(table_rows.items())
