"""Wall time, rows/s and peak memory of `stir seed` per scale, and of one `--increment`.

Run: `.venv/bin/python bench/seed.py [--scales xs s m] [--increment-hours 1]`

The benchmark starts its own embedded servers (ClickHouse with its native port, moto S3,
PostgreSQL 16) in a temporary directory, then runs `stir seed --scale X` as a child process, as
a user would, sampling that process's resident memory every 50 ms: the Python process must stay
under 500 MB at every scale, because ClickHouse does the work. Rows are counted in the raw tables
afterwards (repeated deliveries included, as stored). Scale l needs ~20 GB of disk and several
minutes; pass it explicitly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _common import EmbeddedClickHouse, free_port, machine_line, start_embedded_clickhouse, timed

from stir.clickhouse import ClickHouse
from stir.settings import get_settings
from stir.sources.seed import RAW_DATABASES
from stir.stack.services import Stack

MEMORY_LIMIT_MB = 500


def start_servers(root: Path) -> tuple[dict[str, str], EmbeddedClickHouse, Stack]:
    """ClickHouse (own process), S3 and PostgreSQL (through the stack module) on free ports."""
    clickhouse = start_embedded_clickhouse(root / "clickhouse", native=True)
    env = {
        "STIR_STATE_DIR": str(root / "stack"),
        "STIR_CLICKHOUSE_HTTP_PORT": str(clickhouse.http_port),
        "STIR_CLICKHOUSE_NATIVE_PORT": str(clickhouse.native_port),
        "STIR_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "STIR_POSTGRES_PORT": str(free_port()),
    }
    for key in [k for k in os.environ if k.upper().startswith("STIR_")]:
        del os.environ[key]
    os.environ.update(env)
    stack = Stack(get_settings())
    for name in ("s3", "postgres"):
        outcome = stack.service(name).up(timeout=60)
        if not outcome.ok:
            clickhouse.stop()
            raise SystemExit(f"{name} did not start: {outcome.message}")
    return env, clickhouse, stack


def stop_servers(clickhouse: EmbeddedClickHouse, stack: Stack) -> None:
    """Stop what `start_servers` started."""
    clickhouse.stop()
    for name in ("s3", "postgres"):
        stack.service(name).down()


def run_seed(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run `stir seed ARGS`; wall seconds, peak RSS in MB of the process tree, its output."""
    command = [sys.executable, "-c", "from stir.cli import app; app()", "seed", *args]
    with tempfile.TemporaryFile() as output:
        with timed() as t:
            process = psutil.Popen(command, env={**os.environ, **env}, stdout=output, stderr=output)
            peak = 0
            while process.poll() is None:
                try:
                    tree = [process, *process.children(recursive=True)]
                    peak = max(peak, sum(p.memory_info().rss for p in tree))
                except psutil.NoSuchProcess:
                    pass
                time.sleep(0.05)
        output.seek(0)
        text = output.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"stir seed {' '.join(args)} failed:\n{text}")
    return t["seconds"], peak / 2**20, text


async def raw_rows() -> int:
    async with ClickHouse(get_settings().clickhouse) as ch:
        value = await ch.fetch_value(
            "SELECT sum(total_rows) FROM system.tables WHERE database IN {dbs:Array(String)}",
            {"dbs": list(RAW_DATABASES)},
        )
    return int(value or 0)


def peak_rss_gib(pid: int) -> float:
    """The highest resident memory a process has had so far (Linux VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def disk_gib(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["xs", "s", "m"])
    parser.add_argument("--increment-hours", type=float, default=1.0)
    options = parser.parse_args()

    print(machine_line())
    header = (
        f"{'scale':<6}{'raw rows':>14}{'seed s':>9}{'rows/s':>12}{'peak MB':>9}"
        f"{'CH peak GB':>11}{'disk GiB':>10}{'incr s':>8}{'incr rows':>11}{'incr MB':>9}"
    )
    print(header)
    with tempfile.TemporaryDirectory(prefix="stir-bench-seed-") as tmp:
        root = Path(tmp)
        env, clickhouse, stack = start_servers(root)
        try:
            for scale in options.scales:
                seconds, peak_mb, text = run_seed(["--scale", scale], env)
                rows = asyncio.run(raw_rows())
                server_gb = peak_rss_gib(clickhouse.process.pid)
                incr_seconds, incr_mb, incr_text = run_seed(
                    ["--increment", "--hours", str(options.increment_hours)], env
                )
                match = re.search(r"([\d,]+) rows written", incr_text)
                incr_rows = int(match.group(1).replace(",", "")) if match else -1
                print(
                    f"{scale:<6}{rows:>14,}{seconds:>9.1f}{rows / seconds:>12,.0f}{peak_mb:>9.0f}"
                    f"{server_gb:>11.1f}{disk_gib(root / 'clickhouse'):>10.1f}"
                    f"{incr_seconds:>8.1f}{incr_rows:>11,}{incr_mb:>9.0f}",
                    flush=True,
                )
                if max(peak_mb, incr_mb) > MEMORY_LIMIT_MB:
                    print(f"  over the {MEMORY_LIMIT_MB} MB limit:\n{text}")
        finally:
            stop_servers(clickhouse, stack)


if __name__ == "__main__":
    main()
