"""The `stir` command line.

Exit codes follow dbt's and Prefect's CLIs: 0 success, 1 the operation failed, 2 a usage or
configuration error (bad option, invalid environment variable). Every command group is a typer
sub-app (`stir stack ...`); a new command is a function with `@app.command()` or a new
sub-app added with `app.add_typer(...)`. Commands load settings with `load_settings()` and run
their work inside `operation()`, which turns known errors into a message and an exit code
instead of a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stir.settings import Settings, SettingsError, describe, get_settings
from stir.stack.process import StackError, human_size, tail_lines
from stir.stack.services import SERVICE_NAMES, Outcome, Stack

if TYPE_CHECKING:
    from prefect.states import State

    from stir.console import ProgressDisplay
    from stir.deployments.status import PlatformStatus
    from stir.deployments.tiers import WorkPool
    from stir.sources.seed import SeedResult

T = TypeVar("T")
log = logging.getLogger("stir.cli")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _console(stderr: bool = False) -> Console:
    # Piped output (scripts, CI logs, tests) gets wide lines instead of 80-column wrapping.
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=200 if wide else None, highlight=False)


app = typer.Typer(
    name="stir",
    # Docstrings are reflowed as Markdown: their line breaks are not kept in `--help`.
    rich_markup_mode="markdown",
    help="Stir: serve ClickHouse analytics to a live application through PostgreSQL.",
    no_args_is_help=True,
    # Locals in a traceback could show secrets: never print them.
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
stack_app = typer.Typer(
    help=(
        "Run the embedded local stack (ClickHouse on chDB, S3 on moto, PostgreSQL 16) on "
        "loopback. PIDs, logs and data live under STIR_STATE_DIR (default .stir). Services that "
        "the settings point at real servers are checked, never started or stopped."
    ),
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")


def load_settings() -> Settings:
    """Settings, or exit 2 with the message naming each invalid environment variable."""
    try:
        return get_settings()
    except SettingsError as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None


@contextlib.contextmanager
def operation() -> Iterator[None]:
    """Known failures become a message on stderr and their exit code, not a traceback."""
    try:
        yield
    except SettingsError as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    except StackError as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(exc.exit_code) from None


VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Stream every log line (Prefect's, dbt's, Stir's) to the terminal instead of a "
        "progress display with the logs in a file.",
    ),
]


@contextlib.contextmanager
def _progress(
    settings: Settings, command: str, subjects: list[str], verbose: bool, keep: bool = True
) -> Iterator[ProgressDisplay]:
    """A progress display of `subjects`, the logs in a new file under the state directory (its
    path printed first); with `verbose`, the logs on the terminal and no display."""
    from stir.console import ProgressDisplay, log_file_path, logs_to_file, stir_logs_to_terminal

    out = _console()
    if verbose:
        with stir_logs_to_terminal(), ProgressDisplay(out, subjects, show=False) as display:
            yield display
        return
    path = log_file_path(settings.state_dir, command)
    out.print(f"logs: {path}", markup=False, soft_wrap=True)
    with logs_to_file(path), ProgressDisplay(out, subjects, keep=keep) as display:
        yield display
    # The work and its logs are over; Prefect's temporary API stops at exit and would say so on
    # the terminal, between the command's summary lines.
    logging.getLogger("prefect").setLevel(logging.WARNING)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"stir {version('stir')}")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Stir: serve ClickHouse analytics to a live application through PostgreSQL.

    Settings come from STIR_* environment variables and a .env file in the current directory;
    `stir config` shows them. Exit codes: 0 success, 1 the operation failed, 2 a usage or
    configuration error.
    """


@app.command("config")
def config_command() -> None:
    """Show the effective settings: each environment variable, its value and where it came from.

    Secrets (passwords, keys, tokens, the password inside a DSN) are masked.
    """
    settings = load_settings()
    table = Table(title="Stir settings", title_justify="left")
    table.add_column("setting")
    table.add_column("value")
    table.add_column("source")
    for row in describe(settings):
        table.add_row(Text(row.env), Text(row.value), Text(row.source))
    _console().print(table)


@app.command("blocks")
def blocks_command() -> None:
    """Create or update the Prefect blocks the settings name, from this environment's secrets.

    STIR_S3_CREDENTIALS_BLOCK (an aws-credentials block, from STIR_S3_ACCESS_KEY_ID and
    STIR_S3_SECRET_ACCESS_KEY), STIR_POSTGRES_DSN_BLOCK (a secret block, from STIR_POSTGRES_DSN),
    STIR_CLICKHOUSE_PASSWORD_BLOCK and STIR_SLACK_TOKEN_BLOCK (secret blocks, from
    STIR_CLICKHOUSE_PASSWORD and STIR_SLACK_TOKEN), on the Prefect API of STIR_PREFECT_API_URL
    (else Prefect's own). Prints each block's name and type, never a secret. Runs then read the
    secrets from the blocks (docs/credentials.md). Exit code 0 when every named block was
    written; 1 when a block's value is not set here (it is not written) or the API failed; 2
    when no setting names a block, or for invalid settings.
    """
    settings = load_settings()
    from stir.tasks.credentials import CREDENTIAL_BLOCKS, save_blocks

    if all(getattr(getattr(settings, b.section), b.name_field) is None for b in CREDENTIAL_BLOCKS):
        names = ", ".join(b.setting for b in CREDENTIAL_BLOCKS)
        _console(stderr=True).print(f"error: no block is named: set {names}", markup=False)
        raise typer.Exit(EXIT_USAGE)
    _use_prefect_api(settings)
    try:
        writes = asyncio.run(save_blocks(settings))
    except Exception as exc:  # the API unreachable or refusing: its error holds no secret
        _console(stderr=True).print(
            f"error: could not write the blocks ({type(exc).__name__}: {exc})", markup=False
        )
        raise typer.Exit(EXIT_FAILED) from None
    for write in writes:
        line = f"{write.type_slug} block {write.block!r} ({write.setting}): {write.detail}"
        if write.outcome == "written":
            _console().print(f"ok   {line}", markup=False)
        else:
            _console(stderr=True).print(f"error: {line}", markup=False)
    if any(write.outcome != "written" for write in writes):
        raise typer.Exit(EXIT_FAILED)


# --- stir stack ---------------------------------------------------------------------------

ServiceName = StrEnum("ServiceName", {name: name for name in SERVICE_NAMES})  # type: ignore[misc]


