"""Wall time of each tier end to end at scale m after one increment, and Prefect's overhead.

Run: `.venv/bin/python bench/tiers.py [--scale m] [--tiers monitoring] [--runs 3] [--slowest 5]
[--shared-layer]`

Starts its own embedded servers in a temporary directory and a temporary Prefect API (as the
tests do), seeds the scale, runs the tiers once (the first, full build: the measured tiers and
every tier before them in dependency order), appends one increment (`stir seed --increment`),
then for each measured tier (`--tiers`, default all seven) in dependency order, `--runs` times:
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
from dbt_build import dbt_build, slowest
from seed import run_seed, start_servers, stop_servers

from stir.domain.tiers import TIER_ORDER, TIERS, Tier, dbt_build_args
from stir.tasks.shared_layer import SELECTOR as SHARED_LAYER_SELECTOR


async def tier_with_prefect(spec: Tier) -> tuple[float, dict]:
    from stir.flows.tier import flow_of

    with timed() as t:
        state = await flow_of(spec.name)(spec.name, return_state=True)
    if not state.is_completed():
        raise SystemExit(f"tier {spec.name} ended {state.name}: {state.message}")
    return t["seconds"], await state.result()


async def tier_without_prefect(
    spec: Tier, env: dict[str, str], target: Path
) -> tuple[dict[str, float], list[dict]]:
    """The tier's dbt build (dbt CLI) and syncs (plain coroutines), timed like the flow, and
    the build's per-node results."""
    from stir.dbt_project import parse_manifest
    from stir.flows.tier import sync_tier_tables
    from stir.settings import get_settings

    dbt_seconds, results = dbt_build(env, target, *spec.dbt_build_args[1:])
    tables = spec.served_tables(await parse_manifest(target_path=target))
    with timed() as t:
        outcomes = await sync_tier_tables(tables, get_settings())
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if failed:
        raise SystemExit(f"tier {spec.name}: a baseline sync failed: {failed[0]}")
    timings = {"dbt": dbt_seconds, "sync": t["seconds"], "wall": dbt_seconds + t["seconds"]}
    return timings, results


async def run(
    scale: str,
    root: Path,
    env: dict[str, str],
    measured: list[Tier],
    runs: int,
    slowest_nodes: int,
    shared_layer: bool,
) -> None:
    seed_seconds, _, _ = run_seed(["--scale", scale], env)
    print(f"seeded scale {scale} in {seed_seconds:.0f} s")
    # A tier reads only its own and earlier tiers' models: the first run builds the measured
    # tiers and every tier before them in dependency order, nothing later.
    last = max(TIER_ORDER[spec.name] for spec in measured)
    first_total = 0.0
    for spec in TIERS[: last + 1]:
        seconds, _ = await tier_with_prefect(spec)
        first_total += seconds
    print(f"first run of {last + 1} tiers (full builds): {first_total:.0f} s")
    increment_seconds, _, _ = run_seed(["--increment"], env)
    print(f"one increment appended in {increment_seconds:.0f} s\n")

    header = (
        f"{'tier':<16}{'tables':>7}{'rows':>11}{'nodes':>7}{'wall s':>8}{'dbt s':>7}{'sync s':>8}"
        f"{'health s':>9}{'overhead':>9}   {'no Prefect: dbt CLI s':>22}{'sync s':>8}"
    )
    print(header)
    totals = {"wall": 0.0, "work": 0.0}
    for spec in measured:
        for _ in range(runs):
            wall, result = await tier_with_prefect(spec)
            baseline, results = await tier_without_prefect(spec, env, root / "target-baseline")
            work = result["dbt_seconds"] + result["sync_seconds"] + result["health_seconds"]
            totals["wall"] += wall
            totals["work"] += work
            print(
                f"{spec.name:<16}{len(result['tables']):7d}{sum(result['tables'].values()):11,d}"
                f"{result['dbt_nodes']:7d}{wall:8.1f}{result['dbt_seconds']:7.1f}"
                f"{result['sync_seconds']:8.1f}{result['health_seconds']:9.1f}"
                f"{(wall - work) / wall:9.1%}   {baseline['dbt']:22.1f}{baseline['sync']:8.1f}",
                flush=True,
            )
            for name, seconds in slowest(results, slowest_nodes):
                print(f"    {name:<60} {seconds:6.1f} s (dbt CLI)")
    overall = (totals["wall"] - totals["work"]) / totals["wall"]
    print(f"{'all runs':<41}{totals['wall']:8.1f}{'':24}{overall:9.1%}")
    if shared_layer:
        # What a tier pays when it finds the shared layer out of date (a deploy): its build and
        # tests, with the dbt CLI.
        args = dbt_build_args(SHARED_LAYER_SELECTOR)[1:]
        seconds, results = dbt_build(env, root / "target-baseline", *args)
        tests = sum(r["unique_id"].startswith("test.") for r in results)
        print(f"\nshared layer ({' '.join(args)}): {len(results)} nodes, {tests} tests, "
              f"{seconds:.1f} s (dbt CLI)")  # fmt: skip
        for name, node_seconds in slowest(results, slowest_nodes):
            print(f"    {name:<60} {node_seconds:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="m", choices=["xs", "s", "m", "l"])
    parser.add_argument(
        "--tiers",
        nargs="+",
        default=[spec.name for spec in TIERS],
        choices=[spec.name for spec in TIERS],
        help="the tiers to measure after the increment (default: all seven)",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="runs of each measured tier after the increment"
    )
    parser.add_argument(
        "--slowest", type=int, default=0, help="list the N slowest dbt nodes of each run"
    )
    parser.add_argument(
        "--shared-layer",
        action="store_true",
        help="then time a rebuild of the shared staging layer with its tests",
    )
    options = parser.parse_args()
    measured = [spec for spec in TIERS if spec.name in options.tiers]
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
                asyncio.run(
                    run(
                        options.scale,
                        root,
                        env,
                        measured,
                        options.runs,
                        options.slowest,
                        options.shared_layer,
                    )
                )
        finally:
            stop_servers(clickhouse, stack)


if __name__ == "__main__":
    main()
