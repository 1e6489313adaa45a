"""The raw sources: their schemas (`ddl/`) and the deterministic data generator (`generate/`).

`ddl/clickhouse/<source>.sql` creates each source's raw database and tables in ClickHouse,
`ddl/postgres/coffee.sql` the app's operational schema in PostgreSQL; `generate/<step>.sql`
computes one step of the data inside ClickHouse; `seed.py` runs them (`stir seed`). The tables
and the reasons for their engines are described in docs/sources.md.
"""
