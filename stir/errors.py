"""Errors that name what is wrong in the terms of the person on call: which service, where.

A refused connection surfaces from the drivers as `ConnectionRefusedError: [Errno 111] Connect
call failed ('127.0.0.1', 5432)`, or `OSError: Multiple exceptions: ...`: neither says which
service it was, and the alert built from it sent people looking in the wrong place. Connecting
through `connect_postgres` (or inside `reaching_postgres`) turns it into a `ServiceUnavailable`
that names the service, its address (never its password) and what to check.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

POSTGRES_HINT = "is it running? `stir stack status`; check STIR_POSTGRES_DSN / STIR_POSTGRES_PORT"


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ServiceUnavailable(ConnectionError):
    """`service` at `address` could not be reached (refused, timed out, unknown host, closed).

    A `ConnectionError`, so code that treats connection failures as transient still does. The
    message starts `cannot reach <service> at <address>`; `cause_class` is the driver's own
    exception class, kept for the log (the class of this error is what alerts fold on)."""

    def __init__(
        self,
        service: str,
        address: str,
        reason: str = "could not be reached",
        *,
        cause_class: str = "",
        hint: str = "is it running? `stir stack status`",
    ) -> None:
        self.service, self.address, self.reason = service, address, reason
        self.cause_class, self.hint = cause_class, hint
        cause = f" ({cause_class})" if cause_class else ""
        super().__init__(f"cannot reach {service} at {address}: it {reason}{cause}: {hint}")

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect may persist a failed run's exception: rebuild it with its fields, whatever a
        # subclass's constructor takes (BaseException's default would call cls(*args)).
        return _rebuild, (type(self), self.args, dict(self.__dict__))


def connection_failure_reason(exc: BaseException) -> str:
    """What happened, in words, for a driver's connection error."""
    text = str(exc).lower()
    if isinstance(exc, ConnectionRefusedError) or "refused" in text or "errno 111" in text:
        return "refused the connection"
    if isinstance(exc, socket.gaierror) or "name or service not known" in text:
        return "has a host name that does not resolve"
    if isinstance(exc, TimeoutError) or "timed out" in text or "timeout" in text:
        return "did not answer in time"
    if isinstance(exc, (EOFError, ConnectionResetError, BrokenPipeError)):
        return "closed the connection"
    if getattr(exc, "errno", None) in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "is on a network this host cannot reach"
    return f"could not be reached ({exc})" if str(exc) else "could not be reached"


def postgres_address(dsn: str) -> str:
    """`host:port` of a PostgreSQL DSN, without user or password (libpq's defaults filled in)."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "(the configured DSN)"
    return f"{host}:{port}"


def _cannot_connect_now() -> tuple[type[BaseException], ...]:
    """asyncpg's 'the database system is starting up / shutting down' (a server that exists
    but does not accept connections is as unavailable as one that is not running)."""
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return ()
    return (asyncpg.CannotConnectNowError,)


@contextlib.contextmanager
def reaching_postgres(dsn: str) -> Iterator[None]:
    """Turn a failure to connect to the PostgreSQL of `dsn` into `ServiceUnavailable`.

    Wrap only the connecting call (`asyncpg.connect`, `create_pool`): a statement's own
    errors are not the service being down, and must keep their class."""
    try:
        yield
    except ServiceUnavailable:
        raise
    except (OSError, TimeoutError, *_cannot_connect_now()) as exc:
        reason = connection_failure_reason(exc)
        if not isinstance(exc, OSError):  # CannotConnectNowError: say what the server said
            reason = f"is not accepting connections ({exc})"
        raise ServiceUnavailable(
            "PostgreSQL",
            postgres_address(dsn),
            reason,
            cause_class=type(exc).__name__,
            hint=POSTGRES_HINT,
        ) from exc


async def connect_postgres(dsn: str, **kwargs: Any) -> Any:
    """`asyncpg.connect(dsn, **kwargs)`; a failure to connect is a `ServiceUnavailable`."""
    import asyncpg

    with reaching_postgres(dsn):
        return await asyncpg.connect(dsn, **kwargs)
