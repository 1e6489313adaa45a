"""`prefect.yaml` agrees with the tier definitions, and the tier flow behaves in the window."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from deployments.tiers import TIERS, TIME_ZONE, WORK_POOL, WindowRole
from flows.batch_window import batch_window
from flows.tier import SKIPPED, tier
from stir.settings import PrefectSettings

ROOT = Path(__file__).resolve().parent.parent


def prefect_yaml() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_prefect_yaml_declares_exactly_the_tiers_in_order() -> None:
    names = [deployment["name"] for deployment in prefect_yaml()["deployments"]]
    assert names == [t.name for t in TIERS]


@pytest.mark.parametrize("spec", TIERS, ids=[t.name for t in TIERS])
def test_each_deployment_matches_its_tier(spec) -> None:
    deployment = next(d for d in prefect_yaml()["deployments"] if d["name"] == spec.name)
    assert deployment["parameters"] == {"tier": spec.name}
    assert deployment["schedules"] == [{"cron": spec.cron, "timezone": TIME_ZONE}]
    # At most one run of a deployment at a time; a collision drops the newcomer, never queues.
    assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    assert deployment["work_pool"]["name"] == WORK_POOL == PrefectSettings().work_pool
    assert f"window:{spec.window.value}" in deployment["tags"]


def test_every_entrypoint_loads_the_tier_flow() -> None:
    entrypoints = {d["entrypoint"] for d in prefect_yaml()["deployments"]}
    for entrypoint in entrypoints:
        path, _, name = entrypoint.partition(":")
        loaded = load_flow_from_entrypoint(f"{ROOT / path}:{name}")
        assert loaded.name == tier.name


def test_exactly_one_tier_holds_the_window() -> None:
    holders = [t.name for t in TIERS if t.window is WindowRole.HOLDER]
    assert holders == ["leaderboards"]


@pytest.mark.usefixtures("prefect_api")
async def test_a_fast_tier_inside_the_window_ends_skipped_not_failed() -> None:
    holder = next(t for t in TIERS if t.window is WindowRole.HOLDER)
    release = asyncio.Event()

    async def hold() -> None:
        async with batch_window(holder):
            await release.wait()

    holding = asyncio.create_task(hold())
    await asyncio.sleep(1.0)
    try:
        state = await tier("core", return_state=True)
    finally:
        release.set()
        await holding
    assert state.is_completed()
    assert state.name == SKIPPED
    assert "batch window" in state.message
