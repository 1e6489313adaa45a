"""The `ssh` transfer: each part is fetched on the PostgreSQL host, then COPYed from a file there.

For every part of the run's manifest, the real OpenSSH client (run as a subprocess) logs
in to the PostgreSQL host and runs a POSIX `sh` script that downloads the
part from S3 with `curl` and a short-lived presigned GET URL into
`<remote_dir>/<schema>/<table>/<run_id>/`, checks its size (and its MD5 against the manifest's
ETag when the object was uploaded in one piece), then asyncpg runs
`COPY <target> (cols) FROM '<file>'`: PostgreSQL reads the file itself, so the bytes never pass
through this process. The remote run directory is removed at the end, also when anything failed.

Secrets: the S3 keys never leave this process; the host gets one presigned URL per part, valid for
`STIR_SSH_URL_EXPIRES` seconds, which travels on the SSH channel's stdin into `curl --config -`,
so it is on no command line (neither here nor on the host) and in no log; every message that could
echo it is masked. Host keys are checked strictly (`StrictHostKeyChecking=yes`) by default.

Requirements on the PostgreSQL host: an SSH login with a key (BatchMode: no password prompts),
`sh`, `curl`, `md5sum`, `wc`, network access to the S3 endpoint; the server's OS user must be
able to read `<remote_dir>` (files are written 0644 in 0755 directories: restrict `remote_dir`
itself, e.g. 0750 with PostgreSQL's group); the PostgreSQL role needs superuser or
`pg_read_server_files` (checked before any work).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from stir.domain.declaration import ServedTable
from stir.serving.load import (
    LoadError,
    LoadResult,
    check_parts_exist,
    copied_rows,
    copy_spec,
    describe_pg_error,
    load_parts,
)
from stir.serving.manifest import Manifest, PartInfo
from stir.serving.naming import check_run_id, qualified, quote_ident, quote_literal
from stir.settings import S3Settings, SshSettings

log = logging.getLogger("stir.serving.ssh")

MASKED_URL = "<presigned URL, masked>"
_SIGNED_PARAM = re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s\"'<>]+", re.I)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
# Exit statuses of our remote script (curl's own statuses, 1-99, pass through unchanged).
EXIT_SIZE, EXIT_MD5, EXIT_NO_TOOL = 101, 102, 103
EXIT_SSH = 255  # what ssh itself exits with when the connection or login fails


class SshError(LoadError):
    """The ssh transfer failed; the message names the host, the table, the run and what to do.

    A subclass of `LoadError`: like any load failure it leaves the live table untouched, and the
    S3 run stays for a retry with the same run id.
    """


@dataclass(frozen=True)
class SshTarget:
    """Where and how to log in: the PostgreSQL host, as the ssh command line needs it."""

    host: str
    port: int
    user: str | None
    identity_file: Path | None
    known_hosts_file: Path | None
    strict_host_key_checking: bool
    connect_timeout: int
    binary: str
    remote_dir: str
    url_expires: int

    @classmethod
    def from_settings(cls, ssh: SshSettings, dsn: str) -> SshTarget:
        """From STIR_SSH_*; the host defaults to the PostgreSQL DSN's (the files must be there)."""
        host = ssh.host or urlsplit(dsn).hostname
        if not host or host.startswith("/"):
            raise SshError(
                "the ssh transfer needs the PostgreSQL host's name: set STIR_SSH_HOST (the DSN "
                "names no TCP host)"
            )
        return cls(
            host=host, port=ssh.port, user=ssh.user, identity_file=ssh.identity_file,
            known_hosts_file=ssh.known_hosts_file,
            strict_host_key_checking=ssh.strict_host_key_checking,
            connect_timeout=ssh.connect_timeout, binary=ssh.binary, remote_dir=ssh.remote_dir,
            url_expires=ssh.url_expires,
        )  # fmt: skip

    @property
    def where(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.port}"

    def argv(self, remote_command: str) -> list[str]:
        """The ssh command line running `remote_command` (which carries no secret)."""
        options = {
            "BatchMode": "yes",  # never prompt: a missing key fails, it does not hang
            # "accept-new" when checking is relaxed still refuses a *changed* key.
            "StrictHostKeyChecking": "yes" if self.strict_host_key_checking else "accept-new",
            "ConnectTimeout": str(self.connect_timeout),
            "ServerAliveInterval": "15",  # a dead connection fails within a minute
            "ServerAliveCountMax": "4",
            "LogLevel": "ERROR",  # ssh's warnings would mix with the script's messages
        }
        if self.known_hosts_file is not None:
            options["UserKnownHostsFile"] = str(self.known_hosts_file)
        if self.identity_file is not None:
            options["IdentitiesOnly"] = "yes"  # the configured key, not whatever an agent holds
        argv = [self.binary, "-T"]
        for name, value in options.items():
            argv += ["-o", f"{name}={value}"]
        if self.identity_file is not None:
            argv += ["-i", str(self.identity_file)]
        if self.user:
            argv += ["-l", self.user]
        return [*argv, "-p", str(self.port), "--", self.host, remote_command]


