"""A flow that holds its run for a few seconds: stands in for a slow tier in deployment tests."""

from __future__ import annotations

import time

from prefect import flow


@flow(name="slow-tier")
def slow_tier(tier: str, seconds: float = 4.0) -> dict[str, float]:
    started = time.time()
    time.sleep(seconds)
    return {"started": started, "finished": time.time()}
