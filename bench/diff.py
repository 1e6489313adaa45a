"""The cost of the data diff before the swap (issue 15): the sync with and without it.

Run: `.venv/bin/python bench/diff.py [--rows 1000000] [--runs 3] [--changed 0.1]`

Starts its own embedded servers (ClickHouse, moto S3, PostgreSQL 16) on free loopback ports in a
temporary directory and fills two ClickHouse versions of bench/sync.py's table (N rows x 20
mixed columns): A, and B with a fraction of the rows changed in four columns (a float, an
integer, a decimal and a text). Each round syncs B without the diff, then A with it (the live
table is B, so the diff sees the changed fraction, as a daily sync would), into the same
PostgreSQL table. Reported: median and spread (min-max) of the sync's seconds with and without
the diff, their ratio, and the diff phase alone, over `--runs` rounds (after one warm-up sync).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _common import machine_line, timed
from seed import start_servers, stop_servers
from sync import SOURCE, fill_source

from stir.clickhouse import ClickHouse
from stir.domain.declaration import ServedTable
from stir.serving.sync import SyncSummary, sync_table
from stir.settings import get_settings

CHANGED = "bench_diff_changed"
TABLE = "bench_diff"


async def fill_versions(rows: int, changed: float) -> tuple[int, int]:
    """Version A (bench/sync.py's source) and B (A with every 1/changed-th row changed)."""
    every = max(1, round(1 / changed))
    async with ClickHouse(get_settings().clickhouse) as ch:
        count, size = await fill_source(ch, rows)
        await ch.execute(f"DROP TABLE IF EXISTS {CHANGED}")
        await ch.execute(f"CREATE TABLE {CHANGED} AS {SOURCE}")
        await ch.execute(
            f"INSERT INTO {CHANGED} SELECT * REPLACE ("
            f"if(id % {every} = 0, f64 + id / 1000, f64) AS f64, "
            f"if(id % {every} = 0, i32 + 7, i32) AS i32, "
            f"if(id % {every} = 0, amount + 1, amount) AS amount, "
            f"if(id % {every} = 0, concat(name, '-changed'), name) AS name) FROM {SOURCE}"
        )
    return count, size


def phase(summary: SyncSummary, name: str) -> float:
    return next((p.seconds for p in summary.phases if p.phase == name), 0.0)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s (min {min(values):.2f}, max {max(values):.2f})"


async def main_async(rows: int, runs: int, changed: float) -> None:
    with timed() as t:
        count, size = await fill_versions(rows, changed)
    print(f"source: {count:,} rows x 20 columns, {size / 2**20:,.0f} MiB uncompressed in "
          f"ClickHouse, two versions, {changed:.0%} of the rows changed in 4 columns "
          f"(filled in {t['seconds']:.1f} s)", flush=True)  # fmt: skip
    settings = get_settings()
    plain = ServedTable(model=CHANGED, table=TABLE, keys=("id",))
    diffed = ServedTable(model=SOURCE, table=TABLE, keys=("id",), diff=True)
    await sync_table(diffed, settings=settings)  # warm-up: the live table exists from here on

    without, with_diff, diff_phase = [], [], []
    for round_ in range(1, runs + 1):
        a = await sync_table(plain, settings=settings)
        b = await sync_table(diffed, settings=settings)
        assert b.diff is not None
        without.append(a.seconds)
        with_diff.append(b.seconds)
        diff_phase.append(phase(b, "diff"))
        print(f"round {round_}: without {a.seconds:.2f} s, with {b.seconds:.2f} s "
              f"(diff {phase(b, 'diff'):.2f} s: {b.diff.short}); phases with: "
              + ", ".join(f"{p.phase} {p.seconds:.2f}" for p in b.phases), flush=True)  # fmt: skip
    print(f"sync without the diff {spread(without)}")
    print(f"sync with the diff    {spread(with_diff)}")
    print(f"the diff phase        {spread(diff_phase)}")
    ratio = statistics.median(with_diff) / statistics.median(without)
    share = statistics.median(diff_phase) / statistics.median(without)
    print(f"with / without: {ratio:.2f}x; the diff phase is {share:.0%} of a sync without it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--changed", type=float, default=0.1, help="fraction of rows changed")
    options = parser.parse_args()

    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="stir-bench-diff-") as tmp:
        root = Path(tmp)
        _, clickhouse, stack = start_servers(root)
        try:
            asyncio.run(main_async(options.rows, options.runs, options.changed))
        finally:
            stop_servers(clickhouse, stack)
            shutil.rmtree(root / "clickhouse", ignore_errors=True)


if __name__ == "__main__":
    main()