@stack_app.command("up")
def stack_up(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each service to become healthy.", min=1)
    ] = 60.0,
    with_prefect: Annotated[
        bool,
        typer.Option(
            "--with-prefect",
            help="Also start `prefect server start` on 127.0.0.1 (STIR_PREFECT_SERVER_PORT, "
            "default 4200) for the UI and schedules; stir run and stir serve then use it.",
        ),
    ] = False,
) -> None:
    """Start the embedded services in the background and wait until each one is healthy.

    Harmless when they already run. Fails (exit 1) without starting anything when a port is
    taken by another program, naming the setting that moves it. Data persists across down/up,
    except the embedded S3's objects, which live in memory (S3 only holds sync checkpoints).
    """
    settings = load_settings()
    with operation():
        outcomes = Stack(settings, with_prefect=with_prefect).up(timeout=timeout)
    _report(outcomes)
    if not all(outcome.ok for outcome in outcomes):
        _console(stderr=True).print(
            "error: some services did not start; see above and `stir stack logs SERVICE`",
            markup=False,
        )
        raise typer.Exit(EXIT_FAILED)


def _report(outcomes: list[Outcome]) -> None:
    """One line per service; failures (with their log tail) go to stderr."""
    out, err = _console(), _console(stderr=True)
    for outcome in outcomes:
        console, mark = (out, "ok  ") if outcome.ok else (err, "FAIL")
        console.print(f"{mark} {outcome.name:<11} {outcome.message}", markup=False)


@stack_app.command("down")
def stack_down(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a clean stop before SIGKILL.", min=1)
    ] = 30.0,
) -> None:
    """Stop the embedded services (data stays on disk). Harmless when they are not running."""
    settings = load_settings()
    with operation():
        outcomes = Stack(settings).down(timeout=timeout)
    _report(outcomes)
    if not all(outcome.ok for outcome in outcomes):
        raise typer.Exit(EXIT_FAILED)


@stack_app.command("status")
def stack_status() -> None:
    """Show each service: state, address, data size on disk and PID.

    States: up, unhealthy (running but not answering), down, external-ok,
    external-unreachable. Exit code 0 when every service is up or external-ok, else 1, so
    scripts can run `stir stack status || stir stack up`.
    """
    settings = load_settings()
    with operation():
        rows = Stack(settings).status()
    table = Table(title=f"Stir stack ({settings.state_dir})", title_justify="left")
    for column in ("service", "state", "address", "data", "pid"):
        table.add_column(column)
    styles = {"up": "green", "external-ok": "green", "down": "yellow"}
    for row in rows:
        state = Text(row.state, style=styles.get(row.state, "red"))
        if row.detail:
            state.append(f" ({row.detail})", style="dim")
        table.add_row(
            Text(row.name),
            state,
            Text(row.address),
            Text("-" if row.data_bytes is None else human_size(row.data_bytes)),
            Text("-" if row.pid is None else str(row.pid)),
        )
    _console().print(table)
    if not all(row.healthy for row in rows):
        raise typer.Exit(EXIT_FAILED)


@stack_app.command("logs")
def stack_logs(
    service: Annotated[
        ServiceName | None,
        typer.Argument(help="Only this service's log (default: every service)."),
    ] = None,
    lines: Annotated[
        int, typer.Option("-n", "--lines", help="Lines to show from the end.", min=0)
    ] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
) -> None:
    """Print the end of the services' logs (like `tail -n N [-f]`)."""
    settings = load_settings()
    stack = Stack(settings)
    names = [service.value] if service else list(SERVICE_NAMES)
    files = {name: stack.log_file(name) for name in names}
    prefix = len(names) > 1
    for name, path in files.items():
        for line in tail_lines(path, lines):
            typer.echo(f"{name:<10} | {line}" if prefix else line)
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            _follow(files, prefix)


def _follow(files: dict[str, Path], prefix: bool) -> None:
    """Poll the log files for appended lines; start again from the top if one is truncated."""
    offsets = {name: (path.stat().st_size if path.exists() else 0) for name, path in files.items()}
    pending = dict.fromkeys(files, b"")
    while True:
        for name, path in files.items():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < offsets[name]:
                offsets[name] = 0
            if size == offsets[name]:
                continue
            with path.open("rb") as handle:
                handle.seek(offsets[name])
                data = pending[name] + handle.read()
                offsets[name] = handle.tell()
            *complete, pending[name] = data.split(b"\n")
            for raw in complete:
                line = raw.decode(errors="replace")
                typer.echo(f"{name:<10} | {line}" if prefix else line)
        time.sleep(0.5)


# --- stir seed ----------------------------------------------------------------------------

SeedScale = StrEnum("SeedScale", {name: name for name in ("xs", "s", "m", "l")})  # type: ignore[misc]
DEFAULT_ANCHOR = date(2026, 1, 1)