@dataclass(frozen=True)
class RemotePaths:
    """`<remote_dir>/<schema>/<table>/<run_id>/<part file>` on the PostgreSQL host: the same
    layout as the run's S3 checkpoint, so `a.x` and `b.x` never share (or remove) a directory."""

    table_dir: str
    run_dir: str

    @classmethod
    def of(cls, remote_dir: str, schema: str, table: str, run_id: str) -> RemotePaths:
        table_dir = f"{remote_dir.rstrip('/')}/{_path_component(schema)}/{_path_component(table)}"
        return cls(table_dir, f"{table_dir}/{check_run_id(run_id)}")

    def file(self, part: PartInfo) -> str:
        base = part.key.rsplit("/", 1)[-1]
        name = base if _SAFE_NAME.match(base) else _hashed(base)
        return f"{self.run_dir}/{name}"


def _path_component(name: str) -> str:
    """`name` as one directory name: anything that could climb out of remote_dir (`..`, `/`) or
    is merely odd gets a stable hashed name instead."""
    return name if _SAFE_NAME.match(name) and set(name) != {"."} else _hashed(name)


def _hashed(name: str) -> str:
    return "t_" + hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[:16]


def mask(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` without any presigned URL: the known ones replaced, any stray signature cut."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASKED_URL)
    return _SIGNED_PARAM.sub(r"\1***", text)


@dataclass(frozen=True)
class RemoteResult:
    status: int
    output: str  # stdout and stderr lines, masked


async def run_remote(
    target: SshTarget, script: str, *, stdin: bytes = b"", secrets: Sequence[str] = ()
) -> RemoteResult:
    """Run `script` with `sh` on the host through the ssh client.

    `stdin` goes to the script through a pipe (it carries the presigned URL, which must not be
    on a command line, where any local user could read it). Output (stdout and stderr) is
    captured, not streamed, and masked.
    """
    # The remote login shell may be anything: hand the script to `sh` explicitly.
    process = await asyncio.create_subprocess_exec(
        *target.argv("sh -c " + shlex.quote(script)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await process.communicate(stdin)
    except BaseException:  # cancelled: leave no ssh client behind
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    lines = output.decode(errors="replace").splitlines()
    text = mask("\n".join(line for line in lines if line.strip()), secrets)
    return RemoteResult(process.returncode if process.returncode is not None else -1, text)


def _fetch_script(paths: RemotePaths, file: str, part: PartInfo, connect_timeout: int) -> str:
    etag = part.etag if "-" not in part.etag and _MD5.match(part.etag) else ""
    q = shlex.quote
    return f"""set -u
umask 022
for tool in curl md5sum wc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "stir-fetch: $tool is not installed" >&2
    exit {EXIT_NO_TOOL}
  fi
done
file={q(file)}
tmp="$file.partial"
mkdir -p -- {q(paths.run_dir)} || exit {EXIT_NO_TOOL}
curl --fail --silent --show-error --connect-timeout {connect_timeout} --retry 2 \\
  --speed-limit 1024 --speed-time 60 --config - --output "$tmp"
status=$?
if [ "$status" -ne 0 ]; then rm -f -- "$tmp"; exit "$status"; fi
size=$(wc -c < "$tmp" | tr -d ' ')
if [ "$size" != {part.bytes} ]; then
  rm -f -- "$tmp"
  echo "stir-fetch: downloaded $size bytes, the manifest says {part.bytes}" >&2
  exit {EXIT_SIZE}
fi
if [ -n {q(etag)} ]; then
  sum=$(md5sum < "$tmp" | cut -d ' ' -f 1)
  if [ "$sum" != {q(etag)} ]; then
    rm -f -- "$tmp"
    echo "stir-fetch: MD5 $sum differs from the export's ETag {etag}" >&2
    exit {EXIT_MD5}
  fi
fi
mv -f -- "$tmp" "$file"
"""


def _curl_config(url: str) -> bytes:
    """curl's config syntax: a quoted value with `\\` and `"` escaped."""
    escaped = url.replace("\\", "\\\\").replace('"', '\\"')
    return f'url = "{escaped}"\n'.encode()


@dataclass(frozen=True)
class _Context:
    """What every message names: table, run, host; and the retry that follows a fix."""

    ref: str
    run_id: str
    where: str
    known_hosts: str

    def prefix(self) -> str:
        return f"ssh transfer of {self.ref} run {self.run_id} via {self.where}"

    def retry(self) -> str:
        return f"then retry the same run (run_id={self.run_id}; it reloads from S3)"


def explain(result: RemoteResult, ctx: _Context, doing: str, part: PartInfo | None = None) -> str:
    """A failure of a remote step as a message saying what went wrong and what to do."""
    out, status = result.output, result.status
    lower = out.lower()
    what = f"{ctx.prefix()}: {doing} failed"
    if part is not None:
        what += f" for part {part.key}"
    retry = True  # after fixing the host, the same run reloads; not when the run itself is bad
    if status == EXIT_SSH and (
        "host key verification failed" in lower or "identification has changed" in lower
    ):
        reason = (
            f"the host key of {ctx.where} is unknown or differs from the one in "
            f"{ctx.known_hosts} (strict host key checking). If the host was legitimately "
            "re-keyed, verify its new fingerprint out of band and update known_hosts "
            "(ssh-keygen -R, then ssh-keyscan); never turn checking off to get past this"
        )
    elif status == EXIT_SSH and "permission denied" in lower:
        reason = (
            f"the host refused the login. Check STIR_SSH_USER and STIR_SSH_IDENTITY_FILE, and "
            f"that the key's public half is in that user's authorized_keys on {ctx.where}"
        )
    elif status == EXIT_SSH and any(
        s in lower
        for s in (
            "connection refused", "timed out", "no route to host", "could not resolve",
            "network is unreachable", "connection closed", "connection reset",
        )
    ):  # fmt: skip
        reason = (
            f"{ctx.where} is unreachable. Check STIR_SSH_HOST and STIR_SSH_PORT, that sshd "
            "runs there and that the network lets this worker reach it"
        )
    elif status == EXIT_SSH:
        reason = "ssh could not connect or log in"
    elif status == 127 and not out.startswith("stir-fetch"):
        reason = "the ssh client (STIR_SSH_BINARY) or `sh` on the host was not found"
    elif status == EXIT_NO_TOOL:
        reason = (
            "a tool the fetch needs (sh, curl, md5sum, wc) is missing on the host, or the SSH "
            "user cannot write STIR_SSH_REMOTE_DIR there"
        )
    elif status in (EXIT_SIZE, EXIT_MD5):
        reason = (
            "the downloaded part does not match the manifest (the S3 object changed after "
            "the export); export the table again with a new run"
        )
        retry = False
    elif status == 22 and "404" in out:
        reason = "the part is missing in S3; export the table again with a new run"
        retry = False
    elif status == 22 and "403" in out:
        reason = (
            "S3 refused the presigned URL (expired, or the clocks of this worker and S3 "
            "disagree, or the keys lack s3:GetObject); check STIR_SSH_URL_EXPIRES and the keys"
        )
    elif status in (5, 6, 7, 28, 35, 56):
        reason = (
            "the host cannot download from the S3 endpoint (DNS, connection or timeout): it "
            "must reach STIR_S3_ENDPOINT_URL itself"
        )
    elif status == 23:
        reason = "the host could not write the part (disk full or remote_dir not writable)"
    else:
        reason = f"the remote command exited with status {status}"
    detail = f" [{out}]" if out else ""
    return f"{what}: {reason}{'; ' + ctx.retry() if retry else ''}.{detail}"


async def check_can_read_server_files(conn: asyncpg.Connection, ref: str, run_id: str) -> None:
    """Server-side COPY FROM a file needs superuser or pg_read_server_files: check it first."""
    row = await conn.fetchrow(
        "SELECT current_user AS role, r.rolsuper OR "
        "pg_has_role(current_user, 'pg_read_server_files', 'USAGE') AS allowed "
        "FROM pg_roles r WHERE r.rolname = current_user"
    )
    if row is None or not row["allowed"]:
        role = row["role"] if row is not None else await conn.fetchval("SELECT current_user")
        raise SshError(
            f"ssh transfer of {ref} run {run_id}: PostgreSQL role {role!r} may not read server "
            "files, which server-side COPY FROM a file needs (superuser or "
            f"pg_read_server_files). As a superuser run: GRANT pg_read_server_files TO "
            f"{quote_ident(role)}; or use transfer: stream for this table"
        )


async def presign(client: Any, s3: S3Settings, key: str, expires: int) -> str:
    """A GET URL for one object, valid `expires` seconds, signed with the project's S3 keys."""
    return await client.generate_presigned_url(
        "get_object", Params={"Bucket": s3.bucket, "Key": key}, ExpiresIn=expires
    )


async def load_run_over_ssh(
    dsn: str,
    client: Any,
    s3: S3Settings,
    ssh: SshSettings,
    decl: ServedTable,
    manifest: Manifest,
    *,
    parallel: int = 2,
) -> LoadResult:
    """The `ssh` transfer of a run into its incoming table; the remote files are always removed."""
    target = SshTarget.from_settings(ssh, dsn)
    run_id = manifest.run_id
    ctx = _Context(
        decl.ref, run_id, target.where,
        str(target.known_hosts_file or "ssh's known_hosts files"),
    )  # fmt: skip
    conn = await asyncpg.connect(dsn)
    try:  # before anything is downloaded or created: the role must be able to read the files
        await check_can_read_server_files(conn, decl.ref, run_id)
    finally:
        await conn.close()
    await check_parts_exist(client, s3, decl, manifest)

    paths = RemotePaths.of(target.remote_dir, decl.schema, decl.table, run_id)
    q = shlex.quote
    # Leftovers of earlier runs of this table go first (one sync of a table at a time, as for
    # the incoming tables); this first login also fails fast on host key, auth or network.
    prepared = await run_remote(
        target,
        f"umask 022\nrm -rf -- {q(paths.table_dir)} && mkdir -p -- {q(paths.run_dir)} || "
        f"{{ echo stir-fetch: cannot create {q(paths.run_dir)} >&2; exit {EXIT_NO_TOOL}; }}",
    )
    if prepared.status != 0:
        raise SshError(explain(prepared, ctx, f"preparing {paths.run_dir}"))

    spec = copy_spec(manifest)
    columns = ", ".join(quote_ident(c) for c in spec.columns)

    async def copy_part(conn: asyncpg.Connection, part: PartInfo, schema: str, table: str) -> int:
        file = paths.file(part)
        started = time.monotonic()
        url = await presign(client, s3, part.key, target.url_expires)
        fetched = await run_remote(
            target, _fetch_script(paths, file, part, target.connect_timeout),
            stdin=_curl_config(url), secrets=[url, urlsplit(url).query],
        )  # fmt: skip
        if fetched.status != 0:
            raise SshError(explain(fetched, ctx, "downloading", part))
        fetched_at = time.monotonic()
        try:
            status = await conn.execute(
                f"COPY {qualified(schema, table)} ({columns}) FROM {quote_literal(file)} "
                f"WITH ({spec.options_sql()})"
            )
        except asyncpg.PostgresError as exc:
            if "could not open file" not in str(exc) and not isinstance(
                exc, asyncpg.InsufficientPrivilegeError
            ):
                raise  # a bad value: reported by load_parts exactly as on the stream path
            raise SshError(
                f"{ctx.prefix()}: part {part.key}: {describe_pg_error(exc)}; the PostgreSQL "
                f"server process cannot read {file}: every directory of {target.remote_dir} "
                "must be searchable (x) by the server's OS user, and the server must run on "
                f"the SSH host (STIR_SSH_HOST); {ctx.retry()}"
            ) from None
        # Free the host's disk as we go (only `parallel` parts are there at a time); the run
        # directory is removed at the end anyway, so a failure here only leaves it to that.
        copied_at = time.monotonic()
        removed = await run_remote(target, f"rm -f -- {q(file)}")
        if removed.status != 0:
            log.warning("%s: could not remove %s: %s", ctx.prefix(), file, removed.output)
        log.info(
            "%s: part %s: %s bytes fetched on the host in %.2f s, COPY from the file %.2f s",
            ctx.prefix(), part.key, f"{part.bytes:,}", fetched_at - started,
            copied_at - fetched_at,
        )  # fmt: skip
        return copied_rows(status)

    try:
        return await load_parts(
            dsn, decl, manifest, copy_part, parallel=parallel, transfer=f"ssh {target.where}"
        )
    finally:
        # The schema's directory stays: another table of the schema may be creating its own
        # run directory in it right now.
        cleaned = await run_remote(
            target,
            f"rm -rf -- {q(paths.run_dir)}; rmdir -- {q(paths.table_dir)} 2>/dev/null; exit 0",
        )
        if cleaned.status != 0:  # never hide the load's own outcome behind a cleanup failure
            log.warning(
                "%s: could not remove %s (the next run of the table removes it): %s",
                ctx.prefix(), paths.run_dir, cleaned.output,
            )  # fmt: skip
