"""Slack alerts, against a real Prefect API and a local HTTP server that records what is posted
to Slack's Web API (slack-sdk from the hook, Prefect's webhook block from the crash automation).
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import time
import uuid

import pytest
from conftest import SLACK_TOKEN as TOKEN
from conftest import (
    ClickHouseServer,
    PostgresService,
    S3Service,
    SlackRecorder,
    free_port,
    settings_for_servers,
)
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import VariableUpdate
from prefect.states import Crashed, Running
from pydantic import SecretStr

from stir.clickhouse import ClickHouse, ClickHouseError, ClickHouseUnavailable
from stir.connections import postgres
from stir.deployments.alerts import ensure_crash_alerts, remove_crash_alerts
from stir.domain.declaration import ServedTable
from stir.errors import ServiceUnavailable
from stir.settings import PostgresSettings, Settings, SlackSettings, get_settings
from stir.tasks.notify import (
    CRASH_AUTOMATION,
    FOLD_PREFIX,
    FOLD_TAG,
    KEEP_FOR,
    REPEAT_AFTER,
    FailedStep,
    Failure,
    alert_tier_run,
    clear_fold_state,
    notify_failure,
    retry_command,
    root_cause,
)
from stir.tasks.sync import drop_incoming, export_and_load

pytestmark = pytest.mark.usefixtures("prefect_api")


class TierFailed(RuntimeError):
    """The tier flow's contract: its error carries the first sync error as `first`."""

    def __init__(self, message: str, first: BaseException | None = None) -> None:
        super().__init__(message)
        self.first = first


@task(name="dbt-build", task_run_name="dbt build --selector tier_{tier}")
async def dbt_build(tier: str) -> None:
    raise RuntimeError("ClickHouse at 127.0.0.1:9000 failed with code 60: Unknown table raw.x")


@flow(name="tier", on_failure=[alert_tier_run])
async def failing_tier(tier: str) -> None:
    await dbt_build(tier)


@task(name="export-and-load", task_run_name="export and load {table}")
async def refused_load(table: str, port: int) -> None:
    await asyncio.sleep(0.2)
    raise ServiceUnavailable("PostgreSQL", f"127.0.0.1:{port}", "refused the connection")


@task(name="drop-incoming", task_run_name="drop incoming tables of {table}")
async def broken_cleanup(table: str) -> None:
    raise AttributeError("'NoneType' object has no attribute 'close'")


@flow(name="tier", on_failure=[alert_tier_run])
async def tier_with_failing_cleanup(tier: str, port: int) -> None:
    try:
        await refused_load("public.x", port)
    except ServiceUnavailable as exc:
        failed = exc
    with contextlib.suppress(AttributeError):
        await broken_cleanup("public.x")
    raise TierFailed(f"1 of 1 served tables failed to sync: public.x; first: {failed}", failed)


async def fold_entries() -> dict[str, dict]:
    async with get_client() as client:
        response = await client.request(
            "POST", "/variables/filter", json={"variables": {"tags": {"all_": [FOLD_TAG]}}}
        )
    return {row["name"]: row["value"] for row in response.json()}


# --- what the alert says ------------------------------------------------------------------


async def test_a_failed_tier_posts_one_alert_with_what_to_do(slack: SlackRecorder) -> None:
    state = await failing_tier("core", return_state=True)
    assert state.is_failed()
    assert len(slack.messages) == 1
    text = slack.messages[0]["text"]
    assert "*core* failed" in text
    assert "`RuntimeError`: ClickHouse at 127.0.0.1:9000 failed with code 60" in text
    assert "*Failing step:* `dbt-build` (`dbt build --selector tier_core`)" in text
    assert "stir run core" in text  # no deployment: the local command
    assert slack.messages[0]["channel"] == "#stir-alerts"
    assert slack.auth_headers == [f"Bearer {TOKEN}"]


async def test_the_alert_names_the_first_failed_step_and_the_root_cause_not_the_cleanup(
    slack: SlackRecorder,
) -> None:
    port = free_port()
    state = await tier_with_failing_cleanup("core", port, return_state=True)
    assert state.is_failed()
    [text] = slack.texts
    assert "*Failing step:* `export-and-load` (`export and load public.x`)" in text
    assert f"`ServiceUnavailable`: cannot reach PostgreSQL at 127.0.0.1:{port}" in text
    assert "drop-incoming" not in text
    assert "NoneType" not in text
    assert "*Outcome:* 1 of 1 served tables failed to sync" in text


