"""The seven scheduling tiers of Stir, defined once.

A tier is a dbt tag (every model tagged with it is built by the tier) and a named dbt selector
(`tier_<name>` in transform/selectors.yml: those models and the tests that read only them), a
schedule, a timeout and retries, and a role in the daily batch window. Every entry point derives
from this list: the tier flows (`stir.flows.tier`), `stir serve`, `stir deploy` and the generated
`prefect.yaml` (`stir.deployments.tiers`), and the dbt command line (`dbt_build_args`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from stir.domain.declaration import ServedTable, served_tables

TIME_ZONE = "UTC"


def dbt_build_args(selector: str) -> list[str]:
    """The dbt command line that builds the selector called `selector` in
    transform/selectors.yml, where each selection is spelled once (a tier's: its models, then
    the tests that read only what this build builds; tests that also read another owner's
    models run separately, see `Tier.cross_owner_tests`).

    Without the unit tests: their inputs are fixed rows, so a scheduled run would repeat the
    same answer on every run (dbt Labs advises running them in development and CI only). They
    run in `stir ci` and in the project's test suite."""
    return ["build", "--selector", selector, "--exclude-resource-type", "unit_test"]


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
    # failure rate, alerting on breaches and recoveries (stir/tasks/health.py).
    checks_health: bool = False

    @property
    def dbt_selector(self) -> str:
        """The name of this tier's selector in transform/selectors.yml: the models it owns (its
        tag) and the tests that read only them.

        Every model has one owner: the tier of its tag, or the shared staging layer, which the
        daily holder rebuilds (stir/tasks/shared_layer.py). A tier reads what it does not own as its
        owner left it, so no two runs ever replace the same relation.
        """
        return f"tier_{self.flow_attribute}"

    @property
    def dbt_build_args(self) -> list[str]:
        """The dbt command line of this tier's build."""
        return dbt_build_args(self.dbt_selector)

    @property
    def timeout_seconds(self) -> float:
        return self.timeout.total_seconds()

    @property
    def tags(self) -> list[str]:
        """The Prefect tags of this tier's deployment and runs."""
        return ["stir", f"tier:{self.name}", f"window:{self.window.value}"]

    def cross_owner_tests(self, manifest: dict[str, Any]) -> list[str]:
        """The tests this tier runs after its build that read models it does not own.

        The tier's selector runs a test only when this tier builds everything it reads
        (`indirect_selection: cautious`). A test on one of this tier's models that also reads
        the shared staging layer or an earlier tier's mart (a relationship, a reconciliation)
        runs here, after the build, as a separate `dbt test`: those relations are read as their
        owners left them. A test with no model it is attached to belongs to the last tier (in
        dependency order) it reads.

        Tests tagged `data_quality` read a whole append-only log and run in the daily holder's
        window only: those of the shared layer alone in its data-quality build
        (stir/tasks/shared_layer.py), those that also read a tier's mart (a reconciliation of a
        monitoring mart with the log) here, as the holder's.
        """
        nodes = manifest["nodes"]
        selected = []
        for unique_id, node in nodes.items():
            if node["resource_type"] != "test":
                continue
            parents = [p for p in node["depends_on"]["nodes"] if p.startswith("model.")]
            owners = {owner_of(nodes[p]) for p in parents if p in nodes}
            if DATA_QUALITY in node.get("tags", []):
                if self.window is WindowRole.HOLDER and owners - {SHARED}:
                    selected.append(unique_id)
                continue
            if len(owners) < 2:
                continue  # read only one owner's models: that owner's build runs it
            attached = node.get("attached_node")
            owner = (
                owner_of(nodes[attached])
                if attached in nodes
                else max(owners, key=lambda o: TIER_ORDER.get(o, -1))
            )
            if owner == self.name:
                selected.append(unique_id)
        return sorted(selected)

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

    @property
    def flow_attribute(self) -> str:
        """The name of this tier's flow object in `stir.flows.tier`."""
        return self.name.replace("-", "_")

    @property
    def entrypoint(self) -> str:
        """This tier's flow object, with its timeout and retries, as an importable module path:
        a worker loads it from the installed package, with no source code to pull."""
        return f"stir.flows.tier:{self.flow_attribute}"


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
TIER_ORDER: dict[str, int] = {tier.name: index for index, tier in enumerate(TIERS)}
SHARED = "shared"  # the dbt tag of the staging layer, which no fast tier builds
# The dbt tag of the tests that read a whole append-only log: run by the daily holder's
# data-quality build (selector `data_quality`), never by a fast tier.
DATA_QUALITY = "data_quality"


def owner_of(node: dict[str, Any]) -> str:
    """Who builds a dbt model: the tier of its tag, or the shared layer (`shared`)."""
    tags = node.get("tags", [])
    owners = [tag for tag in tags if tag in TIER_ORDER or tag == SHARED]
    if len(owners) != 1:
        raise ValueError(
            f"dbt model {node.get('name')} must carry exactly one tier tag (or `{SHARED}`), "
            f"has {owners or 'none'}"
        )
    return owners[0]


# The closed choice of a tier, as a flow parameter: a dropdown in Prefect's UI, and a run with
# any other value is refused before it starts.
TierName = StrEnum("TierName", {tier.name.replace("-", "_"): tier.name for tier in TIERS})


def get_tier(name: str) -> Tier:
    """The tier called `name`; the error lists the tiers that exist."""
    try:
        return TIERS_BY_NAME[name]
    except KeyError:
        known = ", ".join(TIERS_BY_NAME)
        raise KeyError(f"no tier called {name!r}; the tiers are: {known}") from None
