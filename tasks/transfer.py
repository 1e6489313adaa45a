"""Transfer: the S3 checkpoint of a run, checked before anything is loaded; the ssh transfer.

In the default `stream` mode the bytes move inside the load step (S3 → COPY, chunk by chunk, see
`stir.serving.load`); `check_staging` checks that the run is complete (manifest present, every part
present with the size the export recorded) so that a broken checkpoint fails before any work.
In the `ssh` mode, `load_staging_ssh` has the PostgreSQL host fetch each part over SSH and COPY it
from a server-side file (`stir.serving.ssh`).
"""

from __future__ import annotations

from prefect import task

from stir.serving.declaration import ServedTable
from stir.serving.export import load_manifest
from stir.serving.load import LoadResult
from stir.serving.manifest import Manifest
from stir.serving.s3 import StagingError, head, s3_client
from stir.serving.ssh import load_run_over_ssh
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
                raise StagingError(
                    f"run {run_id} of {table}: part {part.key} is missing; export the table "
                    "again with a new run"
                )
            if int(meta["ContentLength"]) != part.bytes:
                raise StagingError(
                    f"run {run_id} of {table}: part {part.key} has {meta['ContentLength']} "
                    f"bytes, the manifest says {part.bytes}"
                )
    return manifest


@task(name="load-staging-ssh", task_run_name="load {decl.table} over ssh")
async def load_staging_ssh(
    decl: ServedTable, manifest: Manifest, settings: Settings | None = None, parallel: int = 2
) -> LoadResult:
    """The ssh transfer: the PostgreSQL host fetches each part (presigned URL, over SSH) and
    PostgreSQL COPYs it from the file; the remote files are removed, also on failure."""
    settings = settings_or_default(settings)
    async with s3_client(settings.s3) as client:
        return await load_run_over_ssh(
            settings.postgres.effective_dsn(), client, settings.s3, settings.ssh, decl, manifest,
            parallel=parallel,
        )  # fmt: skip
