"""Background processes of the local stack: spawn detached, find again by PID file, stop.

A service process outlives the `stir` command that started it (`start_new_session=True`), so
everything that a later command needs is on disk: `<dir>/<name>.pid` and `<dir>/<name>.log`.
A PID file alone cannot be trusted (the process may be gone and its PID reused), so a PID only
counts as "our service" when the process is alive and its command line carries the service's
markers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil


class StackError(Exception):
    """An operation of the stack failed; the message is for the user (exit code 1)."""

    exit_code = 1


class StackConfigError(StackError):
    """The settings cannot work together, e.g. two services on one port (exit code 2)."""

    exit_code = 2


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding `host:port` fails, i.e. something else listens (or is bound) there.

    SO_REUSEADDR mirrors what servers do, so connections lingering in TIME_WAIT after a server
    stopped do not count as "in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to `host:port` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _reap(pid: int) -> None:
    """Collect a zombie child of this process (when the same process started and stopped it)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie counts as gone."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return False
        return True
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def cmdline_matches(pid: int, markers: Sequence[str]) -> bool:
    """Whether the live process `pid` has every marker somewhere in its command line."""
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # cannot tell; the PID file is ours, so trust it rather than orphan a server
    return all(marker in cmdline for marker in markers)


def cwd_within(pid: int, directory: Path) -> bool:
    """Whether the process works inside `directory`: services are started with their cwd there.

    Together with the command line, this tells our server from an unrelated process that got
    a recycled PID, even when the command line says little (moto's does not name a data dir).
    """
    try:
        cwd = Path(psutil.Process(pid).cwd())
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return cwd == directory or directory in cwd.parents


@dataclass
class ProcessFiles:
    """Where one service keeps its PID file, log and data: `<state_dir>/<name>/`."""

    name: str
    dir: Path

    @property
    def pid_file(self) -> Path:
        return self.dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def running_pid(self, markers: Sequence[str]) -> int | None:
        """The PID of our running process, or None; removes a stale PID file on the way."""
        pid = self.read_pid()
        if pid is None:
            if self.pid_file.exists():  # unreadable content: stale by definition
                self.pid_file.unlink(missing_ok=True)
            return None
        if is_alive(pid) and cmdline_matches(pid, markers) and cwd_within(pid, self.dir):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None


def spawn(
    files: ProcessFiles,
    command: Sequence[str],
    env: dict[str, str],
    *,
    cwd: Path | None = None,
    user: int | None = None,
    group: int | None = None,
) -> tuple[int, int]:
    """Start `command` detached from this process, logging to the service's log file.

    Returns the PID and the log offset where this run's output starts (for error messages).
    The process gets its own session, so Ctrl-C in the terminal and the end of the `stir`
    command do not reach it.
    """
    files.dir.mkdir(parents=True, exist_ok=True)
    with files.log_file.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n===== stir: starting {files.name} at {stamp} =====\n".encode())
        log.flush()
        offset = log.tell()
        extra: dict[str, object] = {}
        if user is not None:
            extra = {"user": user, "group": group, "extra_groups": []}
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd or files.dir,
            start_new_session=True,
            close_fds=True,
            **extra,  # type: ignore[arg-type]
        )
    files.pid_file.write_text(f"{process.pid}\n")
    # Forget the Popen object without a ResourceWarning: the PID file is the handle from now on.
    process.returncode = 0
    return process.pid, offset


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for `pid` to exit; True when it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.1)
    return not is_alive(pid)


def terminate(pid: int, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
    """Stop a process we started: `sig` to its process group, wait, then SIGKILL.

    Signalling the group (the service is its session leader) also stops any helper processes
    it forked, so nothing is left behind.
    """

    def send(signum: int) -> None:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except ProcessLookupError:
            pass

    if not is_alive(pid):
        return
    send(sig)
    if wait_gone(pid, timeout):
        return
    send(signal.SIGKILL)
    wait_gone(pid, 5)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    pid: int | None,
    what: str,
    log: Path,
    log_offset: int = 0,
    last_error: Callable[[], str | None] = lambda: None,
) -> None:
    """Poll `check` until it is true; fail early if the process dies, or after `timeout`.

    The error carries the tail of this run's log, which is where the reason usually is.
    """
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if pid is not None and not is_alive(pid):
            raise StackError(
                f"{what} exited during start-up; last lines of {log}:\n"
                + tail_text(log, 20, log_offset)
            )
        if time.monotonic() >= deadline:
            detail = last_error()
            raise StackError(
                f"{what} was not healthy after {timeout:.0f}s"
                + (f" (last check: {detail})" if detail else "")
                + f"; last lines of {log}:\n"
                + tail_text(log, 20, log_offset)
            )
        time.sleep(0.2)


def tail_lines(path: Path, n: int, offset: int = 0) -> list[str]:
    """The last `n` lines of a file from byte `offset` on (reads at most the last 1 MiB)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(offset, size - 1024 * 1024)
            handle.seek(start)
            data = handle.read()
    except FileNotFoundError:
        return []
    lines = data.decode(errors="replace").splitlines()
    return lines[-n:] if n > 0 else []


def tail_text(path: Path, n: int, offset: int = 0) -> str:
    lines = tail_lines(path, n, offset)
    return "\n".join(f"    {line}" for line in lines) if lines else "    (empty)"


def dir_size(path: Path) -> int:
    """Bytes used by the files under `path` (0 when it does not exist)."""
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue  # a file vanished while we walked (e.g. a merge in ClickHouse)
    return total


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Serialise `up` and `down` on one state directory (two terminals, or a script and you)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
