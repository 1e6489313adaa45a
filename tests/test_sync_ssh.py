"""The ssh transfer against real servers and the real OpenSSH client.

An asyncssh server on 127.0.0.1 (its own host key, an authorized client key generated here) runs
every received command in a local shell: this machine plays the PostgreSQL host, since the test
PostgreSQL runs here. `/usr/bin/ssh` logs in with `StrictHostKeyChecking=yes`, a known_hosts file
of the test's own and the generated key, as in production.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import ClickHouseServer, PostgresService, S3Service, s3_boto, settings_for_servers
from pydantic import SecretStr
from ssh_server import LoopbackSshServer

from stir.clickhouse import ClickHouse
from stir.domain.declaration import DeclarationError, ServedTable
from stir.serving.load import LoadError
from stir.serving.manifest import MANIFEST_NAME
from stir.serving.naming import incoming_prefix, s3_run_prefix
from stir.serving.ssh import MASKED_URL, SshError, mask
from stir.serving.steps import export_to_s3, load_incoming_ssh
from stir.serving.sync import sync_table
from stir.settings import (
    PostgresSettings,
    Settings,
    SettingsError,
    SshSettings,
    SyncSettings,
    describe,
    get_settings,
)

SSH_BINARY = "/usr/bin/ssh"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshServer]:
    server = LoopbackSshServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def remote_root() -> Iterator[Path]:
    """Where the "PostgreSQL host" keeps fetched parts; the server's OS user (stir-postgres,
    when the tests run as root) must be able to reach it, as on a real host.

    Not under pytest's temporary root: every pytest session that starts on this machine makes
    /tmp/pytest-of-<user> 0700 again, which would lock the server out mid-session.
    """
    base = Path(tempfile.mkdtemp(prefix="stir-ssh-remote-"))
    base.chmod(0o711)  # searchable, not listable, by the server's user
    yield base / "parts"
    shutil.rmtree(base, ignore_errors=True)


def ssh_settings(sshd: LoopbackSshServer, remote_root: Path, **changes: Any) -> SshSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
        "identity_file": sshd.client_key_path, "known_hosts_file": sshd.known_hosts_path,
        "remote_dir": str(remote_root), "binary": SSH_BINARY, "connect_timeout": 5,
    }  # fmt: skip
    values.update(changes)
    return SshSettings(**values)


@pytest.fixture
def settings(
    clickhouse: ClickHouseServer,
    s3: S3Service,
    postgres: PostgresService,
    sshd: LoopbackSshServer,
    remote_root: Path,
) -> Settings:
    base = settings_for_servers(clickhouse, s3, postgres, f"ssh-{uuid.uuid4().hex[:8]}")
    return base.model_copy(update={"ssh": ssh_settings(sshd, remote_root)})


TYPED_DDL = """CREATE TABLE {name} (
    id UInt64, name String, score Nullable(Float64), amount Decimal(18, 4), day Date,
    ts DateTime64(3, 'UTC'), ok Bool, uid UUID, tags Array(String), attrs Map(String, UInt32),
    small Int16, nan Float64
) ENGINE = MergeTree ORDER BY id"""
TYPED_FILL = """INSERT INTO {name} SELECT
    number, concat('n\\t"q",\\\\ ', toString(number), '\\n', 'é'), if(number % 3 = 0, NULL,
    number / 7), toDecimal64(number / 100, 4), toDate('2020-01-01') + number % 1000,
    toDateTime64('2024-01-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * 13),
    number % 2 = 0, generateUUIDv4(number), ['a', toString(number % 5), if(number % 4 = 0,
    'x,"y"', '')], map('k', toUInt32(number % 9)), toInt16(number % 1000) - 500,
    if(number % 11 = 0, nan, number * 0.5)
FROM numbers({rows})"""


async def make_typed_mart(ch: ClickHouse, name: str, rows: int) -> None:
    await ch.execute(f"DROP TABLE IF EXISTS {name}")
    await ch.execute(TYPED_DDL.format(name=name))
    await ch.execute(TYPED_FILL.format(name=name, rows=rows))


async def table_rows(pg: asyncpg.Connection, table: str) -> list[str]:
    """Every row as PostgreSQL prints it (NaN equals NaN there, unlike in Python)."""
    return [r[0] for r in await pg.fetch(f'SELECT t::text FROM "{table}" t ORDER BY id')]


async def column_types(pg: asyncpg.Connection, table: str) -> list[tuple[str, str, bool]]:
    rows = await pg.fetch(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
        "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        table,
    )
    return [tuple(r) for r in rows]


async def names_in(pg: asyncpg.Connection, prefix: str) -> list[str]:
    rows = await pg.fetch(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND left(relname, length($1)) = $1 ORDER BY relname",
        prefix,
    )
    return [r["relname"] for r in rows]


def remote_files(remote_root: Path, table: str, schema: str = "public") -> list[str]:
    """What the ssh transfer left on the "PostgreSQL host" for `schema.table` (nothing, when
    clean): its directory is `<remote_dir>/<schema>/<table>/`."""
    table_dir = remote_root / schema / table
    if not table_dir.exists():
        return []
    return sorted(str(p.relative_to(remote_root)) for p in table_dir.rglob("*"))


def no_signature_anywhere(sshd: LoopbackSshServer, caplog: pytest.LogCaptureFixture) -> None:
    """The presigned URLs never appear on a command line (the host's) nor in a log record."""
    assert sshd.commands
    assert not [c for c in sshd.commands if "X-Amz-" in c or "Signature" in c]
    assert "X-Amz-Signature" not in caplog.text


# --- the happy path ---------------------------------------------------------------------------


async def test_ssh_sync_loads_exactly_what_the_stream_sync_loads(
    settings: Settings,
    ch: ClickHouse,
    pg: asyncpg.Connection,
    sshd: LoopbackSshServer,
    remote_root: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="stir")
    caplog.set_level(logging.DEBUG, logger="prefect")
    await make_typed_mart(ch, "mart_ssh_typed", 6000)
    meta = {"table": "PLACEHOLDER", "keys": ["id"], "parts": 3, "indexes": ["day"]}
    stream = ServedTable.from_meta(
        "mart_ssh_typed", {"serve": {**meta, "table": "ssh_cmp_stream", "transfer": "stream"}}
    )
    over_ssh = ServedTable.from_meta(
        "mart_ssh_typed", {"serve": {**meta, "table": "ssh_cmp_ssh", "transfer": "ssh"}}
    )
    assert over_ssh.transfer == "ssh"
    streamed = await sync_table(stream, settings=settings)
    sshd.commands.clear()
    fetched = await sync_table(over_ssh, settings=settings)

    assert streamed.transfer == "stream"
    assert fetched.transfer == "ssh"
    assert fetched.rows == streamed.rows == 6000
    load = next(p for p in fetched.phases if p.phase == "load")
    assert load.detail == "ssh"
    assert load.rows == 6000
    assert [p.phase for p in fetched.phases] == [
        "export", "check", "load", "gates", "finalize", "swap",
    ]  # fmt: skip
    assert await column_types(pg, "ssh_cmp_ssh") == await column_types(pg, "ssh_cmp_stream")
    assert await table_rows(pg, "ssh_cmp_ssh") == await table_rows(pg, "ssh_cmp_stream")
    first = await pg.fetchrow("SELECT * FROM ssh_cmp_ssh WHERE id = 1")
    assert first["name"] == 'n\t"q",\\ 1\né'
    assert first["tags"] == ["a", "1", ""]
    assert json.loads(first["attrs"]) == {"k": 1}
    assert str(first["amount"]) == "0.0100"
    # One login to prepare, one fetch and one removal per part, one cleanup.
    assert len(sshd.commands) == 1 + 3 * 2 + 1
    assert sum("curl" in c for c in sshd.commands) == 3
    no_signature_anywhere(sshd, caplog)
    assert remote_files(remote_root, "ssh_cmp_ssh") == []


async def test_a_json_table_over_ssh_by_the_global_default(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection, remote_root: Path
) -> None:
    await make_typed_mart(ch, "mart_ssh_json", 3000)
    decl = ServedTable(model="mart_ssh_json", table="ssh_json", keys=("id",), format="json",
                       parts=2)  # fmt: skip
    assert decl.transfer is None  # the table does not say: STIR_SYNC_TRANSFER decides
    by_default = settings.model_copy(update={"sync": SyncSettings(transfer="ssh")})
    summary = await sync_table(decl, settings=by_default)
    assert summary.transfer == "ssh"
    assert summary.rows == 3000

    reference = ServedTable(model="mart_ssh_json", table="ssh_json_ref", keys=("id",),
                            format="json", transfer="stream")  # fmt: skip
    await sync_table(reference, settings=by_default)
    assert await table_rows(pg, "ssh_json") == await table_rows(pg, "ssh_json_ref")
    assert await pg.fetchval("SELECT count(*) FROM ssh_json WHERE nan = 'NaN'") == 273
    assert remote_files(remote_root, "ssh_json") == []


# --- failures ---------------------------------------------------------------------------------


async def test_a_failed_ssh_load_retries_from_s3_without_clickhouse(
    settings: Settings,
    ch: ClickHouse,
    pg: asyncpg.Connection,
    remote_root: Path,
    caplog: pytest.LogCaptureFixture,
    sshd: LoopbackSshServer,
) -> None:
    caplog.set_level(logging.DEBUG, logger="stir")
    caplog.set_level(logging.DEBUG, logger="prefect")
    decl = ServedTable(model="mart_ssh_retry", table="ssh_retry", keys=("id",), parts=2,
                       transfer="ssh")  # fmt: skip
    await make_typed_mart(ch, "mart_ssh_retry", 1000)
    await sync_table(decl, settings=settings)
    await make_typed_mart(ch, "mart_ssh_retry", 1500)
    run_id = "20260101000000_sshretry"
    exported = await export_to_s3(decl, run_id, settings)
    part = exported.manifest.parts[0]
    client = s3_boto(settings)
    original = client.get_object(Bucket=settings.s3.bucket, Key=part.key)["Body"].read()
    tampered = original.replace(b"a", b"b")  # same size, other bytes: only the MD5 can tell
    assert tampered != original
    client.put_object(Bucket=settings.s3.bucket, Key=part.key, Body=tampered)

    with pytest.raises(SshError) as failure:
        await sync_table(decl, settings=settings, run_id=run_id)
    message = str(failure.value)
    assert "ssh transfer of public.ssh_retry run 20260101000000_sshretry" in message
    assert f"127.0.0.1:{sshd.port}" in message
    assert "downloading failed for part" in message
    assert "differs from the export's ETag" in message
    assert "export the table again with a new run" in message
    assert "retry the same run" not in message  # the run itself is bad: retrying cannot help
    assert await pg.fetchval("SELECT count(*) FROM ssh_retry") == 1000  # live untouched
    assert await names_in(pg, incoming_prefix("ssh_retry")) == []
    assert remote_files(remote_root, "ssh_retry") == []  # cleaned after the failure too
    no_signature_anywhere(sshd, caplog)

    # The part is repaired in S3; ClickHouse cannot answer any more: the retry reads S3 only.
    client.put_object(Bucket=settings.s3.bucket, Key=part.key, Body=original)
    await ch.execute("DROP TABLE mart_ssh_retry")
    summary = await sync_table(decl, settings=settings, run_id=run_id)
    assert summary.reused_export
    assert summary.transfer == "ssh"
    assert summary.rows == 1500
    assert await pg.fetchval("SELECT count(*) FROM ssh_retry") == 1500
    assert remote_files(remote_root, "ssh_retry") == []


async def test_a_bad_value_fails_the_ssh_load_like_the_stream_load(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection, remote_root: Path
) -> None:
    decl = ServedTable(model="mart_ssh_bad", table="ssh_bad", keys=("id",), transfer="ssh")
    await make_typed_mart(ch, "mart_ssh_bad", 300)
    run_id = "20260101000000_sshbad"
    exported = await export_to_s3(decl, run_id, settings)
    # A corrupt export that still looks complete: the part and its size/MD5 in the manifest.
    client, bucket = s3_boto(settings), settings.s3.bucket
    part = exported.manifest.parts[0]
    lines = client.get_object(Bucket=bucket, Key=part.key)["Body"].read().split(b"\n")
    fields = lines[3].split(b"\t")
    fields[10] = b"70000"  # `small` is smallint in PostgreSQL
    lines[3] = b"\t".join(fields)
    data = b"\n".join(lines)
    client.put_object(Bucket=bucket, Key=part.key, Body=data)
    manifest_key = s3_run_prefix(settings.s3.prefix, "public", "ssh_bad", run_id) + MANIFEST_NAME
    manifest = json.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    manifest["parts"][0].update(
        bytes=len(data),
        etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )
    client.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())

    with pytest.raises(LoadError, match=r'part .*part-00000.tsv: .*"70000" is out of range'):
        await sync_table(decl, settings=settings, run_id=run_id)
    assert await names_in(pg, "ssh_bad") == []
    assert remote_files(remote_root, "ssh_bad") == []


async def test_a_changed_host_key_is_refused_and_the_live_table_stays(
    settings: Settings,
    ch: ClickHouse,
    pg: asyncpg.Connection,
    sshd: LoopbackSshServer,
    remote_root: Path,
) -> None:
    decl = ServedTable(model="mart_ssh_key", table="ssh_key", keys=("id",), transfer="ssh")
    await make_typed_mart(ch, "mart_ssh_key", 500)
    await sync_table(decl, settings=settings)
    await make_typed_mart(ch, "mart_ssh_key", 700)

    trusted = sshd.known_hosts_path.read_text()
    sshd.trust_another_key()  # known_hosts now expects another key: a man in the middle
    commands_before = len(sshd.commands)
    try:
        with pytest.raises(SshError) as failure:
            await sync_table(decl, settings=settings)
    finally:
        sshd.known_hosts_path.write_text(trusted)
    message = str(failure.value)
    assert re.search(r"ssh transfer of public\.ssh_key run [0-9]{20}_[0-9a-f]{4} via", message)
    assert f"stir@127.0.0.1:{sshd.port}" in message
    assert "host key" in message
    assert str(sshd.known_hosts_path) in message
    assert "run_id=" in message
    assert len(sshd.commands) == commands_before  # nothing ran on the host
    assert await pg.fetchval("SELECT count(*) FROM ssh_key") == 500
    assert await names_in(pg, incoming_prefix("ssh_key")) == []
    assert remote_files(remote_root, "ssh_key") == []


async def test_refused_login_unreachable_host_and_missing_part_are_named(
    settings: Settings,
    ch: ClickHouse,
    pg: asyncpg.Connection,
    sshd: LoopbackSshServer,
    remote_root: Path,
    tmp_path: Path,
) -> None:
    decl = ServedTable(model="mart_ssh_err", table="ssh_err", keys=("id",), transfer="ssh",
                       parts=2)  # fmt: skip
    await make_typed_mart(ch, "mart_ssh_err", 200)
    run_id = "20260101000000_ssherr"
    exported = await export_to_s3(decl, run_id, settings)

    stranger = LoopbackSshServer(tmp_path / "stranger")  # a key the host does not know
    wrong_key = settings.model_copy(
        update={"ssh": ssh_settings(sshd, remote_root, identity_file=stranger.client_key_path)}
    )
    refused = rf"run {run_id} via stir@127.0.0.1:{sshd.port}: .*refused the login\. Check "
    with pytest.raises(SshError, match=refused + "STIR_SSH_USER and STIR_SSH_IDENTITY_FILE"):
        await sync_table(decl, settings=wrong_key, run_id=run_id)

    closed = settings.model_copy(update={"ssh": ssh_settings(sshd, remote_root, port=1)})
    with pytest.raises(SshError, match=r"127.0.0.1:1 is unreachable\. Check STIR_SSH_HOST"):
        await sync_table(decl, settings=closed, run_id=run_id)
    assert await names_in(pg, "ssh_err") == []  # no live table was created

    s3_boto(settings).delete_object(Bucket=settings.s3.bucket, Key=exported.manifest.parts[1].key)
    with pytest.raises(LoadError, match=rf"part-00001.tsv of run {run_id} is missing; export"):
        await load_incoming_ssh(decl, exported.manifest, settings)
    assert remote_files(remote_root, "ssh_err") == []


async def test_a_role_without_pg_read_server_files_is_told_the_grant(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection, postgres: PostgresService
) -> None:
    await pg.execute("DROP ROLE IF EXISTS ssh_loader")
    await pg.execute("CREATE ROLE ssh_loader LOGIN")
    dsn = postgres.dsn.replace("://stir@", "://ssh_loader@")
    assert dsn != postgres.dsn
    limited = settings.model_copy(update={"postgres": PostgresSettings(dsn=SecretStr(dsn))})
    decl = ServedTable(model="mart_ssh_role", table="ssh_role", keys=("id",), transfer="ssh")
    await make_typed_mart(ch, "mart_ssh_role", 10)
    exported = await export_to_s3(decl, "20260101000000_sshrole", settings)
    with pytest.raises(SshError, match=r"role 'ssh_loader' may not read server files.*"
                       r'GRANT pg_read_server_files TO "ssh_loader"'):  # fmt: skip
        await load_incoming_ssh(decl, exported.manifest, limited)

    await pg.execute("GRANT pg_read_server_files TO ssh_loader")
    await pg.execute("GRANT CREATE ON SCHEMA public TO ssh_loader")
    loaded = await load_incoming_ssh(decl, exported.manifest, limited)
    assert loaded.rows == 10
    await pg.execute(f'DROP TABLE "{loaded.incoming}"')


def test_mask_hides_presigned_urls_and_stray_signatures() -> None:
    url = (
        "http://127.0.0.1:9/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F1"
        "&X-Amz-Signature=abc123"
    )
    assert mask(f"curl: failed {url} here", [url]) == f"curl: failed {MASKED_URL} here"
    assert "abc123" not in mask("...&X-Amz-Signature=abc123&x=1")
    assert "AKIA" not in mask("X-Amz-Credential=AKIA%2F1")


# --- declaration and settings -----------------------------------------------------------------


def test_transfer_is_validated_in_the_declaration_and_the_settings(
    stir_env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(DeclarationError, match=r"mart_x: transfer must be stream or ssh .*'scp'"):
        ServedTable.from_meta("mart_x", {"serve": {"table": "x", "transfer": "scp"}})
    assert ServedTable.from_meta("mart_x", {"serve": {"table": "x"}}).transfer is None

    stir_env.setenv("STIR_SYNC_TRANSFER", "rsync")
    stir_env.setenv("STIR_SSH_REMOTE_DIR", "relative/dir")
    with pytest.raises(SettingsError) as invalid:
        get_settings()
    assert "STIR_SYNC_TRANSFER='rsync' is invalid; expected stream or ssh" in str(invalid.value)
    assert "STIR_SSH_REMOTE_DIR='relative/dir' is invalid" in str(invalid.value)

    stir_env.setenv("STIR_SYNC_TRANSFER", "ssh")
    stir_env.setenv("STIR_SSH_REMOTE_DIR", "/srv/stir/parts/")
    stir_env.setenv("STIR_SSH_PORT", "2222")
    settings = get_settings()
    assert settings.sync.transfer == "ssh"
    assert settings.ssh.remote_dir == "/srv/stir/parts"
    assert settings.ssh.strict_host_key_checking is True  # on unless turned off
    shown = {row.env: row.value for row in describe(settings)}
    assert shown["STIR_SYNC_TRANSFER"] == "ssh"
    assert shown["STIR_SSH_PORT"] == "2222"
    assert shown["STIR_SSH_HOST"] == "(not set)"
    assert {"STIR_SSH_IDENTITY_FILE", "STIR_SSH_KNOWN_HOSTS_FILE", "STIR_SSH_URL_EXPIRES"} <= set(
        shown
    )
