"""Progress of long work, reported to whoever listens in this process.

A tier run reports what it is doing (dbt nodes done of the total dbt announced, served tables
synced of those planned); the seed reports its steps. A command line that runs the work in its own
process (`stir pipeline`, `stir run`, `stir seed`) listens and draws a progress display; on a worker
nobody listens and reporting costs one empty loop. Listeners are called in the reporting thread
(dbt runs in a worker thread), so they must be quick and thread-safe.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    TIER_STARTED = "tier started"
    DBT_TOTAL = "dbt total"  # `count` more nodes in a dbt command that just started
    DBT_NODE = "dbt node"  # `count` nodes finished (`ok` False: failed, errored or skipped)
    SYNC_PLANNED = "sync planned"  # `count` served tables to sync
    TABLE_SYNCED = "table synced"  # one table swapped in (`ok`) or failed
    TIER_ENDED = "tier ended"
    STEP = "step"  # a numbered step of other work (the seed): `count` = index, `total`


@dataclass(frozen=True)
class Event:
    kind: Kind
    subject: str  # the tier's name, or "seed"
    count: int = 0
    total: int = 0
    ok: bool = True
    detail: str = ""


Listener = Callable[[Event], None]

_listeners: list[Listener] = []
_guard = threading.Lock()
# What the current work is about (a tier's name): set once at its start, inherited by the tasks
# and threads it starts, so deep code can report without being told.
_subject: contextvars.ContextVar[str] = contextvars.ContextVar("stir_progress_subject", default="")


def set_subject(subject: str) -> None:
    _subject.set(subject)


def subject() -> str:
    return _subject.get()


def tell(kind: Kind, count: int = 0, total: int = 0, ok: bool = True, detail: str = "") -> None:
    """Report an event about the current subject."""
    report(Event(kind, subject(), count, total, ok, detail))


def report(event: Event) -> None:
    """Tell every listener; a listener's error never breaks the work it watches."""
    with _guard:
        listeners = list(_listeners)
    for listener in listeners:
        with contextlib.suppress(Exception):
            listener(event)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call `listener` with every event reported while the block runs."""
    with _guard:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _guard:
            _listeners.remove(listener)
