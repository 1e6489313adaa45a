"""Names in PostgreSQL and S3: identifier quoting, run ids, incoming/backup/index names, S3 keys.

A run loads into its *incoming* table, `<table>__stir_<run_id>` in the served table's schema,
until the swap makes it the live table. PostgreSQL truncates identifiers at 63 bytes; every
generated name is fitted to that limit with a hash of the full name, so two long names never
collide by truncation.

A run's S3 *checkpoint* (its parts and manifest) lives under `<prefix>/<schema>/<table>/<run_id>/`:
the schema is part of the key, so `a.x` and `b.x` never share (or prune) each other's runs.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

MAX_IDENTIFIER = 63
RUN_ID_RE = re.compile(r"^[0-9a-z][0-9a-z_]{0,31}$")
INCOMING_MARK = "__stir_"
BACKUP_SUFFIX = "_old_bkp"
_RUN_ID_LEN = 25  # YYYYMMDDHHMMSSffffff_xxxx


def quote_ident(name: str) -> str:
    """One PostgreSQL identifier in double quotes (embedded quotes doubled)."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid PostgreSQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def quote_literal(value: str) -> str:
    """A SQL string literal, for the few statements that take no parameters (SET, DDL)."""
    return "'" + value.replace("'", "''") + "'"


def _digest(text: str, length: int = 8) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:length]


def fit(name: str) -> str:
    """`name` if it fits PostgreSQL's identifier limit, else a prefix plus a hash of it."""
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    head = name.encode()[: MAX_IDENTIFIER - 9].decode(errors="ignore")
    return f"{head}_{_digest(name)}"


def new_run_id(now: datetime | None = None) -> str:
    """A unique run id that sorts by start time: `YYYYMMDDHHMMSSffffff_<4 hex>` (UTC)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d%H%M%S%f}_{secrets.token_hex(2)}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id):
        raise ValueError(f"invalid run id {run_id!r}: expected lowercase letters, digits and _")
    return run_id


def incoming_prefix(table: str) -> str:
    """What every incoming table of `table` starts with (stale ones are found by it)."""
    budget = MAX_IDENTIFIER - len(INCOMING_MARK) - _RUN_ID_LEN - 2
    base = table if len(table.encode()) <= budget else f"{table[: budget - 9]}_{_digest(table)}"
    return base + INCOMING_MARK


def incoming_name(table: str, run_id: str) -> str:
    return fit(incoming_prefix(table) + check_run_id(run_id))


def json_incoming_name(table: str, run_id: str) -> str:
    """The one-jsonb-column table the JSON path copies into."""
    return fit(incoming_prefix(table) + check_run_id(run_id) + "_j")


def backup_name(table: str) -> str:
    return fit(table + BACKUP_SUFFIX)


def index_name(table: str, role: str) -> str:
    """The name of an index of `table` playing `role` (e.g. `pkey`, `a_b_idx`)."""
    return fit(f"{table}_{role}")


def index_role(
    columns: list[str], *, primary: bool = False, unique: bool = False, method: str = "btree"
) -> str:
    """What an index is for, as PostgreSQL's own naming does: `pkey`, `col_idx`, `a_b_key`."""
    if primary:
        return "pkey"
    parts = [*columns, *([method] if method != "btree" else [])]
    return "_".join(parts) + ("_key" if unique else "_idx")


def _key_component(name: str, what: str) -> str:
    """`name` as one component of an S3 key: a `/` in it would make two tables share a prefix
    (`a/b`.`c` and `a`.`b/c`), so it is refused rather than escaped."""
    if not name or "/" in name:
        raise ValueError(f"invalid {what} {name!r} for an S3 key: it must be non-empty, no '/'")
    return name


def s3_table_prefix(prefix: str, schema: str, table: str) -> str:
    """`<prefix>/<schema>/<table>/` (no leading slash): every run of `schema.table`."""
    names = [_key_component(schema, "schema"), _key_component(table, "table")]
    head = prefix.strip("/")
    return "/".join([head, *names] if head else names) + "/"


def s3_run_prefix(prefix: str, schema: str, table: str, run_id: str) -> str:
    """`<prefix>/<schema>/<table>/<run_id>/` (no leading slash): one run's checkpoint."""
    return s3_table_prefix(prefix, schema, table) + check_run_id(run_id) + "/"
