"""The daily batch window, on Prefect global concurrency limits.

The leaderboards tier rebuilds heavy tables once a day and must not share ClickHouse and
PostgreSQL with the fast tiers while it does. Two global concurrency limits make the window:

- `stir-batch-window` has one slot per yielding tier. A fast tier takes one slot without waiting;
  the holder takes every slot, so it waits for the fast runs in flight and then runs alone.
- `stir-batch-pending` (one slot) is the holder's announcement. The holder takes it *before* it
  waits for the window, and a fast tier that sees it taken does not start. Without it a steady
  stream of overlapping fast runs could keep the window busy forever; with it the holder waits at
  most for the fast runs already running when it arrived (each bounded by its tier's timeout).

A fast tier that cannot get its slot does not fail and does not queue: the caller ends the run in
a state named Skipped, with the reason. `ensure_window_limits` creates both limits (idempotently):
Prefect treats an unknown limit name as no limit at all, so the window must exist before use.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.concurrency._asyncio import (
    aacquire_concurrency_slots_with_lease,
    arelease_concurrency_slots_with_lease,
)
from prefect.concurrency._leases import amaintain_concurrency_lease
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError
from prefect.states import State
from prefect.variables import Variable

from stir.domain.tiers import TIERS, Tier, WindowRole

log = logging.getLogger("stir.window")

WINDOW_LIMIT = "stir-batch-window"
PENDING_LIMIT = "stir-batch-pending"
WINDOW_SLOTS = sum(1 for tier in TIERS if tier.window is WindowRole.YIELDS)
# Slots are leased and renewed while held. A run killed without releasing them (kill -9) has them
# released by its worker, which runs the crashed run's `free_window_of_crashed_run` hook; a run
# nobody reports (a lost host, `stir run` killed) frees them when the lease expires: 60 s is the
# shortest lease Prefect's server accepts, and its repossessor frees expired leases every 15 s.
LEASE_SECONDS = 60


class WindowBusy(Exception):
    """A yielding tier found the batch window held or about to be held; the run is skipped."""


async def ensure_window_limits() -> None:
    """Create (or resize) the two limits the window is made of.

    Prefect's upsert reads, then creates: two tiers starting together can both try to create, and
    the second gets 409 Conflict — the limit then exists, which is all that is needed.
    """
    async with get_client() as client:
        for name, slots in ((WINDOW_LIMIT, WINDOW_SLOTS), (PENDING_LIMIT, 1)):
            try:
                await client.upsert_global_concurrency_limit_by_name(name, slots)
            except (ObjectAlreadyExists, PrefectHTTPStatusError) as exc:
                status = getattr(getattr(exc, "response", None), "status_code", 409)
                if status != 409:
                    raise


def _leases_variable(flow_run_id: UUID | str) -> str:
    return f"stir-window-leases-{flow_run_id}"


async def _remember_lease(lease_id: UUID, add: bool) -> None:
    """Keep the leases a flow run holds in a Prefect Variable named after it, so that whoever
    sees the run crash (its worker runs `free_window_of_crashed_run`) can release them."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return  # no run to crash-report: the lease expires on its own
    name = _leases_variable(context.flow_run.id)
    held = set(await Variable.aget(name, default=[]) or [])
    held = held | {str(lease_id)} if add else held - {str(lease_id)}
    if held:
        await Variable.aset(name, sorted(held), overwrite=True)
    else:
        await Variable.aunset(name)


@asynccontextmanager
async def _slots(
    limit: str, occupy: int, timeout_seconds: float | None = None, max_retries: int | None = None
) -> AsyncIterator[None]:
    """`occupy` slots of `limit` for the body, leased (renewed while held) and remembered."""
    acquired = await aacquire_concurrency_slots_with_lease(
        names=[limit], slots=occupy, timeout_seconds=timeout_seconds, max_retries=max_retries,
        lease_duration=LEASE_SECONDS, strict=True,
    )  # fmt: skip
    await _remember_lease(acquired.lease_id, add=True)
    try:
        async with amaintain_concurrency_lease(
            acquired.lease_id, LEASE_SECONDS, raise_on_lease_renewal_failure=True
        ):
            yield
    finally:
        with suppress(Exception):  # expired meanwhile, or the API is gone: the lease lapses
            await arelease_concurrency_slots_with_lease(acquired.lease_id)
        with suppress(Exception):
            await _remember_lease(acquired.lease_id, add=False)


async def free_window_of_crashed_run(flow: object, flow_run: FlowRun, state: State) -> None:
    """An `on_crashed` hook: release the window slots a crashed run held (a process killed with
    -9 cannot), so the holder or the next fast run need not wait for the lease to expire."""
    name = _leases_variable(flow_run.id)
    for lease_id in await Variable.aget(name, default=[]) or []:
        try:
            await arelease_concurrency_slots_with_lease(UUID(lease_id))
            log.warning(
                "released the batch-window lease %s of crashed run %s", lease_id, flow_run.name
            )
        except Exception:  # already expired or released
            log.debug("lease %s of %s was already gone", lease_id, flow_run.name, exc_info=True)
    await Variable.aunset(name)


async def _holder_pending() -> bool:
    async with get_client() as client:
        try:
            pending = await client.read_global_concurrency_limit_by_name(PENDING_LIMIT)
        except ObjectNotFound:
            return False
    return pending.active_slots > 0


@asynccontextmanager
async def batch_window(tier: Tier) -> AsyncIterator[None]:
    """Hold the batch window as `tier`'s role says, for the body of the `async with`.

    Raises `WindowBusy` at once for a yielding tier that must not start now.
    """
    await ensure_window_limits()
    if tier.window is WindowRole.HOLDER:
        async with _slots(PENDING_LIMIT, 1):
            log.info("%s: waiting for the fast tiers in flight to finish", tier.name)
            async with _slots(WINDOW_LIMIT, WINDOW_SLOTS):
                log.info("%s: holding the batch window", tier.name)
                yield
        return

    if await _holder_pending():
        raise WindowBusy(f"the daily batch window is held or about to be; {tier.name} skips")
    async with AsyncExitStack() as stack:
        try:
            # One attempt (max_retries=0: taken slots answer 423 at once), so fast runs never
            # pile up behind the holder. No timeout of our own: a busy Prefect server can take
            # longer than any guess to answer, and the tier's own timeout bounds the wait.
            await stack.enter_async_context(_slots(WINDOW_LIMIT, 1, max_retries=0))
        except ConcurrencySlotAcquisitionError as exc:
            if not _is_locked(exc):
                raise
            raise WindowBusy(f"the daily batch window is held; {tier.name} skips") from None
        yield


def _is_locked(exc: BaseException) -> bool:
    """Prefect answers 423 Locked when the slots are taken; anything else is a real error."""
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    return getattr(response, "status_code", None) == 423
