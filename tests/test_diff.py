"""The data diff before the swap (issue 15): counts and largest shifts against real servers, the
diff gate refusing or allowing a swap, its artifact and Slack alert in a flow, and `stir diff`.

Each test builds its mart by hand in ClickHouse, syncs it once, changes known rows, and checks
the diff against what it changed (the oracle is the change itself, not a query of the code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import asyncpg
import pytest
from conftest import (
    ClickHouseServer,
    PostgresService,
    S3Service,
    SlackRecorder,
    incoming_tables,
    s3_boto,
    settings_for_servers,
)

from stir.clickhouse import ClickHouse
from stir.domain.declaration import DeclarationError, Gates, ServedTable
from stir.serving.gates import GateError
from stir.serving.sync import sync_table
from stir.settings import Settings

STIR = str(Path(sys.executable).parent / "stir")
ROWS = 1000
COLUMNS = "id UInt64, name String, score Float64, small Int16, maybe Nullable(Int32)"


@pytest.fixture
def settings(clickhouse: ClickHouseServer, s3: S3Service, postgres: PostgresService) -> Settings:
    return settings_for_servers(clickhouse, s3, postgres, f"diff-{uuid.uuid4().hex[:8]}")


async def make_mart(ch: ClickHouse, name: str, select: str) -> None:
    await ch.execute(f"DROP TABLE IF EXISTS {name}")
    await ch.execute(f"CREATE TABLE {name} ({COLUMNS}) ENGINE = MergeTree ORDER BY id")
    await ch.execute(f"INSERT INTO {name} {select}")


def version_one(first: int = 0, rows: int = ROWS) -> str:
    """ids first..first+rows-1: name-<id>, score id/8, small id % 1000, maybe NULL every 7th."""
    return (
        f"SELECT number, concat('name-', toString(number)), number / 8, "
        f"toInt16(number % 1000), if(number % 7 = 0, NULL, toInt32(number)) "
        f"FROM numbers({first}, {rows})"
    )


def version_with_changed_scores(every: int) -> str:
    """Version one with the score of each `every`-th id raised by 1 + id / 1000: the largest
    shift is at the largest such id."""
    return (
        "SELECT number, concat('name-', toString(number)), "
        f"number / 8 + if(number % {every} = 0, 1 + number / 1000, 0), toInt16(number % 1000), "
        f"if(number % 7 = 0, NULL, toInt32(number)) FROM numbers({ROWS})"
    )


async def live_state(pg: asyncpg.Connection, table: str) -> tuple:
    """What a reader of the live table sees: rows, a checksum of the values, the stamped run."""
    return tuple(
        await pg.fetchrow(
            f"SELECT count(*), sum(score), sum(hashtext(name)), "
            f"obj_description('{table}'::regclass, 'pg_class') FROM {table}"
        )
    )


# --- the diff's numbers -------------------------------------------------------------------


async def test_the_diff_counts_what_changed_by_key_and_finds_the_largest_shifts(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    decl = ServedTable(model="mart_diff_counts", table="diff_counts", keys=("id",), diff=True)
    await make_mart(ch, "mart_diff_counts", version_one())
    first = await sync_table(decl, settings=settings)
    assert first.diff is not None
    assert not first.diff.has_live
    assert first.diff.added == ROWS

    # ids 0-9 go, 1000-1019 come; in between, known values change.
    await make_mart(
        ch,
        "mart_diff_counts",
        """SELECT number,
                  if(number IN (333, 950), 'renamed', concat('name-', toString(number))),
                  number / 8 + if(number % 100 = 50, number, 0),
                  multiIf(number = 20, toInt16(-32768), number = 30, toInt16(31),
                          toInt16(number % 1000)),
                  multiIf(number = 701, NULL, number = 700, toInt32(5),
                          if(number % 7 = 0, NULL, toInt32(number)))
           FROM numbers(10, 1010)""",
    )
    second = await sync_table(decl, settings=settings)
    diff = second.diff
    assert diff is not None
    score_changed = [i for i in range(10, 1000) if i % 100 == 50]  # 50, 150, ..., 950
    changed_ids = set(score_changed) | {333, 950} | {700, 701} | {20, 30}
    assert (diff.live_rows, diff.new_rows) == (1000, 1010)
    assert (diff.added, diff.removed, diff.changed) == (20, 10, len(changed_ids))
    assert diff.unchanged == 990 - len(changed_ids)
    assert diff.changed_fraction == pytest.approx((20 + 10 + len(changed_ids)) / 1000)

    columns = {c.name: c for c in diff.columns}
    assert list(columns) == ["name", "score", "small", "maybe"]  # the keys are not compared
    assert {n: c.changed for n, c in columns.items()} == {
        "name": 2, "score": len(score_changed), "small": 2, "maybe": 2,
    }  # fmt: skip
    score = columns["score"].largest_shift
    assert score is not None
    assert score.key == {"id": "950"}
    assert score.amount == pytest.approx(950)
    assert (float(score.old), float(score.new)) == (950 / 8, 950 / 8 + 950)
    small = columns["small"].largest_shift  # -32768 - 20 does not fit a smallint
    assert small is not None
    assert small.key == {"id": "20"}
    assert (small.old, small.new, small.amount) == ("20", "-32768", -32788)
    assert columns["maybe"].largest_shift is None  # both changes are to or from NULL
    assert columns["name"].largest_shift is None  # not a number

    assert "diff" in [p.phase for p in second.phases]
    assert await pg.fetchval("SELECT count(*) FROM diff_counts") == 1010  # swapped in
    assert f"20 added, 10 removed, {len(changed_ids)} changed" in diff.summary
    assert "| score | 10 | +950 at id=950 (118.75 → 1068.75) |" in diff.markdown()


def test_a_diff_needs_keys_and_the_gate_a_number_of_its_own() -> None:
    with pytest.raises(DeclarationError, match=r"gates\.max_changed_fraction needs keys"):
        ServedTable(model="m", table="t", gates=Gates(max_changed_fraction=0.2))
    with pytest.raises(DeclarationError, match="diff needs keys"):
        ServedTable.from_meta("m", {"serve": {"table": "t", "diff": True}})
    for bad in ("0.2", -0.1, True):
        with pytest.raises(DeclarationError) as caught:
            ServedTable.from_meta(
                "m", {"serve": {"table": "t", "keys": "id", "gates": {"max_changed_fraction": bad}}}
            )
        assert "gates.max_changed_fraction must be a number >= 0" in str(caught.value)
        assert f"not {bad!r}" in str(caught.value)
    decl = ServedTable.from_meta(
        "m", {"serve": {"table": "t", "keys": "id", "gates": {"max_changed_fraction": 1}}}
    )
    assert decl.gates.max_changed_fraction == 1.0
    assert decl.diffs


# --- the gate -------------------------------------------------------------------------------


async def test_the_gate_refuses_a_swap_over_its_bound_and_allows_one_under_it(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection
) -> None:
    decl = ServedTable(
        model="mart_diff_gate", table="diff_gate", keys=("id",),
        gates=Gates(max_changed_fraction=0.2),
    )  # fmt: skip
    await make_mart(ch, "mart_diff_gate", version_one())
    await sync_table(decl, settings=settings)
    before = await live_state(pg, "diff_gate")

    await make_mart(ch, "mart_diff_gate", version_with_changed_scores(every=4))  # 25 %
    with pytest.raises(GateError) as refused:
        await sync_table(decl, settings=settings)
    message = str(refused.value)
    first_line, *details = message.splitlines()
    assert first_line.startswith("gate max_changed_fraction failed for public.diff_gate: ")
    assert "25.0% of the 1,000 live rows would change (bound 20.0%)" in first_line
    assert "0 added, 0 removed, 250 changed" in first_line
    [score] = details
    assert score.startswith("score: 250 changed, largest shift +1.996 at id=996 (124.5 → 126.49")
    assert refused.value.diff is not None
    assert refused.value.diff.changed == 250
    assert await live_state(pg, "diff_gate") == before  # untouched
    assert await incoming_tables(pg, "diff_gate") == []

    await make_mart(ch, "mart_diff_gate", version_with_changed_scores(every=10))  # 10 %
    summary = await sync_table(decl, settings=settings)
    assert summary.diff is not None
    assert summary.diff.changed == 100
    assert "max_changed_fraction" in summary.gates.passed
    assert await pg.fetchval("SELECT count(*) FROM diff_gate WHERE score <> id / 8.0") == 100


# --- in a flow: the artifact and the alert --------------------------------------------------


@pytest.mark.usefixtures("prefect_api")
async def test_in_a_tier_run_the_diff_is_an_artifact_and_a_refusal_alerts_with_it(
    settings: Settings, ch: ClickHouse, slack: SlackRecorder
) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from stir.tasks.notify import alert_tier_run
    from stir.tasks.sync import diff_artifact_key
    from stir.tasks.sync import sync_table as sync_in_flow

    @flow(name="tier", on_failure=[alert_tier_run])
    async def tier(tier: str, settings: Settings, decl: ServedTable) -> None:
        await sync_in_flow(decl, settings=settings)

    decl = ServedTable(
        model="mart_diff_flow", table="diff_flow", keys=("id",),
        gates=Gates(max_changed_fraction=0.2),
    )  # fmt: skip
    key = diff_artifact_key(decl.ref)
    assert key == "diff-public-diff-flow"

    async def latest_artifact() -> str:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                sort="CREATED_DESC",
                limit=1,
            )
        return found[0].data

    await make_mart(ch, "mart_diff_flow", version_one())
    assert (await tier("core", settings, decl, return_state=True)).is_completed()
    await make_mart(ch, "mart_diff_flow", version_with_changed_scores(every=10))
    assert (await tier("core", settings, decl, return_state=True)).is_completed()
    swapped = await latest_artifact()
    assert "1,000 live rows → 1,000: 0 added, 0 removed, 100 changed" in swapped
    assert "| score | 100 | +1.99 at id=990 (123.75 → 125.7" in swapped
    assert "**Outcome:** swapped in (run " in swapped
    assert slack.texts == []

    # Against the live version (every 10th changed): the other even ids change, 40 %.
    await make_mart(ch, "mart_diff_flow", version_with_changed_scores(every=2))
    assert (await tier("core", settings, decl, return_state=True)).is_failed()
    refused = await latest_artifact()
    assert "0 added, 0 removed, 400 changed" in refused
    assert "**Outcome:** gate max_changed_fraction failed for public.diff_flow: 40.0%" in refused
    [text] = slack.texts
    assert "*Failing step:* `diff-incoming` (`diff diff_flow`)" in text
    assert "`GateError`: gate max_changed_fraction failed for public.diff_flow: 40.0%" in text
    assert "(bound 20.0%)" in text
    assert "score: 400 changed, largest shift +1.998 at id=998 (124.75 → 126.748)" in text


# --- stir diff ------------------------------------------------------------------------------

SERVED_YML = """\
version: 2
models:
  - name: mart_diff_cli
    config:
      meta:
        serve:
          table: diff_cli
          keys: [id]
          gates: {max_changed_fraction: 0.2}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A dbt project of one served model, for `stir diff` to find the declaration in (its
    mart is built by hand: a parse needs no database)."""
    models = tmp_path / "project" / "transform" / "models"
    models.mkdir(parents=True)
    (models.parent / "dbt_project.yml").write_text(
        textwrap.dedent("""\
            name: diff_cli
            version: "1.0"
            config-version: 2
            profile: stir
            model-paths: [models]
            models:
              diff_cli:
                +materialized: table
            """)
    )
    (models / "mart_diff_cli.sql").write_text("select 1 as id\n")
    (models / "_served.yml").write_text(SERVED_YML)
    return tmp_path / "project"


def stir(settings: Settings, project: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STIR_")}
    ch, s3 = settings.clickhouse, settings.s3
    env.update(
        STIR_CLICKHOUSE_HOST=ch.host,
        STIR_CLICKHOUSE_HTTP_PORT=str(ch.http_port),
        STIR_CLICKHOUSE_NATIVE_PORT=str(ch.native_port),
        STIR_POSTGRES_DSN=settings.postgres.effective_dsn(),
        STIR_S3_ENDPOINT_URL=s3.endpoint_url,
        STIR_S3_BUCKET=s3.bucket,
        STIR_S3_REGION=s3.region,
        STIR_S3_ACCESS_KEY_ID=s3.access_key_id.get_secret_value(),
        STIR_S3_SECRET_ACCESS_KEY=s3.secret_access_key.get_secret_value(),
        STIR_S3_EMBEDDED="false",
        STIR_S3_PREFIX=s3.prefix,
        STIR_PROJECT_DIR=str(project),
        STIR_STATE_DIR=str(state),
    )
    return subprocess.run(
        [STIR, *args], env=env, cwd=state, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def s3_run_ids(settings: Settings, table: str) -> set[str]:
    prefix = f"{settings.s3.prefix}/public/{table}/"
    listed = s3_boto(settings).list_objects_v2(Bucket=settings.s3.bucket, Prefix=prefix)
    return {o["Key"][len(prefix) :].split("/")[0] for o in listed.get("Contents", [])}


async def test_stir_diff_prints_the_diff_and_swaps_nothing(
    settings: Settings, ch: ClickHouse, pg: asyncpg.Connection, project: Path, tmp_path: Path
) -> None:
    mart = f"{settings.clickhouse.database}.mart_diff_cli"  # where dbt would build it
    decl = ServedTable(
        model=mart, table="diff_cli", keys=("id",), gates=Gates(max_changed_fraction=0.2)
    )
    await make_mart(ch, mart, version_one())
    first = await sync_table(decl, settings=settings)
    await make_mart(ch, mart, version_with_changed_scores(every=4))  # 25 %: over the gate
    before = await live_state(pg, "diff_cli")

    shown = stir(settings, project, tmp_path, "diff", "diff_cli", "--fail-over", "0.3")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "public.diff_cli: 1,000 live rows → 1,000: 0 added, 0 removed, 250 changed" in out
    assert "= 25.0% of the live rows" in out
    assert "+1.996 at id=996 (124.5 → 126.49" in out
    assert (
        "a sync would refuse this version: gate max_changed_fraction failed for public.diff_cli: "
        "25.0% of the 1,000 live rows would change (bound 20.0%)" in out
    )
    assert await live_state(pg, "diff_cli") == before  # never swapped
    assert await incoming_tables(pg, "diff_cli") == []
    assert s3_run_ids(settings, "diff_cli") == {first.run_id}  # its own run is deleted

    over = stir(
        settings, project, tmp_path, "diff", "public.diff_cli", "--json", "--fail-over", "0.2"
    )
    assert over.returncode == 1
    assert (
        "error: 25.0% of the live rows of public.diff_cli would change, over --fail-over 20.0%"
        in over.stderr
    )
    document = json.loads(over.stdout)
    assert {k: document["diff"][k] for k in ("added", "removed", "changed", "unchanged")} == {
        "added": 0, "removed": 0, "changed": 250, "unchanged": 750,
    }  # fmt: skip
    assert document["diff"]["changed_fraction"] == 0.25
    [score] = [c for c in document["diff"]["columns"] if c["name"] == "score"]
    assert score["largest_shift"]["key"] == {"id": "996"}
    assert await live_state(pg, "diff_cli") == before
