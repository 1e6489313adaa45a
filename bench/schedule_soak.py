"""The seven tiers on their real cron schedules, compressed in time, on a real Prefect server.

Run: `.venv/bin/python bench/schedule_soak.py [--minutes 30] [--factor 30] [--workers 2]`

Stir deployed the way its users run it (issue 12): `stir stack up` (in a temporary state
directory, on free ports, apart from a developer's own stack), `stir seed --scale xs`, a Prefect
server of its own (`prefect server start`, SQLite), `stir deploy`, and `--workers` process workers
(`prefect worker start --pool stir`). A first full run builds every table: each tier once, in
dependency order. Then the soak replays each tier's cron schedule (stir/domain/tiers.py) on a
simulated clock, `--factor` times faster than real time (30: one scheduled minute every 2 s),
for `--minutes` of wall time: at each due time it creates, at once, the flow runs of every tier
that comes due then — what Prefect's scheduler does at that minute (the deployments' own
schedules are paused). The clock starts on a Monday at 01:50 UTC (`--start`), so the 02:00 daily
window holder (leaderboards) and the Monday 04:00 growth tier fall inside a long enough soak.

The runs themselves are not compressed: at factor 30 a tier comes due 30 times as often as in
production, so self-overlaps (Cancelled by the deployment's limit) and concurrent tiers are far
more frequent than on the real schedule. That is the point: it is a stress of the collisions.

It prints the machine, the scale, the durations and, per tier and in total, the runs and how they
ended (Skipped: a Completed run named Skipped, the tier yielding to the batch window), and the
window holder's wait: from its start to its "holding the batch window" log line (or, if that
line is not in the run's logs, to its first task). Exit code 1 when a run Failed or Crashed, or
did not finish within `--drain` seconds after the last due time; their messages are printed and
the temporary directory (with every process's log) is kept.

The Prefect server keeps SQLite, as `prefect server start` does: its migrations for PostgreSQL
need the pg_trgm extension, which the embedded PostgreSQL (pgserver) does not ship. Under load on
a small machine SQLite answers some calls "database is locked" (503); a worker that gets one while
it submits a run reports the run Crashed ("Failed to submit flow run to infrastructure"): that is
Prefect's server, not Stir, and the server's log says so.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import free_port, machine_line, timed
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import TaskRunSort
from prefect.server.schemas.schedules import CronSchedule

from stir.domain.tiers import TIERS, TIME_ZONE, WindowRole
from tests.prefect_platform import PrefectPlatform, RunOutcome, clean_env

SCALE = "xs"
HOLDING = "holding the batch window"  # stir/flows/batch_window.py logs it once the holder has it
COLUMNS = ("Completed", "Skipped", "Cancelled", "Failed", "Crashed", "unfinished")


@dataclass(frozen=True)
class Planned:
    """One flow run the soak created: its tier and the simulated time it was due."""

    tier: str
    due: datetime
    id: UUID


def stir(args: list[str], env: dict[str, str], cwd: Path, check: bool = True) -> str:
    """Run `stir ARGS` as a user would; its output, or exit with it when the command fails."""
    command = [sys.executable, "-c", "from stir.cli import app; app()", *args]
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"stir {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def stack_env(root: Path) -> dict[str, str]:
    """Settings of an embedded stack of its own: a temporary state directory and free ports."""
    return {
        "STIR_STATE_DIR": str(root / "stack"),
        "STIR_CLICKHOUSE_HTTP_PORT": str(free_port()),
        "STIR_CLICKHOUSE_NATIVE_PORT": str(free_port()),
        "STIR_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "STIR_POSTGRES_PORT": str(free_port()),
    }


async def due_times(start: datetime, end: datetime) -> dict[datetime, list[str]]:
    """Every due time in [start, end) and the tiers due then, as Prefect's scheduler computes
    them (its own CronSchedule: Prefect 3.9 has no croniter)."""
    due: dict[datetime, list[str]] = defaultdict(list)
    for tier in TIERS:
        schedule = CronSchedule(cron=tier.cron, timezone=TIME_ZONE)
        cursor = start
        while cursor < end:  # pages: get_dates looks at 1,000 candidates at most
            dates = await schedule.get_dates(n=500, start=cursor, end=end - timedelta(seconds=1))
            for date in dates:
                due[date].append(tier.name)
            if len(dates) < 500:
                break
            cursor = dates[-1] + timedelta(seconds=1)
    return dict(sorted(due.items()))


def category(outcome: RunOutcome | None) -> str:
    if outcome is None or not outcome.final:
        return "unfinished"
    if outcome.state_type is StateType.COMPLETED:
        return "Skipped" if outcome.state_name == "Skipped" else "Completed"
    return {
        StateType.CANCELLED: "Cancelled",
        StateType.FAILED: "Failed",  # TimedOut is a Failed state too (its name says so)
        StateType.CRASHED: "Crashed",
    }[outcome.state_type]


async def first_full_run(platform: PrefectPlatform) -> None:
    """Each tier once, alone and in dependency order, so every table the soak reads exists."""
    for tier in TIERS:
        with timed() as t:
            (run_id,) = await platform.run_deployments([tier.name])
            outcome = (await platform.wait_final([run_id], timeout=1800))[run_id]
        print(f"  {tier.name:<16}{outcome.state_name:<10}{t['seconds']:6.1f} s", flush=True)
        if outcome.state_type is not StateType.COMPLETED:
            detail = f"{outcome.state_name}: {outcome.message}"
            raise SystemExit(f"first run of {tier.name} ended {detail}\n{platform.log_tails()}")


async def soak(
    platform: PrefectPlatform, start: datetime, minutes: float, factor: float
) -> tuple[list[Planned], float]:
    """Create the runs of every due time of the simulated window at its compressed wall time.

    Returns the runs and the largest lateness, in wall seconds, of a creation behind its due
    time: an overloaded server answers slowly, and then the runs start later than planned.
    """
    end = start + timedelta(minutes=minutes * factor)
    plan = await due_times(start, end)
    planned: list[Planned] = []
    began, late = time.monotonic(), 0.0
    for due, names in plan.items():
        at = (due - start).total_seconds() / factor
        delay = at - (time.monotonic() - began)
        if delay > 0:
            await asyncio.sleep(delay)
        ids = await platform.run_deployments(names)
        planned += [Planned(name, due, id_) for name, id_ in zip(names, ids, strict=True)]
        created = time.monotonic() - began
        late = max(late, created - at)
        if names != ["monitoring"]:  # the every-5-minute tier alone is not worth a line
            print(f"  {due:%a %H:%M}  +{at:4.0f} s (created at +{created:4.0f} s)  "
                  f"{', '.join(names)}", flush=True)  # fmt: skip
    remaining = minutes * 60 - (time.monotonic() - began)
    await asyncio.sleep(max(0.0, remaining))
    return planned, late


async def holder_wait(platform: PrefectPlatform, outcome: RunOutcome) -> str:
    """From the holder's start to its "holding the batch window" line, else to its first task."""
    if outcome.start_time is None:
        return "did not start"
    logs = await platform.read_logs(outcome.id, text="holding")
    held = next((log.timestamp for log in logs if HOLDING in log.message), None)
    if held is not None:
        return f"{(held - outcome.start_time).total_seconds():.1f} s (to its log line)"
    tasks = await platform.client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[outcome.id])),
        sort=TaskRunSort.EXPECTED_START_TIME_ASC,
        limit=50,
    )
    starts = [task.start_time for task in tasks if task.start_time is not None]
    if not starts:
        return "no task started"
    waited = (min(starts) - outcome.start_time).total_seconds()
    return f"{waited:.1f} s (to its first task; no '{HOLDING}' line in its logs)"


