"""Secrets from Prefect blocks (docs/credentials.md), as operated: `stir blocks` writes them from
an environment holding the secrets; a `prefect worker` whose environment holds none of them (only
the blocks' names, hosts, ports, the bucket) runs a tier that serves rows; a block that is gone
fails the next run with an error, and an alert, naming the block and the command that creates it.

The ClickHouse server here has a password and the worker is given no PostgreSQL port: the run can
only reach either through its blocks. Unit tests first: S3 without keys.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from conftest import (
    PostgresService,
    S3Service,
    SlackRecorder,
    databases_of_their_own,
    isolated_stir_env,
    start_clickhouse,
    start_slack_recorder,
    stop_process,
)
from prefect.client.schemas.objects import StateType
from prefect_platform import PrefectPlatform

from stir.clickhouse import ClickHouse
from stir.serving.export import s3_function
from stir.settings import S3Settings, describe, get_settings
from stir.sources.seed import Seeder
from stir.tasks.credentials import settings_with_blocks

DATABASE = "blocks_test"
CLICKHOUSE_PASSWORD = "blocks-test-ch-password"
SLACK_TOKEN = "xoxb-blocks-test-token"
BLOCKS = {
    "STIR_S3_CREDENTIALS_BLOCK": "stir-test-s3",
    "STIR_POSTGRES_DSN_BLOCK": "stir-test-dsn",
    "STIR_CLICKHOUSE_PASSWORD_BLOCK": "stir-test-clickhouse",
    "STIR_SLACK_TOKEN_BLOCK": "stir-test-slack",
}
SECRET_SETTINGS = (
    "STIR_S3_ACCESS_KEY_ID",
    "STIR_S3_SECRET_ACCESS_KEY",
    "STIR_POSTGRES_DSN",
    "STIR_CLICKHOUSE_PASSWORD",
    "STIR_SLACK_TOKEN",
)


# --- unit: S3 without keys --------------------------------------------------------------------


def test_settings_without_s3_keys_are_valid_and_shown_unset(stir_env: pytest.MonkeyPatch) -> None:
    stir_env.setenv("STIR_S3_EMBEDDED", "false")
    stir_env.setenv("STIR_S3_ENDPOINT_URL", "https://s3.eu-west-1.amazonaws.com")
    settings = get_settings()
    assert settings.s3.access_key_id is None
    assert settings.s3.secret_access_key is None
    shown = {row.env: row.value for row in describe(settings)}
    assert shown["STIR_S3_ACCESS_KEY_ID"] == "(not set)"
    assert shown["STIR_S3_SECRET_ACCESS_KEY"] == "(not set)"


def test_s3_keys_come_in_pairs_and_the_embedded_server_gets_its_own(
    stir_env: pytest.MonkeyPatch,
) -> None:
    # The embedded moto server gets its local keys, as before.
    assert get_settings().s3.access_key_id is not None
    stir_env.setenv("STIR_S3_ACCESS_KEY_ID", "AKIAONLYONE")
    with pytest.raises(Exception, match="set together or not at all"):
        get_settings()


def test_the_export_without_keys_carries_no_credential() -> None:
    bare = S3Settings(endpoint_url="https://s3.amazonaws.com", embedded=False)
    function, params = s3_function(bare)
    # No keys and no NOSIGN: ClickHouse signs with its own server-side credentials.
    assert function == "s3({url:String}, {fmt:String})"
    assert params == {}
    collection = S3Settings(
        endpoint_url="https://s3.amazonaws.com", embedded=False, named_collection="stir_s3"
    )
    function, params = s3_function(collection)
    assert function.startswith("s3(`stir_s3`, url = {url:String}")
    assert params == {}


def test_the_export_with_keys_passes_them_as_parameters_only() -> None:
    keyed = S3Settings(
        endpoint_url="https://s3.amazonaws.com",
        embedded=False,
        access_key_id="AKIAEXAMPLE",
        secret_access_key="very-secret",
    )
    function, params = s3_function(keyed)
    assert "AKIAEXAMPLE" not in function
    assert "very-secret" not in function
    assert params == {"key": "AKIAEXAMPLE", "secret": "very-secret"}


async def test_settings_naming_no_block_are_used_as_they_are(stir_env: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert await settings_with_blocks(settings) is settings  # no Prefect API needed


# --- as operated: a real Prefect server, `stir blocks`, a worker without secrets ---------------


@dataclass
class Stage:
    platform: PrefectPlatform
    slack: SlackRecorder
    secret_env: dict[str, str]  # what the operator's shell holds to run `stir blocks`
    worker_env: dict[str, str]  # what the worker holds: names and addresses, no secret
    dsn: str


@pytest.fixture(scope="module")
async def stage(
    postgres: PostgresService, s3: S3Service, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    clickhouse = start_clickhouse(
        tmp_path_factory.mktemp("blocks-clickhouse") / "data", password=CLICKHOUSE_PASSWORD
    )
    recorder, slack_runner = await start_slack_recorder()
    dsn = await databases_of_their_own(clickhouse, postgres, DATABASE)
    worker_env = {
        "STIR_CLICKHOUSE_HTTP_PORT": str(clickhouse.http_port),
        "STIR_CLICKHOUSE_NATIVE_PORT": str(clickhouse.native_port),
        "STIR_CLICKHOUSE_DATABASE": DATABASE,
        "STIR_STATE_DIR": str(tmp_path_factory.mktemp("blocks-state")),
        "STIR_SLACK_BASE_URL": recorder.url,
        **{key: value for key, value in s3.env.items() if key not in SECRET_SETTINGS},
        "STIR_S3_PREFIX": "blocks-test",
        **BLOCKS,
    }
    secret_env = {
        **worker_env,
        "STIR_S3_ACCESS_KEY_ID": s3.access_key_id,
        "STIR_S3_SECRET_ACCESS_KEY": s3.secret_access_key,
        "STIR_POSTGRES_DSN": dsn,
        "STIR_CLICKHOUSE_PASSWORD": CLICKHOUSE_PASSWORD,
        "STIR_SLACK_TOKEN": SLACK_TOKEN,
    }
    patch = isolated_stir_env(tmp_path_factory.mktemp("blocks-cwd"), **secret_env)
    try:
        await Seeder(get_settings()).seed("xs", 17)
        async with PrefectPlatform(tmp_path_factory.mktemp("blocks-platform")) as platform:
            yield Stage(platform, recorder, secret_env, worker_env, dsn)
    finally:
        patch.undo()
        await slack_runner.cleanup()
        stop_process(clickhouse.process)


async def run_stir(platform: PrefectPlatform, args: list[str], env: dict[str, str]) -> str:
    """`stir <args>` against the platform's API; its output (stdout and stderr)."""
    process = await asyncio.create_subprocess_exec(
        str(platform.bin_dir / "stir"), *args,
        env=platform.client_env(env), cwd=platform.root,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text
    return text


async def wait_for_alert(slack: SlackRecorder, text: str, timeout: float = 60) -> str:  # noqa: ASYNC109
    """The first Slack message holding `text` (the failure hook posts after the run ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [t for t in slack.texts if text in t]
        if found:
            return found[0]
        await asyncio.sleep(0.5)
    raise AssertionError(f"no Slack message holding {text!r}; got {slack.texts}")


@pytest.mark.timeout(600)
async def test_a_worker_without_secrets_runs_a_tier_from_the_blocks(stage: Stage) -> None:
    platform = stage.platform
    # (a) The operator writes the blocks from a shell holding the secrets; none is printed.
    output = await run_stir(platform, ["blocks"], stage.secret_env)
    for name in BLOCKS.values():
        assert f"'{name}'" in output, output
    assert "aws-credentials block 'stir-test-s3'" in output
    for secret in (
        CLICKHOUSE_PASSWORD,
        SLACK_TOKEN,
        stage.dsn,
        stage.secret_env[SECRET_SETTINGS[1]],
    ):
        assert secret not in output

    # (b) Deployments and a worker from an environment without any secret.
    assert not set(SECRET_SETTINGS) & set(stage.worker_env)
    await platform.deploy(stage.worker_env)
    await platform.start_workers(1, stage.worker_env)
    # core: the cheapest tier that stands alone (the others read its marts).
    ids = await platform.run_deployments(["core"])
    outcome = (await platform.wait_final(ids, timeout=400))[ids[0]]
    assert outcome.state_name == "Completed", f"{outcome.message}\n{platform.log_tails()}"
    logs = [log.message for log in await platform.read_logs(ids[0])]
    assert any("STIR_POSTGRES_DSN from the Prefect block 'stir-test-dsn'" in m for m in logs)
    assert not any(CLICKHOUSE_PASSWORD in m or stage.dsn in m for m in logs)
    conn = await asyncpg.connect(stage.dsn)
    try:
        served = await conn.fetchval("SELECT count(*) FROM public.profile_metrics")
    finally:
        await conn.close()
    async with ClickHouse(get_settings().clickhouse) as ch:
        computed = await ch.fetch_value(f"SELECT count() FROM {DATABASE}.mart_profile_metrics")
    assert served == computed > 0

    # (c) A block gone: the next run fails naming it, its type and the command; so does the alert
    # (monitoring: no retries, so the failure is final at once).
    dsn_block = await platform.client.read_block_document_by_name("stir-test-dsn", "secret")
    await platform.client.delete_block_document(dsn_block.id)
    ids = await platform.run_deployments(["monitoring"])
    failed = (await platform.wait_final(ids, timeout=120))[ids[0]]
    assert failed.state_type == StateType.FAILED, failed.message
    for part in ("'stir-test-dsn'", "'secret'", "STIR_POSTGRES_DSN_BLOCK", "`stir blocks`"):
        assert part in (failed.message or ""), failed.message
    alert = await wait_for_alert(stage.slack, "'stir-test-dsn'")
    assert "CredentialsError" in alert
    assert "`stir blocks`" in alert
    assert "`prefect block create secret`" in alert
    assert stage.slack.auth_headers[-1] == f"Bearer {SLACK_TOKEN}"  # the token of its block
