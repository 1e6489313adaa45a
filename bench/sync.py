"""Rows/s of the sync (ClickHouse mart → S3 → PostgreSQL) against three baselines (issue 6).

Run: `.venv/bin/python bench/sync.py [--rows 1000000] [--formats tsv json] [--transfers stream ssh]
[--runs 3]`

Starts its own embedded servers (ClickHouse, moto S3, PostgreSQL 16) on free loopback ports in a
temporary directory, fills a ClickHouse table of N rows x 20 mixed columns from numbers(), and
times `stir.serving.sync.sync_table` end to end per format, `--runs` + 1 times: the first creates
the live table, the others (which compare against a live table, as in production) are reported as
their median and min-max, with each run's phases printed as it ends (an outlier shows where its
time went). Each reported run is followed by one `\\copy` of the baseline, so that each ratio
compares runs made under the same load (the machine is shared); the ratio reported is the median
of the runs' ratios, with their min-max. Each run's line also shows the moto server's RSS and the
load average (also printed at the start and the end). The typed path (TSV) is also
timed with the `ssh` transfer: the bench starts a loopback SSH server of its own (asyncssh,
`tests/ssh_server.py`) that plays the PostgreSQL host, and the real `ssh` client fetches each
part there for a server-side `COPY FROM` file. Baselines in the same run:

- the physical limit: `psql \\copy` of the same data (exported by ClickHouse as CSV into a local
  file, with the sync's own export expressions) into an UNLOGGED table;
- naive asyncpg `executemany` INSERTs of a 50 k-row sample into a table like the served one,
  extrapolated to rows/s;
- ClickHouse pushing into PostgreSQL through its `postgresql()` table function.

Also prints the peak RSS of this Python process (ru_maxrss), after the syncs and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))  # its loopback SSH server
from _common import machine_line, timed
from seed import start_servers, stop_servers
from ssh_server import LoopbackSshServer

from stir.clickhouse import ClickHouse
from stir.domain.declaration import ServedTable
from stir.serving.export import describe
from stir.serving.naming import backup_name, quote_ident
from stir.serving.sync import sync_table
from stir.serving.types import EXPORT_SETTINGS, export_expression
from stir.settings import get_settings
from stir.stack.postgres import make_traversable

SOURCE = "bench_sync_source"
NAIVE_SAMPLE = 50_000

SOURCE_DDL = f"""
CREATE TABLE {SOURCE} (
    id UInt64, i16 Int16, i32 Int32, i64 Int64, u8 UInt8, f32 Float32, f64 Float64,
    amount Decimal(18, 4), name String, note String, platform LowCardinality(String),
    day Date, created DateTime('UTC'), updated DateTime64(3, 'UTC'), maybe_int Nullable(Int64),
    maybe_text Nullable(String), active Bool, uid UUID, ints Array(Int32), tags Array(String)
) ENGINE = MergeTree ORDER BY id
"""
SOURCE_FILL = f"""
INSERT INTO {SOURCE}
SELECT
    number, toInt16(number % 30000), toInt32(number % 2000000) - 1000000,
    toInt64(number * 7919), toUInt8(number % 256), toFloat32(number / 3), number * 0.25,
    toDecimal64(number / 100, 4), concat('account-', toString(number)),
    concat('text with "quotes", a comma,\ta tab and \\\\ ', toString(number % 997)),
    ['instagram', 'youtube', 'tiktok', 'x'][number % 4 + 1],
    toDate('2020-01-01') + number % 2000, toDateTime('2024-01-01 00:00:00', 'UTC') + number,
    toDateTime64('2024-01-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(number),
    if(number % 3 = 0, NULL, toInt64(number)), if(number % 5 = 0, NULL, toString(number % 1000)),
    number % 2 = 0, generateUUIDv4(number),
    [toInt32(number % 10), toInt32(number % 7), toInt32(number % 3)],
    ['tag', toString(number % 13)]
FROM numbers({{rows}})
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def psql_binary() -> str:
    import pgserver

    found = sorted(Path(pgserver.__file__).parent.rglob("bin/psql"))
    if not found:
        raise SystemExit("psql not found in the pgserver package")
    return str(found[0])


async def fill_source(ch: ClickHouse, rows: int) -> tuple[int, int]:
    await ch.execute(f"DROP TABLE IF EXISTS {SOURCE}")
    await ch.execute(SOURCE_DDL)
    await ch.execute(SOURCE_FILL.format(rows=rows))
    await ch.execute(f"OPTIMIZE TABLE {SOURCE} FINAL")
    count, size = (
        await ch.fetch(
            "SELECT sum(rows), sum(data_uncompressed_bytes) FROM system.parts "
            "WHERE active AND table = {t:String} AND database = currentDatabase()",
            {"t": SOURCE},
        )
    )[0]
    return int(count), int(size)


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """`median (min-max)` of a benchmark's runs."""
    median = statistics.median(values)
    return f"{fmt.format(median)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    free = shutil.disk_usage(tempfile.gettempdir()).free / 2**30
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}; {free:,.0f} GiB free on disk"