async def report_holders(
    platform: PrefectPlatform, planned: list[Planned], outcomes: dict[UUID, RunOutcome]
) -> None:
    holders = {tier.name for tier in TIERS if tier.window is WindowRole.HOLDER}
    for run in planned:
        outcome = outcomes.get(run.id)
        if run.tier in holders and outcome is not None:
            wait = await holder_wait(platform, outcome)
            print(f"window holder {run.tier} due {run.due:%H:%M} ({outcome.name}): "
                  f"{outcome.state_name}; waited {wait}")  # fmt: skip


def report(planned: list[Planned], outcomes: dict[UUID, RunOutcome]) -> list[str]:
    """The per-tier table; returns the lines describing the runs that count as failures."""
    counts: dict[str, dict[str, int]] = {t.name: dict.fromkeys(COLUMNS, 0) for t in TIERS}
    seconds: dict[str, list[float]] = defaultdict(list)
    problems: list[str] = []
    for run in planned:
        outcome = outcomes.get(run.id)
        kind = category(outcome)
        counts[run.tier][kind] += 1
        if kind == "Completed" and outcome is not None and outcome.seconds is not None:
            seconds[run.tier].append(outcome.seconds)
        if kind in ("Failed", "Crashed", "unfinished"):
            state = outcome.state_name if outcome else "not found"
            message = (outcome.message or "") if outcome else ""
            name = outcome.name if outcome else str(run.id)
            problems.append(f"{run.tier} due {run.due:%H:%M} ({name}): {state}: {message[:400]}")
    header = f"{'tier':<16}{'runs':>6}" + "".join(f"{c:>11}" for c in COLUMNS)
    print(header + f"{'median s':>10}")
    total = dict.fromkeys(COLUMNS, 0)
    for tier in TIERS:
        row = counts[tier.name]
        runs = sum(row.values())
        median = f"{statistics.median(seconds[tier.name]):10.1f}" if seconds[tier.name] else ""
        cells = "".join(f"{row[c]:11d}" for c in COLUMNS)
        print(f"{tier.name:<16}{runs:6d}{cells}{median}")
        for column in COLUMNS:
            total[column] += row[column]
    cells = "".join(f"{total[c]:11d}" for c in COLUMNS)
    print(f"{'all tiers':<16}{sum(total.values()):6d}{cells}")
    return problems


