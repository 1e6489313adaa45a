"""The manifest of an export: written last, so its presence means the export is complete."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MANIFEST_NAME = "_manifest.json"
VERSION = 1


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    clickhouse_type: str
    postgres_type: str
    nullable: bool


@dataclass(frozen=True)
class PartInfo:
    key: str
    rows: int
    bytes: int
    etag: str  # S3's ETag: the MD5 of the object when it was uploaded in one piece
    query_id: str


@dataclass(frozen=True)
class Manifest:
    table: str  # the bare PostgreSQL table name; its schema is `extra["schema"]`
    model: str
    run_id: str
    format: str
    columns: tuple[ColumnInfo, ...]
    parts: tuple[PartInfo, ...]
    source_query: str
    created_at: str
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = self.rows
        data["bytes"] = self.bytes
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if data.get("version") != VERSION:
            raise ValueError(f"manifest version {data.get('version')!r} is not {VERSION}")
        return cls(
            table=data["table"],
            model=data["model"],
            run_id=data["run_id"],
            format=data["format"],
            columns=tuple(ColumnInfo(**c) for c in data["columns"]),
            parts=tuple(PartInfo(**p) for p in data["parts"]),
            source_query=data["source_query"],
            created_at=data["created_at"],
            extra=data.get("extra", {}),
        )
