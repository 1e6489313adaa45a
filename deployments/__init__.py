"""The seven tiers (schedule, dbt selector, batch-window role, timeouts, freshness SLA), defined
once, and what turns them into Prefect deployments; `prefect.yaml` agrees with them (a test
checks)."""
