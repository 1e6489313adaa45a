"""The seven scheduling tiers of Stir, defined once.

A tier is a dbt tag (every model tagged with it is built by the tier), a schedule, and a role in
the daily batch window. `prefect.yaml` declares one deployment per tier; a test proves that file
and this one agree, so a change here that is not carried there fails CI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from stir.serving.declaration import ServedTable, served_tables

TIME_ZONE = "UTC"
WORK_POOL = "stir"
# Every tier deployment runs one flow run at a time. A run that comes due while the previous one
# still runs is cancelled, not queued: the next schedule is minutes away and a queue would pile up
# behind a slow run (prefect.yaml declares the same).
ONE_RUN_AT_A_TIME = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
)


class WindowRole(StrEnum):
    """How a tier takes part in the daily batch window."""

    HOLDER = "holder"  # takes every slot; waits for running fast tiers, then runs alone
    YIELDS = "yields"  # takes one slot without waiting; ends as Skipped while the holder runs


@dataclass(frozen=True)
class Tier:
    name: str
    description: str
    cron: str
    window: WindowRole
    timeout: timedelta
    retries: int
    freshness_sla: timedelta
    # After its syncs, check every served table's freshness SLA and each source's scrape
    # failure rate, alerting on breaches and recoveries (tasks/health.py).
    checks_health: bool = False

    @property
    def dbt_selector(self) -> str:
        """This tier's models and their ancestors (staging, intermediate: they carry no tier)."""
        return f"+tag:{self.name}"

    @property
    def dbt_exclude(self) -> str:
        """Other tiers' models: an ancestor owned by another tier is read as that tier left it."""
        return " ".join(f"tag:{tier.name}" for tier in TIERS if tier.name != self.name)

    def served_tables(self, manifest: dict[str, Any]) -> list[ServedTable]:
        """The served tables declared by this tier's models in a dbt `manifest.json`."""
        nodes = {
            key: node
            for key, node in manifest["nodes"].items()
            if self.name in node.get("tags", [])
        }
        return served_tables({"nodes": nodes})

    @property
    def deployment_name(self) -> str:
        return self.name

    @property
    def flow_name(self) -> str:
        return "tier"


TIERS: tuple[Tier, ...] = (
    Tier(
        name="core",
        description="Account metrics shown on profile pages (followers, engagement, grades).",
        cron="*/15 * * * *",
        window=WindowRole.YIELDS,
        timeout=timedelta(minutes=12),
        retries=1,
        freshness_sla=timedelta(minutes=45),
    ),
    Tier(
        name="monitoring",
        description="Scrape health per source and the freshness of every served table.",
        cron="*/5 * * * *",
        window=WindowRole.YIELDS,
        timeout=timedelta(minutes=4),
        retries=0,  # the next run is five minutes away
        freshness_sla=timedelta(minutes=15),
        checks_health=True,
    ),
    Tier(
        name="collections",
        description="Campaign collection analytics.",
        cron="*/30 * * * *",
        window=WindowRole.YIELDS,
        timeout=timedelta(minutes=25),
        retries=1,
        freshness_sla=timedelta(hours=1, minutes=30),
    ),
    Tier(
        name="profile-ranking",
        description="Per-profile ranks.",
        cron="0 */2 * * *",
        window=WindowRole.YIELDS,
        timeout=timedelta(minutes=90),
        retries=1,
        freshness_sla=timedelta(hours=6),
    ),
    Tier(
        name="post-ranking",
        description="Post ranks (heavy).",
        cron="30 */5 * * *",
        window=WindowRole.YIELDS,
        timeout=timedelta(hours=4),
        retries=1,
        freshness_sla=timedelta(hours=15),
    ),
    Tier(
        name="leaderboards",
        description="Multi-dimensional leaderboards, rebuilt in full inside the batch window.",
        cron="0 2 * * *",
        window=WindowRole.HOLDER,
        timeout=timedelta(hours=6),
        retries=2,
        freshness_sla=timedelta(hours=36),
    ),
    Tier(
        name="growth",
        description="Weekly growth aggregates.",
        cron="0 4 * * 1",
        window=WindowRole.YIELDS,
        timeout=timedelta(hours=6),
        retries=2,
        freshness_sla=timedelta(days=9),
    ),
)

TIERS_BY_NAME: dict[str, Tier] = {tier.name: tier for tier in TIERS}


def get_tier(name: str) -> Tier:
    """The tier called `name`; the error lists the tiers that exist."""
    try:
        return TIERS_BY_NAME[name]
    except KeyError:
        known = ", ".join(TIERS_BY_NAME)
        raise KeyError(f"no tier called {name!r}; the tiers are: {known}") from None
