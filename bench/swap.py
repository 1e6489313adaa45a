"""The swap under read load: how long readers are held back, and whether any of them fails.

Run: `.venv/bin/python bench/swap.py [--swaps 50] [--readers 8] [--rows 1000000]`

Starts the embedded PostgreSQL in a temporary directory, creates a served table the way the sync
leaves one (primary key, two indexes, a dependent view, a grant to an application role), and
while `--readers` connections query it without pause (an index lookup through the view and a
range aggregate on the table, as the application would), swaps in a freshly staged copy
`--swaps` times with `stir.serving.swap.swap`, the sync's own swap. Prints the exclusive-lock
hold time of each swap (from the lock granted to the commit) as p50/p99/max, the whole swap
transaction, the readers' query latency, and the reader errors.
Goals (issue 6): zero reader errors; lock hold p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import free_port, machine_line

from stir.domain.declaration import IndexSpec, ServedTable
from stir.serving.load import INCOMING_TABLE_OPTIONS, finalize
from stir.serving.swap import swap
from stir.settings import get_settings
from stir.stack.services import Stack

TABLE = "bench_served"
COLUMNS = (
    "id bigint NOT NULL, handle text NOT NULL, country text, followers bigint, "
    "engagement double precision, updated_at timestamptz"
)
FILL = (
    "SELECT g, 'handle_' || g, (ARRAY['US','IN','BR','DE','FR'])[1 + g % 5], g * 7 % 1000003, "
    "(g % 1000) / 1000.0, now() - (g % 86400) * interval '1 second' "
    "FROM generate_series(1, {rows}) g"
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


SERVED = ServedTable(
    model="bench", table=TABLE, keys=("id",),
    indexes=(IndexSpec(("handle",)), IndexSpec(("country", "followers"))),
)  # fmt: skip


async def stage(conn: asyncpg.Connection, name: str, rows: int) -> None:
    """A staged table as the sync builds it (its table options, then the sync's own finalize:
    SET LOGGED, primary key, indexes, ANALYZE)."""
    await conn.execute(f"DROP TABLE IF EXISTS {name}")
    await conn.execute(f"CREATE UNLOGGED TABLE {name} ({COLUMNS}) {INCOMING_TABLE_OPTIONS}")
    await conn.execute(f"INSERT INTO {name} {FILL.format(rows=rows)}")
    await finalize(conn, SERVED, name)


async def reader(dsn: str, rows: int, stop: asyncio.Event, latencies: list[float],
                 errors: list[str]) -> None:  # fmt: skip
    conn = await asyncpg.connect(dsn, user="bench_app")
    try:
        while not stop.is_set():
            key = random.randint(1, rows)
            started = time.perf_counter()
            try:
                await conn.fetchrow(f"SELECT * FROM {TABLE}_top WHERE handle = $1", f"handle_{key}")
                await conn.fetchval(
                    f"SELECT count(*) FROM {TABLE} WHERE country = 'US' AND followers > $1",
                    key % 1000003,
                )
            except asyncpg.PostgresError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - started)
    finally:
        await conn.close()


async def run(swaps: int, readers: int, rows: int) -> None:
    dsn = get_settings().postgres.effective_dsn()
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute("DROP ROLE IF EXISTS bench_app")
        await admin.execute("CREATE ROLE bench_app LOGIN")
        await stage(admin, TABLE, rows)
        await admin.execute(
            f"CREATE VIEW {TABLE}_top AS SELECT id, handle, followers FROM {TABLE} "
            "WHERE followers > 1000"
        )
        await admin.execute(f"GRANT SELECT ON {TABLE}, {TABLE}_top TO bench_app")
        stop = asyncio.Event()
        latencies: list[float] = []
        errors: list[str] = []
        tasks = [
            asyncio.create_task(reader(dsn, rows, stop, latencies, errors)) for _ in range(readers)
        ]
        locks, totals = [], []
        try:
            for index in range(swaps):
                await stage(admin, f"{TABLE}_stage_{index}", rows)
                result = await swap(admin, "public", TABLE, f"{TABLE}_stage_{index}")
                locks.append(result.lock_seconds)
                totals.append(result.seconds)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        print(f"{swaps} swaps of a {rows:,}-row table with a PK, 2 indexes, a view and a grant, "
              f"{readers} readers ({len(latencies):,} reader queries)")  # fmt: skip
        ms = [x * 1000 for x in locks]
        print(f"  exclusive lock held   p50 {statistics.median(ms):6.1f} ms   "
              f"p99 {percentile(ms, 0.99):6.1f} ms   max {max(ms):6.1f} ms   "
              "(goal p99 <= 100)")  # fmt: skip
        ms = [x * 1000 for x in totals]
        print(f"  swap transaction      p50 {statistics.median(ms):6.1f} ms   "
              f"p99 {percentile(ms, 0.99):6.1f} ms   max {max(ms):6.1f} ms")  # fmt: skip
        ms = [x * 1000 for x in latencies]
        print(f"  reader query pair     p50 {statistics.median(ms):6.1f} ms   "
              f"p99 {percentile(ms, 0.99):6.1f} ms   max {max(ms):6.1f} ms")  # fmt: skip
        print(f"  reader errors         {len(errors)} (goal 0)")
        for error in sorted(set(errors))[:5]:
            print(f"    {error}")
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=50)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1_000_000)
    options = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="stir-bench-swap-") as tmp:
        for key in [k for k in os.environ if k.upper().startswith("STIR_")]:
            del os.environ[key]
        os.environ.update(STIR_STATE_DIR=str(Path(tmp) / "stack"),
                          STIR_POSTGRES_PORT=str(free_port()))  # fmt: skip
        postgres = Stack(get_settings()).service("postgres")
        outcome = postgres.up(timeout=60)
        if not outcome.ok:
            raise SystemExit(f"postgres did not start: {outcome.message}")
        try:
            asyncio.run(run(options.swaps, options.readers, options.rows))
        finally:
            postgres.down()


if __name__ == "__main__":
    main()
