"""The `stir` command line: help, exit codes, and `stir config` without leaking secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def stir(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `stir ARGS` as a user would: a new process, only the given STIR_* variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("STIR_")}
    return subprocess.run(
        [sys.executable, "-m", "stir.cli", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = stir(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("config", "stack"):
        assert command in result.stdout
    result = stir(tmp_path, "stack", "--help")
    assert result.returncode == 0
    for command in ("up", "down", "status", "logs"):
        assert command in result.stdout


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert stir(tmp_path, "no-such-command").returncode == 2
    assert stir(tmp_path, "stack", "logs", "no-such-service").returncode == 2


@pytest.mark.parametrize("command", [["config"], ["stack", "status"], ["stack", "up"]])
@pytest.mark.parametrize("value", ["abc", "70000"])
def test_invalid_setting_exits_2_naming_the_variable(
    tmp_path: Path, command: list[str], value: str
) -> None:
    result = stir(tmp_path, *command, STIR_CLICKHOUSE_HTTP_PORT=value)
    assert result.returncode == 2
    assert "STIR_CLICKHOUSE_HTTP_PORT" in result.stderr
    assert "1 to 65535" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_invalid_setting_in_dotenv_is_reported_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("STIR_POSTGRES_PORT=fivefourthreetwo\n")
    result = stir(tmp_path, "config")
    assert result.returncode == 2
    assert "STIR_POSTGRES_PORT='fivefourthreetwo'" in result.stderr


def test_config_shows_settings_and_masks_every_secret(tmp_path: Path) -> None:
    secrets = {
        "STIR_CLICKHOUSE_PASSWORD": "ch-pass-9431",
        "STIR_S3_ACCESS_KEY_ID": "AKIAEXAMPLE7764",
        "STIR_S3_SECRET_ACCESS_KEY": "s3-secret-5521",
        "STIR_SLACK_TOKEN": "xoxb-token-3310",
    }
    (tmp_path / ".env").write_text("STIR_POSTGRES_DSN=postgresql://app:pg-pass-8802@db:5432/srv\n")
    result = stir(tmp_path, "config", STIR_S3_BUCKET="my-bucket", **secrets)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    for secret in [*secrets.values(), "pg-pass-8802"]:
        assert secret not in output
    assert "**********" in output
    # Everything else is shown, with where it came from.
    assert "STIR_S3_BUCKET" in output
    assert "my-bucket" in output
    assert "app:**********@db:5432/srv" in output
    dsn_line = next(line for line in output.splitlines() if "STIR_POSTGRES_DSN" in line)
    assert ".env" in dsn_line


def test_version(tmp_path: Path) -> None:
    result = stir(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.startswith("stir ")


def test_run_without_a_prefect_api_that_starts_in_time_says_what_to_do(tmp_path: Path) -> None:
    """`stir run` with no Prefect API configured starts a temporary one; one that does not answer
    in time (a busy machine; here a zero-second allowance) is an error line naming the fixes, not a
    traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    result = subprocess.run(
        [sys.executable, "-m", "stir.cli", "run", "core"],
        cwd=tmp_path,
        env={
            **{k: v for k, v in env.items() if not k.upper().startswith("STIR_")},
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "0",
            "STIR_STATE_DIR": str(tmp_path / "state"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "error: no Prefect API: a temporary one did not answer within 0 s" in result.stderr
    assert "STIR_PREFECT_API_URL" in result.stderr
    assert "Traceback" not in output
