"""Wall time of each tier end to end at scale m after one increment, and Prefect's overhead.

Run: `.venv/bin/python bench/tiers.py [--scale m]`

Starts its own embedded servers in a temporary directory and a temporary Prefect API (as the
tests do), seeds the scale, runs the seven tiers once (the first, full build), appends one
increment (`stir seed --increment`), then for each tier in dependency order:
- the tier flow as the deployments run it (batch window, dbt build with each node a Prefect
  task, sync of the tier's served tables, health check, artifact): its wall time, and the dbt and
  sync time it reports;
- the same work without Prefect, the baseline: the dbt CLI building the same selection, then
  `sync_table` of the same tables with the same concurrency, called as plain coroutines. It runs
  second, so it gets the cheaper incremental work.
Prefect's overhead = (flow wall time - its dbt, sync and health-check time) / flow wall time, as
issue 7 defines it; the baseline shows what the same dbt build and syncs cost outside Prefect
(dbt's CLI in a subprocess, which also parses the project: slower than prefect-dbt in-process).
Goals (issue 7): the core tier <= 90 s end to end; Prefect's overhead <= 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import machine_line, timed
from dbt_build import dbt_build
from seed import run_seed, start_servers

from stir.domain.tiers import TIERS, Tier


async def tier_with_prefect(spec: Tier) -> tuple[float, dict]:
    from stir.flows.tier import flow_of

    with timed() as t:
        state = await flow_of(spec.name)(spec.name, return_state=True)
    if not state.is_completed():
        raise SystemExit(f"tier {spec.name} ended {state.name}: {state.message}")
    return t["seconds"], await state.result()


async def tier_without_prefect(spec: Tier, env: dict[str, str], target: Path) -> dict[str, float]:
    """The tier's dbt build (dbt CLI) and syncs (plain coroutines), timed like the flow."""
    from stir.dbt_project import parse_manifest
    from stir.flows.tier import sync_tier_tables
    from stir.settings import get_settings

    dbt_seconds, _ = dbt_build(env, target, *spec.dbt_build_args[1:])
    tables = spec.served_tables(await parse_manifest(target_path=target))
    with timed() as t:
        outcomes = await sync_tier_tables(tables, get_settings())
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if failed:
        raise SystemExit(f"tier {spec.name}: a baseline sync failed: {failed[0]}")
    return {"dbt": dbt_seconds, "sync": t["seconds"], "wall": dbt_seconds + t["seconds"]}


async def run(scale: str, root: Path, env: dict[str, str]) -> None:
    seed_seconds, _, _ = run_seed(["--scale", scale], env)
    print(f"seeded scale {scale} in {seed_seconds:.0f} s")
    first_total = 0.0
    for spec in TIERS:
        seconds, _ = await tier_with_prefect(spec)
        first_total += seconds
    print(f"first run of the seven tiers (full builds): {first_total:.0f} s")
    increment_seconds, _, _ = run_seed(["--increment"], env)
    print(f"one increment appended in {increment_seconds:.0f} s\n")

    header = (
        f"{'tier':<16}{'tables':>7}{'rows':>11}{'wall s':>8}{'dbt s':>7}{'sync s':>8}"
        f"{'health s':>9}{'overhead':>9}   {'no Prefect: dbt CLI s':>22}{'sync s':>8}"
    )
    print(header)
    totals = {"wall": 0.0, "work": 0.0}
    for spec in TIERS:
        wall, result = await tier_with_prefect(spec)
        baseline = await tier_without_prefect(spec, env, root / "target-baseline")
        work = result["dbt_seconds"] + result["sync_seconds"] + result["health_seconds"]
        totals["wall"] += wall
        totals["work"] += work
        print(
            f"{spec.name:<16}{len(result['tables']):7d}{sum(result['tables'].values()):11,d}"
            f"{wall:8.1f}{result['dbt_seconds']:7.1f}{result['sync_seconds']:8.1f}"
            f"{result['health_seconds']:9.1f}{(wall - work) / wall:9.1%}   "
            f"{baseline['dbt']:22.1f}{baseline['sync']:8.1f}"
        )
    overall = (totals["wall"] - totals["work"]) / totals["wall"]
    print(f"{'all tiers':<34}{totals['wall']:8.1f}{'':24}{overall:9.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="m", choices=["xs", "s", "m", "l"])
    options = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="stir-bench-tiers-") as tmp:
        root = Path(tmp)
        env, clickhouse, stack = start_servers(root)
        os.environ.update(
            DBT_TARGET_PATH=str(root / "target"),
            DBT_LOG_PATH=str(root / "logs"),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="WARNING",
        )
        from prefect.testing.utilities import prefect_test_harness

        try:
            with prefect_test_harness():
                asyncio.run(run(options.scale, root, env))
        finally:
            clickhouse.stop()
            for name in ("s3", "postgres"):
                stack.service(name).down()


if __name__ == "__main__":
    main()
