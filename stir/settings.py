"""Every address, port and secret Stir uses, as one typed object read from the environment.

Each section is its own `BaseSettings` with a flat environment prefix (`STIR_CLICKHOUSE_HTTP_PORT`,
`STIR_S3_BUCKET`, ...) so that a variable name is easy to guess from the table printed by
`stir config`. Every section also reads a `.env` file in the current directory; real
environment variables win over `.env`. Secrets are `SecretStr`, so they print as `**********`
in reprs, logs and tracebacks.

`get_settings()` validates every section and gathers all problems into one `SettingsError` whose
message names the environment variable and the values it accepts, never echoing a secret. The
CLI turns that error into exit code 2.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dotenv import dotenv_values
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_FILE = ".env"
MASK = "**********"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


@dataclass(frozen=True)
class Accepts:
    """Annotation metadata: how to describe a field's accepted values in an error message."""

    text: str


Port = Annotated[int, Field(ge=1, le=65535), Accepts("an integer port number from 1 to 65535")]
Flag = Annotated[bool, Accepts("true or false (also 1/0, yes/no, on/off)")]
Name = Annotated[str, Field(min_length=1), Accepts("a non-empty string")]


class SettingsError(Exception):
    """Invalid configuration: the message is meant for the user, and is free of secrets."""