def moto_rss_mb() -> float | None:
    """RSS of the moto S3 server of this run (the suspect of slow outliers), when found."""
    port = urlparse(get_settings().s3.endpoint_url or "").port
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "moto.server" in cmdline and str(port) in cmdline:
            try:
                return process.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                return None
    return None


def served(fmt: str, transfer: str) -> ServedTable:
    table = f"bench_sync_{fmt}" + ("" if transfer == "stream" else f"_{transfer}")
    return ServedTable(model=SOURCE, table=table, keys=("id",), format=fmt, transfer=transfer)


async def run_sync(
    fmt: str, transfer: str, runs: int, limit: Callable[[], Awaitable[float]]
) -> tuple[list[float], list[float], int, dict]:
    """Sync `runs` times (after a first sync that creates the live table, unless it exists),
    each followed by one `\\copy` of the baseline (so each ratio compares runs made under the
    same load): the syncs' seconds, the baseline's, the bytes in S3 and each phase's seconds."""
    decl = served(fmt, transfer)
    conn = await asyncpg.connect(get_settings().postgres.effective_dsn())
    try:
        live = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", decl.table)
    finally:
        await conn.close()
    if not live:
        await sync_table(decl, settings=get_settings())
    seconds: list[float] = []
    copies: list[float] = []
    phases: dict[str, list[float]] = {}
    nbytes = 0
    for run in range(1, runs + 1):
        summary = await sync_table(decl, settings=get_settings())
        await drop_rollback_copy(decl.table)
        copies.append(await limit())
        seconds.append(summary.seconds)
        nbytes = summary.bytes
        for p in summary.phases:
            phases.setdefault(p.phase, []).append(p.seconds)
        detail = ", ".join(f"{p.phase} {p.seconds:.2f}" for p in summary.phases)
        moto = moto_rss_mb()
        print(f"  {fmt} {transfer} run {run}: {summary.seconds:.2f} s ({detail}); \\copy "
              f"{copies[-1]:.2f} s; moto RSS {f'{moto:,.0f} MB' if moto else '?'}; "
              f"{load_line()}", flush=True)  # fmt: skip
    return seconds, copies, nbytes, phases


async def export_csv(path: Path) -> float:
    """ClickHouse writes the source as PostgreSQL-readable CSV into a local file; seconds."""
    settings = get_settings()
    async with ClickHouse(settings.clickhouse) as ch:
        columns = await describe(ch, SOURCE)
    expressions = ", ".join(f"{export_expression(n, t, 'csv')} AS {n}" for n, t in columns)
    options = ", ".join(
        f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}"
        for k, v in EXPORT_SETTINGS.items()
        if not k.startswith("s3_")
    )
    query = f"SELECT {expressions} FROM {SOURCE} SETTINGS {options} FORMAT CSV"
    url = f"http://{settings.clickhouse.host}:{settings.clickhouse.http_port}/"
    with timed() as t:
        async with (
            httpx.AsyncClient(timeout=3600) as client,
            client.stream("POST", url, content=query.encode()) as response,
        ):
            if response.status_code != 200:
                raise SystemExit(f"CSV export failed: {(await response.aread())[:500]!r}")
            with path.open("wb") as out:
                async for chunk in response.aiter_raw(1 << 20):
                    out.write(chunk)
    return t["seconds"]


async def drop_rollback_copy(table: str) -> None:
    """Drop the previous live table the swap kept for rollback: neither the sync nor `\\copy` is
    timed on it, and at 50 M rows a third table of that size would not fit beside the others."""
    conn = await asyncpg.connect(get_settings().postgres.effective_dsn())
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(backup_name(table))}")
    finally:
        await conn.close()