def test_root_cause_follows_first_groups_and_causes_but_stops_at_a_named_service() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed")
    unavailable = ServiceUnavailable("PostgreSQL", "127.0.0.1:5432", "refused the connection")
    unavailable.__cause__ = refused
    assert root_cause(unavailable) is unavailable  # the named error, not the driver's
    grouped = ExceptionGroup("load", [ExceptionGroup("parts", [unavailable]), ValueError()])
    assert root_cause(grouped) is unavailable
    wrapped = RuntimeError("sync failed")
    wrapped.__cause__ = grouped
    assert root_cause(TierFailed("2 of 3 tables failed", wrapped)) is unavailable
    assert root_cause(TierFailed("dbt failed")).args == ("dbt failed",)  # first=None: itself


async def test_the_retry_hint_is_the_deployment_command_when_there_is_one() -> None:
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("tier")
        deployment_id = await client.create_deployment(flow_id=flow_id, name="core")
        from_deployment = await client.create_flow_run_from_deployment(deployment_id)
        assert await retry_command(client, from_deployment, "core") == (
            "prefect deployment run 'tier/core'"
        )
        adhoc = await client.create_flow_run(failing_tier, parameters={"tier": "core"})
        assert await retry_command(client, adhoc, "core") == "stir run core"
        await client.delete_deployment(deployment_id)


# --- folding ------------------------------------------------------------------------------


async def test_the_same_failure_every_five_minutes_is_folded(slack: SlackRecorder) -> None:
    for _ in range(3):
        await failing_tier("core", return_state=True)
    assert len(slack.messages) == 1
    # A different tier failing is news.
    await failing_tier("collections", return_state=True)
    assert len(slack.messages) == 2
    entries = await fold_entries()
    assert sorted(entry["suppressed"] for entry in entries.values()) == [0, 2]
    assert {entry["step"] for entry in entries.values()} == {"dbt-build"}


async def test_one_outage_folds_although_its_messages_differ(slack: SlackRecorder) -> None:
    """The fold key is tier + step + error class: addresses, ids and timings do not count."""
    step = FailedStep("export-and-load", "export and load public.x (run 1)")
    for n in range(3):
        error = f"cannot reach PostgreSQL at 10.0.0.{n}:5432 after {n}.5 s (run {uuid.uuid4()})"
        failure = Failure("core", error, "ServiceUnavailable", step=step)
        await notify_failure(failure, SlackSettings())
    assert len(slack.messages) == 1
    # The same error class in another step is another failure.
    other = Failure("core", "x", "ServiceUnavailable", step=FailedStep("swap-in", "swap x"))
    assert await notify_failure(other, SlackSettings())


async def test_after_the_window_it_posts_again_with_the_count(slack: SlackRecorder) -> None:
    failure = Failure("growth", "boom", "RuntimeError")
    for _ in range(4):
        await notify_failure(failure, SlackSettings())
    assert len(slack.messages) == 1
    name = FOLD_PREFIX + failure.fingerprint
    entry = (await fold_entries())[name]
    assert entry["suppressed"] == 3
    async with get_client() as client:  # an hour passes
        entry["sent_at"] -= REPEAT_AFTER + 1
        await client.update_variable(VariableUpdate(name=name, value=entry))
    assert await notify_failure(failure, SlackSettings())
    assert "(and 3 more time(s) since the last alert)" in slack.texts[1]
    assert (await fold_entries())[name]["suppressed"] == 0


async def test_more_distinct_failures_than_one_variable_could_hold(slack: SlackRecorder) -> None:
    """The old single Variable (5,000 characters) overflowed at about 80 distinct failures;
    one small entry per failure does not, and stale ones are pruned."""
    failures = [Failure(f"tier-{i}", f"error {i}", f"Error{i}") for i in range(120)]
    for failure in failures:
        assert await notify_failure(failure, SlackSettings())
    for failure in failures:  # each repeat still folds
        assert not await notify_failure(failure, SlackSettings())
    assert len(slack.messages) == 120
    entries = await fold_entries()
    assert len(entries) == 120
    assert all(entry["suppressed"] == 1 for entry in entries.values())

    # Entries older than KEEP_FOR are pruned when the next alert is posted.
    async with get_client() as client:
        for failure in failures[:100]:
            name = FOLD_PREFIX + failure.fingerprint
            old = {**entries[name], "sent_at": time.time() - KEEP_FOR - 1}
            await client.update_variable(VariableUpdate(name=name, value=old))
    assert await notify_failure(Failure("core", "new", "NewError"), SlackSettings())
    assert len(await fold_entries()) == 20 + 1


async def test_concurrent_notifications_of_one_failure_post_exactly_once(
    slack: SlackRecorder,
) -> None:
    failure = Failure("core", "boom", "ServiceUnavailable")
    posted = await asyncio.gather(*(notify_failure(failure, SlackSettings()) for _ in range(10)))
    assert posted.count(True) == 1
    assert len(slack.messages) == 1
    suppressed = (await fold_entries())[FOLD_PREFIX + failure.fingerprint]["suppressed"]
    assert 1 <= suppressed <= 9  # a lower bound: folds at the same instant may count once


