"""Stir: serve ClickHouse analytics to a live application through PostgreSQL."""
