"""The daily batch window on a real Prefect API: fast tiers yield, the holder is not starved."""

from __future__ import annotations

import asyncio
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import concurrency

from stir.domain.tiers import TIERS, WindowRole, get_tier
from stir.flows.batch_window import (
    PENDING_LIMIT,
    WINDOW_LIMIT,
    WINDOW_SLOTS,
    WindowBusy,
    batch_window,
)

pytestmark = pytest.mark.usefixtures("prefect_api")

HOLDER = next(tier for tier in TIERS if tier.window is WindowRole.HOLDER)


class Timeline:
    """Who held the window when, to prove that the holder never overlaps a fast tier."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float]] = {}

    async def hold(self, label: str, tier_name: str, seconds: float) -> None:
        async with batch_window(get_tier(tier_name)):
            start = time.monotonic()
            await asyncio.sleep(seconds)
            self.spans[label] = (start, time.monotonic())

    def overlaps(self, a: str, b: str) -> bool:
        (a0, a1), (b0, b1) = self.spans[a], self.spans[b]
        return a0 < b1 and b0 < a1


async def test_fast_tiers_share_the_window_when_no_holder_runs() -> None:
    timeline = Timeline()
    await asyncio.gather(
        timeline.hold("core", "core", 0.5), timeline.hold("monitoring", "monitoring", 0.5)
    )
    assert timeline.overlaps("core", "monitoring")


async def test_fast_tier_is_skipped_at_once_while_the_holder_runs() -> None:
    timeline = Timeline()
    holder = asyncio.create_task(timeline.hold("holder", HOLDER.name, 2.0))
    await asyncio.sleep(1.0)
    started = time.monotonic()
    with pytest.raises(WindowBusy, match="batch window"):
        async with batch_window(get_tier("core")):
            pytest.fail("a fast tier ran inside the batch window")
    assert time.monotonic() - started < 1.0  # skipped, not queued
    await holder


async def slots_taken(limit: str) -> None:
    """Until a slot of the concurrency limit `limit` is taken."""
    async with get_client() as client:
        for _ in range(300):
            if (await client.read_global_concurrency_limit_by_name(limit)).active_slots:
                return
            await asyncio.sleep(0.1)
    pytest.fail(f"no slot of {limit} was taken within 30 s")


async def test_holder_waits_for_fast_runs_in_flight_and_is_not_starved() -> None:
    """A fast run in flight delays the holder; fast runs arriving after it are turned away."""
    timeline = Timeline()
    # Each step waits for the window's slots to say the previous one is in place, not for a
    # fixed time: on a loaded machine a run takes its slot seconds after it was started.
    in_flight = asyncio.create_task(timeline.hold("in-flight", "collections", 4.0))
    await slots_taken(WINDOW_LIMIT)
    holder = asyncio.create_task(timeline.hold("holder", HOLDER.name, 3.0))
    await slots_taken(PENDING_LIMIT)
    # A stream of fast runs keeps arriving while the holder waits: none of them gets in.
    skipped = 0
    for _ in range(3):
        try:
            await timeline.hold("late", "monitoring", 0.1)
        except WindowBusy:
            skipped += 1
        await asyncio.sleep(0.2)
    await asyncio.wait_for(asyncio.gather(in_flight, holder), timeout=30)
    assert skipped == 3
    assert "late" not in timeline.spans
    assert not timeline.overlaps("holder", "in-flight")
    assert timeline.spans["holder"][0] >= timeline.spans["in-flight"][1]


async def test_fast_tier_skips_when_the_slots_are_taken() -> None:
    """Also without the holder's announcement (a race), a taken window means skip, not wait."""
    async with concurrency(WINDOW_LIMIT, occupy=WINDOW_SLOTS, strict=True):
        with pytest.raises(WindowBusy):
            async with batch_window(get_tier("growth")):
                pytest.fail("ran without a slot")