# --- a real outage: PostgreSQL is down during a sync ------------------------------------------


@pytest.fixture
def outage_settings(
    clickhouse: ClickHouseServer, s3: S3Service, postgres: PostgresService
) -> Settings:
    """The session's ClickHouse and S3, and a PostgreSQL address where nothing listens, with a
    password that must never be shown."""
    settings = settings_for_servers(clickhouse, s3, postgres, f"outage-{uuid.uuid4().hex[:8]}")
    dsn = f"postgresql://stir:hunter2-secret@127.0.0.1:{free_port()}/stir"
    return settings.model_copy(update={"postgres": PostgresSettings(dsn=SecretStr(dsn))})


@flow(name="tier", on_failure=[alert_tier_run])
async def tier_during_outage(tier: str, settings: Settings, decl: ServedTable) -> None:
    """What the tier's sync does, with its real tasks: export and load, then drop the incoming
    table (which fails too, PostgreSQL being down) and re-raise the load's error."""
    try:
        await export_and_load(decl, uuid.uuid4().hex[:12], settings)
    except BaseException:
        with contextlib.suppress(Exception):  # sync_table logs it; the load's error matters
            await drop_incoming(decl.table, decl.schema, settings)
        raise


async def test_postgres_down_alerts_the_service_and_the_load_step_then_folds(
    slack: SlackRecorder, outage_settings: Settings
) -> None:
    async with ClickHouse(outage_settings.clickhouse) as ch:
        await ch.execute("DROP TABLE IF EXISTS mart_outage")
        await ch.execute(
            "CREATE TABLE mart_outage (id UInt64, name String) ENGINE = MergeTree ORDER BY id"
        )
        await ch.execute(
            "INSERT INTO mart_outage SELECT number, toString(number) FROM numbers(50000)"
        )
    decl = ServedTable.from_meta(
        "mart_outage",
        {"serve": {"table": "outage_x", "keys": ["id"], "rows_per_part": 5000}},
        {"id": {}, "name": {}},
    )
    port = outage_settings.postgres.effective_dsn().rsplit(":", 1)[1].split("/")[0]

    for _ in range(3):
        state = await tier_during_outage("core", outage_settings, decl, return_state=True)
        assert state.is_failed()
    assert len(slack.texts) == 1, slack.texts  # the second run of the same outage is folded
    [text] = slack.texts
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}: it refused the connection" in text
    assert "`ServiceUnavailable`" in text
    assert "*Failing step:* `export-and-load`" in text
    assert "drop-incoming" not in text
    assert "drop incoming" not in text
    assert "NoneType" not in text
    assert "hunter2-secret" not in text
    entry = (await fold_entries()).popitem()[1]
    assert entry["suppressed"] == 2
    assert entry["step"] == "export-and-load"


async def test_connection_failures_name_the_service_and_address_never_the_password() -> None:
    port = free_port()
    dsn = f"postgresql://stir:hunter2-secret@127.0.0.1:{port}/stir"
    settings = get_settings().model_copy(update={"postgres": PostgresSettings(dsn=SecretStr(dsn))})
    with pytest.raises(ServiceUnavailable) as caught:
        async with postgres(settings):
            pass
    message = str(caught.value)
    assert message.startswith(f"cannot reach PostgreSQL at 127.0.0.1:{port}: it refused")
    assert "stir stack status" in message
    assert "hunter2" not in message
    # Prefect persists a failed run's exception: it must come back whole.
    assert str(pickle.loads(pickle.dumps(caught.value))) == message  # noqa: S301 (our own bytes)

    ch_settings = get_settings().clickhouse.model_copy(update={"native_port": free_port()})
    async with ClickHouse(ch_settings, read_retries=0, connect_timeout=1) as ch:
        with pytest.raises(ClickHouseError) as failed:  # still a ClickHouseError for callers
            await ch.fetch("SELECT 1")
    assert isinstance(failed.value, ClickHouseUnavailable)
    assert isinstance(failed.value, ServiceUnavailable)
    assert f"cannot reach ClickHouse at 127.0.0.1:{ch_settings.native_port}" in str(failed.value)


