"""How Stir's work grows with the data: a scaling curve over the seed's scales (issue 17).

Run: `.venv/bin/python bench/scaling.py [--scales xs s m]` (scale l: `--scales l`, in the
background: it needs ~20 GB of disk and most of an hour on 2 cores)

Starts its own embedded servers in a temporary directory (as `bench/seed.py` does) and, per
scale, times four steps as a user runs them, each a child process:
- `stir seed --scale X` (the raw sources);
- the full daily build: `dbt build --full-refresh` of the whole project (every model and test);
- the core tier after one increment: `stir seed --increment`, then `dbt build --selector
  tier_core` (what the core tier runs every 15 minutes);
- the sync of the largest served table (by rows) into PostgreSQL (`sync_table`, the tier's
  sync: export to S3, COPY, gates, swap).
For each: rows, wall seconds, the peak resident memory of the step's own processes and of the
ClickHouse server (which does the work), sampled every 100 ms. Between consecutive scales it
prints the growth exponent k of time ∝ rows^k (k = 1: linear; below 1: fixed costs still
dominate; above 1: something grows faster than the data). The figures and the capacity plan
built on them are in BENCHMARKS.md and docs/scaling.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import machine_line
from seed import raw_rows, start_servers, stop_servers

from stir.clickhouse import ClickHouse
from stir.domain.declaration import served_tables
from stir.domain.tiers import get_tier
from stir.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
TRANSFORM = ROOT / "transform"
BIN = Path(sys.executable).parent
# The sync of one served table, in a process of its own so that its memory is its own.
SYNC_ONE = """
import asyncio, json, sys
from stir.domain.declaration import served_tables
from stir.serving.sync import sync_table
manifest = json.loads(open(sys.argv[1]).read())
[decl] = [d for d in served_tables(manifest) if d.ref == sys.argv[2]]
print(asyncio.run(sync_table(decl)).rows)
"""


@dataclass(frozen=True)
class Step:
    name: str
    rows: int
    seconds: float
    peak_mb: float  # the step's own process tree
    clickhouse_mb: float  # the ClickHouse server during the step


def measured(
    command: list[str], env: dict[str, str], clickhouse_pid: int
) -> tuple[float, float, float]:
    """Run `command`; its wall seconds, its process tree's peak RSS and ClickHouse's, in MB."""
    server = psutil.Process(clickhouse_pid)
    with tempfile.TemporaryFile() as output:
        started = time.monotonic()
        process = psutil.Popen(command, env={**os.environ, **env}, stdout=output, stderr=output)
        peak = server_peak = 0
        while process.poll() is None:
            try:
                tree = [process, *process.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.NoSuchProcess:
                pass
            server_peak = max(server_peak, server.memory_info().rss)
            time.sleep(0.1)
        seconds = time.monotonic() - started
        output.seek(0)
        text = output.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{text[-4000:]}")
    return seconds, peak / 2**20, server_peak / 2**20


def stir(*args: str) -> list[str]:
    return [sys.executable, "-c", "from stir.cli import app; app()", *args]


def dbt_build(target: Path, *args: str) -> list[str]:
    return [str(BIN / "dbt"), "build", "--project-dir", str(TRANSFORM),
            "--profiles-dir", str(TRANSFORM), "--target-path", str(target),
            "--log-path", str(target), *args]  # fmt: skip


async def largest_served_table(manifest: dict) -> tuple[str, int]:
    """The served table with the most rows in ClickHouse, and its rows."""
    async with ClickHouse(get_settings().clickhouse) as ch:
        counted = [
            (decl.ref, int(await ch.fetch_value(f"SELECT count() FROM {decl.model}")))
            for decl in served_tables(manifest)
        ]
    return max(counted, key=lambda item: item[1])


def built_rows(target: Path) -> int:
    """Rows the build wrote (dbt-clickhouse reports them per model)."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    return sum(int(r.get("adapter_response", {}).get("rows_affected") or 0) for r in results)


def run_scale(scale: str, env: dict[str, str], root: Path, clickhouse_pid: int) -> list[Step]:
    steps = []
    seconds, peak, server = measured(stir("seed", "--scale", scale), env, clickhouse_pid)
    rows = asyncio.run(raw_rows())
    steps.append(Step("seed", rows, seconds, peak, server))

    target = root / f"target-{scale}"
    seconds, peak, server = measured(dbt_build(target, "--full-refresh"), env, clickhouse_pid)
    steps.append(Step("full daily build", rows, seconds, peak, server))

    # The core tier after one increment: the incremental post fact, the marts it feeds.
    increment, *_ = measured(stir("seed", "--increment"), env, clickhouse_pid)
    core = get_tier("core").dbt_build_args[1:]
    seconds, peak, server = measured(dbt_build(target, *core), env, clickhouse_pid)
    steps.append(Step("core after an increment", rows, seconds, peak, server))

    manifest_path = target / "manifest.json"
    ref, table_rows = asyncio.run(largest_served_table(json.loads(manifest_path.read_text())))
    command = [sys.executable, "-c", SYNC_ONE, str(manifest_path), ref]
    seconds, peak, server = measured(command, env, clickhouse_pid)
    steps.append(Step(f"sync {ref}", table_rows, seconds, peak, server))
    print(f"  (the increment itself: {increment:.1f} s)", flush=True)
    return steps


def exponent(small: Step, large: Step) -> str:
    if small.rows <= 0 or large.rows <= small.rows or small.seconds <= 0:
        return "n/a"
    return f"{math.log(large.seconds / small.seconds) / math.log(large.rows / small.rows):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["xs", "s", "m"])
    options = parser.parse_args()
    print(machine_line(), flush=True)
    curve: dict[str, list[Step]] = {}
    with tempfile.TemporaryDirectory(prefix="stir-bench-scaling-") as tmp:
        root = Path(tmp)
        env, clickhouse, stack = start_servers(root)
        try:
            for scale in options.scales:
                print(f"\nscale {scale}", flush=True)
                curve[scale] = run_scale(scale, env, root, clickhouse.process.pid)
                for step in curve[scale]:
                    print(f"  {step.name:<44} {step.rows:>12,} rows {step.seconds:8.1f} s  "
                          f"peak {step.peak_mb:6.0f} MB  ClickHouse {step.clickhouse_mb:6.0f} MB",
                          flush=True)  # fmt: skip
        finally:
            stop_servers(clickhouse, stack)
    scales = list(curve)
    if len(scales) > 1:
        print("\ngrowth exponent k (time ∝ rows^k) between consecutive scales:")
        for index, step in enumerate(curve[scales[0]]):
            ks = [
                f"{a}→{b} {exponent(curve[a][index], curve[b][index])}"
                for a, b in itertools.pairwise(scales)
            ]
            print(f"  {step.name.split(' public.')[0]:<26} {', '.join(ks)}")


if __name__ == "__main__":
    main()
