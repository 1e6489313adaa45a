"""Wall time of the dbt builds per scale: the full build, the core tier, and an incremental run.

Run: `.venv/bin/python bench/dbt_build.py [--scales s m] [--runs 3] [--core-only]
[--baseline OTHER_CHECKOUT]`

Starts its own embedded servers in a temporary directory (as `bench/seed.py` does), seeds each
scale once, then times, with the dbt CLI as a user runs it:
- `dbt build` of the whole project (every model and test), listing the five slowest nodes
  (`--core-only`: instead, `dbt run` of the shared staging layer the core tier reads, not timed);
- `--runs` times: the core tier's build as its flow selects it (`--selector tier_core`: the models
  it owns, tests only where everything they read is built) with `--full-refresh` (from scratch),
  then `stir seed --increment` (one hour of deliveries) and the same build without
  `--full-refresh` (the incremental run); medians with the spread (min-max), and the slowest
  nodes of the last incremental run (dbt's run_results.json).
`--baseline` names another checkout (e.g. a `git worktree` of the previous commit): its
transform/ is timed the same way in the same run, interleaved run by run with this one, each
project in a ClickHouse database of its own, and the medians are compared as ratios.
Goals (issue 5): the core tier builds at m in <= 60 s; (issue 16) the incremental run takes
<= 1/3 of the full refresh. Goal (issue 8): the full daily build at m in <= 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import machine_line, timed
from seed import run_seed, start_servers, stop_servers

from stir.domain.tiers import get_tier

ROOT = Path(__file__).resolve().parent.parent
TRANSFORM = ROOT / "transform"
DBT = str(Path(sys.executable).parent / "dbt")


def dbt_build(
    env: dict[str, str],
    target: Path,
    *args: str,
    transform: Path = TRANSFORM,
    command: str = "build",
) -> tuple[float, list[dict]]:
    """Seconds of `dbt COMMAND ARGS` and its per-node results; exits if the build fails."""
    argv = [DBT, command, "--project-dir", str(transform), "--profiles-dir", str(transform), *args]
    dbt_env = {**os.environ, **env, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(target)}
    with timed() as t:
        done = subprocess.run(argv, env=dbt_env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"dbt {command} {' '.join(args)} failed:\n{done.stdout[-4000:]}")
    results = json.loads((target / "run_results.json").read_text())["results"]
    return t["seconds"], results


def slowest(results: list[dict], count: int = 5) -> list[tuple[str, float]]:
    # the node's name: `test.stir.<name>.<hash>` for a generic test; unit tests are named
    # `unit_test.stir.<model>.<test>`, so they keep their type
    def name(result: dict) -> str:
        kind, _, node = result["unique_id"].split(".")[:3]
        return f"{node} (unit test)" if kind == "unit_test" else node

    timed_nodes = [(name(r), r["execution_time"]) for r in results]
    return sorted(timed_nodes, key=lambda item: item[1], reverse=True)[:count]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} s ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["s", "m"])
    parser.add_argument("--runs", type=int, default=3, help="core tier runs per project")
    parser.add_argument("--core-only", action="store_true", help="skip the whole-project build")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare against")
    options = parser.parse_args()
    projects = {"this": TRANSFORM}
    if options.baseline:
        projects = {"baseline": options.baseline.resolve() / "transform", **projects}
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="stir-bench-dbt-") as tmp:
        root = Path(tmp)
        env, clickhouse, stack = start_servers(root)
        try:
            for scale in options.scales:
                run_seed(["--scale", scale], env)
                # each project in its own databases (<name>, <name>_staging, ...)
                envs = {
                    name: {**env, "STIR_CLICKHOUSE_DATABASE": f"bench_{name}"} for name in projects
                }
                # a target folder per project, which keeps dbt's partial-parse file between
                # builds, as the tier flows do (stir/dbt_project.py): one shared by two projects
                # would make every build parse the whole project
                targets = {name: root / f"target-{name}" for name in projects}
                print(f"\nscale {scale}")
                for name, transform in projects.items():
                    if options.core_only:
                        selector = ("--selector", "shared_layer")
                        dbt_build(
                            envs[name], targets[name], *selector, transform=transform, command="run"
                        )
                        continue
                    full, results = dbt_build(envs[name], targets[name], transform=transform)
                    node_time = sum(r["execution_time"] for r in results)
                    print(f"  {name}: full build {full:7.1f} s, {len(results)} nodes; slowest:")
                    for node, seconds in slowest(results):
                        print(f"    {node:<48} {seconds:6.1f} s  {seconds / node_time:5.1%}")
                core = get_tier("core").dbt_build_args[1:]
                times: dict[str, dict[str, list[float]]] = {
                    name: {"full": [], "incremental": []} for name in projects
                }
                last: dict[str, list[dict]] = {}
                # Interleaved, run by run, so that a change in the machine's load hits both
                # projects alike; each increment is the next hour, so each project's
                # incremental run reads one increment.
                for run in range(options.runs):
                    for name, transform in projects.items():
                        full, _ = dbt_build(
                            envs[name], targets[name], *core, "--full-refresh", transform=transform
                        )
                        run_seed(["--increment"], env)
                        incremental, last[name] = dbt_build(
                            envs[name], targets[name], *core, transform=transform
                        )
                        times[name]["full"].append(full)
                        times[name]["incremental"].append(incremental)
                        print(f"  run {run + 1}, {name}: core full refresh {full:6.1f} s, "
                              f"after one increment {incremental:6.1f} s "
                              f"({incremental / full:.0%})", flush=True)  # fmt: skip
                print(f"  core tier, median of {options.runs} (min-max):")
                for name in projects:
                    full, incremental = times[name]["full"], times[name]["incremental"]
                    ratios = [i / f for i, f in zip(incremental, full, strict=True)]
                    print(f"    {name:<9} full refresh {spread(full)}, incremental "
                          f"{spread(incremental)}: {statistics.median(ratios):.0%} of the full "
                          f"refresh ({min(ratios):.0%}-{max(ratios):.0%})")  # fmt: skip
                if options.baseline:
                    base, this = times["baseline"], times["this"]
                    for kind in ("full", "incremental"):
                        ratio = statistics.median(this[kind]) / statistics.median(base[kind])
                        print(f"    this / baseline, {kind}: {ratio:.2f}")
                for name in projects:
                    print(f"  slowest nodes of {name}'s last incremental run:")
                    for node, seconds in slowest(last[name], 8):
                        print(f"    {node:<56} {seconds:6.1f} s")
        finally:
            stop_servers(clickhouse, stack)


if __name__ == "__main__":
    main()