async def test_closing_clickhouse_never_raises_over_the_error_in_flight(
    clickhouse: ClickHouseServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The state clickhouse-driver is left in when a cancelled export's thread is still using
    its connection at teardown (connected, socket already gone): its disconnect raises
    `'NoneType' object has no attribute ...`; that must be logged, and the error that is
    propagating must stay the one raised."""
    settings = get_settings().clickhouse.model_copy(
        update={"host": clickhouse.host, "native_port": clickhouse.native_port}
    )

    async def failing_while_connected() -> None:
        async with ClickHouse(settings) as ch:
            assert await ch.fetch_value("SELECT 1") == 1
            [client] = ch._clients
            client.connection.socket = None  # what the other thread's disconnect left
            assert client.connection.connected
            raise ServiceUnavailable("PostgreSQL", "127.0.0.1:1", "the real failure")

    with pytest.raises(ServiceUnavailable, match="the real failure"):
        await failing_while_connected()
    assert "could not disconnect cleanly (AttributeError" in caplog.text


# --- crashes ------------------------------------------------------------------------------


async def _crash_a_run(*, deployment: bool) -> str:
    """A flow run of the `tier` flow, tagged as Stir's deployments tag theirs, set Crashed as a
    worker does when it cannot load the flow's code."""
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("tier")
        tags = ["stir", "tier:core", "window:yields"]
        if deployment:
            deployment_id = await client.create_deployment(flow_id=flow_id, name="core", tags=tags)
            run = await client.create_flow_run_from_deployment(
                deployment_id, parameters={"tier": "core"}, tags=tags
            )
        else:
            run = await client.create_flow_run(
                failing_tier, parameters={"tier": "core"}, tags=tags, name="core-adhoc"
            )
        await client.set_flow_run_state(run.id, Running(), force=True)
        message = "Flow could not be retrieved from deployment: FileNotFoundError: flows/tier.py"
        await client.set_flow_run_state(run.id, Crashed(message=message), force=True)
        return str(run.id)


async def _wait_for_messages(slack: SlackRecorder, count: int, seconds: float = 60) -> None:
    for _ in range(int(seconds / 0.2)):
        if len(slack.messages) >= count:
            return
        await asyncio.sleep(0.2)


async def test_a_run_that_crashes_before_its_flow_loads_alerts_once(
    slack: SlackRecorder,
) -> None:
    """The automation posts it (no hook of ours ever ran); a hook that does see a crash of a
    run the automation covers stays quiet, so one crash is one message."""
    settings = get_settings()
    await ensure_crash_alerts(settings)
    await ensure_crash_alerts(settings)  # idempotent: still one automation
    try:
        async with get_client() as client:
            assert len(await client.read_automations_by_name(CRASH_AUTOMATION)) == 1
        run_id = await _crash_a_run(deployment=True)
        await _wait_for_messages(slack, 1)
        [message] = slack.messages
        text = message["text"]
        assert "Stir tier *core* crashed" in text
        assert "FileNotFoundError: flows/tier.py" in text
        assert "prefect deployment run 'tier/core'" in text
        assert run_id in text  # the run's link (or its id where no UI URL is configured)
        assert message["channel"] == "#stir-alerts"
        assert slack.auth_headers == [f"Bearer {TOKEN}"]

        # The flow's own on_crashed hook, for a run the automation covers: no second message.
        async with get_client() as client:
            flow_run = await client.read_flow_run(uuid.UUID(run_id))
        await alert_tier_run(failing_tier, flow_run, flow_run.state)
        await asyncio.sleep(3)
        assert len(slack.messages) == 1
    finally:
        await remove_crash_alerts()


async def test_without_the_automation_the_hook_posts_the_crash(slack: SlackRecorder) -> None:
    run_id = await _crash_a_run(deployment=False)
    async with get_client() as client:
        flow_run = await client.read_flow_run(uuid.UUID(run_id))
    await alert_tier_run(failing_tier, flow_run, flow_run.state)
    [text] = slack.texts
    assert "Stir tier *core* crashed" in text
    assert "FileNotFoundError: flows/tier.py" in text
    assert "stir run core" in text


async def test_without_a_token_no_automation_is_created(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("STIR_SLACK_TOKEN", raising=False)
    await ensure_crash_alerts(get_settings())
    assert "STIR_SLACK_TOKEN is not set" in caplog.text
    async with get_client() as client:
        assert await client.read_automations_by_name(CRASH_AUTOMATION) == []


# --- never fatal --------------------------------------------------------------------------


async def test_slack_down_never_fails_and_logs_the_alert(
    slack: SlackRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    slack.fail = True
    settings = SlackSettings()
    failure = Failure(tier="growth", error="boom")
    assert await notify_failure(failure, settings) is False
    assert "could not post the alert" in caplog.text
    assert TOKEN not in caplog.text
    # Not sent, so not folded: the next failure tries again.
    slack.fail = False
    assert await notify_failure(failure, settings) is True


async def test_without_a_token_the_alert_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("STIR_SLACK_TOKEN", raising=False)
    await clear_fold_state()
    posted = await notify_failure(Failure(tier="growth", error="boom"), SlackSettings())
    assert posted is False
    assert "STIR_SLACK_TOKEN is not set" in caplog.text