def _blank_to_none(value: Any) -> Any:
    """An empty environment variable means "not set" for optional settings."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError("the URL has an invalid port") from exc
    return value


HttpUrl = Annotated[
    str,
    AfterValidator(_check_http_url),
    Accepts("an http:// or https:// URL, e.g. http://127.0.0.1:4566"),
]
OptionalHttpUrl = Annotated[
    str | None,
    BeforeValidator(_blank_to_none),
    AfterValidator(lambda v: None if v is None else _check_http_url(v)),
    Accepts("an http:// or https:// URL, or empty for none"),
]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_to_none)]


# The name of a Prefect block holding a secret (stir/tasks/credentials.py reads it at the start
# of every flow run); Prefect accepts these characters only.
def _check_block_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[a-z0-9-]+", value):
        raise ValueError("not a Prefect block name")
    return value


BlockName = Annotated[
    str | None,
    BeforeValidator(_blank_to_none),
    AfterValidator(_check_block_name),
    Accepts("a Prefect block name (lowercase letters, digits and dashes), or empty for none"),
]


# A cluster of the server's <remote_servers>: an XML element name. Checked, not quoted away:
# dbt-clickhouse writes it into DDL as "name" and into Distributed('name', ...) unescaped.
def _check_cluster_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value):
        raise ValueError("not a cluster name")
    return value


ClusterName = Annotated[
    str | None,
    BeforeValidator(_blank_to_none),
    AfterValidator(_check_cluster_name),
    Accepts(
        "a cluster of the server's remote_servers (letters, digits, '_', '.', '-'),"
        " or empty for none"
    ),
]

# The embedded S3 server (moto) takes any keys, but boto3 signs nothing without some.
EMBEDDED_S3_KEYS = ("stir-local", "stir-local-secret")


class _Section(BaseSettings):
    """Common configuration of every section: flat prefix, `.env` file, unknown keys ignored.

    `extra="ignore"` matters because one `.env` file holds the variables of every section (and
    of other tools); each section picks out its own prefix.
    """

    model_config = SettingsConfigDict(env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore")

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


class ClickHouseSettings(_Section):
    """The ClickHouse warehouse: our embedded chDB server by default, or a real one."""

    model_config = SettingsConfigDict(env_prefix="STIR_CLICKHOUSE_")

    host: Name = "127.0.0.1"
    native_port: Port = 9000
    http_port: Port = 8123
    user: Name = "default"
    password: SecretStr = SecretStr("")
    password_block: BlockName = Field(
        default=None, description="Prefect Secret block holding the password (wins over the env)"
    )
    database: Name = "default"
    secure: Flag = Field(default=False, description="TLS to the server")
    embedded: Flag = Field(
        default=True,
        description="true: `stir stack` runs the embedded chDB server; false: a real server",
    )
    cluster: ClusterName = Field(
        default=None,
        description="the cluster dbt and `stir seed` create every table ON CLUSTER in, with"
        " Replicated engines; unset: one server",
    )

    @model_validator(mode="after")
    def _embedded_is_local(self) -> ClickHouseSettings:
        if self.embedded and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"STIR_CLICKHOUSE_HOST={self.host!r} needs STIR_CLICKHOUSE_EMBEDDED=false: "
                "the embedded server listens on 127.0.0.1 only"
            )
        if self.embedded and self.secure:
            raise ValueError(
                "STIR_CLICKHOUSE_SECURE=true needs a real server (STIR_CLICKHOUSE_EMBEDDED=false):"
                " the embedded server does not speak TLS"
            )
        if self.embedded and self.cluster:
            raise ValueError(
                "STIR_CLICKHOUSE_CLUSTER needs a real ClickHouse cluster"
                " (STIR_CLICKHOUSE_EMBEDDED=false): the embedded server refuses ON CLUSTER DDL"
            )
        return self

    @property
    def http_url(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.host}:{self.http_port}"


class S3Settings(_Section):
    """The S3 bucket of the syncs' checkpoints (`<prefix>/<schema>/<table>/<run_id>/`) and the
    sources' drops (`<prefix>/drops/`): moto's server on loopback by default, or real S3."""

    model_config = SettingsConfigDict(env_prefix="STIR_S3_")

    endpoint_url: HttpUrl = "http://127.0.0.1:4566"
    bucket: Annotated[
        str,
        Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
        Accepts("an S3 bucket name: 3-63 characters of a-z, 0-9, '.' and '-'"),
    ] = "stir-staging"
    prefix: str = "stir"
    region: Name = "us-east-1"
    # Unset (no key here nor in a block): boto3's default credential chain (an EC2 instance
    # role), and ClickHouse's own server-side credentials for its s3() calls.
    access_key_id: OptionalSecret = None
    secret_access_key: OptionalSecret = None
    credentials_block: BlockName = Field(
        default=None,
        description="prefect-aws AwsCredentials block holding the keys (wins over the env)",
    )
    embedded: Flag = Field(default=True, description="true: `stir stack` runs moto's S3 server")
    named_collection: Annotated[str | None, BeforeValidator(_blank_to_none)] = Field(
        default=None,
        description="ClickHouse named collection holding the S3 keys on the server (production):"
        " dbt's s3() reads then carry no keys",
    )

    @model_validator(mode="after")
    def _embedded_is_local(self) -> S3Settings:
        if self.embedded:
            parts = urlsplit(self.endpoint_url)
            if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
                raise ValueError(
                    f"STIR_S3_ENDPOINT_URL={self.endpoint_url!r} needs STIR_S3_EMBEDDED=false: "
                    "the embedded S3 server listens on http://127.0.0.1 only"
                )
        return self

    @model_validator(mode="after")
    def _keys_come_in_pairs(self) -> S3Settings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError(
                "STIR_S3_ACCESS_KEY_ID and STIR_S3_SECRET_ACCESS_KEY are set together or not at"
                " all (unset: the default AWS credential chain, e.g. an EC2 instance role)"
            )
        if self.embedded and self.access_key_id is None and self.credentials_block is None:
            key_id, secret = EMBEDDED_S3_KEYS
            self.access_key_id, self.secret_access_key = SecretStr(key_id), SecretStr(secret)
        return self

    @property
    def port(self) -> int:
        """The port of the endpoint: where the embedded server listens."""
        parts = urlsplit(self.endpoint_url)
        return parts.port or (443 if parts.scheme == "https" else 80)


class PostgresSettings(_Section):
    """The serving PostgreSQL: the embedded PostgreSQL 16 unless a DSN is given."""

    model_config = SettingsConfigDict(env_prefix="STIR_POSTGRES_")

    dsn: Annotated[
        OptionalSecret,
        Accepts(
            "a URL such as postgresql://user:password@host:5432/db, or empty for the embedded one"
        ),
    ] = None
    dsn_block: BlockName = Field(
        default=None, description="Prefect Secret block holding the DSN (wins over the env)"
    )
    port: Port = 5432
    user: Name = "stir"
    database: Name = "stir"

    @field_validator("dsn")
    @classmethod
    def _dsn_is_url(cls, value: SecretStr | None) -> SecretStr | None:
        # The error must not quote the value: a DSN usually carries a password.
        if value is not None:
            scheme = urlsplit(value.get_secret_value()).scheme
            if scheme not in ("postgres", "postgresql"):
                raise ValueError("must start with postgresql:// or postgres://")
        return value

    @property
    def embedded(self) -> bool:
        return self.dsn is None

    def effective_dsn(self) -> str:
        """The DSN clients should use: the configured one, or the embedded server's.

        The embedded server trusts connections from loopback, so its DSN has no password.
        """
        if self.dsn is not None:
            return self.dsn.get_secret_value()
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"


class SlackSettings(_Section):
    """Alerts: sent to Slack when a token is set."""

    model_config = SettingsConfigDict(env_prefix="STIR_SLACK_")

    token: OptionalSecret = None
    token_block: BlockName = Field(
        default=None, description="Prefect Secret block holding the token (wins over the env)"
    )
    channel: Name = "#stir-alerts"
    base_url: OptionalHttpUrl = Field(
        default=None, description="Slack API base URL; tests point it at a local recorder"
    )


class AlertSettings(_Section):
    """What the monitoring tier alerts on (besides each served table's freshness SLA)."""

    model_config = SettingsConfigDict(env_prefix="STIR_ALERT_")

    scrape_failure_rate: Annotated[
        float, Field(gt=0, le=1), Accepts("a fraction in (0, 1], e.g. 0.25")
    ] = Field(default=0.25, description="a source failing more of its last hour's scrapes alerts")
    scrape_min_requests: Annotated[int, Field(ge=1), Accepts("a positive integer")] = Field(
        default=20, description="fewer scrapes in the last hour than this never alert"
    )


class PrefectSettings(_Section):
    """Where flows are deployed and run."""

    model_config = SettingsConfigDict(env_prefix="STIR_PREFECT_")

    api_url: OptionalHttpUrl = Field(
        default=None,
        description="unset: the stack's Prefect server when it runs, else Prefect's own setting",
    )
    work_pool: Name = "stir"
    server_port: Port = Field(
        default=4200, description="port of the stack's Prefect server (stack up --with-prefect)"
    )


class StackSettings(_Section):
    """Where Stir's files are: the embedded stack's state, the dbt project, its docs site."""

    model_config = SettingsConfigDict(env_prefix="STIR_")

    state_dir: Annotated[Path, Accepts("a directory path")] = Field(
        default=Path(".stir"),
        description="PIDs, logs and data of the embedded stack; dbt's partial-parse cache",
    )
    project_dir: Annotated[
        Path | None, BeforeValidator(_blank_to_none), Accepts("a directory path")
    ] = Field(
        default=None,
        description="a folder holding transform/ (the dbt project); unset: the copy inside the"
        " installed package, else the source checkout",
    )
    docs_url: HttpUrl = Field(
        default="http://127.0.0.1:8580",  # `stir docs` on this machine (stir/stack/lineage.py)
        description="where the team hosts the dbt docs site (`stir docs --generate-only`); the"
        " tier artifacts link each served table to its model's page there",
    )


def _check_absolute_dir(value: str) -> str:
    # A relative path would be relative to the SSH login's home for the download and to the
    # PostgreSQL data directory for COPY: two different places.
    if not value.startswith("/") or value.rstrip("/") == "" or "\x00" in value:
        raise ValueError("not an absolute directory path other than /")
    return value.rstrip("/")


class SyncSettings(_Section):
    """The sync of served tables (docs/sync.md): defaults a table's `meta.serve` can override."""

    model_config = SettingsConfigDict(env_prefix="STIR_SYNC_")

    transfer: Annotated[Literal["stream", "ssh"], Accepts("stream or ssh")] = Field(
        default="stream",
        description="how parts reach PostgreSQL when a table does not say: stream (COPY FROM"
        " STDIN through asyncpg) or ssh (fetched on the PostgreSQL host, COPY FROM a file)",
    )
    allow_retype_columns: bool = Field(
        default=False,
        description="let every served table's columns change type at its next sync, as an upgrade"
        " that retypes columns needs once (a table's gates.allow_retype_columns: that table only)",
    )


class DbtSettings(_Section):
    """dbt's builds: every tier's, the shared layer's, `stir ci`'s (the profile Stir writes)."""

    model_config = SettingsConfigDict(env_prefix="STIR_DBT_")

    threads: Annotated[int, Field(ge=1, le=64), Accepts("an integer from 1 to 64")] = Field(
        default=2,
        description="models dbt builds at once in one tier run; about one per ClickHouse core"
        " the run may use (docs/deploy.md: how many workers and threads)",
    )
    query_timeout: Annotated[
        int, Field(ge=1, le=86_400), Accepts("a number of seconds from 1 to 86400")
    ] = Field(
        default=300,
        description="seconds dbt waits for one ClickHouse statement before it fails the model"
        " (dbt-clickhouse's send_receive_timeout); a full refresh at scale l needs more",
    )


class SshSettings(_Section):
    """The `ssh` transfer: the OpenSSH client logs in to the PostgreSQL host to fetch parts.

    No secret lives here: the login uses a key file (BatchMode, never a password prompt), and
    the host downloads each part with a short-lived presigned URL sent over the SSH channel.
    """

    model_config = SettingsConfigDict(env_prefix="STIR_SSH_")

    host: Annotated[str | None, BeforeValidator(_blank_to_none)] = Field(
        default=None, description="unset: the host of the PostgreSQL DSN"
    )
    port: Port = 22
    user: Annotated[str | None, BeforeValidator(_blank_to_none)] = Field(
        default=None, description="unset: ssh's own default (the current user, or ssh_config)"
    )
    identity_file: Annotated[Path | None, BeforeValidator(_blank_to_none)] = Field(
        default=None, description="private key for the login (ssh -i); unset: ssh's defaults"
    )
    known_hosts_file: Annotated[Path | None, BeforeValidator(_blank_to_none)] = Field(
        default=None, description="known_hosts to check the host key against; unset: ssh's"
    )
    strict_host_key_checking: Flag = Field(
        default=True, description="refuse unknown or changed host keys (keep it on)"
    )
    remote_dir: Annotated[
        str, AfterValidator(_check_absolute_dir), Accepts("an absolute directory path")
    ] = Field(
        default="/var/lib/stir/parts",  # not a shared /tmp: others could plant files
        description=(
            "where parts land on the PostgreSQL host: <remote_dir>/<schema>/<table>/<run_id>/"
        ),
    )
    connect_timeout: Annotated[int, Field(ge=1, le=600), Accepts("seconds, 1 to 600")] = 10
    url_expires: Annotated[int, Field(ge=30, le=3600), Accepts("seconds, 30 to 3600")] = Field(
        default=300, description="lifetime of the presigned S3 URL of one part"
    )
    binary: Name = Field(default="ssh", description="the OpenSSH client to run")


class Settings(BaseModel):
    """All of Stir's settings. Build it with `get_settings()`."""

    clickhouse: ClickHouseSettings
    s3: S3Settings
    postgres: PostgresSettings
    slack: SlackSettings
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    prefect: PrefectSettings
    stack: StackSettings
    # Defaults so that code building Settings by hand (tests, scripts) keeps working.
    sync: SyncSettings = Field(default_factory=SyncSettings)
    ssh: SshSettings = Field(default_factory=SshSettings)
    dbt: DbtSettings = Field(default_factory=DbtSettings)

    @property
    def state_dir(self) -> Path:
        return self.stack.state_dir


SECTIONS: dict[str, type[_Section]] = {
    "clickhouse": ClickHouseSettings,
    "s3": S3Settings,
    "postgres": PostgresSettings,
    "slack": SlackSettings,
    "alerts": AlertSettings,
    "prefect": PrefectSettings,
    "stack": StackSettings,
    "sync": SyncSettings,
    "ssh": SshSettings,
    "dbt": DbtSettings,
}


def get_settings() -> Settings:
    """Read and validate every section; raise `SettingsError` listing every invalid variable.

    Not cached: it reads the environment and `.env` afresh, which is cheap and lets tests and
    long-running processes see changes.
    """
    sections: dict[str, _Section] = {}
    problems: list[str] = []
    for name, cls in SECTIONS.items():
        try:
            sections[name] = cls()
        except ValidationError as exc:
            problems.extend(_describe_errors(cls, exc))
    if problems:
        raise SettingsError("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))
    return Settings(**sections)


def _accepts(cls: type[_Section], field: str) -> str | None:
    info = cls.model_fields.get(field)
    if info is None:
        return None
    for item in info.metadata:
        if isinstance(item, Accepts):
            return item.text
    return None


def _is_secret(cls: type[_Section], field: str) -> bool:
    info = cls.model_fields.get(field)
    return info is not None and "SecretStr" in repr(info.annotation)


def _describe_errors(cls: type[_Section], exc: ValidationError) -> list[str]:
    """One line per error: `ENV_VAR='value' is invalid (reason); expected <accepted values>`."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = error.get("loc") or ()
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if not loc:  # a cross-field check: its message already names the variables
            lines.append(reason)
            continue
        field = str(loc[0])
        env = cls.env_name(field)
        shown = "" if _is_secret(cls, field) else f"={error.get('input')!r}"
        accepted = _accepts(cls, field)
        if accepted and error.get("type") != "value_error":
            # pydantic's own reason ("Input should be a valid integer...") adds nothing here.
            lines.append(f"{env}{shown} is invalid; expected {accepted}")
        elif accepted:
            lines.append(f"{env}{shown} is invalid: {reason}; expected {accepted}")
        else:
            lines.append(f"{env}{shown} is invalid: {reason}")
    return lines


# --- showing settings without their secrets -------------------------------------------------


def mask_url(url: str) -> str:
    """Mask the password of a URL (`scheme://user:pw@host`) and any `password=` query value."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if re.search("pass|secret|token", k, re.I) else v) for k, v in pairs],
            safe="*",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class SettingRow:
    """One line of `stir config`: the variable, its value as safe to print, where it came from."""

    env: str
    value: str
    source: str


def _source(env: str, dotenv: dict[str, str | None]) -> str:
    # pydantic-settings matches names case-insensitively by default; mirror it.
    if any(key.upper() == env for key in os.environ):
        return "env"
    if any(key.upper() == env for key in dotenv):
        return ENV_FILE
    return "default"


def _display(value: Any, field: str) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if not secret:
            return "(empty)"
        return mask_url(secret) if field == "dsn" else MASK
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return str(value)


def describe(settings: Settings) -> list[SettingRow]:
    """The effective settings as rows safe to print: every secret masked."""
    dotenv = dotenv_values(ENV_FILE) if Path(ENV_FILE).is_file() else {}
    rows = []
    for name, cls in SECTIONS.items():
        section = getattr(settings, name)
        for field in cls.model_fields:
            env = cls.env_name(field)
            rows.append(
                SettingRow(env, _display(getattr(section, field), field), _source(env, dotenv))
            )
    return rows


def non_secret_environment(settings: Settings) -> dict[str, str]:
    """The settings that differ from their defaults, as STIR_* environment variables, secrets
    left out: what a container of a docker work pool is given. Its secrets come from Prefect
    blocks (their names are settings like any other) or from the pool's own environment."""
    environment = {}
    for name, cls in SECTIONS.items():
        section = getattr(settings, name)
        defaults = cls.model_construct()
        for field in cls.model_fields:
            value = getattr(section, field)
            if _is_secret(cls, field) or value is None or value == getattr(defaults, field):
                continue
            environment[cls.env_name(field)] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    return environment
