"""The locks a run takes, named after the run that holds them (see `stir.locks`)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prefect.context import FlowRunContext

from stir.locks import try_lock, wait_lock
from stir.settings import Settings

# How long a sync or rollback waits for another one of the same table to finish.
TABLE_LOCK_WAIT_SECONDS = 900.0


def run_label() -> str:
    """Who is running: the flow run's name and id, else this process."""
    context = FlowRunContext.get()
    if context is not None and context.flow_run is not None:
        return f"flow run {context.flow_run.name} ({context.flow_run.id})"
    return f"process {os.getpid()} on {socket.gethostname()}"


@asynccontextmanager
async def table_lock(table_ref: str, settings: Settings) -> AsyncIterator[None]:
    """One sync, retry or rollback of the served table `table_ref` at a time, whatever started
    it; the next one waits."""
    dsn = settings.postgres.effective_dsn()
    async with wait_lock(dsn, f"sync:{table_ref}", run_label(), TABLE_LOCK_WAIT_SECONDS):
        yield


@asynccontextmanager
async def tier_lock(tier: str, settings: Settings) -> AsyncIterator[None]:
    """One run of `tier` at a time, whatever started it; raises `stir.locks.LockBusy` at once
    when another run holds it."""
    async with try_lock(settings.postgres.effective_dsn(), f"tier:{tier}", run_label()):
        yield
