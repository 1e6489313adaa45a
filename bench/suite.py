"""The whole test suite's wall time, alone or beside a CPU load, and how near any test came to its
timeout.

    .venv/bin/python bench/suite.py              # alone
    .venv/bin/python bench/suite.py --hogs 1     # beside one process spinning a core the whole time

Runs `pytest` as `./dev test` does (pytest-xdist, the project's settings), with `--durations=0`,
while `--hogs` busy-loop processes compete for the cores. Prints the machine, the load average,
the wall time, the pass/fail line, and the slowest tests with their share of their timeout
(pyproject's `timeout`, or a test's own `@pytest.mark.timeout`): the issue's goal is that none
comes near it on a loaded machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line

ROOT = Path(__file__).resolve().parent.parent
DURATION = re.compile(r"^\s*([\d.]+)s (call|setup|teardown)\s+(\S+)$", re.M)
OWN_TIMEOUT = re.compile(r"@pytest\.mark\.timeout\((\d+)\)\s*\n(?:@.*\n)*(?:async )?def (\w+)")


def _spin() -> None:
    while True:
        pass


def timeouts() -> tuple[float, dict[str, float]]:
    """The suite's default timeout and the tests that set their own (by function name)."""
    default = float(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
                    ["ini_options"]["timeout"])  # fmt: skip
    own: dict[str, float] = {}
    for path in (ROOT / "tests").glob("test_*.py"):
        for seconds, name in OWN_TIMEOUT.findall(path.read_text()):
            own[name] = float(seconds)
    return default, own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=0, help="busy-loop processes beside the suite")
    parser.add_argument("--slowest", type=int, default=8, help="slowest tests to list")
    args = parser.parse_args()

    hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    started = time.monotonic()
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "pytest"), "-q", "-rfE", "--durations=0"],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        for hog in hogs:
            hog.terminate()
    wall = time.monotonic() - started
    load = os.getloadavg()

    default, own = timeouts()
    calls = [
        (float(seconds), test)
        for seconds, phase, test in DURATION.findall(result.stdout)
        if phase == "call"
    ]
    summary = [line for line in result.stdout.splitlines() if re.search(r"\d+ passed|failed", line)]
    print(machine_line())
    print(f"hogs beside the suite: {args.hogs}; load average at the end: {load[0]:.1f} (1 min)")
    print(f"wall {wall:.0f} s ({wall / 60:.1f} min); {summary[-1].strip('= ') if summary else '?'}")
    for line in result.stdout.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            print(line)
    print("slowest tests (share of their timeout):")
    for seconds, test in sorted(calls, reverse=True)[: args.slowest]:
        name = test.split("::")[-1].split("[")[0]
        limit = own.get(name, default)
        print(f"  {seconds:7.1f} s  {seconds / limit:4.0%} of {limit:.0f} s  {test}")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
