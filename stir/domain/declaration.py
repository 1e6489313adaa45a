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
        gates: {min_ratio: 0.5, allow_empty: false, allow_drop_columns: false,
                max_changed_fraction: 0.2}  # refuse a swap changing > 20% of the live rows
        diff: true                      # diff against the live table before the swap
        enrich:                         # LEFT JOINs against operational PostgreSQL tables
          - {join: coffee.tracked_profiles, "on": "...", columns: {tracked_profile_id: id}}

`ServedTable.from_meta(model_name, meta, columns)` builds it from that dict. The dict is
validated first by pydantic models that refuse unknown keys and values of the wrong type (no
conversion of "0.5" or "yes"): a `DeclarationError` names the model, the key's path
(`gates.min_ration`, `indexes[1].using`) and what that place accepts, so a typo fails the
declaration instead of being ignored.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

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


@dataclass(frozen=True)
class Gates:
    """What a new version must satisfy before it replaces the live table."""

    min_ratio: float = 0.5  # new rows >= min_ratio * live rows
    max_ratio: float | None = None  # new rows <= max_ratio * live rows (None: no bound)
    allow_empty: bool = False
    check_keys: bool = True
    allow_drop_columns: bool = False
    allow_retype_columns: bool = False
    # (added + removed + changed rows) / live rows <= this, by the data diff (None: no bound)
    max_changed_fraction: float | None = None


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
    # Diff the new version against the live one before the swap (also when a diff gate is set).
    diff: bool = False

    def __post_init__(self) -> None:
        # Declarations from YAML are validated by `_ServeBlock`; these checks guard the ones
        # built in code.
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
        bound = self.gates.max_changed_fraction
        if bound is not None and not bound >= 0:  # `not >=`: NaN is refused too
            raise DeclarationError(
                f"{self.model}: gates.max_changed_fraction must be a number >= 0, not {bound!r}"
            )
        if self.diffs and not self.keys:
            what = "gates.max_changed_fraction" if bound is not None else "diff"
            raise DeclarationError(
                f"{self.model}: {what} needs keys: the diff matches the rows of the new and the "
                "live version by key"
            )

    @property
    def diffs(self) -> bool:
        """Whether a sync diffs the new version against the live one before the swap."""
        return self.diff or self.gates.max_changed_fraction is not None

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
        if not isinstance(serve, Mapping):
            raise DeclarationError(
                f"model {model_name}: meta.serve must be a mapping with at least `table`, "
                f"not {serve!r}"
            )
        try:
            block = _ServeBlock.model_validate(serve)
        except ValidationError as exc:
            raise DeclarationError(f"model {model_name}: {_explain(exc)}") from None
        schema, _, table = block.table.rpartition(".")
        names = tuple(columns)  # a dbt `columns:` mapping iterates over its names
        missing = [k for k in block.keys if names and k not in names]
        if missing:
            raise DeclarationError(f"model {model_name}: keys {missing} are not columns")
        return cls(
            model=f"{database}.{model_name}" if database else model_name,
            table=table,
            schema=schema or block.schema_name,
            keys=block.keys,
            columns=names,
            indexes=tuple(IndexSpec(i.columns, i.unique, i.using) for i in block.indexes),
            format=block.format,
            transfer=block.transfer,
            parts=block.parts,
            rows_per_part=block.rows_per_part,
            gates=Gates(**block.gates.model_dump()),
            diff=block.diff,
            enrich=tuple(Enrichment(e.join, e.on, tuple(e.columns.items())) for e in block.enrich),
        )


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


# --- validation of the YAML -------------------------------------------------------------------
# The shapes as written in `meta.serve`; `from_meta` converts them into the dataclasses above.
# Defaults are the dataclasses' own, so an omitted key means the same as in code. Each field's
# description says what it accepts: an error message reads "<path> must be <description>".


def _one_or_many(value: Any) -> Any:
    """A single name where a list is expected is a list of that one name."""
    return [value] if isinstance(value, str) else value


def _none_is_empty(value: Any) -> Any:
    """An empty YAML value (`indexes:`) is an empty list, not an error."""
    return () if value is None else value


class _Block(BaseModel):
    """A mapping of `meta.serve`: unknown keys are refused, since a typo would otherwise be a
    silently ignored setting."""

    model_config = ConfigDict(extra="forbid")
    noun: ClassVar[str]  # what an error calls this mapping: "unknown <noun> key ..."


