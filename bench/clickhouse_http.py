"""Throughput of the embedded ClickHouse HTTP endpoint against the same work done in-process.

Run: `.venv/bin/python bench/clickhouse_http.py [--rows 10000000] [--insert-rows 1000000]`

Both sides move the same Native-format bytes, so the ratio isolates what the endpoint costs
(HTTP, our server, the engine thread hop, compression) from the engine's own work:
- select: `SELECT ... FROM numbers(N)` read as a Native stream by clickhouse-connect (raw_stream)
  through the endpoint, versus `Session.send_query(..., "Native")` chunks in this process;
- insert: one Native block of M rows sent by clickhouse-connect (raw_insert) to the endpoint,
  versus `Session.send_insert(..., "Native")` of the same bytes in this process.
Goal (issue 2): the endpoint keeps at least 70% of the in-process throughput.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import chdb.session
import clickhouse_connect

sys.path.insert(0, str(Path(__file__).parent))
from _common import GENERATE, TABLE_DDL, best_of, machine_line, start_embedded_clickhouse

# The select reads a MergeTree table, as a user's query does, rather than a generator.
SELECT = "SELECT id, name, score, day FROM bench_select"


def rate(rows: int, nbytes: int, seconds: float) -> str:
    return f"{rows / seconds / 1e6:7.2f} M rows/s {nbytes / seconds / 2**20:8.1f} MiB/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows selected")
    parser.add_argument("--insert-rows", type=int, default=1_000_000, help="rows inserted")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (best kept)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="stir-bench-"))
    server = start_embedded_clickhouse(workdir / "server")
    port = server.http_port
    local = chdb.session.Session(str(workdir / "local"))
    try:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress=False)
        select = SELECT
        for run in (client.command, local.query):
            run(TABLE_DDL.format(table="bench_select"))
            run(f"INSERT INTO bench_select {GENERATE.format(rows=args.rows)}")

        def endpoint_select() -> int:
            total = 0
            with client.raw_stream(select, fmt="Native") as stream:
                for chunk in stream:
                    total += len(chunk)
            return total

        def local_select() -> int:
            return sum(len(chunk.bytes()) for chunk in local.send_query(select, "Native"))

        block = local.query(GENERATE.format(rows=args.insert_rows), "Native").bytes()
        client.command(TABLE_DDL.format(table="bench_insert"))
        local.query(TABLE_DDL.format(table="bench_insert"))

        def endpoint_insert() -> int:
            client.command("TRUNCATE TABLE bench_insert")
            client.raw_insert("bench_insert", None, insert_block=block, fmt="Native")
            return len(block)

        def local_insert() -> int:
            local.query("TRUNCATE TABLE bench_insert")
            with local.send_insert("INSERT INTO bench_insert", "Native") as inserter:
                inserter.append(block)
                inserter.finish()
            return len(block)

        print(f"machine: {machine_line()}")
        print(f"data: select {args.rows:,} rows x 4 columns; insert {args.insert_rows:,} rows "
              f"({len(block) / 2**20:.1f} MiB Native); best of {args.runs}")  # fmt: skip
        results = {}
        for name, fn, rows in (
            ("select  in-process", local_select, args.rows),
            ("select  endpoint  ", endpoint_select, args.rows),
            ("insert  in-process", local_insert, args.insert_rows),
            ("insert  endpoint  ", endpoint_insert, args.insert_rows),
        ):
            seconds, nbytes = best_of(args.runs, fn)
            results[name.strip()] = rows / seconds
            print(f"{name}  {seconds:7.3f} s  {rate(rows, nbytes, seconds)}")
        for kind in ("select", "insert"):
            ratio = results[f"{kind}  endpoint"] / results[f"{kind}  in-process"]
            verdict = "meets" if ratio >= 0.70 else "MISSES"
            print(f"{kind}: endpoint keeps {ratio:.0%} of in-process ({verdict} the 70% goal)")
    finally:
        server.stop()
        local.close()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    os.environ.setdefault("DO_NOT_TRACK", "1")
    main()
