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
  nodes of the last incremental run (dbt's run_results.json); then the same build once more with
  nothing new (no increment in between): the floor every run of the tier pays whatever it reads,
  so incremental minus that floor is what the increment itself costs.
`--baseline` names another checkout (e.g. a `git worktree` of the previous commit): its
transform/ is timed the same way in the same run, interleaved run by run with this one, each
project in a ClickHouse database of its own, and the medians are compared as ratios.
Each core build also prints where its CPU went: the dbt process's own (start-up, parsing, Jinja,
the node threads) and the ClickHouse server's during the build (the SQL), in CPU seconds. The
wall time cannot be less than their sum divided by the cores, so this tells which side an
optimisation must cut.
Goals (issue 5): the core tier builds at m in <= 60 s; (issue 16) the incremental run takes
<= 1/3 of the full refresh. Goal (issue 8): the full daily build at m in <= 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import machine_line, timed
from seed import run_seed, start_servers, stop_servers

from stir.domain.tiers import get_tier

ROOT = Path(__file__).resolve().parent.parent
TRANSFORM = ROOT / "transform"
DBT = str(Path(sys.executable).parent / "dbt")


@dataclass(frozen=True)
class Build:
    seconds: float
    dbt_cpu: float  # CPU seconds of the dbt process
    clickhouse_cpu: float  # CPU seconds of the ClickHouse server during the build
    results: list[dict]  # dbt's run_results.json, one entry per node


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def children_cpu_seconds() -> float:
    """CPU seconds of this process's finished children (the dbt processes it waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def dbt_build(
    env: dict[str, str],
    target: Path,
    clickhouse: psutil.Process,
    *args: str,
    transform: Path = TRANSFORM,
    command: str = "build",
) -> Build:
    """`dbt COMMAND ARGS`: its seconds, CPU and per-node results; exits if the build fails."""
    argv = [DBT, command, "--project-dir", str(transform), "--profiles-dir", str(transform), *args]
    dbt_env = {**os.environ, **env, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(target)}
    # The bench times builds, it does not bound them: at l a full refresh's statements outlive
    # the default 300 s (the embedded engine runs one statement at a time, so one dbt thread's
    # statement also waits out the other's).
    dbt_env.setdefault("STIR_DBT_QUERY_TIMEOUT", "3600")
    dbt_before, clickhouse_before = children_cpu_seconds(), cpu_seconds(clickhouse)
    with timed() as t:
        done = subprocess.run(argv, env=dbt_env, capture_output=True, text=True, check=False)
    dbt_cpu = children_cpu_seconds() - dbt_before
    clickhouse_cpu = cpu_seconds(clickhouse) - clickhouse_before
    if done.returncode != 0:
        raise SystemExit(f"dbt {command} {' '.join(args)} failed:\n{done.stdout[-4000:]}")
    results = json.loads((target / "run_results.json").read_text())["results"]
    return Build(t["seconds"], dbt_cpu, clickhouse_cpu, results)


def slowest(results: list[dict], count: int = 5) -> list[tuple[str, float]]:
    # the node's name: `test.stir.<name>.<hash>` for a generic test; unit tests are named
    # `unit_test.stir.<model>.<test>`, so they keep their type
    def name(result: dict) -> str:
        kind, _, node = result["unique_id"].split(".")[:3]
        return f"{node} (unit test)" if kind == "unit_test" else node

    timed_nodes = [(name(r), r["execution_time"]) for r in results]
    return sorted(timed_nodes, key=lambda item: item[1], reverse=True)[:count]


def median(builds: list[Build], field: str = "seconds") -> float:
    return statistics.median(getattr(b, field) for b in builds)


def spread(builds: list[Build], field: str = "seconds") -> str:
    """The median of one field of `builds` with its spread (min-max)."""
    values = [getattr(b, field) for b in builds]
    return f"{statistics.median(values):6.1f} s ({min(values):.1f}-{max(values):.1f})"


def ratio_spread(parts: list[Build], wholes: list[Build], field: str) -> str:
    """The median of the run-by-run ratios part / whole of one field, with their spread."""
    ratios = [getattr(p, field) / getattr(w, field) for p, w in zip(parts, wholes, strict=True)]
    return f"{statistics.median(ratios):.0%} ({min(ratios):.0%}-{max(ratios):.0%})"


def cpu_split(build: Build) -> str:
    return f"(CPU: dbt {build.dbt_cpu:.1f} s, ClickHouse {build.clickhouse_cpu:.1f} s)"


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
        server = psutil.Process(clickhouse.process.pid)
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
                            envs[name],
                            targets[name],
                            server,
                            *selector,
                            transform=transform,
                            command="run",
                        )
                        continue
                    whole = dbt_build(envs[name], targets[name], server, transform=transform)
                    node_time = sum(r["execution_time"] for r in whole.results)
                    print(f"  {name}: full build {whole.seconds:7.1f} s, "
                          f"{len(whole.results)} nodes; slowest:")  # fmt: skip
                    for node, seconds in slowest(whole.results):
                        print(f"    {node:<48} {seconds:6.1f} s  {seconds / node_time:5.1%}")
                core = get_tier("core").dbt_build_args[1:]
                builds: dict[str, dict[str, list[Build]]] = {
                    name: {"full": [], "incremental": [], "nothing new": []} for name in projects
                }
                # Interleaved, run by run, so that a change in the machine's load hits both
                # projects alike; each increment is the next hour, so each project's
                # incremental run reads one increment.
                for run in range(options.runs):
                    for name, transform in projects.items():
                        full = dbt_build(
                            envs[name],
                            targets[name],
                            server,
                            *core,
                            "--full-refresh",
                            transform=transform,
                        )
                        run_seed(["--increment"], env)
                        incremental = dbt_build(
                            envs[name], targets[name], server, *core, transform=transform
                        )
                        idle = dbt_build(
                            envs[name], targets[name], server, *core, transform=transform
                        )
                        builds[name]["full"].append(full)
                        builds[name]["incremental"].append(incremental)
                        builds[name]["nothing new"].append(idle)
                        share = incremental.seconds / full.seconds
                        print(f"  run {run + 1}, {name}: core full refresh {full.seconds:6.1f} s "
                              f"{cpu_split(full)}, after one increment "
                              f"{incremental.seconds:6.1f} s {cpu_split(incremental)} "
                              f"({share:.0%}), then with nothing new {idle.seconds:6.1f} s "
                              f"{cpu_split(idle)} ({idle.seconds / full.seconds:.0%})",
                              flush=True)  # fmt: skip
                print(f"  core tier, median of {options.runs} (min-max):")
                for name in projects:
                    full, incremental = builds[name]["full"], builds[name]["incremental"]
                    print(f"    {name:<9} full refresh {spread(full)}, incremental "
                          f"{spread(incremental)}: {ratio_spread(incremental, full, 'seconds')} of "
                          "the full refresh")  # fmt: skip
                    print(f"    {'':<9} ClickHouse CPU after one increment: "
                          f"{ratio_spread(incremental, full, 'clickhouse_cpu')} of the full "
                          f"refresh's; dbt's own CPU per build "
                          f"{spread(full + incremental, 'dbt_cpu')}")  # fmt: skip
                    idle = builds[name]["nothing new"]
                    print(f"    {'':<9} with nothing new {spread(idle)}: "
                          f"{ratio_spread(idle, full, 'seconds')} of the full refresh (the "
                          f"floor); the increment itself: "
                          f"{median(incremental) - median(idle):+.1f} s")  # fmt: skip
                if options.baseline:
                    base, this = builds["baseline"], builds["this"]
                    for kind in ("full", "incremental", "nothing new"):
                        ratio = median(this[kind]) / median(base[kind])
                        print(f"    this / baseline, {kind}: {ratio:.2f}")
                for name in projects:
                    print(f"  slowest nodes of {name}'s last incremental run:")
                    for node, seconds in slowest(builds[name]["incremental"][-1].results, 8):
                        print(f"    {node:<56} {seconds:6.1f} s")
        finally:
            stop_servers(clickhouse, stack)


if __name__ == "__main__":
    main()