_ColumnNames = Annotated[tuple[StrictStr, ...], BeforeValidator(_one_or_many)]
_NonNegativeNumber = Annotated[StrictFloat, Field(ge=0)]
_BOOLEAN = "true or false"


class _IndexBlock(_Block):
    noun: ClassVar[str] = "index"
    columns: Annotated[
        _ColumnNames, Field(min_length=1, description="a column name or a non-empty list of them")
    ]
    unique: Annotated[StrictBool, Field(description=_BOOLEAN)] = IndexSpec.unique
    using: Annotated[
        StrictStr,
        Field(description="an index method name (btree, hash, gist, gin, brin, ...)"),
    ] = IndexSpec.using

    @model_validator(mode="before")
    @classmethod
    def _columns_alone(cls, value: Any) -> Any:
        """`handle` and `[platform, followers]` are indexes on those columns."""
        if isinstance(value, str | list | tuple):
            return {"columns": value}
        return value

    @field_validator("using")
    @classmethod
    def _method_name(cls, using: str) -> str:
        # The method goes unquoted into CREATE INDEX ... USING: only a plain name is safe.
        if not using.isidentifier():
            raise ValueError("not a name")
        return using.lower()


def _same_names(value: Any) -> Any:
    """`columns: [a, b]` copies the joined table's `a` and `b` under the same names."""
    if isinstance(value, list | tuple) and all(isinstance(c, str) for c in value):
        return {c: c for c in value}
    return value


class _EnrichBlock(_Block):
    noun: ClassVar[str] = "enrichment"
    join: Annotated[
        StrictStr, Field(min_length=1, description="the joined PostgreSQL table, schema.table")
    ]
    on: Annotated[StrictStr, Field(min_length=1, description="the join condition, in SQL")]
    columns: Annotated[
        dict[StrictStr, StrictStr],
        BeforeValidator(_same_names),
        Field(
            min_length=1,
            description="a non-empty mapping {new column: joined table's column} "
            "or a list of the joined table's columns",
        ),
    ]


def _mapping_is_one(value: Any) -> Any:
    """`enrich: {join: ...}` is a list of that one enrichment."""
    return [value] if isinstance(value, Mapping) else _none_is_empty(value)


def _no_gates_is_defaults(value: Any) -> Any:
    """An empty `gates:` keeps every gate at its default."""
    return {} if value is None else value


class _GatesBlock(_Block):
    noun: ClassVar[str] = "gate settings"
    min_ratio: Annotated[
        _NonNegativeNumber,
        Field(description="a number >= 0 (new rows >= min_ratio * live rows)"),
    ] = Gates.min_ratio
    max_ratio: Annotated[
        _NonNegativeNumber | None,
        Field(description="a number >= 0 (new rows <= max_ratio * live rows) or null"),
    ] = Gates.max_ratio
    allow_empty: Annotated[StrictBool, Field(description=_BOOLEAN)] = Gates.allow_empty
    check_keys: Annotated[StrictBool, Field(description=_BOOLEAN)] = Gates.check_keys
    allow_drop_columns: Annotated[StrictBool, Field(description=_BOOLEAN)] = (
        Gates.allow_drop_columns
    )
    allow_retype_columns: Annotated[StrictBool, Field(description=_BOOLEAN)] = (
        Gates.allow_retype_columns
    )
    max_changed_fraction: Annotated[
        _NonNegativeNumber | None,
        Field(
            description="a number >= 0 (added + removed + changed rows <= "
            "max_changed_fraction * live rows; 0.2: 20%) or null"
        ),
    ] = Gates.max_changed_fraction


