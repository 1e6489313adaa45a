"""Cleanup of the S3 checkpoints: old runs of a table beyond a configured count are pruned."""

from __future__ import annotations

import logging
from typing import Any

from stir.serving.naming import s3_table_prefix
from stir.serving.s3 import delete_keys, list_keys
from stir.settings import S3Settings

log = logging.getLogger("stir.serving.cleanup")


async def prune_runs(
    client: Any,
    s3: S3Settings,
    schema: str,
    table: str,
    *,
    keep: int,
    current: str | None = None,
) -> list[str]:
    """Delete every run of `schema.table` but the `keep` newest (and `current`); the pruned run
    ids. Another schema's table of the same name has its own prefix and is never touched."""
    prefix = s3_table_prefix(s3.prefix, schema, table)
    runs: dict[str, list[str]] = {}
    for key in await list_keys(client, s3.bucket, prefix):
        run_id = key[len(prefix) :].split("/", 1)[0]
        runs.setdefault(run_id, []).append(key)
    ordered = sorted(runs, reverse=True)  # run ids sort by time
    doomed = [r for r in ordered[max(keep, 0) :] if r != current]
    for run_id in doomed:
        await delete_keys(client, s3.bucket, runs[run_id])
        log.info("pruned S3 run %s of %s.%s (%d objects)", run_id, schema, table, len(runs[run_id]))
    return doomed
