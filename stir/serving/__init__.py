"""Serving: a ClickHouse mart → S3 → PostgreSQL, checked by gates and swapped in atomically.

The building blocks (plain async functions, no Prefect) behind the tasks in `tasks/`:
`declaration` (what a served table is), `types` (ClickHouse → PostgreSQL types and export
expressions), `naming`, `export`, `load`, `gates`, `swap`, `cleanup`. See docs/sync.md.
"""

from stir.domain.declaration import DeclarationError, Gates, IndexSpec, ServedTable

__all__ = ["DeclarationError", "Gates", "IndexSpec", "ServedTable"]
