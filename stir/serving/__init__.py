"""Serving: a ClickHouse mart → S3 → PostgreSQL, checked by gates and swapped in atomically.

Plain async code, no Prefect. `sync.sync_table` runs the steps of `steps` in order (export,
check the S3 checkpoint, load the incoming table, enrich, gates, finalize, swap, prune); the
steps are built from `export`, `load`, `ssh`, `enrich`, `gates`, `swap`, `cleanup`, `freshness`,
with `types` (ClickHouse → PostgreSQL types), `naming` and `manifest`. What a served table is
lives in `stir.domain.declaration`. See docs/sync.md.
"""