async def like_table(conn: asyncpg.Connection, name: str, like: str, unlogged: bool) -> None:
    await conn.execute(f"DROP TABLE IF EXISTS {name}")
    kind = "UNLOGGED TABLE" if unlogged else "TABLE"
    await conn.execute(f"CREATE {kind} {name} (LIKE {like} INCLUDING ALL)")


async def physical_limit(csv_path: Path, like: str) -> float:
    """Seconds of `psql \\copy` from the CSV file into a new UNLOGGED table."""
    dsn = get_settings().postgres.effective_dsn()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_sync_limit")
        await conn.execute("CHECKPOINT")  # the previous run's dirty pages are not this one's cost
        await conn.execute(f"CREATE UNLOGGED TABLE bench_sync_limit (LIKE {like})")
    finally:
        await conn.close()
    command = [
        psql_binary(), dsn, "-v", "ON_ERROR_STOP=1", "-q", "-c",
        f"\\copy bench_sync_limit FROM '{csv_path}' WITH (FORMAT csv, NULL '\\N')",
    ]  # fmt: skip
    with timed() as t:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        _, stderr = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"psql \\copy failed: {stderr.decode().strip()}")
    return t["seconds"]


async def naive_insert(like: str) -> float:
    """Rows/s of asyncpg executemany INSERTs of a sample into a table like the served one."""
    conn = await asyncpg.connect(get_settings().postgres.effective_dsn())
    try:
        await like_table(conn, "bench_sync_naive", like, unlogged=False)
        rows = await conn.fetch(f"SELECT * FROM {like} ORDER BY id LIMIT {NAIVE_SAMPLE}")
        width = len(rows[0])
        values = ", ".join(f"${i}" for i in range(1, width + 1))
        statement = f"INSERT INTO bench_sync_naive VALUES ({values})"
        with timed() as t:
            await conn.executemany(statement, [tuple(r) for r in rows])
        return len(rows) / t["seconds"]
    finally:
        await conn.close()


async def clickhouse_push(like: str, rows: int) -> float | str:
    """Seconds of INSERT INTO FUNCTION postgresql(...) SELECT ..., or why it did not work."""
    settings = get_settings()
    dsn = urlparse(settings.postgres.effective_dsn())
    conn = await asyncpg.connect(settings.postgres.effective_dsn())
    try:  # without indexes, like the limit's table; ClickHouse reads the array dimensions
        # of a PostgreSQL table from a row, so one row is there before the push
        await conn.execute("DROP TABLE IF EXISTS bench_sync_push")
        await conn.execute(f"CREATE UNLOGGED TABLE bench_sync_push (LIKE {like})")
        await conn.execute(f"INSERT INTO bench_sync_push SELECT * FROM {like} LIMIT 1")
    finally:
        await conn.close()
    target = (
        f"postgresql('{dsn.hostname}:{dsn.port}', '{dsn.path.lstrip('/')}', 'bench_sync_push', "
        f"'{dsn.username}', '{dsn.password or ''}')"
    )
    async with ClickHouse(settings.clickhouse) as ch:
        try:
            with timed() as t:
                await ch.execute(f"INSERT INTO FUNCTION {target} SELECT * FROM {SOURCE}")
        except Exception as exc:  # chDB may lack the engine or a type conversion
            return f"not supported: {' '.join(str(exc).split())[:300]}"
    conn = await asyncpg.connect(settings.postgres.effective_dsn())
    try:
        pushed = await conn.fetchval("SELECT count(*) FROM bench_sync_push")
    finally:
        await conn.close()
    if pushed != rows + 1:
        return f"pushed {pushed - 1:,} rows of {rows:,}"
    return t["seconds"]


def start_ssh(tmp: Path) -> LoopbackSshServer:
    """The loopback SSH server playing the PostgreSQL host, and STIR_SSH_* pointing at it."""
    server = LoopbackSshServer(tmp / "sshd").start()
    remote = tmp / "ssh-remote" / "parts"
    remote.parent.mkdir()
    make_traversable(remote)  # PostgreSQL (stir-postgres when run as root) reads the parts
    os.environ.update(server.settings_env())
    os.environ["STIR_SSH_REMOTE_DIR"] = str(remote)
    return server


