"""The alert for runs that crash where no hook of ours runs: a Prefect automation.

A flow's `on_failure` / `on_crashed` hooks run inside the flow's process. A run that crashes
before or while its flow loads (a worker that cannot find the flow code: `FileNotFoundError`;
a process killed with -9; infrastructure that never started) runs no hook and, without this,
posts nothing. The server sees each of them enter Crashed, so the alert lives there: an
automation on `prefect.flow-run.Crashed` of runs tagged `stir` (every Stir deployment's runs),
whose action posts to Slack's `chat.postMessage` through a Custom Webhook notification block
holding the token (as a block secret, never in the automation or a log).

Exactly one alert per crashed run: where this automation exists and covers a run, the flow's own
`on_crashed` hook leaves the crash to it (tasks/notify.py `alert_tier_run`); where it does not
(`stir run` on its temporary API, a server where `stir deploy` never ran), the hook posts.
Crash alerts are not folded: crashes are rare, and each is its own incident.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from stir.settings import Settings
from stir.tasks.credentials import CredentialsError, slack_with_block
from stir.tasks.notify import CRASH_AUTOMATION, STIR_TAG, TIER_FLOW, slack_base_url

log = logging.getLogger("stir.deploy")

WEBHOOK_BLOCK = "stir-slack-crash-alerts"  # the Custom Webhook block's document name

# Rendered by the Prefect server (Jinja, sandboxed) for the crashed run. The tier is the run's
# `tier:<name>` tag; ad-hoc runs (sync-table, rollback-table) have none and name the run.
CRASH_SUBJECT = "Stir run {{ flow_run.name }} crashed"
CRASH_BODY = (
    "{% set tier = namespace(name='') %}"
    "{% for tag in flow_run.tags %}{% if tag.startswith('tier:') %}"
    "{% set tier.name = tag[5:] %}{% endif %}{% endfor %}"
    ":boom: Stir "
    "{% if tier.name %}tier *{{ tier.name }}*{% else %}run *{{ flow_run.name }}*{% endif %}"
    " crashed (run `{{ flow_run.name }}`)\n"
    "*Crash:* {{ flow_run.state.message or flow_run.state.name }}\n"
    "*Run:* {{ flow_run|ui_url or flow_run.id }}\n"
    "{% if deployment %}*Retry:* `prefect deployment run "
    "'{{ flow.name }}/{{ deployment.name }}'`"
    "{% elif tier.name %}*Retry:* `stir run {{ tier.name }}`{% endif %}"
)


def crash_automation(block_document_id: UUID) -> AutomationCore:
    """The automation: each `stir`-tagged flow run entering Crashed posts once."""
    return AutomationCore(
        name=CRASH_AUTOMATION,
        description=(
            "Posts to Slack when a Stir run crashes where its own hooks cannot (e.g. the flow "
            f"code was not found). Managed by `stir deploy` (deployments/alerts.py); flow "
            f"'{TIER_FLOW}' runs are tagged '{STIR_TAG}'."
        ),
        enabled=True,
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": f"prefect.tag.{STIR_TAG}"},
            for_each={"prefect.resource.id"},  # one firing per crashed run
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id, subject=CRASH_SUBJECT, body=CRASH_BODY
            )
        ],
    )


async def ensure_crash_alerts(settings: Settings) -> None:
    """Create or update (idempotently) the Slack webhook block and the crash automation on the
    current Prefect API; without a Slack token, log why and create nothing."""
    slack = settings.slack
    try:  # the token may live in the block STIR_SLACK_TOKEN_BLOCK names
        slack = await slack_with_block(slack)
    except CredentialsError as exc:
        log.warning("%s", exc)
    if slack.token is None:
        log.warning(
            "STIR_SLACK_TOKEN is not set: no crash alert automation created (runs that crash "
            "before their flow loads will alert nobody); set it and run `stir deploy` again"
        )
        return
    block = CustomWebhookNotificationBlock(
        name="Stir alerts on Slack",
        url=slack_base_url(slack) + "chat.postMessage",
        method="POST",
        json_data={"channel": slack.channel, "text": "{{body}}", "unfurl_links": False},
        headers={
            "Authorization": "Bearer {{token}}",
            "Content-Type": "application/json; charset=utf-8",
        },
        secrets={"token": slack.token.get_secret_value()},
    )
    block_id = await block.asave(WEBHOOK_BLOCK, overwrite=True)
    automation = crash_automation(block_id)
    async with get_client() as client:
        existing = await client.read_automations_by_name(CRASH_AUTOMATION)
        if existing:
            await client.update_automation(existing[0].id, automation)
            for duplicate in existing[1:]:  # e.g. two deploys racing: keep one
                await client.delete_automation(duplicate.id)
            log.info("crash alert automation %r updated", CRASH_AUTOMATION)
        else:
            await client.create_automation(automation)
            log.info("crash alert automation %r created", CRASH_AUTOMATION)


async def remove_crash_alerts() -> int:
    """Delete the crash automation(s) from the current Prefect API; how many."""
    async with get_client() as client:
        existing = await client.read_automations_by_name(CRASH_AUTOMATION)
        for automation in existing:
            await client.delete_automation(automation.id)
    return len(existing)
