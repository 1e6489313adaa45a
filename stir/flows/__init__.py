"""Prefect flows: the tier flow (build a dbt tag, then sync every served table of the tier), the
batch window it runs in, and the ad-hoc flows (sync one table, roll one back, retry a run from its
S3 checkpoint). Flows stay small and read like the process they run; the work lives in
`stir.tasks` and the layers below it."""
