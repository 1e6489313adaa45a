"""An SSH server on loopback (asyncssh) that runs each received command in a local shell.

It stands in for the PostgreSQL host of the ssh transfer: the test PostgreSQL runs on this
machine, so a command run "on the PostgreSQL host" is a command run here. The real OpenSSH client
(`/usr/bin/ssh`) talks to it with strict host key checking, a known_hosts file and an identity
key of its own, all generated in a temporary directory: the same client path as production.

The server runs in a thread with its own event loop, so that sync fixtures (any scope) and the
benchmark can start and stop it, and a command it runs never competes with the caller's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _pump(source: asyncio.StreamReader | asyncssh.SSHReader, target: object) -> None:
    """Copy bytes until EOF, then close the target's writing side."""
    while chunk := await source.read(1 << 16):
        target.write(chunk)  # type: ignore[attr-defined]
        await target.drain()  # type: ignore[attr-defined]


async def _run_command(process: asyncssh.SSHServerProcess) -> None:
    """Run the client's command with `sh -c`, wiring stdin/stdout/stderr and the exit status.

    The output is pumped by hand rather than with `process.redirect`, so that every byte of it
    has reached the client before the exit status is sent.
    """
    command = process.command or "true"
    local = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert local.stdin is not None
    assert local.stdout is not None
    assert local.stderr is not None

    async def feed() -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await _pump(process.stdin, local.stdin)
            local.stdin.close()

    feeding = asyncio.create_task(feed())
    await asyncio.gather(_pump(local.stdout, process.stdout), _pump(local.stderr, process.stderr))
    status = await local.wait()
    feeding.cancel()
    process.exit(status)


@dataclass
class LoopbackSshServer:
    """`start()` it, point Stir's SSH settings at it (`settings_env`), `stop()` it."""

    root: Path
    user: str = "stir"
    port: int = 0
    host_key_path: Path = field(init=False)
    client_key_path: Path = field(init=False)
    known_hosts_path: Path = field(init=False)
    commands: list[str] = field(default_factory=list)  # every command received, in order
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _server: asyncssh.SSHAcceptor | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        self.host_key_path = self.root / "ssh_host_ed25519_key"
        self.client_key_path = self.root / "id_ed25519"
        self.known_hosts_path = self.root / "known_hosts"
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        host_key.write_private_key(str(self.host_key_path))
        client_key = asyncssh.generate_private_key("ssh-ed25519", comment="stir-test")
        client_key.write_private_key(str(self.client_key_path))
        os.chmod(self.client_key_path, 0o600)  # ssh ignores a private key others can read
        (self.root / "authorized_keys").write_bytes(client_key.export_public_key("openssh"))
        self.trust(host_key.export_public_key("openssh").decode())

    def trust(self, public_key_line: str) -> None:
        """Write known_hosts so that it lists `public_key_line` for this server's address."""
        key = " ".join(public_key_line.split()[:2])
        self.known_hosts_path.write_text(f"[127.0.0.1]:{self.port} {key}\n")

    def trust_another_key(self) -> None:
        """known_hosts now names a different key: what a man-in-the-middle would look like."""
        other = asyncssh.generate_private_key("ssh-ed25519")
        self.trust(other.export_public_key("openssh").decode())

    def settings_env(self) -> dict[str, str]:
        return {
            "STIR_SSH_HOST": "127.0.0.1",
            "STIR_SSH_PORT": str(self.port),
            "STIR_SSH_USER": self.user,
            "STIR_SSH_IDENTITY_FILE": str(self.client_key_path),
            "STIR_SSH_KNOWN_HOSTS_FILE": str(self.known_hosts_path),
        }

    async def _process(self, process: asyncssh.SSHServerProcess) -> None:
        self.commands.append(process.command or "")
        try:
            await _run_command(process)
        except Exception as exc:  # the client must see a failure, never a hang
            process.stderr.write(f"test ssh server: {exc}\n".encode())
            process.exit(255)

    async def _start(self) -> None:
        self._server = await asyncssh.create_server(
            asyncssh.SSHServer,
            "127.0.0.1",
            self.port,
            server_host_keys=[str(self.host_key_path)],
            authorized_client_keys=str(self.root / "authorized_keys"),
            process_factory=self._process,
            encoding=None,  # parts are bytes; no decoding on the way
            allow_scp=False,
        )

    def start(self) -> LoopbackSshServer:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="test-sshd", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise RuntimeError(f"the test SSH server did not start: {failure[0]}")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop = self._loop

        async def close() -> None:
            if self._server is not None:
                self._server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 5)
            loop.stop()

        asyncio.run_coroutine_threadsafe(close(), loop)
        self._thread.join(10)
        self._loop = self._thread = None
