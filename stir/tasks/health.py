"""Health of what Stir serves: freshness of every served table, scrape failure rate per source.

`freshness_report` is what `stir freshness` prints; `check_health` is the monitoring tier's last
step. It alerts once when a condition starts (a table past its tier's SLA, a source failing more
than `STIR_ALERT_SCRAPE_FAILURE_RATE` of its last hour's scrapes) and once when it recovers; the
conditions currently alerting live in a Prefect Variable, so a breach that lasts an hour posts
one message, not twelve, and the recovery is said out loud.

A table that was never synced is reported but does not alert: nothing stale is live, and the
tier that should fill it alerts on its own failures. It is counted as never synced, not as
within its SLA (`HealthReport.line`). The last message posted (or logged, without Slack) is kept
in the Prefect Variable `LAST_ALERT_VARIABLE`, for `stir status`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.variables import Variable

from stir.clickhouse import quote_identifier as ch_ident
from stir.connections import clickhouse
from stir.serving.freshness import FreshnessCounts, TableFreshness, freshness_report
from stir.settings import Settings
from stir.tasks._common import settings_or_default
from stir.tasks.notify import post_message

log = logging.getLogger("stir.health")

STATE_VARIABLE = "stir-health-alerts"
LAST_ALERT_VARIABLE = "stir-health-last-alert"
LAST_ALERT_CHARS = 1000  # of the message kept: a Prefect Variable holds at most 5,000
SCRAPE_HEALTH_MODEL = "mart_scrape_health"


@dataclass(frozen=True)
class SourceFailureRate:
    source: str
    requests: int
    failures: int

    @property
    def rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class HealthReport:
    freshness: tuple[TableFreshness, ...]
    scrapes: tuple[SourceFailureRate, ...]
    alerting: tuple[str, ...]  # every condition breached now
    opened: tuple[str, ...]  # breached now, not at the previous check: alerted
    recovered: tuple[str, ...]  # breached at the previous check, not now: recovery posted

    @property
    def line(self) -> str:
        """The check in one line: `85 served tables: 12 within their SLA, 2 past their SLA,
        71 never synced; alerting: ...`."""
        alerting = ", ".join(self.alerting) or "nothing"
        recovered = f"; recovered: {', '.join(self.recovered)}" if self.recovered else ""
        return f"{FreshnessCounts.of(self.freshness).text()}; alerting: {alerting}{recovered}"


def _relation(manifest: dict[str, Any], model: str) -> str:
    for node in manifest["nodes"].values():
        if node.get("resource_type") == "model" and node["name"] == model:
            return f"{ch_ident(node['schema'])}.{ch_ident(node.get('alias') or node['name'])}"
    raise LookupError(f"the dbt project has no model {model}")


async def scrape_failure_rates(
    manifest: dict[str, Any], settings: Settings | None = None
) -> list[SourceFailureRate]:
    """Requests and failures per source over the last hour (all endpoints of the source)."""
    settings = await settings_or_default(settings)
    async with clickhouse(settings) as ch:
        rows = await ch.fetch(
            "SELECT toString(source), sum(requests_1h), sum(failures_1h) "
            f"FROM {_relation(manifest, SCRAPE_HEALTH_MODEL)} GROUP BY source ORDER BY source"
        )
    return [SourceFailureRate(str(s), int(r), int(f)) for s, r, f in rows]


def _conditions(
    freshness: list[TableFreshness], scrapes: list[SourceFailureRate], settings: Settings
) -> dict[str, str]:
    """Breached conditions now: key -> what a person on call reads."""
    threshold = settings.alerts.scrape_failure_rate
    min_requests = settings.alerts.scrape_min_requests
    breached = {}
    for item in freshness:
        if item.state == "STALE":
            breached[f"freshness:{item.ref}"] = (
                f"`{item.ref}` ({item.tier} tier) was last synced {item.age_text} ago; "
                f"its SLA is {item.sla}. Run `stir run {item.tier}` or look at that tier's runs."
            )
    for source in scrapes:
        if source.requests >= min_requests and source.rate > threshold:
            breached[f"scrape:{source.source}"] = (
                f"source `{source.source}` failed {source.failures} of {source.requests} scrapes "
                f"in the last hour ({source.rate:.0%}; threshold {threshold:.0%}). "
                "See the `scrape_health` and scrape error tables for the endpoint and error class."
            )
    return breached


@task(name="check-health", task_run_name="check freshness SLAs and scrape failure rates")
async def check_health(manifest: dict[str, Any], settings: Settings | None = None) -> HealthReport:
    """Alert on conditions that began since the last check; announce those that ended."""
    settings = await settings_or_default(settings)
    freshness = await freshness_report(manifest, settings)
    scrapes = await scrape_failure_rates(manifest, settings)
    breached = _conditions(freshness, scrapes, settings)

    stored = await Variable.aget(STATE_VARIABLE, default=None)
    previous = set(stored) if isinstance(stored, list | dict) else set()
    opened = sorted(key for key in breached if key not in previous)
    recovered = sorted(key for key in previous if key not in breached)
    if opened:
        text = ":warning: Stir health check: " + "\n".join(
            ["", *(f"• {breached[key]}" for key in opened)]
        )
        await _alert(text, settings)
    if recovered:
        text = ":white_check_mark: Stir health check, recovered: " + "\n".join(
            ["", *(f"• {_recovered_text(key)}" for key in recovered)]
        )
        await _alert(text, settings)
    # Remember what alerted even if Slack was down: the person on call sees the warning in the
    # run's logs, and a recovery is still announced once Slack is back. Only the keys: a Prefect
    # Variable holds at most 5,000 characters.
    await Variable.aset(STATE_VARIABLE, sorted(breached), overwrite=True)
    for key in opened:
        log.warning("health: %s", breached[key])
    report = HealthReport(
        tuple(freshness), tuple(scrapes), tuple(sorted(breached)), tuple(opened), tuple(recovered)
    )
    log.info("health: %s", report.line)
    return report


async def _alert(text: str, settings: Settings) -> None:
    """Post `text`, and keep it with its time as the last health alert (also when Slack did not
    take it: it was raised, and the run's log holds it)."""
    posted = await post_message(text, settings.slack)
    value = {"at": datetime.now(UTC).isoformat(), "text": text[:LAST_ALERT_CHARS], "posted": posted}
    await Variable.aset(LAST_ALERT_VARIABLE, value, overwrite=True)


def _recovered_text(key: str) -> str:
    kind, _, what = key.partition(":")
    if kind == "freshness":
        return f"`{what}` is within its freshness SLA again."
    return f"source `{what}` is back under the scrape failure threshold."
