"""Prefect flows: the tier flow (build a dbt tag, then sync every served table of the tier) and the
ad-hoc flows (sync one table, roll one back, retry a run from S3). Flows stay small and read like
the process they run; the work itself lives in `tasks/`."""