async def main_async(
    rows: int, formats: list[str], transfers: list[str], runs: int, tmp: Path
) -> None:
    async with ClickHouse(get_settings().clickhouse) as ch:
        with timed() as t:
            count, size = await fill_source(ch, rows)
    print(f"source: {count:,} rows x 20 columns, {size / 2**20:,.0f} MiB uncompressed in "
          f"ClickHouse (filled in {t['seconds']:.1f} s)", flush=True)  # fmt: skip

    labels = [(fmt, "stream") for fmt in formats if "stream" in transfers]
    if "ssh" in transfers:  # the typed path: TSV straight into the typed table
        labels.insert(1 if labels else 0, ("tsv", "ssh"))
    # The baseline's table is like the first served table, which its first sync creates.
    first = served(*labels[0])
    await sync_table(first, settings=get_settings())
    like = first.table
    csv_path = tmp / "source.csv"
    export_seconds = await export_csv(csv_path)
    csv_mib = csv_path.stat().st_size / 2**20
    print(f"CSV export (ClickHouse → local file): {export_seconds:.2f} s, {csv_mib:,.0f} MiB",
          flush=True)  # fmt: skip

    results: dict[str, list[float]] = {}  # per sync: each run's share of the limit
    copies: list[float] = []
    for fmt, transfer in labels:
        label = fmt if transfer == "stream" else f"{fmt} ssh"
        seconds, paired, nbytes, phases = await run_sync(
            fmt, transfer, runs, lambda: physical_limit(csv_path, like)
        )
        copies += paired
        results[label] = [c / s for c, s in zip(paired, seconds, strict=True)]
        per_second = [count / s for s in seconds]
        print(f"sync {label:<9} {spread(seconds)} s  {spread(per_second, '{:,.0f}')} rows/s  "
              f"S3 {nbytes / 2**20:,.0f} MiB; \\copy beside it {spread(paired)} s",
              flush=True)  # fmt: skip
        for phase, values in phases.items():
            print(f"    {phase:<9} {spread(values)} s", flush=True)
    print(f"peak RSS of this process after the syncs: {rss_mb():.0f} MB", flush=True)
    limit = count / statistics.median(copies)
    print(f"limit psql \\copy   {spread(copies)} s {limit:>12,.0f} rows/s", flush=True)
    csv_path.unlink()
    naive = await naive_insert(like)
    print(f"naive executemany ({NAIVE_SAMPLE:,} rows) {naive:>12,.0f} rows/s "
          f"(extrapolated: {count / naive:,.0f} s for {count:,})", flush=True)  # fmt: skip
    pushed = await clickhouse_push(like, count)
    if isinstance(pushed, str):
        print(f"ClickHouse postgresql() push: {pushed}", flush=True)
    else:
        print(f"ClickHouse postgresql() push {pushed:7.2f} s {count / pushed:>12,.0f} rows/s",
              flush=True)  # fmt: skip

    for label, shares in results.items():
        print(f"{label}: {spread(shares, '{:.0%}')} of the physical limit (median of the runs' "
              f"sync / \\copy beside it), {statistics.median(shares) * limit / naive:.1f}x "
              "naive INSERT")  # fmt: skip
    if "tsv" in results and "tsv ssh" in results:
        ratio = statistics.median(results["tsv ssh"]) / statistics.median(results["tsv"])
        print(f"tsv ssh / tsv stream: {ratio:.2f}x")
    if not isinstance(pushed, str):
        print(f"ClickHouse push: {count / pushed / limit:.0%} of the physical limit")
    print(f"peak RSS of this process at the end: {rss_mb():.0f} MB")
    print(load_line())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", nargs="+", default=["tsv", "json"],
                        choices=["tsv", "csv", "json"])  # fmt: skip
    parser.add_argument("--transfers", nargs="+", default=["stream", "ssh"],
                        choices=["stream", "ssh"])  # fmt: skip
    parser.add_argument("--runs", type=int, default=3, help="reported runs of each sync (>= 1)")
    options = parser.parse_args()
    if options.runs < 1:
        parser.error("--runs must be at least 1")

    print(machine_line())
    print(load_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="stir-bench-sync-") as tmp:
        root = Path(tmp)
        _, clickhouse, stack = start_servers(root)
        sshd = None
        try:
            sshd = start_ssh(root) if "ssh" in options.transfers else None
            asyncio.run(
                main_async(options.rows, options.formats, options.transfers, options.runs, root)
            )
        finally:
            if sshd is not None:
                sshd.stop()
            stop_servers(clickhouse, stack)
            shutil.rmtree(root / "clickhouse", ignore_errors=True)


if __name__ == "__main__":
    main()
