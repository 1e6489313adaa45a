"""Reusable async Prefect tasks, each doing one thing: dbt build by tag, ClickHouse export to S3,
remote fetch on the database host, PostgreSQL COPY, gates and swap, notifications. Every task is
callable outside a flow, which is how the tests exercise them.

The sync of a served table (docs/sync.md): `export.export_to_s3`, `transfer.check_staging`,
`load.load_staging`, `load.enrich_staging`, `load.finalize_staging`, `gates.check_gates`,
`swap.swap_in`, `swap.rollback_table`, `cleanup.prune_s3`, orchestrated by `sync.sync_table`.
Their logic lives in `stir.serving`; these modules only wrap it as tasks."""
