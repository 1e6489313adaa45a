"""Slack alerts, against a local HTTP server that records what slack-sdk posts to it."""

from __future__ import annotations

import pytest
from conftest import SLACK_TOKEN as TOKEN
from conftest import SlackRecorder, window_held
from prefect import flow
from prefect.variables import Variable

from flows.tier import alert_on_failure, tier
from stir.settings import SlackSettings
from tasks.notify import STATE_VARIABLE, Failure, notify_failure

pytestmark = pytest.mark.usefixtures("prefect_api")


@flow(name="tier", on_failure=[alert_on_failure])
async def failing_tier(tier: str) -> None:
    raise RuntimeError("ClickHouse at 127.0.0.1:9000 failed with code 60: Unknown table raw.x")


async def test_a_failed_tier_posts_one_alert_with_what_to_do(slack: SlackRecorder) -> None:
    state = await failing_tier("core", return_state=True)
    assert state.is_failed()
    assert len(slack.messages) == 1
    text = slack.messages[0]["text"]
    assert "*core* failed" in text
    assert "Unknown table raw.x" in text
    assert "stir run core" in text
    assert slack.messages[0]["channel"] == "#stir-alerts"
    assert slack.auth_headers == [f"Bearer {TOKEN}"]


async def test_the_same_failure_every_five_minutes_is_folded(slack: SlackRecorder) -> None:
    for _ in range(3):
        await failing_tier("core", return_state=True)
    assert len(slack.messages) == 1
    # A different tier failing is news.
    await failing_tier("collections", return_state=True)
    assert len(slack.messages) == 2
    state = await Variable.aget(STATE_VARIABLE)
    assert sorted(entry["suppressed"] for entry in state.values()) == [0, 2]


async def test_a_skipped_tier_posts_nothing(slack: SlackRecorder) -> None:
    async with window_held():
        state = await tier("monitoring", return_state=True)
    assert state.name == "Skipped"
    assert slack.messages == []


async def test_slack_down_never_fails_and_logs_the_alert(
    slack: SlackRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    slack.fail = True
    settings = SlackSettings()
    posted = await notify_failure(Failure(tier="growth", error="boom"), settings)
    assert posted is False
    assert "could not post the alert" in caplog.text
    assert TOKEN not in caplog.text


async def test_without_a_token_the_alert_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("STIR_SLACK_TOKEN", raising=False)
    await Variable.aunset(STATE_VARIABLE)
    posted = await notify_failure(Failure(tier="growth", error="boom"), SlackSettings())
    assert posted is False
    assert "STIR_SLACK_TOKEN is not set" in caplog.text
