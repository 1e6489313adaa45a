"""Slack alerts, against a local HTTP server that records what slack-sdk posts to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from conftest import free_port, window_held
from prefect import flow
from prefect.variables import Variable

from flows.tier import alert_on_failure, tier
from stir.settings import SlackSettings
from tasks.notify import STATE_VARIABLE, Failure, notify_failure

pytestmark = pytest.mark.usefixtures("prefect_api")
TOKEN = "xoxb-test-token-not-real"


@dataclass
class SlackRecorder:
    url: str
    messages: list[dict] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    fail: bool = False


@pytest.fixture
async def slack(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SlackRecorder]:
    """A Slack Web API stand-in on loopback; the settings point slack-sdk at it."""
    port = free_port()
    recorder = SlackRecorder(url=f"http://127.0.0.1:{port}/api/")

    async def post_message(request: web.Request) -> web.Response:
        if recorder.fail:
            return web.Response(status=503, text="down")
        recorder.auth_headers.append(request.headers.get("Authorization", ""))
        form = await request.post() if request.content_type != "application/json" else None
        recorder.messages.append(dict(form) if form is not None else await request.json())
        return web.json_response({"ok": True, "channel": "C1", "ts": "1.0"})

    app = web.Application()
    app.router.add_post("/api/chat.postMessage", post_message)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    monkeypatch.setenv("STIR_SLACK_TOKEN", TOKEN)
    monkeypatch.setenv("STIR_SLACK_BASE_URL", recorder.url)
    await Variable.aunset(STATE_VARIABLE)
    yield recorder
    await runner.cleanup()


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
