"""The tier deployments, derived from the one tier definition (`stir.domain.tiers`).

Three ways to register them, one source: `stir deploy` (a work pool; it runs `prefect deploy`
on the document `prefect_yaml()` renders), `prefect deploy --all` with the committed
`prefect.yaml` (the same document, written by `stir prefect-yaml`), and `stir serve` (this
process; `served_deployments()`). Every entrypoint is a module path of the installed package
(`stir.flows.tier:core`) and there are no pull steps: a worker runs the Stir installed beside it
(a host with the package, or the worker image), never a copy of someone's checkout.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from stir.domain.tiers import TIERS, TIME_ZONE, Tier

# Every tier deployment runs one flow run at a time. A run that comes due while the previous one
# still runs is cancelled, not queued: the next schedule is minutes away and a queue would pile up
# behind a slow run.
ONE_RUN_AT_A_TIME = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
)
PREFECT_VERSION = "3.9.1"
HEADER = """\
# Stir's Prefect deployments. Generated from stir/domain/tiers.py by `stir prefect-yaml`: do not
# edit by hand (a test fails when this file and the tier definitions differ).
#
# One deployment per tier, each its own flow object (stir.flows.tier:<tier>) carrying the tier's
# timeout, retries and run name; at most one flow run at a time, a colliding run cancelled rather
# than queued. Entrypoints are module paths and there are no pull steps: a worker runs the Stir
# package installed beside it. `stir deploy` registers the same document; see docs/deploy.md.
"""


@dataclass(frozen=True)
class AdhocDeployment:
    """A deployment without a schedule, run from the UI or `prefect deployment run`."""

    name: str
    description: str
    entrypoint: str


ADHOC: tuple[AdhocDeployment, ...] = (
    AdhocDeployment(
        "sync-table",
        "Sync one served table now; with run_id, retry that run from S3 (no ClickHouse query).",
        "stir.flows.adhoc:sync_one_table",
    ),
    AdhocDeployment(
        "rollback-table",
        "Put the previous version of a served table back.",
        "stir.flows.adhoc:rollback_one_table",
    ),
)


@dataclass(frozen=True)
class WorkPool:
    """The work pool the deployments run on, and what each run's job gets."""

    name: str = "stir"
    type: Literal["process", "docker"] = "process"
    job_variables: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        pool: dict[str, Any] = {"name": self.name}
        if self.job_variables:
            pool["job_variables"] = copy.deepcopy(self.job_variables)  # no YAML anchors
        return pool


def _one_run_at_a_time() -> dict[str, Any]:
    return {
        "limit": ONE_RUN_AT_A_TIME.limit,
        "collision_strategy": ONE_RUN_AT_A_TIME.collision_strategy.value,
    }


def tier_deployment(spec: Tier, pool: WorkPool) -> dict[str, Any]:
    """The `prefect.yaml` entry of one tier."""
    return {
        "name": spec.deployment_name,
        "description": spec.description,
        "entrypoint": spec.entrypoint,
        "parameters": {"tier": spec.name},
        "tags": spec.tags,
        "schedules": [{"cron": spec.cron, "timezone": TIME_ZONE}],
        "concurrency_limit": _one_run_at_a_time(),
        "work_pool": pool.document(),
    }


def adhoc_deployment(adhoc: AdhocDeployment, pool: WorkPool) -> dict[str, Any]:
    return {
        "name": adhoc.name,
        "description": adhoc.description,
        "entrypoint": adhoc.entrypoint,
        "parameters": {},
        "tags": ["stir", "adhoc"],
        "work_pool": pool.document(),
    }


def prefect_yaml(pool: WorkPool | None = None) -> dict[str, Any]:
    """The `prefect.yaml` document of every Stir deployment on `pool`."""
    pool = pool or WorkPool()
    return {
        "name": "stir",
        "prefect-version": PREFECT_VERSION,
        "build": None,
        "push": None,
        "pull": [],  # the code is the installed package: nothing to pull
        "deployments": [
            *(tier_deployment(spec, pool) for spec in TIERS),
            *(adhoc_deployment(adhoc, pool) for adhoc in ADHOC),
        ],
    }


def render_prefect_yaml(pool: WorkPool | None = None) -> str:
    """`prefect_yaml()` as the text of the file, with its header."""
    body = yaml.safe_dump(prefect_yaml(pool), sort_keys=False, width=100)
    return HEADER + "\n" + body


def served_deployments() -> list[RunnerDeployment]:
    """The tier deployments of `stir serve`: the same definition, run by this process."""
    from stir.flows.tier import TIER_FLOWS

    return [
        TIER_FLOWS[spec.name].to_deployment(
            name=spec.deployment_name,
            description=spec.description,
            parameters={"tier": spec.name},
            schedules=[Cron(spec.cron, timezone=TIME_ZONE)],
            tags=spec.tags,
            concurrency_limit=ONE_RUN_AT_A_TIME,
        )
        for spec in TIERS
    ]
