"""Settings: read from the environment and `.env`, validated with messages a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from stir.settings import MASK, SettingsError, describe, get_settings, mask_url


@pytest.fixture
def clean_env(stir_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No STIR_* variable set, and the current directory is an empty temporary one."""
    return stir_env


def test_defaults_describe_the_embedded_local_stack(clean_env: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert settings.clickhouse.http_url == "http://127.0.0.1:8123"
    assert settings.clickhouse.native_port == 9000
    assert settings.clickhouse.embedded is True
    assert settings.s3.endpoint_url == "http://127.0.0.1:4566"
    assert settings.s3.bucket == "stir-staging"
    assert settings.postgres.embedded is True
    assert settings.postgres.effective_dsn() == "postgresql://stir@127.0.0.1:5432/stir"
    assert settings.slack.token is None
    assert settings.prefect.work_pool == "stir"
    assert settings.state_dir == Path(".stir")


def test_environment_variables_override_defaults(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("STIR_CLICKHOUSE_HTTP_PORT", "18123")
    clean_env.setenv("STIR_CLICKHOUSE_PASSWORD", "pw")
    clean_env.setenv("STIR_CLICKHOUSE_EMBEDDED", "false")
    clean_env.setenv("STIR_CLICKHOUSE_HOST", "ch.internal")
    clean_env.setenv("STIR_S3_EMBEDDED", "0")
    clean_env.setenv("STIR_POSTGRES_PORT", "15432")
    clean_env.setenv("STIR_SLACK_TOKEN", "xoxb-1")
    clean_env.setenv("STIR_STATE_DIR", "/var/lib/stir")
    settings = get_settings()
    assert settings.clickhouse.http_url == "http://ch.internal:18123"
    assert settings.clickhouse.password.get_secret_value() == "pw"
    assert settings.clickhouse.embedded is False
    assert settings.s3.embedded is False
    assert settings.postgres.effective_dsn() == "postgresql://stir@127.0.0.1:15432/stir"
    assert settings.slack.token is not None
    assert settings.slack.token.get_secret_value() == "xoxb-1"
    assert settings.state_dir == Path("/var/lib/stir")


def test_a_dsn_replaces_the_embedded_postgres(clean_env: pytest.MonkeyPatch) -> None:
    dsn = "postgresql://app:pw@db.internal:5432/serving"
    clean_env.setenv("STIR_POSTGRES_DSN", dsn)
    settings = get_settings()
    assert settings.postgres.embedded is False
    assert settings.postgres.effective_dsn() == dsn


def test_empty_optional_values_mean_unset(clean_env: pytest.MonkeyPatch) -> None:
    # `STIR_POSTGRES_DSN=` in a .env template must not become a DSN of "".
    clean_env.setenv("STIR_POSTGRES_DSN", "")
    clean_env.setenv("STIR_SLACK_TOKEN", "")
    settings = get_settings()
    assert settings.postgres.embedded is True
    assert settings.slack.token is None


def test_dotenv_file_is_read_and_environment_wins(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "STIR_S3_BUCKET=from-dotenv\n"
        "STIR_POSTGRES_PORT=25432\n"
        "STIR_CLICKHOUSE_DATABASE=analytics\n"
        "UNRELATED_TOOL_SETTING=1\n"
    )
    clean_env.setenv("STIR_POSTGRES_PORT", "35432")
    settings = get_settings()
    assert settings.s3.bucket == "from-dotenv"
    assert settings.clickhouse.database == "analytics"
    assert settings.postgres.port == 35432
    sources = {row.env: row.source for row in describe(settings)}
    assert sources["STIR_S3_BUCKET"] == ".env"
    assert sources["STIR_POSTGRES_PORT"] == "env"
    assert sources["STIR_S3_REGION"] == "default"


@pytest.mark.parametrize("value", ["abc", "70000", "0"])
def test_an_invalid_port_names_the_variable_and_the_accepted_values(
    clean_env: pytest.MonkeyPatch, value: str
) -> None:
    clean_env.setenv("STIR_CLICKHOUSE_HTTP_PORT", value)
    with pytest.raises(SettingsError) as excinfo:
        get_settings()
    message = str(excinfo.value)
    assert f"STIR_CLICKHOUSE_HTTP_PORT='{value}'" in message
    assert "from 1 to 65535" in message


def test_every_invalid_value_is_reported_at_once(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("STIR_S3_ENDPOINT_URL=ftp://files\n")
    clean_env.setenv("STIR_CLICKHOUSE_EMBEDDED", "maybe")
    clean_env.setenv("STIR_POSTGRES_PORT", "-1")
    with pytest.raises(SettingsError) as excinfo:
        get_settings()
    message = str(excinfo.value)
    assert "STIR_CLICKHOUSE_EMBEDDED='maybe'" in message
    assert "true or false" in message
    assert "STIR_POSTGRES_PORT='-1'" in message
    assert "STIR_S3_ENDPOINT_URL='ftp://files'" in message


def test_an_invalid_dsn_is_rejected_without_echoing_it(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("STIR_POSTGRES_DSN", "mysql://app:s3cr3t-pw@db/serving")
    with pytest.raises(SettingsError) as excinfo:
        get_settings()
    message = str(excinfo.value)
    assert "STIR_POSTGRES_DSN" in message
    assert "postgresql://" in message
    assert "s3cr3t-pw" not in message


def test_embedded_servers_must_be_on_loopback(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("STIR_CLICKHOUSE_HOST", "ch.internal")
    with pytest.raises(SettingsError, match="STIR_CLICKHOUSE_EMBEDDED=false"):
        get_settings()


def test_describe_masks_every_secret(clean_env: pytest.MonkeyPatch) -> None:
    secrets = {
        "STIR_CLICKHOUSE_PASSWORD": "ch-secret-1",
        "STIR_S3_ACCESS_KEY_ID": "AKIA-secret-2",
        "STIR_S3_SECRET_ACCESS_KEY": "aws-secret-3",
        "STIR_SLACK_TOKEN": "xoxb-secret-4",
        "STIR_POSTGRES_DSN": "postgresql://app:pg-secret-5@db.internal:5432/serving",
    }
    for key, value in secrets.items():
        clean_env.setenv(key, value)
    rows = {row.env: row.value for row in describe(get_settings())}
    shown = "\n".join(rows.values())
    for value in secrets.values():
        assert value.split("@")[0].split(":")[-1] not in shown
    assert rows["STIR_CLICKHOUSE_PASSWORD"] == MASK
    # The DSN stays useful for debugging: only its password is hidden.
    assert rows["STIR_POSTGRES_DSN"] == f"postgresql://app:{MASK}@db.internal:5432/serving"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw@h:5432/db", f"postgresql://u:{MASK}@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db?user=u&password=pw", f"postgresql://h/db?user=u&password={MASK}"),
        ("http://key:secret@127.0.0.1:4566", f"http://key:{MASK}@127.0.0.1:4566"),
    ],
)
def test_mask_url_hides_passwords_only(url: str, masked: str) -> None:
    assert mask_url(url) == masked
