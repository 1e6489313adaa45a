"""A served table's declaration: which mart, which PostgreSQL table, keys, indexes, gates.

It lives next to the dbt model, in the model's YAML:

    meta:
      serve:
        table: account_metrics          # the PostgreSQL table (schema.table accepted)
        keys: [account_id]              # primary key: unique and not null (a gate checks it)
        indexes: [handle, [platform, followers], {columns: [tags], using: gin}]
        format: tsv                     # tsv (default), csv or json (see docs/sync.md)
        transfer: ssh                   # stream or ssh; unset: STIR_SYNC_TRANSFER (stream)
        parts: 0                        # 0: one part per `rows_per_part` rows
        gates: {min_ratio: 0.5, allow_empty: false, allow_drop_columns: false}
        enrich:                         # LEFT JOINs against operational PostgreSQL tables
          - {join: coffee.tracked_profiles, "on": "...", columns: {tracked_profile_id: id}}

`ServedTable.from_meta(model_name, meta, columns)` builds it from that dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Format = Literal["csv", "tsv", "json"]
Transfer = Literal["stream", "ssh"]
TRANSFERS: tuple[str, ...] = ("stream", "ssh")


class DeclarationError(ValueError):
    """A `meta.serve` block that cannot be used; the message names the model and the field."""


@dataclass(frozen=True)
class IndexSpec:
    columns: tuple[str, ...]
    unique: bool = False
    using: str = "btree"

    @classmethod
    def parse(cls, value: Any) -> IndexSpec:
        if isinstance(value, str):
            return cls((value,))
        if isinstance(value, list | tuple):
            return cls(tuple(str(c) for c in value))
        if isinstance(value, Mapping):
            cols = value.get("columns")
            cols = [cols] if isinstance(cols, str) else cols
            if not cols:
                raise DeclarationError(f"index {dict(value)!r} has no columns")
            using = str(value.get("using", "btree")).lower()
            if not using.isidentifier():
                raise DeclarationError(f"index method {using!r} is not a name")
            return cls(tuple(str(c) for c in cols), bool(value.get("unique", False)), using)
        raise DeclarationError(f"cannot read index {value!r}")


@dataclass(frozen=True)
class Enrichment:
    """A LEFT JOIN against an operational PostgreSQL table, adding its columns to each row.

    `on` is SQL written in the project's YAML (trusted, like the dbt SQL), referring to the
    joined table by its name and to the mart's columns by theirs; `columns` maps each new
    column to the joined table's column it copies.
    """

    join: str  # schema.table in PostgreSQL
    on: str
    columns: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, value: Any) -> Enrichment:
        if not isinstance(value, Mapping) or not value.get("join") or not value.get("on"):
            raise DeclarationError(f"enrichment {value!r} needs `join`, `on` and `columns`")
        columns = value.get("columns") or {}
        if isinstance(columns, list | tuple):
            columns = {c: c for c in columns}
        if not columns:
            raise DeclarationError(f"enrichment of {value['join']} adds no columns")
        return cls(
            str(value["join"]),
            str(value["on"]),
            tuple((str(k), str(v)) for k, v in columns.items()),
        )


@dataclass(frozen=True)
class Gates:
    """What a new version must satisfy before it replaces the live table."""

    min_ratio: float = 0.5  # new rows >= min_ratio * live rows
    max_ratio: float | None = None  # new rows <= max_ratio * live rows (None: no bound)
    allow_empty: bool = False
    check_keys: bool = True
    allow_drop_columns: bool = False
    allow_retype_columns: bool = False

    @classmethod
    def parse(cls, value: Mapping[str, Any] | None) -> Gates:
        value = dict(value or {})
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise DeclarationError(
                f"unknown gate settings {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**value)


@dataclass(frozen=True)
class ServedTable:
    model: str  # the ClickHouse table (the dbt mart), `name` or `database.name`
    table: str  # the PostgreSQL table
    keys: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()  # the columns to serve; empty: all of the mart's
    indexes: tuple[IndexSpec, ...] = ()
    schema: str = "public"
    format: Format = "tsv"
    parts: int = 0  # 0: automatic, one part per rows_per_part rows (needs keys)
    rows_per_part: int = 1_000_000
    gates: Gates = field(default_factory=Gates)
    enrich: tuple[Enrichment, ...] = ()  # LEFT JOINs against operational tables
    # How the parts reach PostgreSQL; None: the global default (`STIR_SYNC_TRANSFER`).
    transfer: Transfer | None = None

    def __post_init__(self) -> None:
        for spec in self.indexes:
            if not spec.using.isidentifier():
                raise DeclarationError(f"{self.model}: index method {spec.using!r} is not a name")
        if self.format not in ("csv", "tsv", "json"):
            raise DeclarationError(
                f"{self.model}: format must be csv, tsv or json, not {self.format!r}"
            )
        if self.transfer is not None and self.transfer not in TRANSFERS:
            raise DeclarationError(
                f"{self.model}: transfer must be stream or ssh (or unset for the default "
                f"STIR_SYNC_TRANSFER), not {self.transfer!r}"
            )
        if self.parts < 0 or self.rows_per_part < 1:
            raise DeclarationError(f"{self.model}: parts and rows_per_part must be positive")

    @property
    def ref(self) -> str:
        return f"{self.schema}.{self.table}"

    @classmethod
    def from_meta(
        cls,
        model_name: str,
        meta: Mapping[str, Any],
        columns: Mapping[str, Any] | Sequence[str] = (),
        *,
        database: str | None = None,
    ) -> ServedTable:
        """From a dbt model's `meta` (with a `serve` block, or the block itself) and columns."""
        serve = meta.get("serve", meta)
        if not isinstance(serve, Mapping) or "table" not in serve:
            raise DeclarationError(f"model {model_name}: meta.serve needs at least `table`")
        schema, _, table = str(serve["table"]).rpartition(".")
        keys = serve.get("keys", ())
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        names = tuple(columns)  # a dbt `columns:` mapping iterates over its names
        missing = [k for k in keys if names and k not in names]
        if missing:
            raise DeclarationError(f"model {model_name}: keys {missing} are not columns")
        try:
            return cls(
                model=f"{database}.{model_name}" if database else model_name,
                table=table,
                schema=schema or str(serve.get("schema", "public")),
                keys=keys,
                columns=names,
                indexes=tuple(IndexSpec.parse(i) for i in serve.get("indexes", ()) or ()),
                format=serve.get("format", "tsv"),
                transfer=serve.get("transfer"),
                parts=int(serve.get("parts", 0)),
                rows_per_part=int(serve.get("rows_per_part", 1_000_000)),
                gates=Gates.parse(serve.get("gates")),
                enrich=tuple(
                    Enrichment.parse(e)
                    for e in (
                        [serve["enrich"]]
                        if isinstance(serve.get("enrich"), Mapping)
                        else serve.get("enrich") or ()
                    )
                ),
            )
        except TypeError as exc:
            raise DeclarationError(f"model {model_name}: {exc}") from None


def served_tables(manifest: Mapping[str, Any]) -> list[ServedTable]:
    """Every served table declared in a dbt `manifest.json` (models with `meta.serve`)."""
    tables = []
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        meta = node.get("config", {}).get("meta") or node.get("meta") or {}
        if "serve" not in meta:
            continue
        name = node.get("alias") or node["name"]
        tables.append(
            ServedTable.from_meta(
                name, meta, node.get("columns") or {}, database=node.get("schema") or None
            )
        )
    return sorted(tables, key=lambda t: t.ref)
