"""Prefect tasks: the units a tier run shows one by one and an alert can name.

Each wraps one thing the lower layers do, unchanged: the dbt build of a selection (`dbt`), the
steps of a sync (`sync`, over `stir.serving.steps`), the shared staging layer (`shared_layer`),
health checks (`health`), Slack alerts (`notify`), and the run's lock names (`locks`). Logic
belongs in `stir.serving`, `stir.domain` or `stir.dbt_project`, never here.
"""
