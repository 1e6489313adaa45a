"""Reusable async Prefect tasks, each doing one thing: dbt build by tag, ClickHouse export to S3,
remote fetch on the database host, PostgreSQL COPY, gates and swap, notifications. Every task is
callable outside a flow, which is how the tests exercise them."""