class _ServeBlock(_Block):
    noun: ClassVar[str] = "meta.serve"
    table: Annotated[
        StrictStr, Field(min_length=1, description="the PostgreSQL table, table or schema.table")
    ]
    # `schema` would shadow a BaseModel method: the YAML key is the alias.
    schema_name: Annotated[
        StrictStr,
        Field(alias="schema", min_length=1, description="a PostgreSQL schema name"),
    ] = ServedTable.schema
    keys: Annotated[_ColumnNames, Field(description="a column name or a list of them")] = ()
    indexes: Annotated[
        tuple[_IndexBlock, ...],
        BeforeValidator(_none_is_empty),
        Field(
            description="a list of indexes, each a column, a list of columns "
            "or {columns: [...], unique: true|false, using: <method>}"
        ),
    ] = ()
    format: Annotated[Format, Field(description="csv, tsv or json")] = ServedTable.format
    transfer: Annotated[
        Transfer | None,
        Field(description="stream or ssh (or unset for the default STIR_SYNC_TRANSFER)"),
    ] = ServedTable.transfer
    parts: Annotated[
        StrictInt,
        Field(ge=0, description="a whole number >= 0 (0: one part per rows_per_part rows)"),
    ] = ServedTable.parts
    rows_per_part: Annotated[StrictInt, Field(ge=1, description="a whole number >= 1")] = (
        ServedTable.rows_per_part
    )
    gates: Annotated[
        _GatesBlock,
        BeforeValidator(_no_gates_is_defaults),
        Field(description="a mapping of gate settings"),
    ] = Field(default_factory=_GatesBlock)
    enrich: Annotated[
        tuple[_EnrichBlock, ...],
        BeforeValidator(_mapping_is_one),
        Field(description="an enrichment {join, on, columns} or a list of them"),
    ] = ()
    diff: Annotated[StrictBool, Field(description=_BOOLEAN)] = ServedTable.diff


def _fields(block: type[_Block]) -> dict[str, FieldInfo]:
    """The keys a block accepts, as written in the YAML, in declaration order, with their field."""
    return {info.alias or name: info for name, info in block.model_fields.items()}


def _nested_block(annotation: Any) -> type[_Block] | None:
    """The block a field holds, directly or in a list (`tuple[_IndexBlock, ...]`)."""
    if isinstance(annotation, type) and issubclass(annotation, _Block):
        return annotation
    for argument in get_args(annotation):
        if (block := _nested_block(argument)) is not None:
            return block
    return None


def _walk(loc: tuple[str | int, ...]) -> tuple[type[_Block] | None, tuple[str | int, ...], str]:
    """Follow an error's location down the blocks: the block it ends in (None: not a block),
    and the deepest declared field on the way, with what that field accepts."""
    block: type[_Block] | None = _ServeBlock
    field_loc: tuple[str | int, ...] = ()
    accepted = ""
    for depth, part in enumerate(loc):
        if isinstance(part, int):
            continue  # a position in a list: its items are what the list's field accepts
        info = _fields(block).get(part) if block is not None else None
        if info is None:
            return None, field_loc, accepted
        field_loc, accepted = loc[: depth + 1], info.description or ""
        block = _nested_block(info.annotation)
    return block, field_loc, accepted


def _path(loc: tuple[str | int, ...]) -> str:
    """`("indexes", 1, "using")` as an error writes it: `indexes[1].using`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _and_list(keys: Sequence[str]) -> str:
    quoted = [f"`{key}`" for key in keys]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _explain_one(error: Mapping[str, Any]) -> str:
    """One of pydantic's errors in the words of the YAML: the key's path and what it accepts."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind in ("extra_forbidden", "invalid_key", "missing"):
        block = _walk(loc[:-1])[0]
        assert block is not None, loc  # only a block refuses or requires keys
        keys = _fields(block)
        where = _path(loc[:-1])
        if kind == "missing":
            required = [key for key, info in keys.items() if info.is_required()]
            at_least = "at least " if len(required) < len(keys) else ""
            return f"{where or 'meta.serve'} needs {at_least}{_and_list(required)}"
        # invalid_key: a key that is not a string, which pydantic gives as the error's input
        key = loc[-1] if kind == "extra_forbidden" else error["input"]
        if key is True:
            hint = ' (YAML reads an unquoted `on` as true: write "on")'
        else:
            guess = difflib.get_close_matches(str(key), list(keys), n=1)
            hint = f" (did you mean `{guess[0]}`?)" if guess else ""
        return (
            f"unknown {block.noun} key `{f'{where}.{key}' if where else key}`{hint}; "
            f"allowed: {', '.join(keys)}"
        )
    _, field_loc, accepted = _walk(loc)
    if not accepted:  # a field without a description: pydantic's own words
        return f"{_path(loc)}: {error['msg']}"
    if field_loc == loc:
        return f"{_path(loc)} must be {accepted}, not {error['input']!r}"
    return f"{_path(loc)} is {error['input']!r}; {_path(field_loc)} takes {accepted}"


def _explain(error: ValidationError) -> str:
    # dict.fromkeys: each message once (two missing keys of one block say the same thing)
    return "; ".join(dict.fromkeys(_explain_one(e) for e in error.errors()))
