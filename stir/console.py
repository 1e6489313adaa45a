"""What long commands show in a terminal: a progress display, with the logs in a file.

`stir pipeline`, `stir run` and `stir seed` run Prefect flows and dbt in their own process, and
those write a log line per dbt node and sync step — thousands for the whole platform. By default
the commands send every log line to a file (its path printed first) and draw one live row per
piece of work instead: its state, dbt nodes done of the total, served tables synced of those
planned, elapsed time. `--verbose` keeps the log stream on the terminal. When the output is not a
terminal (a pipe, CI), nothing is redrawn: one line per finished piece of work.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from stir import progress
from stir.progress import Kind

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def log_file_path(state_dir: Path, command: str) -> Path:
    """A new log file for one command run: `<state dir>/logs/<command>-<time>.log`."""
    folder = state_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{command}-{datetime.now():%Y%m%d-%H%M%S}.log"


def _writes_to_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return not isinstance(handler, logging.FileHandler) and stream in (
        sys.stdout,
        sys.stderr,
        sys.__stdout__,
        sys.__stderr__,
    )


@contextlib.contextmanager
def logs_to_file(path: Path) -> Iterator[None]:
    """While the block runs, every log line goes to `path` and none to the terminal: handlers
    that write to the terminal (Prefect's console handlers included) are taken off, the file is
    the root logger's handler (and that of every logger that does not propagate and had a
    terminal handler); Stir's INFO lines and Python's warnings go there too."""
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    loggers = [root] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]  # fmt: skip
    removed: list[tuple[logging.Logger, logging.Handler]] = []
    added: list[logging.Logger] = [root]
    for logger in loggers:
        terminal = [handler for handler in logger.handlers if _writes_to_terminal(handler)]
        for handler in terminal:
            logger.removeHandler(handler)
            removed.append((logger, handler))
        if terminal and not logger.propagate:
            added.append(logger)
    for logger in added:
        logger.addHandler(file_handler)
    stir_logger = logging.getLogger("stir")
    stir_level = stir_logger.level
    stir_logger.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        stir_logger.setLevel(stir_level)
        for logger in added:
            logger.removeHandler(file_handler)
        for logger, handler in removed:
            logger.addHandler(handler)
        file_handler.close()


@contextlib.contextmanager
def stir_logs_to_terminal() -> Iterator[None]:
    """`--verbose`: Stir's INFO lines on stdout too (Prefect's reach the terminal through its
    own console handler once it is imported; Stir's need one where no handler would show them)."""
    stir_logger = logging.getLogger("stir")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    stir_level = stir_logger.level
    stir_logger.setLevel(logging.INFO)
    shown = logging.getLogger().handlers  # Prefect's console handler, when imported
    if not shown:
        stir_logger.addHandler(handler)
    try:
        yield
    finally:
        stir_logger.setLevel(stir_level)
        if handler in stir_logger.handlers:
            stir_logger.removeHandler(handler)


@dataclass
class _Row:
    state: str = "waiting"
    dbt_done: int = 0
    dbt_total: int = 0
    dbt_failed: int = 0
    tables_done: int = 0
    tables_total: int = 0
    tables_failed: int = 0
    step: str = ""
    started: float | None = None
    ended: float | None = None

    def elapsed(self) -> str:
        if self.started is None:
            return ""
        return f"{(self.ended or time.monotonic()) - self.started:.0f}s"


class ProgressDisplay:
    """Rows of work in progress (the seed, each tier), fed by `stir.progress` events.

    Use as a context manager around the work; `finish(subject, state)` closes a row (the caller
    knows how a flow ended, the events do not). Thread-safe: dbt reports from its threads.
    With `show` False it only keeps the rows (`--verbose`: the logs are the display); with
    `keep`, the last drawing stays on the terminal (a command without a summary of its own).
    """

    def __init__(
        self, console: Console, subjects: list[str], show: bool = True, keep: bool = False
    ) -> None:
        self._console = console
        self._show = show
        self._keep = keep
        self._rows = {subject: _Row() for subject in subjects}
        self._guard = threading.Lock()
        self._live: Live | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ProgressDisplay:
        self._stack.enter_context(progress.listening(self._on_event))
        if self._show and self._console.is_terminal:
            # Unless kept, the rows go when the work is done: the command prints its summary.
            live = Live(self, console=self._console, refresh_per_second=4, transient=not self._keep)
            self._live = self._stack.enter_context(live)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def start(self, subject: str, state: str = "running") -> None:
        with self._guard:
            row = self._rows.setdefault(subject, _Row())
            row.state, row.started, row.ended = state, time.monotonic(), None

    def finish(self, subject: str, state: str) -> None:
        with self._guard:
            row = self._rows.setdefault(subject, _Row())
            row.state, row.ended = state, time.monotonic()
            line = self._line(subject, row)
        if self._show and self._live is None:
            self._console.print(line, markup=False)

    def _on_event(self, event: progress.Event) -> None:
        with self._guard:
            row = self._rows.setdefault(event.subject, _Row())
            if event.kind is Kind.TIER_STARTED:  # also a retry: counts start again
                self._rows[event.subject] = row = _Row(started=row.started or time.monotonic())
                row.state = "running"
            elif event.kind is Kind.DBT_TOTAL:
                row.dbt_total += event.count
            elif event.kind is Kind.DBT_NODE:
                row.dbt_done += event.count
                row.dbt_failed += 0 if event.ok else event.count
            elif event.kind is Kind.SYNC_PLANNED:
                row.tables_total += event.count
                row.state = "syncing"
            elif event.kind is Kind.TABLE_SYNCED:
                row.tables_done += 1
                row.tables_failed += not event.ok
            elif event.kind is Kind.STEP:
                row.step = f"{event.count}/{event.total} {event.detail}"

    @staticmethod
    def _counts(done: int, total: int, failed: int) -> str:
        if not total and not done:
            return "-"
        text = f"{done}/{total}" if total else str(done)
        return text + (f" ({failed} failed)" if failed else "")

    def _line(self, subject: str, row: _Row) -> str:
        parts = [f"{subject:<16} {row.state:<10} {row.elapsed():>6}"]
        if row.step:
            parts.append(f"step {row.step}")
        if row.dbt_total or row.dbt_done:
            parts.append(f"dbt {self._counts(row.dbt_done, row.dbt_total, row.dbt_failed)}")
        if row.tables_total or row.tables_done:
            tables = self._counts(row.tables_done, row.tables_total, row.tables_failed)
            parts.append(f"tables {tables}")
        return "  ".join(parts)

    def __rich__(self) -> Table:
        table = Table(box=None, show_header=True, pad_edge=False)
        for column in ("", "state", "elapsed", "dbt nodes", "tables synced", "step"):
            table.add_column(column, justify="right" if column in ("elapsed",) else "left")
        with self._guard:
            for subject, row in self._rows.items():
                table.add_row(
                    subject,
                    row.state,
                    row.elapsed(),
                    self._counts(row.dbt_done, row.dbt_total, row.dbt_failed),
                    self._counts(row.tables_done, row.tables_total, row.tables_failed),
                    row.step,
                )
        return table
