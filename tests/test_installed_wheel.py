"""An installed Stir is a whole Stir: the wheel, installed as the Dockerfile does, runs tiers.

The steps are the Dockerfile's, in order: a build environment from requirements/build.txt builds
the wheel from the same files (`pip wheel --no-deps --no-build-isolation`); a fresh virtual
environment gets requirements/worker.txt (hash-checked, without the embedded stack) and then the
wheel (`--no-deps`); every command runs from the image's working directory (its state dir), not
from the checkout, with the image's environment. The servers are the session's embedded ones,
which the installed Stir reaches as real servers (`STIR_*_EMBEDDED=false`, a DSN).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from conftest import (
    ClickHouseServer,
    PostgresService,
    S3Service,
    databases_of_their_own,
    isolated_stir_env,
)
from prefect_platform import PrefectPlatform

from stir.settings import get_settings
from stir.sources.seed import Seeder

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "wheel_test"  # in ClickHouse (dbt's database) and PostgreSQL (the served tables)
# What the Dockerfile copies into its build stage (.dockerignore keeps build output out).
BUILD_FILES = ("pyproject.toml", "README.md", "prefect.yaml", "stir", "transform")
IGNORED = shutil.ignore_patterns("__pycache__", "target", "logs", "dbt_packages", ".user.yml")
CORE_TABLE = "public.instagram_account_metrics"


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


@pytest.fixture(scope="module")
async def servers(
    clickhouse: ClickHouseServer,
    postgres: PostgresService,
    s3: S3Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """The settings of an operator whose servers Stir did not start, over raw data of xs."""
    dsn = await databases_of_their_own(clickhouse, postgres, DATABASE)
    settings = {
        "STIR_CLICKHOUSE_EMBEDDED": "false",
        "STIR_CLICKHOUSE_HTTP_PORT": str(clickhouse.http_port),
        "STIR_CLICKHOUSE_NATIVE_PORT": str(clickhouse.native_port),
        "STIR_CLICKHOUSE_DATABASE": DATABASE,
        "STIR_POSTGRES_DSN": dsn,
        **s3.env,
        "STIR_S3_PREFIX": "wheel-test",
    }
    patch = isolated_stir_env(tmp_path_factory.mktemp("wheel-seed"), **settings)
    try:
        await Seeder(get_settings()).seed("xs", 13)
    finally:
        patch.undo()
    return settings


async def _served_rows(settings: dict[str, str], table: str) -> int:
    schema, _, name = table.partition(".")
    conn = await asyncpg.connect(settings["STIR_POSTGRES_DSN"])
    try:
        return await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{name}"')
    finally:
        await conn.close()


async def test_stir_run_core_from_the_installed_package(
    installed: Installed, servers: dict[str, str]
) -> None:
    before = _files(installed.project)
    env = installed.env(**servers)
    code, output = await asyncio.to_thread(installed.run, "stir", "run", "core", env=env)
    assert code == 0, output[-4000:]
    assert "ok   tier core: Completed" in output
    # Progress, not logs: a line for the tier (its dbt nodes and tables), the logs in a file.
    lines = output.splitlines()
    assert len(lines) <= 5, output[-4000:]
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
    assert await _served_rows(servers, CORE_TABLE) > 0
    # dbt wrote its target and logs elsewhere: the installed project stays as shipped.
    assert _files(installed.project) == before


async def test_a_worker_of_the_installed_package_runs_a_deployment(
    installed: Installed, servers: dict[str, str]
) -> None:
    """`stir deploy` and `prefect worker start` from the installed package, as on an EC2 host:
    the deployment carries no path of anyone's checkout, and the run completes."""
    async with PrefectPlatform(
        installed.workdir / "platform", project_dir=installed.workdir, bin_dir=installed.bin
    ) as platform:
        env = installed.env(**servers)
        await platform.deploy(env)
        deployment = await platform.client.read_deployment_by_name("tier/collections")
        assert deployment.entrypoint == "stir.flows.tier:collections"
        assert not deployment.pull_steps
        await platform.start_workers(1, env)
        outcomes = await platform.wait_final(
            await platform.run_deployments(["collections"]), timeout=600
        )
        [outcome] = outcomes.values()
        assert outcome.state_name == "Completed", (outcome.message, platform.log_tails())
    assert await _served_rows(servers, "public.collection_analytics") > 0
