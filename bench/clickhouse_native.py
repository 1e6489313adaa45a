"""The embedded ClickHouse through its native protocol, its HTTP interface and in-process chDB.

Run: `.venv/bin/python bench/clickhouse_native.py [--rows 10000000] [--insert-rows 1000000]`

All three sides end with the same thing in Python — columns as numpy/pandas — so each figure
counts the protocol, the server and the client's decoding, the way a user's program pays them:
- select: a 10 M-row x 4-column MergeTree table into a pandas DataFrame: clickhouse-driver
  (`query_dataframe`, numpy columns) over native TCP; clickhouse-connect (`query_df`) over HTTP;
  `Session.query(..., "DataFrame")` in-process;
- insert: the same 1 M-row DataFrame: clickhouse-driver `insert_dataframe`; clickhouse-connect
  `insert_df`; in-process `INSERT ... SELECT * FROM Python(df)`.
Goals (issue 3): native at least as fast as HTTP, and at least 70% of in-process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import chdb.session
import clickhouse_connect
import pandas as pd
from clickhouse_driver import Client

sys.path.insert(0, str(Path(__file__).parent))
from _common import GENERATE, TABLE_DDL, best_of, machine_line, start_embedded_clickhouse

SELECT = "SELECT id, name, score, day FROM bench_select"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows selected")
    parser.add_argument("--insert-rows", type=int, default=1_000_000, help="rows inserted")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (best kept)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="stir-bench-"))
    server = start_embedded_clickhouse(workdir / "server", native=True)
    local = chdb.session.Session(str(workdir / "local"))
    try:
        native = Client(host="127.0.0.1", port=server.native_port, settings={"use_numpy": True})
        http = clickhouse_connect.get_client(host="127.0.0.1", port=server.http_port)
        for run in (http.command, local.query):
            run(TABLE_DDL.format(table="bench_select"))
            run(f"INSERT INTO bench_select {GENERATE.format(rows=args.rows)}")
            run(TABLE_DDL.format(table="bench_insert"))
        frame = local.query(GENERATE.format(rows=args.insert_rows), "DataFrame")
        frame["day"] = pd.to_datetime(frame["day"])

        def native_select() -> int:
            return len(native.query_dataframe(SELECT))

        def http_select() -> int:
            return len(http.query_df(SELECT))

        def local_select() -> int:
            return len(local.query(SELECT, "DataFrame"))

        def native_insert() -> int:
            native.execute("TRUNCATE TABLE bench_insert")
            return native.insert_dataframe("INSERT INTO bench_insert VALUES", frame)

        def http_insert() -> int:
            http.command("TRUNCATE TABLE bench_insert")
            http.insert_df("bench_insert", frame)
            return len(frame)

        def local_insert() -> int:
            local.query("TRUNCATE TABLE bench_insert")
            local.query("INSERT INTO bench_insert SELECT * FROM Python(frame)")
            return len(frame)

        print(f"machine: {machine_line()}")
        print(
            f"data: select {args.rows:,} rows x 4 columns into pandas; insert {args.insert_rows:,}"
            f" rows from pandas; best of {args.runs}"
        )
        rates: dict[str, float] = {}
        for name, fn, rows in (
            ("select in-process", local_select, args.rows),
            ("select native", native_select, args.rows),
            ("select http", http_select, args.rows),
            ("insert in-process", local_insert, args.insert_rows),
            ("insert native", native_insert, args.insert_rows),
            ("insert http", http_insert, args.insert_rows),
        ):
            seconds, counted = best_of(args.runs, fn)
            if counted != rows:
                raise SystemExit(f"{name}: expected {rows:,} rows, got {counted:,}")
            rates[name] = rows / seconds
            print(f"{name:18} {seconds:7.3f} s  {rows / seconds / 1e6:6.2f} M rows/s")
        for kind in ("select", "insert"):
            to_http = rates[f"{kind} native"] / rates[f"{kind} http"]
            to_local = rates[f"{kind} native"] / rates[f"{kind} in-process"]
            print(
                f"{kind}: native = {to_http:.2f}x HTTP ({'meets' if to_http >= 1 else 'MISSES'} "
                f">= 1x), {to_local:.0%} of in-process "
                f"({'meets' if to_local >= 0.7 else 'MISSES'} >= 70%)"
            )
    finally:
        server.stop()
        local.close()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    main()