@app.command("seed")
def seed_command(
    scale: Annotated[
        SeedScale | None,
        typer.Option(
            help="How much data: xs ~1k profiles (tests), s ~20k, m ~200k (~10 M post "
            "snapshots), l ~2 M (~100 M post snapshots); default xs.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="The seed: the same seed gives the same data; default 42.",
            min=0,
            show_default=False,
        ),
    ] = None,
    anchor: Annotated[
        str,
        typer.Option(help="The date (YYYY-MM-DD, UTC) the 90 days of history end at."),
    ] = DEFAULT_ANCHOR.isoformat(),
    increment: Annotated[
        bool,
        typer.Option(
            "--increment",
            help="Append the next batch (new scrapes, posts, logs, orders) to the seeded data "
            "instead of starting over; repeatable. Uses the seed and scale of the base seed.",
        ),
    ] = False,
    hours: Annotated[
        float,
        typer.Option(help="With --increment: the time the batch covers, in hours.", min=0.001),
    ] = 1.0,
    schema_only: Annotated[
        bool,
        typer.Option(
            "--schema-only",
            help="Only create the raw databases and tables (ClickHouse and PostgreSQL); "
            "idempotent, touches no data.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Allow seeding servers that are not the embedded local stack."
        ),
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Create the raw source tables and fill them with realistic, deterministic data.

    A base seed empties every raw table (ClickHouse raw_* databases, PostgreSQL schema coffee)
    and the S3 drops, then generates 90 days of Instagram, YouTube, Beat, Coffee, Shopify and
    Vidooly data inside ClickHouse. --increment appends one more batch. The tables are
    described in docs/sources.md. Shows its steps; the log lines go to a file under the state
    directory (its path printed first), or to the terminal with --verbose.
    """
    err = _console(stderr=True)
    if increment and schema_only:
        err.print("error: --increment and --schema-only exclude each other", markup=False)
        raise typer.Exit(EXIT_USAGE)
    if increment and (scale is not None or seed is not None):
        err.print(
            "error: --increment continues the seeded data with its own seed and scale; "
            "it takes no --scale or --seed",
            markup=False,
        )
        raise typer.Exit(EXIT_USAGE)
    try:
        anchor_date = date.fromisoformat(anchor)
    except ValueError:
        err.print(f"error: --anchor {anchor!r} is not a date like 2026-01-01", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    settings = load_settings()
    if schema_only:
        # Creating what is missing destroys nothing: allowed on any server.
        from stir.sources.seed import Seeder

        _seed_or_exit(lambda: Seeder(settings).apply_schema())
        _console().print("raw schemas applied (ClickHouse raw_* databases, PostgreSQL coffee)")
        return
    with _progress(settings, "seed", ["seed"], verbose) as display:
        result = _seed(settings, display, scale, seed, anchor_date, increment, hours, force)
    _print_seed_result(result)


def _seed_or_exit(work: Callable[[], Awaitable[T]]) -> T:
    """Run a seeder coroutine; its known errors become a message and an exit code."""
    from stir.clickhouse import ClickHouseError
    from stir.sources.seed import SeedError

    err = _console(stderr=True)
    try:
        return asyncio.run(work())
    except SeedError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(exc.exit_code) from None
    except ClickHouseError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None


def _seed(
    settings: Settings,
    display: ProgressDisplay,
    scale: SeedScale | None = None,
    seed: int | None = None,
    anchor: date = DEFAULT_ANCHOR,
    increment: bool = False,
    hours: float = 1.0,
    force: bool = False,
) -> SeedResult:
    """A base seed (or with `increment`, the next batch), its steps shown on `display`."""
    # Imported here: the seeder pulls in boto3 and asyncpg, which `stir --help` does not need.
    from stir import progress
    from stir.sources.seed import Seeder, SeedError, StepEvent, guard_servers

    def show(event: StepEvent) -> None:
        detail = event.description if event.seconds is None else f"{event.name} done"
        progress.report(
            progress.Event(progress.Kind.STEP, "seed", event.index, event.total, detail=detail)
        )
        rows = f", {event.rows:,} rows" if event.rows else ""
        done = f"done in {event.seconds:.1f} s{rows}" if event.seconds is not None else ""
        log.info("seed step %d/%d %s: %s", event.index, event.total, event.name, done or detail)

    seeder = Seeder(settings, on_step=show)
    try:
        guard_servers(settings, force)
    except SeedError as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(exc.exit_code) from None
    display.start("seed")
    try:
        if increment:
            result = _seed_or_exit(lambda: seeder.increment(timedelta(hours=hours)))
        else:
            result = _seed_or_exit(
                lambda: seeder.seed(
                    scale.value if scale else "xs", 42 if seed is None else seed, anchor
                )
            )
    except typer.Exit:
        display.finish("seed", "failed")
        raise
    display.finish("seed", "done")
    return result


def _print_seed_result(result: SeedResult, tables: bool = True) -> None:
    from stir.sources.seed import summarize

    out = _console()
    rate = result.rows_written / result.seconds if result.seconds else 0.0
    out.print(
        f"seed batch {result.batch}: seed {result.seed}, scale {result.scale}, data ingested from "
        f"{result.window_lo:%Y-%m-%d %H:%M} to {result.window_hi:%Y-%m-%d %H:%M} UTC; "
        f"{result.rows_written:,} rows written in {result.seconds:.1f} s ({rate:,.0f} rows/s)",
        markup=False,
    )
    if tables:
        table = Table()
        table.add_column("raw table")
        table.add_column("rows", justify="right")
        for name, rows in summarize(result.table_rows):
            table.add_row(Text(name), Text(f"{rows:,}"))
        out.print(table)


# --- stir run / stir serve -----------------------------------------------------------------


# How long a temporary Prefect API may take to start. Prefect waits 20 s, which a busy 2-core
# machine overran (the server imports, migrates its SQLite database, then answers); a user's own
# PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS wins.
EPHEMERAL_API_STARTUP_SECONDS = "120"
_EPHEMERAL_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API"


def _use_prefect_api(settings: Settings) -> None:
    """Point Prefect at STIR_PREFECT_API_URL, else at the stack's Prefect server when it runs;
    with neither, Prefect's own settings apply (a temporary local API, given time to start)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault(
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_API_STARTUP_SECONDS
    )
    api_url = settings.prefect.api_url or Stack(settings).prefect_api_url()
    if api_url:
        os.environ["PREFECT_API_URL"] = api_url


def _tier_names() -> list[str]:
    from stir.domain.tiers import TIERS

    return [tier.name for tier in TIERS]


@app.command("run")
def run_command(
    tier: Annotated[
        str,
        typer.Argument(
            help="The tier to run: monitoring, core, collections, profile-ranking, "
            "post-ranking, leaderboards or growth.",
            show_default=False,
        ),
    ],
    verbose: VerboseOption = False,
) -> None:
    """Run one tier now, in this process: its lock, the batch window, dbt build, syncs.

    The same flow as the tier's deployment: its timeout, retries and alerts. Uses the Prefect
    API of STIR_PREFECT_API_URL (or Prefect's own PREFECT_API_URL; without either, a temporary
    local one). Exit code 0 when the run completed, also when it was Skipped (the tier is
    already running elsewhere, or the daily batch window is held); 1 when it failed. Shows
    progress (dbt nodes, tables synced); the log lines go to a file under the state directory,
    or to the terminal with --verbose.
    """
    settings = load_settings()
    if tier not in _tier_names():
        _console(stderr=True).print(
            f"error: no tier called {tier!r}; the tiers are: {', '.join(_tier_names())}",
            markup=False,
        )
        raise typer.Exit(EXIT_USAGE)
    _use_prefect_api(settings)
    _import_prefect_logging()
    with operation(), _progress(settings, f"run-{tier}", [tier], verbose) as display:
        state = _run_tier_flow(tier, display)
    console = _console()
    if state.is_completed():
        detail = f": {state.message}" if state.message else ""
        console.print(f"ok   tier {tier}: {state.name}{detail}", markup=False)
        return
    _console(stderr=True).print(
        f"error: tier {tier} ended {state.name}: {state.message}\nretry with: stir run {tier}",
        markup=False,
    )
    raise typer.Exit(EXIT_FAILED)


def _registered_tier_deployments() -> list:
    """The deployments of the `tier` flow registered with the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async def read() -> list:
        async with get_client() as client:
            return await client.read_deployments(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["tier"]))
            )

    return asyncio.run(read())


def _refuse_if_registered_by_the_other(command: str, others: list, other_command: str) -> None:
    """`stir serve` and `stir deploy` register the same deployment names (`tier/<tier>`), the
    one for this process, the other for a work pool: neither replaces the other's."""
    if not others:
        return
    names = sorted(f"'tier/{d.name}'" for d in others)
    deletes = "\n".join(f"  prefect deployment delete {name}" for name in names)
    _console(stderr=True).print(
        f"error: the tier deployments are already registered by `{other_command}` "
        f"({', '.join(names)}); `{command}` would take them over.\n"
        f"Keep using them, or remove them first:\n{deletes}",
        markup=False,
    )
    raise typer.Exit(EXIT_FAILED)


@app.command("serve")
def serve_command() -> None:
    """Run all seven tier deployments on their schedules, in this process, until stopped.

    Registers one deployment per tier (schedule, timeout, retries, one run at a time, collisions
    cancelled) with the Prefect API and executes their runs here; the Prefect UI shows them.
    Point it at a server with STIR_PREFECT_API_URL (`prefect server start` gives one on
    127.0.0.1:4200). Refuses (exit 1) when `stir deploy` registered the tiers for a work pool.
    """
    settings = load_settings()
    _use_prefect_api(settings)
    from prefect import serve

    from stir.deployments.tiers import served_deployments

    pooled = [d for d in _registered_tier_deployments() if d.work_pool_name]
    _refuse_if_registered_by_the_other("stir serve", pooled, "stir deploy")
    serve(*served_deployments())


class PoolType(StrEnum):
    process = "process"
    docker = "docker"


def _work_pool(settings: Settings, pool_type: PoolType, image: str | None) -> WorkPool:
    from stir.deployments.tiers import WorkPool

    if pool_type is PoolType.docker and not image:
        _console(stderr=True).print(
            "error: a docker work pool needs the worker image: --image <registry>/stir:<tag>",
            markup=False,
        )
        raise typer.Exit(EXIT_USAGE)
    if pool_type is PoolType.process:
        return WorkPool(settings.prefect.work_pool, pool_type.value)
    from stir.settings import non_secret_environment

    # Each run's container gets the image and the deploying environment's settings, secrets
    # left out: they come from Prefect blocks (named by settings) or the pool's own environment.
    variables = {"image": image, "env": non_secret_environment(settings)}
    return WorkPool(settings.prefect.work_pool, pool_type.value, variables)


PoolTypeOption = Annotated[
    PoolType,
    typer.Option(
        "--pool-type",
        help="process: a worker on a host with Stir installed; docker: each run in the worker "
        "image (--image).",
    ),
]
ImageOption = Annotated[
    str | None, typer.Option(help="The worker image of a docker pool, e.g. registry/stir:0.1.0.")
]


@app.command("prefect-yaml")
def prefect_yaml_command(
    pool_type: PoolTypeOption = PoolType.process, image: ImageOption = None
) -> None:
    """Print the prefect.yaml of every Stir deployment, generated from the tier definitions.

    The committed prefect.yaml is this output for the default process pool; `stir deploy`
    registers the same document. Use it to run `prefect deploy --all` yourself.
    """
    from stir.deployments.tiers import render_prefect_yaml

    settings = load_settings()
    typer.echo(render_prefect_yaml(_work_pool(settings, pool_type, image)), nl=False)


@app.command("deploy")
def deploy_command(pool_type: PoolTypeOption = PoolType.process, image: ImageOption = None) -> None:
    """Register every Stir deployment (seven tiers, two ad-hoc flows) with a work pool.

    Creates the work pool STIR_PREFECT_WORK_POOL (of --pool-type) when it does not exist, then
    runs `prefect deploy --all` on the prefect.yaml generated from the tier definitions (the one
    `stir prefect-yaml` prints). Start a worker for the pool with `prefect worker start --pool
    <pool>` where Stir is installed (or give a docker pool the worker image). With
    STIR_SLACK_TOKEN set, also creates the automation that alerts on runs that crash before
    their flow loads. Refuses (exit 1) when `stir serve` registered the tiers for its own process.
    """
    settings = load_settings()
    pool = _work_pool(settings, pool_type, image)
    _use_prefect_api(settings)
    from stir.deployments.tiers import render_prefect_yaml

    served = [d for d in _registered_tier_deployments() if not d.work_pool_name]
    _refuse_if_registered_by_the_other("stir deploy", served, "stir serve")
    prefect = str(Path(sys.executable).parent / "prefect")
    inspect = subprocess.run(
        [prefect, "work-pool", "inspect", pool.name], capture_output=True, check=False
    )
    steps = (
        []
        if inspect.returncode == 0
        else [[prefect, "work-pool", "create", pool.name, "--type", pool.type]]
    )
    with tempfile.TemporaryDirectory(prefix="stir-deploy-") as folder:
        document = Path(folder) / "prefect.yaml"
        document.write_text(render_prefect_yaml(pool))
        steps.append([prefect, "--no-prompt", "deploy", "--all", "--prefect-file", str(document)])
        for step in steps:
            done = subprocess.run(step, cwd=folder, check=False)
            if done.returncode != 0:
                _console(stderr=True).print(
                    f"error: `{' '.join(step[1:])}` failed (exit {done.returncode}); see above",
                    markup=False,
                )
                raise typer.Exit(EXIT_FAILED)
    from stir.deployments.alerts import ensure_crash_alerts

    # Runs that crash before their flow loads run no hook of ours: the server alerts on them.
    asyncio.run(ensure_crash_alerts(settings))
    _console().print(
        f"ok   deployed the Stir deployments to {pool.type} work pool {pool.name}", markup=False
    )


# --- stir rollback -------------------------------------------------------------------------


@app.command("rollback")
def rollback_command(
    table: Annotated[
        str,
        typer.Argument(
            help="The served PostgreSQL table, `name` or `schema.name` (schema public by default).",
            show_default=False,
        ),
    ],
) -> None:
    """Put the previous version of a served table back: `<table>_old_bkp` becomes `<table>`.

    The same atomic swap as a sync (indexes, grants and dependent views carried over); the
    version taken out becomes the backup, so running it again undoes the rollback.
    """
    settings = load_settings()
    from stir.locks import process_label
    from stir.serving.steps import rollback_table
    from stir.serving.swap import SwapError

    schema, _, name = table.rpartition(".")
    try:
        result = asyncio.run(rollback_table(name, schema or "public", settings, process_label()))
    except SwapError as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    _console().print(
        f"ok   {schema or 'public'}.{name} rolled back in {result.seconds * 1000:.0f} ms; "
        f"the version taken out is now {result.backup}",
        markup=False,
    )


# --- stir diff -----------------------------------------------------------------------------


@app.command("diff")
def diff_command(
    table: Annotated[
        str,
        typer.Argument(
            help="The served PostgreSQL table, `name` or `schema.name` (schema public by default).",
            show_default=False,
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the diff as one JSON document, for scripts.")
    ] = False,
    fail_over: Annotated[
        float | None,
        typer.Option(
            "--fail-over",
            min=0.0,
            help="Exit 1 when the rows added, removed and changed exceed this fraction of the "
            "live rows (0.2: 20%).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compare a served table's next version with the live one, without swapping it in.

    Exports the mart and loads it into an incoming table exactly as a sync does (gates, keys,
    indexes), compares it with the live table by key (rows added, removed, changed; per column
    the rows changed and the largest numeric shift, with its row's key), then drops the incoming
    table and the run's S3 files. Says which gates would refuse the swap. Exit code 0; 1 when
    `--fail-over` is exceeded or the export, load or a server fails; 2 for invalid settings or a
    table Stir does not serve.
    """
    from stir.clickhouse import ClickHouseError
    from stir.domain.declaration import DeclarationError, served_tables
    from stir.errors import ServiceUnavailable
    from stir.locks import process_label
    from stir.serving.export import ExportError
    from stir.serving.gates import GateError
    from stir.serving.load import LoadError
    from stir.serving.s3 import CheckpointError
    from stir.serving.sync import diff_table

    settings = load_settings()
    schema, _, name = table.rpartition(".")
    ref = f"{schema or 'public'}.{name}"
    try:
        decl = next((d for d in served_tables(_manifest(settings)) if d.ref == ref), None)
    except DeclarationError as exc:  # a bad `meta.serve`: the message names model and key
        _console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    problem = (
        f"Stir serves no table {ref} (`stir tables` lists them)" if decl is None
        else f"{ref} declares no keys: the diff matches rows by key" if not decl.keys
        else None
    )  # fmt: skip
    if problem is not None:
        _console(stderr=True).print(f"error: {problem}", markup=False)
        raise typer.Exit(EXIT_USAGE)
    failures = (
        ClickHouseError, ServiceUnavailable, ExportError, LoadError, CheckpointError, GateError,
    )  # fmt: skip
    try:
        with operation():
            run = asyncio.run(diff_table(decl, settings=settings, holder=process_label()))
    except failures as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    diff = run.diff
    if as_json:
        document = {"diff": diff.as_dict(), "refusals": list(run.refusals), "run_id": run.run_id}
        typer.echo(json.dumps(document, indent=2))
    else:
        out = _console()
        out.print(diff.summary, markup=False, soft_wrap=True)
        if diff.columns:
            columns = Table(title_justify="left")
            for heading in ("column", "rows changed", "largest shift"):
                columns.add_column(heading)
            for column in diff.columns:
                shift = column.largest_shift.text if column.largest_shift else ""
                columns.add_row(column.name, f"{column.changed:,}", shift)
            out.print(columns)
        for line in diff.schema_lines:
            out.print(line, markup=False, soft_wrap=True)
        for refusal in run.refusals:
            out.print(f"a sync would refuse this version: {refusal}", markup=False, soft_wrap=True)
    fraction = diff.changed_fraction
    if fail_over is not None and fraction is not None and fraction > fail_over:
        _console(stderr=True).print(
            f"error: {fraction:.1%} of the live rows of {ref} would change, over --fail-over "
            f"{fail_over:.1%}",
            markup=False,
        )
        raise typer.Exit(EXIT_FAILED)


# --- stir tables ---------------------------------------------------------------------------


def served_table_rows(manifest: dict) -> list[tuple[str, str, str, str]]:
    """(PostgreSQL table, tier, dbt model, key) of every served table, in tier order."""
    from stir.domain.tiers import TIERS

    return [
        (decl.ref, spec.name, decl.model.rpartition(".")[2], ", ".join(decl.keys))
        for spec in TIERS
        for decl in sorted(spec.served_tables(manifest), key=lambda d: d.ref)
    ]


def served_tables_markdown(manifest: dict) -> str:
    lines = ["| table | tier | dbt model | key |", "|---|---|---|---|"]
    lines += [f"| `{t}` | {tier} | `{m}` | {k} |" for t, tier, m, k in served_table_rows(manifest)]
    return "\n".join(lines) + "\n"


def _manifest(settings: Settings) -> dict:
    """dbt's manifest of Stir's project; no project where the settings say is exit 2."""
    from stir.dbt_project import parse_manifest

    with operation():
        return asyncio.run(parse_manifest(settings))


@app.command("tables")
def tables_command(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print a Markdown table (the README's list).")
    ] = False,
) -> None:
    """Every table Stir serves to PostgreSQL: its tier, the dbt model it comes from, its key.

    Read from the dbt project's declarations (`meta.serve` beside each mart); no server is needed.
    """
    from stir.domain.declaration import DeclarationError

    manifest = _manifest(load_settings())
    try:
        rows = served_table_rows(manifest)
    except DeclarationError as exc:  # a bad `meta.serve`: the message names model and key
        _console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    if markdown:
        typer.echo(served_tables_markdown(manifest), nl=False)
        return
    table = Table(title="Served tables", title_justify="left")
    for column in ("table", "tier", "dbt model", "key"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    _console().print(table)


# --- stir docs -----------------------------------------------------------------------------


@app.command("docs")
def docs_command(
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="The port to serve on, on 127.0.0.1.")
    ] = 8580,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="The folder to write the site to (index.html, manifest.json, catalog.json); "
            "default: <STIR_STATE_DIR>/docs.",
            show_default=False,
        ),
    ] = None,
    generate_only: Annotated[
        bool,
        typer.Option("--generate-only", help="Write the site and exit, to host it elsewhere."),
    ] = False,
    empty_catalog: Annotated[
        bool,
        typer.Option(
            "--empty-catalog",
            help="Without ClickHouse: no catalog (column types) and no compiled SQL.",
        ),
    ] = False,
) -> None:
    """Browse the lineage: dbt's docs of the project (sources, staging, marts, the exposures
    reading each served table), generated with Stir's settings and served on 127.0.0.1.

    The catalog's column types come from the configured ClickHouse. Prints the site's URL and
    each served table's model page, then serves until Ctrl-C (exit 0). With `--generate-only`
    the pages printed are under STIR_DOCS_URL, where the team hosts the site. Exit code 1 when
    dbt fails or the port is taken; 2 for invalid settings.
    """
    import signal
    import threading

    from stir.dbt_project import DbtError
    from stir.domain.declaration import DeclarationError
    from stir.lineage import (
        PortUnavailable,
        docs_page,
        generate_site,
        model_docs_url,
        model_unique_id,
        serving,
        site_server,
    )

    settings = load_settings()
    folder = out if out is not None else settings.state_dir / "docs"
    err = _console(stderr=True)
    try:  # the port first: a taken one fails now, not after dbt's minute
        server = None if generate_only else site_server(folder, port)
    except PortUnavailable as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    try:
        with operation():
            site = generate_site(settings, folder, empty_catalog=empty_catalog)
        served = served_table_rows(site.manifest)
    except DbtError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    except DeclarationError as exc:  # a bad `meta.serve`: the message names model and key
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(
        f"wrote the docs site to {site.folder} in {site.seconds:.1f} s "
        f"({site.catalogued} relations in the catalog)"
    )
    if server is None:
        typer.echo("pages of the served tables where STIR_DOCS_URL hosts the site:")
        for ref, tier, model, _ in served:  # unwrapped lines: the URLs are copied whole
            typer.echo(f"{ref}  {tier}  {model_docs_url(settings, model_unique_id(model))}")
        return
    # Ctrl-C raises KeyboardInterrupt even when this process was started with SIGINT ignored
    # (a background job of a script); SIGTERM stops it as cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt), serving(server) as url:
        typer.echo(f"serving {url} (Ctrl-C stops)")
        typer.echo("pages of the served tables:")
        for ref, tier, model, _ in served:
            typer.echo(f"{ref}  {tier}  {docs_page(url, model_unique_id(model))}")
        sys.stdout.flush()
        threading.Event().wait()
    typer.echo("stopped")


# --- stir check ----------------------------------------------------------------------------


@app.command("check")
def check_command(
    tiers: Annotated[
        list[str] | None,
        typer.Argument(
            help="The tiers whose needs to check (default: every tier).", show_default=False
        ),
    ] = None,
) -> None:
    """Check the privileges Stir needs on ClickHouse, S3 and PostgreSQL (docs/privileges.md).

    With the secrets of the Prefect blocks the settings name, as a tier run reads them; the same
    checks every tier run makes before dbt starts: dbt's grants and the s3 function in
    ClickHouse; put, get, list and delete of a probe object under the S3 prefix; the PostgreSQL
    role's CREATE on the serving schemas, its ownership of the served tables, SELECT on what
    enrichments join. Exit code 0 when everything is granted; 1 when something is missing or a
    server cannot be reached (each line names the GRANT that fixes it); 2 for invalid settings
    or an unknown tier.
    """
    from stir.domain.tiers import TIERS, get_tier
    from stir.serving.privileges import check_privileges, needs_of_tiers

    settings = load_settings()
    unknown = [name for name in tiers or [] if name not in _tier_names()]
    if unknown:
        _console(stderr=True).print(
            f"error: no tier called {unknown[0]!r}; the tiers are: {', '.join(_tier_names())}",
            markup=False,
        )
        raise typer.Exit(EXIT_USAGE)
    specs = [get_tier(name) for name in tiers] if tiers else list(TIERS)

    _use_prefect_api(settings)  # only used when a setting names a block
    from stir.tasks.credentials import CredentialsError, settings_with_blocks

    async def run() -> list:
        resolved = await settings_with_blocks(settings)  # as a tier run sees them
        return await check_privileges(resolved, await needs_of_tiers(specs, resolved))

    try:
        with operation():
            checks = asyncio.run(run())
    except CredentialsError as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    for check in checks:  # unwrapped lines: a GRANT is copied from them whole
        label = {"ok": "ok     ", "missing": "MISSING", "unchecked": "unknown"}[check.status]
        typer.echo(f"{label} {check.describe()}")
    missing = sum(1 for check in checks if check.status == "missing")
    if missing:
        _console(stderr=True).print(
            f"error: {missing} of {len(checks)} checks failed", markup=False
        )
        raise typer.Exit(EXIT_FAILED)


# --- stir freshness ------------------------------------------------------------------------


@app.command("freshness")
def freshness_command() -> None:
    """Each served table's age (time since its last sync) against its tier's freshness SLA.

    The served tables and their tiers come from the dbt project; the last sync time is the stamp
    each sync leaves on the live table. Ends with the counts: within their SLA, past it, never
    synced. Exit code 1 when any table is stale or was never synced, or PostgreSQL cannot be
    reached, so a monitor can run it as a check.
    """
    from stir.errors import ServiceUnavailable
    from stir.serving.freshness import FreshnessCounts, freshness_report

    settings = load_settings()
    manifest = _manifest(settings)
    try:
        report = asyncio.run(freshness_report(manifest, settings))
    except ServiceUnavailable as exc:  # names the server and what to check
        _console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    table = Table(title="Freshness of the served tables", title_justify="left")
    for column in ("table", "tier", "last sync (UTC)", "age", "SLA", "state"):
        table.add_column(column)
    for item in report:
        synced = f"{item.synced_at:%Y-%m-%d %H:%M:%S}" if item.synced_at else "never"
        table.add_row(item.ref, item.tier, synced, item.age_text, str(item.sla), item.state)
    out = _console()
    out.print(table)
    counts = FreshnessCounts.of(report)
    out.print(counts.text(), markup=False)
    if not counts.all_fresh:
        raise typer.Exit(EXIT_FAILED)


# --- stir ci -------------------------------------------------------------------------------


@app.command("ci")
def ci_command(
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="A folder holding production's manifest.json (dbt's --state); default: the "
            "newest one the tiers published to S3 (the dbt-state folder under STIR_S3_PREFIX).",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the CI databases afterwards, to look at what was built."),
    ] = False,
    ci_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Names the CI databases `<database>_ci_<id>`: lowercase letters and digits "
            "(default: random).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Build and test a change of the dbt project against what production built, before it ships.

    Fetches production's dbt manifest (every tier run publishes its own to S3), then runs `dbt
    build --select state:modified+ --defer` into CI databases of their own (`<database>_ci_<id>`
    and its `_staging` and `_intermediate`): only the models modified against production and
    everything downstream of them are built and tested; the parents they read unchanged are
    production's. Production's databases are never written. The CI databases are dropped at the
    end unless --keep. Exit code 0 when every node built and passed; 1 when one failed (each is
    named) or a server could not be reached; 2 for invalid settings or options, no production
    state, or a model that would be written outside the CI databases.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from stir.clickhouse import ClickHouseError
    from stir.dbt_project import DbtError
    from stir.serving.dbt_state import (
        CiSetupError,
        NodeOutcome,
        ci_database,
        fetch_state,
        new_ci_id,
        run_ci,
        state_prefix,
    )

    settings = load_settings()
    out, err = _console(), _console(stderr=True)
    ci_id = ci_id or new_ci_id()

    def fail(message: str, code: int) -> typer.Exit:
        err.print(f"error: {message}", markup=False)
        return typer.Exit(code)

    def report(node: NodeOutcome) -> None:  # from dbt's threads: one whole line each
        label = "ok  " if node.ok else "skip" if node.status == "skipped" else "FAIL"
        detail = f": {node.message}" if node.message and not node.ok else ""
        out.print(
            f"{label} {node.resource_type} {node.name} ({node.status}, {node.seconds:.1f} s)"
            f"{detail}",
            markup=False,
            soft_wrap=True,
        )

    log_dir = settings.state_dir / "logs" / f"ci-{ci_id}"  # dbt's log, kept for a failure
    with tempfile.TemporaryDirectory(prefix="stir-ci-state-") as fetched:
        try:
            database = ci_database(settings, ci_id)
            if state is None:
                published = asyncio.run(fetch_state(settings, Path(fetched)))
                if published is None:
                    where = f"s3://{settings.s3.bucket}/{state_prefix(settings)}"
                    raise CiSetupError(
                        f"no production dbt state in {where}: run a tier first (each run "
                        "publishes it), or pass --state with a folder holding a manifest.json"
                    )
                out.print(
                    f"production state: tier {published.tier}, published "
                    f"{published.published_at:%Y-%m-%d %H:%M:%S} UTC ({published.url})",
                    markup=False,
                    soft_wrap=True,
                )
            out.print(f"CI databases: {database} and {database}_*", markup=False)
            with operation():
                result = asyncio.run(
                    run_ci(
                        settings, state or Path(fetched), ci_id, keep=keep, on_node=report,
                        log_dir=log_dir,
                    )
                )  # fmt: skip
        except CiSetupError as exc:
            raise fail(str(exc), EXIT_USAGE) from None
        except (DbtError, ClickHouseError, ConnectionError, BotoCoreError, ClientError) as exc:
            raise fail(str(exc), EXIT_FAILED) from None
    models, tests = {"model", "seed", "snapshot"}, {"test", "unit_test"}
    if not result.outcomes:
        out.print("nothing modified against production: nothing built", markup=False)
    out.print(
        f"models: {result.count(models, 'success')} built, {result.count(models, 'error')} failed,"
        f" {result.count(models, 'skipped')} skipped;"
        f" tests: {result.count(tests, 'pass')} passed, {result.count(tests, 'warn')} warned,"
        f" {result.count(tests, 'fail') + result.count(tests, 'error')} failed,"
        f" {result.count(tests, 'skipped')} skipped",
        markup=False,
    )
    for parent, relation in result.deferred.items():
        out.print(f"read from production: {parent} ({relation})", markup=False, soft_wrap=True)
    if result.kept:
        out.print(f"kept: {', '.join(result.databases) or 'no database'}", markup=False)
    else:
        out.print(f"dropped: {', '.join(result.databases) or 'no database'}", markup=False)
    out.print(f"dbt log: {log_dir / 'dbt.log'}", markup=False, soft_wrap=True)
    if not result.ok:
        failed = [node for node in result.failures if node.status != "skipped"]
        names = ", ".join(f"{node.name} ({node.status})" for node in failed)
        skipped = len(result.failures) - len(failed)
        more = f"; {skipped} skipped because of them" if skipped else ""
        raise fail(f"{len(failed)} nodes failed: {names}{more}", EXIT_FAILED)


# --- stir status ---------------------------------------------------------------------------


@app.command("status")
def status_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the status as one JSON document, for scripts.")
    ] = False,
) -> None:
    """Is everything all right? The stack's services, each tier's last run, the batch window,
    the served tables past their SLA or never synced, and the last alert, on one screen.

    Tier runs, the next scheduled runs and alerts come from the Prefect API (STIR_PREFECT_API_URL,
    the stack's Prefect server, or Prefect's own setting); without one, each tier shows its last
    sync, from the stamps on its tables. A service that is down shows as down; the rest is still
    read. Exit code 0 when nothing needs attention; 1 when something does (each listed at the
    end, with what to do); 2 for invalid settings.
    """
    settings = load_settings()
    _use_prefect_api(settings)
    from stir.dbt_project import parse_manifest
    from stir.deployments.status import configured_prefect_api, gather_status

    status = asyncio.run(
        gather_status(settings, configured_prefect_api(), parse_manifest(settings))
    )
    if as_json:
        typer.echo(json.dumps(status.to_json(), indent=2))
    else:
        _print_status(status)
    if status.needs_attention:
        raise typer.Exit(EXIT_FAILED)


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else "-"


def _ago(now: datetime, value: datetime | None) -> str:
    if value is None:
        return ""
    return f" ({str(abs(now - value)).split('.')[0]} {'ago' if value <= now else 'from now'})"


def _print_status(status: PlatformStatus) -> None:
    out = _console()
    now = status.checked_at
    verdict = (
        Text(f"needs attention ({len(status.problems)})", style="red")
        if status.needs_attention
        else Text("all well", style="green")
    )
    out.print(Text(f"Stir status at {now:%Y-%m-%d %H:%M:%S} UTC: ").append(verdict))

    services = Table(title="Services", title_justify="left")
    for column in ("service", "state", "address"):
        services.add_column(column)
    for row in status.services:
        state = Text(row.state, style="green" if row.healthy else "red")
        if row.detail:
            state.append(f" ({row.detail})", style="dim")
        services.add_row(Text(row.name), state, Text(row.address))
    out.print(services)

    if status.prefect_api:
        title = f"Tiers (runs from the Prefect API at {status.prefect_api})"
        columns = ("tier", "schedule (UTC)", "last run", "state", "started (UTC)", "took",
                   "next run (UTC)")  # fmt: skip
    else:
        title = "Tiers (scheduler not configured: no Prefect API; last syncs from the stamps)"
        columns = ("tier", "schedule (UTC)", "last sync (UTC)", "tables synced", "sync run")
    tiers = Table(title=title, title_justify="left")
    for column in columns:
        tiers.add_column(column)
    for tier in status.tiers:
        if status.prefect_api:
            run = tier.last_run
            next_run = _when(tier.next_run_at) if tier.next_run_at else (
                "paused" if tier.paused else ("-" if tier.deployment else "not deployed")
            )  # fmt: skip
            state = Text(run.state if run else "-", style="red" if run and run.failed else "")
            took = f"{run.seconds:.1f} s" if run and run.seconds is not None else "-"
            tiers.add_row(
                Text(tier.name), Text(tier.schedule), Text(run.name if run else "none"), state,
                Text(_when(run.started_at) if run else "-"), Text(took), Text(next_run),
            )  # fmt: skip
        else:
            sync = tier.last_sync
            tiers.add_row(
                Text(tier.name), Text(tier.schedule),
                Text(_when(sync.at) + _ago(now, sync.at) if sync else "never"),
                Text(f"{sync.tables_synced} of {sync.tables}" if sync else "0"),
                Text(sync.run_id if sync else "-"),
            )  # fmt: skip
    out.print(tiers)

    window = status.window
    line = Text("Batch window: ")
    if window.state == "held":
        line.append("held", style="yellow")
        line.append(f" by {window.holder or 'a run Stir cannot name'}")
        if window.since is not None:
            line.append(f" since {_when(window.since)} UTC{_ago(now, window.since)}")
    else:
        line.append(window.state, style="green" if window.state == "free" else "red")
    if window.detail:
        line.append(f"; {window.detail}", style="dim")
    out.print(line)

    if status.tables is not None:
        from stir.serving.freshness import FreshnessCounts

        counts = FreshnessCounts.of(status.tables)
        out.print(
            Text("Served tables: ").append(
                counts.text(), style="green" if counts.all_fresh else "red"
            )
        )
    else:
        out.print(Text("Served tables: unknown", style="red"))

    alerts = status.alerts
    if not alerts.known:
        out.print("Last alert: unknown (alerts are kept by the Prefect API)", markup=False)
    elif alerts.last is None:
        out.print("Last alert: none", markup=False)
    else:
        out.print(
            f"Last alert: {_when(alerts.last.at)} UTC{_ago(now, alerts.last.at)}: "
            f"{' '.join(alerts.last.text.split())[:300]}",
            markup=False,
        )
    if alerts.alerting_now:
        out.print(f"Alerting now: {', '.join(alerts.alerting_now)}", markup=False)

    if status.problems:
        out.print(Text("Needs attention:", style="red"))
        for problem in status.problems:
            out.print(f"- {problem}", markup=False)


# --- stir pipeline -------------------------------------------------------------------------


DEFAULT_PIPELINE_SCALE = SeedScale("s")


@app.command("pipeline")
def pipeline_command(
    scale: Annotated[
        SeedScale, typer.Option(help="Scale of the raw data seeded first (see stir seed).")
    ] = DEFAULT_PIPELINE_SCALE,
    verbose: VerboseOption = False,
) -> None:
    """The whole platform once, on the embedded stack: stack up, seed, all seven tiers, a look.

    Starts the stack (harmless when it runs), seeds the raw sources at --scale (the same data
    every time), runs the seven tiers in dependency order (each: dbt build, sync of its served
    tables into PostgreSQL), prints what each did, and shows the top of the served leaderboard.
    Safe to run again: every step replaces what the previous run made. Shows progress (seed
    steps; per tier dbt nodes and tables synced); the log lines go to a file under the state
    directory, or to the terminal with --verbose.
    """
    settings = load_settings()
    out = _console()
    with operation():
        outcomes = Stack(settings).up()
    _report(outcomes)
    if not all(outcome.ok for outcome in outcomes):
        raise typer.Exit(EXIT_FAILED)
    _use_prefect_api(settings)
    _import_prefect_logging()
    from stir.domain.tiers import TIERS

    summary = Table(title="Tiers", title_justify="left")
    for column in ("tier", "state", "dbt nodes", "tables served", "rows", "seconds"):
        summary.add_column(column, justify="right" if column[0] in "drs" else "left")
    served: dict[str, int] = {}
    failed = False
    failures: list[str] = []
    subjects = ["seed", *(spec.name for spec in TIERS)]
    # The tier table below says what the rows said: they go when the work is done.
    with operation(), _progress(settings, "pipeline", subjects, verbose, keep=False) as display:
        seeded = _seed(settings, display, scale=scale)
        for spec in TIERS:  # listed in dependency order: a tier reads only earlier tiers' marts
            started = time.monotonic()
            state = _run_tier_flow(spec.name, display)
            result = state.result(raise_on_failure=False) if state.is_completed() else {}
            tables = result.get("tables", {}) if isinstance(result, dict) else {}
            served.update(tables)
            failed = failed or not state.is_completed()
            if not state.is_completed():
                failures.append(f"{spec.name}: {state.name}: {state.message}")
            summary.add_row(
                spec.name,
                state.name,
                str(result.get("dbt_nodes", "-")) if isinstance(result, dict) else "-",
                str(len(tables)),
                f"{sum(tables.values()):,}",
                f"{time.monotonic() - started:.1f}",
            )
    _print_seed_result(seeded, tables=False)
    out.print(summary)
    for failure in failures:  # the first lines of each failure; the whole story is in the log
        _console(stderr=True).print(f"error: {failure[:400]}", markup=False)
    if HEADLINE_LEADERBOARD in served:
        out.print(f"\nTop of {HEADLINE_LEADERBOARD} in PostgreSQL (the first dimension):")
        out.print(asyncio.run(_peek_leaderboard(settings)))
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _import_prefect_logging() -> None:
    """Import the tier flows now: Prefect sets up its console logging when it is imported, and the
    progress display must find those handlers to move them to the log file."""
    import stir.flows.tier  # noqa: F401


def _run_tier_flow(tier: str, display: ProgressDisplay) -> State:
    """Run a tier's flow here, its row on `display` closed with how the run ended."""
    from stir.flows.tier import flow_of

    display.start(tier)
    try:
        state = asyncio.run(flow_of(tier)(tier, return_state=True))
    except RuntimeError as exc:
        if _EPHEMERAL_TIMEOUT not in str(exc):
            raise
        display.finish(tier, "not started")
        wait = os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]
        raise StackError(
            f"no Prefect API: a temporary one did not answer within {wait} s (a busy machine?). "
            "Start the stack's (`stir stack up`) or set STIR_PREFECT_API_URL, or allow it longer "
            "with PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS."
        ) from None
    display.finish(tier, state.name)
    return state


HEADLINE_LEADERBOARD = "public.leaderboards"
# A narrow look that fits a 100-column terminal: who leads one dimension, by audience.
_PEEK_SQL = """
SELECT dimension, dimension_value, audience_rank AS rank, handle, audience,
       round(engagement_rate::numeric, 4) AS engagement
FROM public.leaderboards
WHERE (dimension, dimension_value) = (
    SELECT dimension, dimension_value FROM public.leaderboards
    ORDER BY dimension, dimension_value LIMIT 1)
ORDER BY audience_rank, handle
LIMIT $1
"""


async def _peek_leaderboard(settings: Settings, limit: int = 5) -> Table:
    """The top of the headline leaderboard, as the application reads it."""
    import asyncpg

    conn = await asyncpg.connect(settings.postgres.effective_dsn())
    try:
        rows = await conn.fetch(_PEEK_SQL, limit)
    finally:
        await conn.close()
    view = Table()
    for column in rows[0].keys() if rows else []:
        view.add_column(column, justify="right" if column in ("rank", "audience") else "left")
    for row in rows:
        view.add_row(*(Text(f"{v:,}" if isinstance(v, int) else str(v)) for v in row.values()))
    return view


if __name__ == "__main__":
    app()
