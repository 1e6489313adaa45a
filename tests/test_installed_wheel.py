"""An installed Stir is a whole Stir: the wheel, installed as the Dockerfile does, runs tiers.

The steps are the Dockerfile's, in order: a build environment from requirements/build.txt builds
the wheel from the same files (`pip wheel --no-deps --no-build-isolation`); a fresh virtual
environment gets requirements/worker.txt (hash-checked, without the embedded stack) and then the
wheel (`--no-deps`); every command runs from the image's working directory (its state dir), not
from the checkout, with the image's environment. The servers are embedded ones (a ClickHouse
with a password of this module's, the session's PostgreSQL and S3), which the installed Stir
reaches as real servers (`STIR_*_EMBEDDED=false`, a DSN). As on an EC2 host, the worker's
environment holds no secret: the credentials are in Prefect blocks (docs/credentials.md).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

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
from stir.settings import get_settings
from stir.sources.seed import Seeder

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "wheel_test"  # in ClickHouse (dbt's database) and PostgreSQL (the served tables)
# What the Dockerfile copies into its build stage (.dockerignore keeps build output out).
BUILD_FILES = ("pyproject.toml", "README.md", "prefect.yaml", "stir", "transform")
IGNORED = shutil.ignore_patterns("__pycache__", "target", "logs", "dbt_packages", ".user.yml")
CORE_TABLE = "public.instagram_account_metrics"
CLICKHOUSE_PASSWORD = "wheel-test-ch-password"
SLACK_TOKEN = "xoxb-wheel-test-token"
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


@dataclass(frozen=True)
class Installed:
    bin: Path  # the fresh environment's scripts: stir, prefect, python
    workdir: Path  # the image's WORKDIR and STIR_STATE_DIR
    project: Path  # the dbt project inside the installed package

    def env(self, **settings: str) -> dict[str, str]:
        """The image's environment (Dockerfile ENV) plus the operator's settings."""
        return {
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.workdir / "home"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "STIR_STATE_DIR": str(self.workdir),
            "PREFECT_HOME": str(self.workdir / "prefect"),
            **settings,
        }

    def run(self, *args: str, env: dict[str, str], timeout: float = 600) -> tuple[int, str]:
        done = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            env=env, cwd=self.workdir, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        return done.returncode, done.stdout + done.stderr


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"pip install {' '.join(args)} failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    root = Path(tempfile.mkdtemp(prefix="stir-wheel-"))
    try:
        # Build stage: its own environment, the same files, the same command.
        src = root / "src"
        src.mkdir()
        for name in BUILD_FILES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, src / name, ignore=IGNORED)
            else:
                shutil.copy2(source, src / name)
        subprocess.run([sys.executable, "-m", "venv", str(root / "build")], check=True)
        _pip(root / "build" / "bin" / "python", "--require-hashes", "-r",
             str(ROOT / "requirements" / "build.txt"))  # fmt: skip
        subprocess.run(
            [str(root / "build" / "bin" / "python"), "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--no-build-isolation", "-w", str(root / "dist"), "."],
            cwd=src, check=True,
        )  # fmt: skip
        # Runtime stage: the pinned dependencies, then the wheel alone.
        subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
        python = root / "venv" / "bin" / "python"
        _pip(python, "--require-hashes", "-r", str(ROOT / "requirements" / "worker.txt"))
        _pip(python, "--no-deps", *map(str, (root / "dist").glob("stir-*.whl")))
        workdir = root / "var-lib-stir"
        (workdir / "home").mkdir(parents=True)
        site = subprocess.run(
            [str(python), "-c", "import stir, pathlib; print(pathlib.Path(stir.__file__).parent)"],
            capture_output=True, text=True, check=True, cwd=workdir,
        ).stdout.strip()  # fmt: skip
        yield Installed(root / "venv" / "bin", workdir, Path(site) / "project" / "transform")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _files(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*")}


def test_the_installed_package_carries_the_project_and_not_the_embedded_stack(
    installed: Installed,
) -> None:
    env = installed.env()
    code, output = installed.run("stir", "tables", env=env)
    assert code == 0, output
    assert CORE_TABLE in output
    # The deployments an operator registers from the image are the checkout's.
    code, output = installed.run("stir", "prefect-yaml", env=env)
    assert code == 0, output
    assert output == (ROOT / "prefect.yaml").read_text()
    # The worker image has no embedded stack, and says how to get one.
    code, output = installed.run("stir", "stack", "up", env=env)
    assert code == 2, output
    assert "pip install 'stir[local]'" in output
    code, output = installed.run("python", "-c", "import chdb", env=env)
    assert code != 0, "chDB is installed in the worker environment"


def test_a_project_dir_without_a_project_is_a_clear_error(
    installed: Installed, tmp_path: Path
) -> None:
    env = installed.env(STIR_PROJECT_DIR=str(tmp_path))
    code, output = installed.run("stir", "tables", env=env)
    assert code == 2, output
    assert "STIR_PROJECT_DIR" in output
    assert "Traceback" not in output


@dataclass(frozen=True)
class Servers:
    """Servers Stir did not start, over raw data of xs, and the two environments that use them:
    the operator's shell, which holds every secret, and the worker's host, which holds none
    (only the blocks' names, hosts, ports and the bucket), as on an EC2 host."""

    operator_env: dict[str, str]
    worker_env: dict[str, str]
    dsn: str
    slack: SlackRecorder


@pytest.fixture(scope="module")
async def servers(
    postgres: PostgresService, s3: S3Service, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Servers]:
    # A ClickHouse with a password, so that a worker without it can only get in through its block.
    clickhouse = start_clickhouse(
        tmp_path_factory.mktemp("wheel-clickhouse") / "data", password=CLICKHOUSE_PASSWORD
    )
    slack, slack_runner = await start_slack_recorder()
    try:
        dsn = await databases_of_their_own(clickhouse, postgres, DATABASE)
        worker_env = {
            "STIR_CLICKHOUSE_EMBEDDED": "false",
            "STIR_CLICKHOUSE_HTTP_PORT": str(clickhouse.http_port),
            "STIR_CLICKHOUSE_NATIVE_PORT": str(clickhouse.native_port),
            "STIR_CLICKHOUSE_DATABASE": DATABASE,
            "STIR_SLACK_BASE_URL": slack.url,
            **{key: value for key, value in s3.env.items() if key not in SECRET_SETTINGS},
            "STIR_S3_PREFIX": "wheel-test",
            **BLOCKS,
        }
        operator_env = {
            **{key: value for key, value in worker_env.items() if key not in BLOCKS},
            "STIR_S3_ACCESS_KEY_ID": s3.access_key_id,
            "STIR_S3_SECRET_ACCESS_KEY": s3.secret_access_key,
            "STIR_POSTGRES_DSN": dsn,
            "STIR_CLICKHOUSE_PASSWORD": CLICKHOUSE_PASSWORD,
            "STIR_SLACK_TOKEN": SLACK_TOKEN,
        }
        patch = isolated_stir_env(tmp_path_factory.mktemp("wheel-seed"), **operator_env)
        try:
            await Seeder(get_settings()).seed("xs", 13)
        finally:
            patch.undo()
        yield Servers(operator_env, worker_env, dsn, slack)
    finally:
        await slack_runner.cleanup()
        stop_process(clickhouse.process)


async def _served_rows(dsn: str, table: str) -> int:
    schema, _, name = table.partition(".")
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{name}"')
    finally:
        await conn.close()


async def test_stir_run_core_from_the_installed_package(
    installed: Installed, servers: Servers
) -> None:
    before = _files(installed.project)
    env = installed.env(**servers.operator_env)
    code, output = await asyncio.to_thread(installed.run, "stir", "run", "core", env=env)
    assert code == 0, output[-4000:]
    assert "ok   tier core: Completed" in output
    # Progress, not logs: a line for the tier (its dbt nodes and tables), the logs in a file.
    lines = output.splitlines()
    assert len(lines) <= 5, output[-4000:]
    assert " | INFO " not in output, output  # no log line on the terminal, Prefect's included
    progress = next(line for line in lines if line.startswith("core "))
    done, total = re.search(r"dbt (\d+)/(\d+)", progress).groups()
    assert done == total, progress
    assert int(total) > 4, progress
    assert "tables 4/4" in progress, progress
    log_file = Path(next(line for line in lines if line.startswith("logs: "))[6:])
    if not log_file.is_absolute():
        log_file = installed.workdir / log_file
    logged = log_file.read_text()
    assert "Finished in state Completed()" in logged
    assert "stg_instagram__" in logged
    assert await _served_rows(servers.dsn, CORE_TABLE) > 0
    # dbt wrote its target and logs elsewhere: the installed project stays as shipped.
    assert _files(installed.project) == before


async def run_stir(platform: PrefectPlatform, args: list[str], env: dict[str, str]) -> str:
    """`stir <args>` of the installed package against the platform's API; its output."""
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
async def test_a_worker_of_the_installed_package_runs_a_tier_with_secrets_only_in_blocks(
    installed: Installed, servers: Servers
) -> None:
    """Production as operated (docs/credentials.md): the operator writes the blocks with `stir
    blocks` from a shell holding the secrets; `stir deploy` and `prefect worker start` of the
    installed package run on a host holding none. The deployment carries no path of anyone's
    checkout, the run reads its credentials from the blocks and serves rows; a block that is gone
    fails the next run, and its alert, naming the block and the command that makes it."""
    async with PrefectPlatform(
        installed.workdir / "platform", project_dir=installed.workdir, bin_dir=installed.bin
    ) as platform:
        # (a) The operator writes the blocks; no secret is printed.
        output = await run_stir(
            platform, ["blocks"], installed.env(**servers.operator_env, **BLOCKS)
        )
        for name in BLOCKS.values():
            assert f"'{name}'" in output, output
        assert "aws-credentials block 'stir-test-s3'" in output
        for secret in (CLICKHOUSE_PASSWORD, SLACK_TOKEN, servers.dsn):
            assert secret not in output
        assert servers.operator_env["STIR_S3_SECRET_ACCESS_KEY"] not in output

        # (b) Deployments and a worker from a host without any secret: core runs and serves.
        env = installed.env(**servers.worker_env)
        assert not set(SECRET_SETTINGS) & set(env)
        await platform.deploy(env)
        deployment = await platform.client.read_deployment_by_name("tier/core")
        assert deployment.entrypoint == "stir.flows.tier:core"
        assert not deployment.pull_steps
        await platform.start_workers(1, env)
        ids = await platform.run_deployments(["core"])
        outcome = (await platform.wait_final(ids, timeout=400))[ids[0]]
        assert outcome.state_name == "Completed", f"{outcome.message}\n{platform.log_tails()}"
        logs = [log.message for log in await platform.read_logs(ids[0])]
        assert any("STIR_POSTGRES_DSN from the Prefect block 'stir-test-dsn'" in m for m in logs)
        assert not any(CLICKHOUSE_PASSWORD in m or servers.dsn in m for m in logs)
        patch = isolated_stir_env(installed.workdir, **servers.operator_env)
        try:
            async with ClickHouse(get_settings().clickhouse) as ch:
                computed = await ch.fetch_value(
                    f"SELECT count() FROM {DATABASE}.mart_profile_metrics"
                )
        finally:
            patch.undo()
        assert await _served_rows(servers.dsn, "public.profile_metrics") == computed > 0

        # (c) A block gone: the next run fails naming it, its type and the command; so does the
        # alert (monitoring: no retries, so the failure is final at once).
        dsn_block = await platform.client.read_block_document_by_name("stir-test-dsn", "secret")
        await platform.client.delete_block_document(dsn_block.id)
        ids = await platform.run_deployments(["monitoring"])
        failed = (await platform.wait_final(ids, timeout=120))[ids[0]]
        assert failed.state_type == StateType.FAILED, failed.message
        for part in ("'stir-test-dsn'", "'secret'", "STIR_POSTGRES_DSN_BLOCK", "`stir blocks`"):
            assert part in (failed.message or ""), failed.message
        alert = await wait_for_alert(servers.slack, "'stir-test-dsn'")
        assert "CredentialsError" in alert
        assert "`stir blocks`" in alert
        assert "`prefect block create secret`" in alert
        assert servers.slack.auth_headers[-1] == f"Bearer {SLACK_TOKEN}"  # the token of its block
