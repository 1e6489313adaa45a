"""Failure alerts to Slack: one message per failure, repeated failures folded, never fatal.

A tier that fails every five minutes for the same reason posts once, then stays quiet for
`REPEAT_AFTER`; the next message says how many runs failed meanwhile. What was last sent per
failure lives in a Prefect Variable, so runs in different processes (or workers) share it.
Without a token the alert is logged as a warning instead; a Slack outage is logged and swallowed:
an alert must never turn a run's outcome into something else.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from prefect.variables import Variable
from slack_sdk.web.async_client import AsyncWebClient

from stir.settings import SlackSettings

log = logging.getLogger("stir.notify")

REPEAT_AFTER = 3600.0  # seconds before the same failure is posted again
STATE_VARIABLE = "stir-slack-alerts"
_VOLATILE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f-]{27}\b|\b\d+(\.\d+)?\b")


@dataclass(frozen=True)
class Failure:
    """What a person on call needs from one failed run."""

    tier: str
    error: str
    flow_run_url: str | None = None
    failing_task: str | None = None
    retry_command: str | None = None

    @property
    def fingerprint(self) -> str:
        """Same tier, same kind of error: ids and numbers do not make a failure new."""
        shape = _VOLATILE.sub("#", self.error.splitlines()[0] if self.error else "")
        return hashlib.sha256(f"{self.tier}|{shape}".encode()).hexdigest()[:16]

    def text(self, repeats: int) -> str:
        lines = [f":rotating_light: Stir tier *{self.tier}* failed"]
        if repeats:
            lines[0] += f" (and {repeats} more time(s) since the last alert)"
        if self.failing_task:
            lines.append(f"*Failing task:* `{self.failing_task}`")
        lines.append(f"*Error:* {self.error[:1500]}")
        if self.flow_run_url:
            lines.append(f"*Run:* {self.flow_run_url}")
        if self.retry_command:
            lines.append(f"*Retry:* `{self.retry_command}`")
        return "\n".join(lines)


async def _load_state() -> dict[str, Any]:
    state = await Variable.aget(STATE_VARIABLE, default=None)
    return dict(state) if isinstance(state, dict) else {}


async def notify_failure(failure: Failure, settings: SlackSettings) -> bool:
    """Post `failure` unless the same one was posted within `REPEAT_AFTER`; True if posted."""
    state = await _load_state()
    entry = state.get(failure.fingerprint, {"sent_at": 0.0, "suppressed": 0})
    now = time.time()
    if now - entry["sent_at"] < REPEAT_AFTER:
        entry["suppressed"] += 1
        state[failure.fingerprint] = entry
        await Variable.aset(STATE_VARIABLE, state, overwrite=True)
        log.info("alert for %s suppressed (already sent recently)", failure.tier)
        return False

    posted = await post_message(failure.text(entry["suppressed"]), settings)
    if posted:
        state[failure.fingerprint] = {"sent_at": now, "suppressed": 0}
        await Variable.aset(STATE_VARIABLE, state, overwrite=True)
    return posted


async def post_message(text: str, settings: SlackSettings) -> bool:
    """Post `text` to the alert channel; False (and the text logged) when it could not."""
    if settings.token is None:
        log.warning("STIR_SLACK_TOKEN is not set; alert not sent to Slack:\n%s", text)
        return False
    client = AsyncWebClient(
        token=settings.token.get_secret_value(),
        base_url=settings.base_url or "https://slack.com/api/",
        timeout=10,
    )
    try:
        await client.chat_postMessage(channel=settings.channel, text=text)
    except Exception as exc:  # Slack down, refused or slow: never fail the run over an alert
        # The token is never in the message: slack-sdk's errors carry the response, not headers.
        log.warning("could not post the alert to Slack (%s): %s", type(exc).__name__, text)
        return False
    return True
