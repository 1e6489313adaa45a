"""Wall time of the dbt builds per scale: the full build, the core tier, and an incremental run.

Run: `.venv/bin/python bench/dbt_build.py [--scales s m]`

Starts its own embedded servers in a temporary directory (as `bench/seed.py` does), seeds each
scale, then times, with the dbt CLI as a user runs it:
- `dbt build` of the whole project (every model and test), listing the five slowest nodes;
- the core tier's build as its flow selects it (`--selector tier_core`: the models it owns,
  tests only where everything they read is built) with `--full-refresh` (from scratch);
- after `stir seed --increment`, the same without `--full-refresh` (the incremental run).
Goals (issue 5): the core tier builds at m in <= 60 s; the incremental run takes <= 1/3 of the
full one. Goal (issue 8): the full daily build at m in <= 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
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


def dbt_build(env: dict[str, str], target: Path, *args: str) -> tuple[float, list[dict]]:
    """Seconds of `dbt build ARGS` and its per-node results; exits if the build fails."""
    command = [DBT, "build", "--project-dir", str(TRANSFORM), "--profiles-dir", str(TRANSFORM),
               *args]  # fmt: skip
    dbt_env = {**os.environ, **env, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(target)}
    with timed() as t:
        done = subprocess.run(command, env=dbt_env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"dbt build {' '.join(args)} failed:\n{done.stdout[-4000:]}")
    results = json.loads((target / "run_results.json").read_text())["results"]
    return t["seconds"], results


def slowest(results: list[dict], count: int = 5) -> list[tuple[str, float]]:
    # the node's name: `test.stir.<name>.<hash>` for a generic test
    timed_nodes = [(r["unique_id"].split(".")[2], r["execution_time"]) for r in results]
    return sorted(timed_nodes, key=lambda item: item[1], reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["s", "m"])
    options = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="stir-bench-dbt-") as tmp:
        root = Path(tmp)
        env, clickhouse, stack = start_servers(root)
        try:
            for scale in options.scales:
                run_seed(["--scale", scale], env)
                full, results = dbt_build(env, root / "target")
                node_time = sum(r["execution_time"] for r in results)
                print(f"\nscale {scale}: {len(results)} nodes")
                print(f"  full build             {full:7.1f} s", flush=True)
                # The core tier as its flow selects it: tests only where all they read is built.
                tier = get_tier("core")
                core = tier.dbt_build_args[1:]
                core_full, _ = dbt_build(env, root / "target", *core, "--full-refresh")
                run_seed(["--increment"], env)
                core_incremental, _ = dbt_build(env, root / "target", *core)
                print(f"  core, full refresh     {core_full:7.1f} s")
                print(f"  core, incremental      {core_incremental:7.1f} s "
                      f"({core_incremental / core_full:.0%} of the full refresh)")  # fmt: skip
                print("  slowest nodes of the full build (share of summed node time):")
                for name, seconds in slowest(results):
                    print(f"    {name:<48} {seconds:6.1f} s  {seconds / node_time:5.1%}")
        finally:
            stop_servers(clickhouse, stack)


if __name__ == "__main__":
    main()
