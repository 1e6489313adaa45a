"""Transfer: the S3 checkpoint of a run, checked before anything is loaded.

In the default `stream` mode the bytes move inside the load step (S3 → COPY, chunk by chunk, see
`stir.serving.load`); this task checks that the run is complete (manifest present, every part
present with the size the export recorded) so that a broken checkpoint fails before any work.
"""

from __future__ import annotations

from prefect import task

from stir.serving.export import load_manifest
from stir.serving.manifest import Manifest
from stir.serving.s3 import StagingError, head, s3_client
from stir.settings import Settings
from tasks._common import settings_or_default


@task(name="check-staging", task_run_name="check S3 run {run_id} of {table}")
async def check_staging(table: str, run_id: str, settings: Settings | None = None) -> Manifest:
    settings = settings_or_default(settings)
    s3 = settings.s3
    async with s3_client(s3) as client:
        manifest = await load_manifest(client, s3, table, run_id)
        if manifest is None:
            raise StagingError(
                f"run {run_id} of {table} has no manifest in s3://{s3.bucket}/{s3.prefix}: "
                "its export did not finish; export again with a new run"
            )
        for part in manifest.parts:
            meta = await head(client, s3.bucket, part.key)
            if meta is None:
                raise StagingError(f"run {run_id} of {table}: part {part.key} is missing")
            if int(meta["ContentLength"]) != part.bytes:
                raise StagingError(
                    f"run {run_id} of {table}: part {part.key} has {meta['ContentLength']} "
                    f"bytes, the manifest says {part.bytes}"
                )
    return manifest
