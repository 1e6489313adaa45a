"""The SQL files of the sources package: where they live and how they split into statements.

The DDL and the generators are plain `.sql` files so that they read (and lint) as SQL. A file
holds several statements; each ends with `;` at the end of a line, which is how `statements()`
splits them (no statement in these files has a `;` inside a line-final string literal). Values
are ClickHouse query parameters (`{seed:UInt64}`), bound by the server, never formatted in.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).parent
CLICKHOUSE_DDL = ROOT / "ddl" / "clickhouse"
POSTGRES_DDL = ROOT / "ddl" / "postgres"
GENERATE = ROOT / "generate"

_END_RE = re.compile(r";[ \t]*$", re.M)


def split(text: str) -> list[str]:
    """The statements of a SQL script, without the trailing `;` and without empty pieces.

    A piece made only of comments (a file's header) is dropped.
    """
    pieces = _END_RE.split(text)
    statements = []
    for piece in pieces:
        code = "\n".join(
            line
            for line in piece.splitlines()
            if line.strip() and not line.strip().startswith("--")
        )
        if code.strip():
            statements.append(piece.strip())
    return statements


@cache
def statements(path: Path) -> tuple[str, ...]:
    """The statements of one SQL file (read once per process)."""
    return tuple(split(path.read_text(encoding="utf-8")))


def generator(name: str) -> tuple[str, ...]:
    """The statements of `generate/<name>.sql`."""
    return statements(GENERATE / f"{name}.sql")
