"""ClickHouse cluster support (issue 17): STIR_CLICKHOUSE_CLUSTER in the settings, the dbt
profile, the DDL dbt sends for a cluster profile, and the raw schema of `stir seed`.

The embedded engine cannot build anything ON CLUSTER: chDB refuses distributed DDL (code 392, and
there is no Keeper; tests/test_clickhouse_remote.py). So a cluster build is tested at the level
of the SQL dbt would send, captured this way: `dbt run` of a copy of the project whose one
addition is a probe, root-project materializations `table`, `view`, `incremental` and
`distributed_incremental` (a root project's materialization wins over the adapter's). For each
model, in the model's own context (its config, `this`, the profile's cluster), the probe renders
the CREATE statements with dbt-clickhouse's own macros: `create_table_or_empty` (what the table
and incremental materializations send), `create_view_as`, and for a Distributed model its local
table and `create_distributed_table`. It writes them where dbt writes the SQL of a run
(`target/run/`) and executes none of them. Left out: a contract's column list (dbt asks the
database for the columns of the model's query, which reads relations that do not exist here;
the clauses under test come from the same macros either way) and the hooks.

Not `dbt run --empty` against a server with a cluster definition, reading the statements from
dbt's log: the first CREATE of every root model fails with 392 and dbt skips all that depends on
it, and a Distributed model fails at its first statement (a view), before its tables.

The server dbt connects to is an embedded one whose cluster `stir_cluster` is itself (one local
shard): dbt-clickhouse lists relations through clusterAllReplicas(stir_cluster, ...), which a
local shard answers. Its databases exist beforehand (dbt-clickhouse would create them ON
CLUSTER). ClickHouse then parses every rendered statement (EXPLAIN AST: valid syntax). About
40 s on a loaded 2-core machine, mostly dbt's parse and compile of the project.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    ClickHouseServer,
    free_port,
    isolated_stir_env,
    start_clickhouse,
    stop_process,
)
from dbt.cli.main import dbtRunner

from stir.dbt_project import dbt_profile, dbt_project_dir, dbt_workspace
from stir.settings import (
    ClickHouseSettings,
    PostgresSettings,
    PrefectSettings,
    S3Settings,
    Settings,
    SettingsError,
    SlackSettings,
    StackSettings,
    get_settings,
)
from stir.sources import sql
from stir.sources.seed import clickhouse_schema

CLUSTER = "stir_cluster"
DATABASE = "cluster_probe"
ON_CLUSTER_DBT = f'ON CLUSTER "{CLUSTER}"'  # dbt-clickhouse quotes the name so
ON_CLUSTER_SEED = f"ON CLUSTER `{CLUSTER}`"
# The models asked to be Distributed under a cluster, and their sharding keys.
DISTRIBUTED = {"int_instagram__post_metrics": "cityHash64(profile_id)"}
SEPARATOR = "\n;\n"  # between the statements of one model, as the probe joins them

PROBE = """
{% macro cluster_probe() %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set statements = [] -%}
  {%- if config.get('materialized') == 'view' -%}
    {%- do statements.append(create_view_as(this.incorporate(type='view'), sql)) -%}
  {%- elif config.get('materialized').startswith('distributed_') -%}
    {%- set local = target_relation.incorporate(
          path={'identifier': this.identifier ~ adapter.get_clickhouse_local_suffix()}) -%}
    {%- do statements.append(create_table_or_empty(False, local, sql, False)) -%}
    {%- do statements.append(create_distributed_table(target_relation, local)) -%}
  {%- else -%}
    {%- do statements.append(create_table_or_empty(False, target_relation, sql, False)) -%}
  {%- endif -%}
  {#- dbt requires a `main` statement; it writes target/run/, which the DDL then replaces -#}
  {% call statement('main') %}select 1{% endcall %}
  {{ write(statements | join('\\n;\\n')) }}
  {{ return({'relations': [target_relation]}) }}
{% endmacro %}
""" + "".join(
    f"{{% materialization {name}, adapter='clickhouse' %}}\n"
    "  {{ return(cluster_probe()) }}\n"
    "{% endmaterialization %}\n"
    for name in ("table", "view", "incremental", "distributed_incremental")
)


def cluster_settings(server: ClickHouseServer, state_dir: Path) -> Settings:
    return Settings(
        clickhouse=ClickHouseSettings(
            host=server.host, http_port=server.http_port, native_port=server.native_port,
            database=DATABASE, embedded=False, cluster=CLUSTER,
        ),
        s3=S3Settings(),
        postgres=PostgresSettings(),
        slack=SlackSettings(),
        prefect=PrefectSettings(),
        stack=StackSettings(state_dir=state_dir),
    )  # fmt: skip


# --- settings and profile -------------------------------------------------------------------


def test_without_the_setting_the_profile_has_no_cluster(tmp_path: Path) -> None:
    patch = isolated_stir_env(tmp_path, STIR_CLICKHOUSE_CLUSTER="")  # empty: none
    try:
        settings = get_settings()
    finally:
        patch.undo()
    assert settings.clickhouse.cluster is None
    output = dbt_profile(settings)["stir"]["outputs"]["stir"]
    assert "cluster" not in output
    assert "custom_settings" not in output


def test_the_setting_names_the_cluster_of_the_profile(tmp_path: Path) -> None:
    patch = isolated_stir_env(
        tmp_path, STIR_CLICKHOUSE_CLUSTER=CLUSTER, STIR_CLICKHOUSE_EMBEDDED="false"
    )
    try:
        settings = get_settings()
    finally:
        patch.undo()
    output = dbt_profile(settings)["stir"]["outputs"]["stir"]
    assert output["cluster"] == CLUSTER
    # Readers of a Distributed table join it to tables filled on one shard: GLOBAL JOINs.
    assert output["custom_settings"] == {"prefer_global_in_and_join": 1}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # The name ends up unescaped in dbt-clickhouse's DDL: only a plain name passes.
        ({"STIR_CLICKHOUSE_CLUSTER": 'c" SETTINGS x=1', "STIR_CLICKHOUSE_EMBEDDED": "false"},
         "STIR_CLICKHOUSE_CLUSTER='c\" SETTINGS x=1' is invalid"),
        ({"STIR_CLICKHOUSE_CLUSTER": CLUSTER},
         "STIR_CLICKHOUSE_CLUSTER needs a real ClickHouse cluster"),
    ],
)  # fmt: skip
def test_a_cluster_the_settings_cannot_use_is_refused(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    patch = isolated_stir_env(tmp_path, **env)
    try:
        with pytest.raises(SettingsError) as excinfo:
            get_settings()
    finally:
        patch.undo()
    assert expected in str(excinfo.value)


# --- the raw schema of `stir seed` ----------------------------------------------------------


def test_without_a_cluster_the_seed_runs_the_ddl_files_as_written() -> None:
    statements = clickhouse_schema(None)
    files = {path: path.read_text() for path in sorted(sql.CLICKHOUSE_DDL.glob("*.sql"))}
    # What the seed ran before there was a setting: each file's statements, files in order.
    assert statements == [s for path in files for s in sql.statements(path)]
    assert len(statements) == sum(text.count(";\n") for text in files.values())
    assert all(any(s in text for text in files.values()) for s in statements)
    assert not any("ON CLUSTER" in s or "Replicated" in s for s in statements)


def test_on_a_cluster_every_create_runs_on_cluster_with_replicated_engines() -> None:
    plain = clickhouse_schema(None)
    clustered = clickhouse_schema(CLUSTER)
    assert len(clustered) == len(plain)
    creates = re.compile(
        r"^CREATE (DATABASE|TABLE) IF NOT EXISTS ([\w.]+)( ON CLUSTER `\w+`)?", re.M
    )
    engines = re.compile(r"^ENGINE = (\w+)", re.M)
    kinds = []
    for before, after in zip(plain, clustered, strict=True):
        head = creates.search(after)
        assert head is not None, after
        assert head[3] == f" {ON_CLUSTER_SEED}", after
        assert after.count("ON CLUSTER") == 1
        kinds.append(head[1])
        if head[1] == "TABLE":
            (engine,) = engines.findall(before)
            assert engine.endswith("MergeTree")  # every raw table is of the family
            assert engines.findall(after) == [f"Replicated{engine}"]
        # Nothing else changed.
        restored = after.replace(f" {ON_CLUSTER_SEED}", "").replace(
            "ENGINE = Replicated", "ENGINE = "
        )
        assert restored == before
    assert kinds.count("DATABASE") == 7  # the six sources' and the generator's
    assert kinds.count("TABLE") > 20


def test_clickhouse_parses_the_clustered_seed_ddl(cluster_server: ClickHouseServer) -> None:
    # chDB refuses to run ON CLUSTER, but parses it: the rewrite is valid ClickHouse SQL.
    for statement in clickhouse_schema(CLUSTER):
        explain(cluster_server, statement)


# --- the DDL dbt sends for a cluster profile ------------------------------------------------


@pytest.fixture(scope="module")
def cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """An embedded server whose cluster `stir_cluster` is one shard: itself."""
    root = tmp_path_factory.mktemp("cluster-server")
    http_port, native_port = free_port(), free_port()
    config = root / "cluster.xml"
    config.write_text(
        f"<clickhouse><remote_servers><{CLUSTER}><shard><replica><host>127.0.0.1</host>"
        f"<port>{native_port}</port></replica></shard></{CLUSTER}></remote_servers></clickhouse>"
    )
    server = start_clickhouse(
        root / "data", http_port=http_port, native_port=native_port, config_file=config
    )
    try:
        yield server
    finally:
        stop_process(server.process)


def query(server: ClickHouseServer, statement: str) -> str:
    response = httpx.post(server.http_url, content=statement, timeout=60)
    assert response.status_code == 200, f"{response.text}\n{statement}"
    return response.text


def explain(server: ClickHouseServer, statement: str) -> None:
    query(server, f"EXPLAIN AST {statement}")


@dataclass(frozen=True)
class Rendered:
    models: dict[str, dict[str, Any]]  # name -> the manifest's node
    ddl: dict[str, list[str]]  # name -> the statements the probe rendered, in order


@pytest.fixture(scope="module")
def rendered(
    cluster_server: ClickHouseServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rendered]:
    work = tmp_path_factory.mktemp("cluster-probe")
    patch = isolated_stir_env(work)
    try:
        settings = cluster_settings(cluster_server, work / "state")
        project = work / "transform"
        shutil.copytree(
            dbt_project_dir(settings), project, ignore=shutil.ignore_patterns("target", "logs")
        )
        (project / "macros" / "zz_cluster_probe.sql").write_text(PROBE)
        for suffix in ("", "_staging", "_intermediate"):
            query(cluster_server, f"CREATE DATABASE IF NOT EXISTS {DATABASE}{suffix}")
        with dbt_workspace(settings, name="cluster-probe", project_dir=project) as workspace:
            result = dbtRunner().invoke(
                [
                    "run", "--project-dir", str(project),
                    "--profiles-dir", str(workspace.profiles_dir),
                    "--target-path", str(workspace.target), "--log-path", str(workspace.logs),
                    "--no-send-anonymous-usage-stats", "--quiet", *workspace.vars_args,
                ]
            )  # fmt: skip
            assert result.success, result.exception or (workspace.logs / "dbt.log").read_text()
            nodes = json.loads((workspace.target / "manifest.json").read_text())["nodes"]
            models = {n["name"]: n for n in nodes.values() if n["resource_type"] == "model"}
            run = workspace.target / "run" / "stir"
            ddl = {
                name: (run / node["original_file_path"]).read_text().split(SEPARATOR)
                for name, node in models.items()
            }
        yield Rendered(models, ddl)
    finally:
        patch.undo()


CREATE = re.compile(
    r"\s*create (?:or replace )?(?P<kind>table|view) `(?P<db>[^`]+)`\.`(?P<name>[^`]+)`"
    r"\s+(?P<cluster>ON CLUSTER \S+)?",
    re.I,
)
ENGINE = re.compile(r"^\s*engine = (.+?)\s*$", re.M | re.I)


def test_every_model_is_created_on_the_cluster(rendered: Rendered) -> None:
    assert len(rendered.models) > 100
    for name, node in rendered.models.items():
        for statement in rendered.ddl[name]:
            head = CREATE.match(statement)
            assert head is not None, f"{name}: no CREATE:\n{statement}"
            assert head["cluster"] == ON_CLUSTER_DBT, f"{name}: not ON CLUSTER:\n{statement}"
            assert head["db"] == node["schema"]
            assert head["name"] in (node["alias"], f"{node['alias']}_local")


def test_every_table_of_a_model_is_replicated(rendered: Rendered) -> None:
    tables = 0
    for name, node in rendered.models.items():
        if node["config"]["materialized"] == "view":
            assert not ENGINE.search(rendered.ddl[name][0]), name
            continue
        # Unset: dbt-clickhouse's default, MergeTree() (its `engine_clause`).
        configured = node["config"].get("engine", "MergeTree()")
        assert configured.split("(")[0].endswith("MergeTree"), name
        # The table dbt fills (the local one of a Distributed model) is the first statement.
        assert ENGINE.findall(rendered.ddl[name][0]) == [f"Replicated{configured}"], name
        tables += 1
    assert tables > 80


def test_the_post_fact_is_distributed_by_profile(rendered: Rendered) -> None:
    distributed = {
        name: node["config"]["sharding_key"]
        for name, node in rendered.models.items()
        if node["config"]["materialized"].startswith("distributed_")
    }
    assert distributed == DISTRIBUTED
    node = rendered.models["int_instagram__post_metrics"]
    assert node["config"]["materialized"] == "distributed_incremental"
    local, table = rendered.ddl["int_instagram__post_metrics"]
    schema = node["schema"]
    assert CREATE.match(local)["name"] == "int_instagram__post_metrics_local"
    assert ENGINE.findall(local) == ["ReplicatedReplacingMergeTree(ingested_at)"]
    assert CREATE.match(table)["name"] == "int_instagram__post_metrics"
    assert (
        f"ENGINE = Distributed('{CLUSTER}', '{schema}', 'int_instagram__post_metrics_local',"
        " cityHash64(profile_id))"
    ) in table


def test_clickhouse_parses_every_statement_dbt_would_send(
    rendered: Rendered, cluster_server: ClickHouseServer
) -> None:
    for statements in rendered.ddl.values():
        for statement in statements:
            explain(cluster_server, statement)
