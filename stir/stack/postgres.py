"""Running the PostgreSQL 16 binaries that the `pgserver` wheel ships, also as root.

PostgreSQL refuses to run as root. When `stir` runs as root (containers, CI), the server runs as
a dedicated system user, `stir-postgres`, created on first use; the data directory belongs to
that user, and every directory above it must be searchable (`o+x`, not readable) by it.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stir.stack.process import StackError, cmdline_matches, is_alive

SYSTEM_USER = "stir-postgres"

# The socket path (plus "/.s.PGSQL.NNNNN") must fit in sockaddr_un.sun_path (108 bytes).
_MAX_SOCKET_DIR = 107 - len("/.s.PGSQL.65535")


def bin_dir() -> Path:
    """Where the pgserver wheel keeps PostgreSQL's binaries (found without importing it)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the `pgserver` package (PostgreSQL binaries) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def binary(name: str) -> str:
    return str(bin_dir() / name)


@dataclass(frozen=True)
class RunAs:
    """The OS identity the server runs as: None fields mean "as the current user"."""

    uid: int | None = None
    gid: int | None = None

    @property
    def switches(self) -> bool:
        return self.uid is not None

    def popen_kwargs(self) -> dict[str, object]:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def run_as() -> RunAs:
    """As root: the `stir-postgres` system user (created once); otherwise the current user."""
    if os.geteuid() != 0:
        return RunAs()
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        entry = _create_system_user()
    return RunAs(entry.pw_uid, entry.pw_gid)


def _create_system_user() -> pwd.struct_passwd:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [
            useradd, "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", SYSTEM_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    try:  # another `stir stack up` may have created it meanwhile: that is fine
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise StackError(
            f"PostgreSQL cannot run as root and creating the system user {SYSTEM_USER!r} failed"
            f" ({result.stderr.strip() or result.returncode}); create it with"
            f" `useradd --system {SYSTEM_USER}`, or run stir as a non-root user"
        ) from None


def make_traversable(path: Path) -> None:
    """Let any user search (not list) every directory above `path`, as the server needs.

    Only the execute bit for others is added, and only where it is missing (e.g. pytest's
    0700 temporary directories); nothing becomes readable.
    """
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def chown_tree(path: Path, who: RunAs) -> None:
    if who.uid is None or who.gid is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, who.uid, who.gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), who.uid, who.gid)


def socket_dir_or_none(path: Path) -> Path | None:
    """`path` if a Unix socket fits there; else None (the server then listens on TCP only)."""
    return path if len(str(path.resolve())) <= _MAX_SOCKET_DIR else None


HBA = """\
# Written by `stir stack up`: trust on loopback only; the server listens on 127.0.0.1 only.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
"""


def initdb(data_dir: Path, superuser: str, who: RunAs, log: Path) -> None:
    """Create the cluster once (UTF8, C locale, loopback trust). No-op when it exists."""
    if (data_dir / "PG_VERSION").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    chown_tree(data_dir, who)
    with log.open("ab") as out:
        out.write(b"\n===== stir: initdb =====\n")
        out.flush()
        result = subprocess.run(
            [
                binary("initdb"), "-D", str(data_dir), "-U", superuser,
                "--auth-local=trust", "--auth-host=trust", "--encoding=UTF8", "--no-locale",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=server_env(),
            cwd=data_dir,
            check=False,
            **who.popen_kwargs(),  # type: ignore[arg-type]
        )  # fmt: skip
    if result.returncode != 0:
        raise StackError(f"initdb failed (exit {result.returncode}); see {log}")
    hba = data_dir / "pg_hba.conf"
    hba.write_text(HBA)
    if who.uid is not None and who.gid is not None:
        os.chown(hba, who.uid, who.gid)


def server_env() -> dict[str, str]:
    """A minimal environment: none of Stir's secrets reach the server process."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    return env


def clear_stale_lock(data_dir: Path) -> None:
    """Remove a `postmaster.pid` whose server is gone; refuse if a server still runs there.

    PostgreSQL removes a stale lock itself, except when the PID in it now belongs to a process
    it may not signal (a root process, when the server runs as `stir-postgres`): then it
    refuses to start. A server that is still running on this data directory (started by hand,
    or whose stir PID file was deleted) must not get a second postmaster beside it.
    """
    lock = data_dir / "postmaster.pid"
    try:
        pid = int(lock.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return
    if is_alive(pid) and cmdline_matches(pid, ["postgres", str(data_dir)]):
        raise StackError(
            f"a PostgreSQL server (PID {pid}) not tracked by stir is running on {data_dir};"
            " stop it first (e.g. kill -INT " + str(pid) + ")"
        )
    lock.unlink(missing_ok=True)