async def run(options: argparse.Namespace, root: Path) -> bool:
    """The whole benchmark; True when no run failed, crashed or was left unfinished."""
    env = stack_env(root)
    child = {**clean_env(), **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    try:
        with timed() as t:
            stir(["stack", "up"], child, cwd=root)  # cwd: no .env of a checkout applies
        print(f"embedded stack up in {t['seconds']:.0f} s (state in {root / 'stack'})")
        with timed() as t:
            stir(["seed", "--scale", SCALE], child, cwd=root)
        print(f"seeded scale {SCALE} in {t['seconds']:.0f} s")
        async with PrefectPlatform(root / "prefect") as platform:
            with timed() as t:
                await platform.deploy(env)
                await platform.start_workers(options.workers, env)
            print(f"Prefect server {platform.url}, deployed, {options.workers} workers online "
                  f"in {t['seconds']:.0f} s")  # fmt: skip
            print("first full run, one tier at a time:")
            await first_full_run(platform)

            per_minute = 60 / options.factor
            print(
                f"soak: {options.minutes:g} min of wall time from simulated "
                f"{options.start:%a %Y-%m-%d %H:%M} {TIME_ZONE}, factor {options.factor:g} "
                f"(one scheduled minute every {per_minute:.1f} s); due times other than "
                "monitoring alone:",
                flush=True,
            )
            with timed() as soaked:
                planned, late = await soak(platform, options.start, options.minutes, options.factor)
            with timed() as drained:
                outcomes = await platform.wait_final(
                    [p.id for p in planned], timeout=options.drain, raise_on_timeout=False
                )
            print(f"\n{machine_line()}")
            simulated_end = options.start + timedelta(minutes=options.minutes * options.factor)
            print(
                f"data: scale {SCALE}; workers: {options.workers}; factor {options.factor:g}; "
                f"simulated {options.start:%a %H:%M} to {simulated_end:%a %H:%M} {TIME_ZONE}; "
                f"scheduling {soaked['seconds'] / 60:.1f} min (runs created up to {late:.0f} s "
                f"late), then {drained['seconds']:.0f} s until the last run ended"
            )
            problems = report(planned, outcomes)
            await report_holders(platform, planned, outcomes)
            if problems:
                print(f"\n{len(problems)} runs failed, crashed or did not finish:")
                for line in problems:
                    print(f"  {line}")
                print(f"logs: {platform.logs_dir}")
            return not problems
    finally:
        stir(["stack", "down"], child, cwd=root, check=False)  # never masks the real error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="wall time of the soak")
    parser.add_argument("--factor", type=float, default=30.0, help="scheduled min per real min")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--start",
        type=lambda text: datetime.fromisoformat(text).replace(tzinfo=UTC),
        default=datetime(2026, 11, 30, 1, 50, tzinfo=UTC),  # a Monday
        help="simulated start, ISO, in UTC (the tiers' time zone)",
    )
    parser.add_argument("--drain", type=float, default=900.0, help="s to wait for the last runs")
    options = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress lines show up when piped to a file
    print(machine_line())
    root = Path(tempfile.mkdtemp(prefix="stir-bench-soak-"))
    ok = False
    try:
        ok = asyncio.run(run(options, root))
    finally:
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root} (every process's log is under it)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
