"""dbt-clickhouse against the embedded ClickHouse: the dbt CLI, as a user runs it, once with
`driver: http` (clickhouse-connect) and once with `driver: native` (clickhouse-driver).

The project in tests/dbt_conformance has a seed, a view, an incremental and a table model with
schema tests. The source table is created here; dbt writes its target and logs to a temporary
directory so that the checkout stays clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from conftest import ClickHouseServer

PROJECT = Path(__file__).parent / "dbt_conformance"
DBT = Path(sys.executable).parent / "dbt"
SCHEMA, RAW = "dbt_conformance", "dbt_conformance_raw"

ORDERS = [
    (1, "alice", "placed", 10.5, "2024-01-01 00:00:00"),
    (2, "bob", "shipped", 20.0, "2024-01-02 00:00:00"),
    (3, "alice", "delivered", 5.25, "2024-01-03 00:00:00"),
]


@pytest.fixture(scope="module", params=["http", "native"])
def driver(request: pytest.FixtureRequest) -> str:
    """The dbt-clickhouse driver: every test below runs once per protocol."""
    return request.param


@pytest.fixture(scope="module")
def client(clickhouse: ClickHouseServer, driver: str) -> Iterator[Client]:
    """A fresh source table with three orders, and no trace of an earlier dbt run."""
    ch = clickhouse_connect.get_client(host=clickhouse.host, port=clickhouse.http_port)
    ch.command(f"DROP DATABASE IF EXISTS {SCHEMA}")
    ch.command(f"DROP DATABASE IF EXISTS {RAW}")
    ch.command(f"CREATE DATABASE {RAW}")
    ch.command(
        f"CREATE TABLE {RAW}.orders (order_id UInt32, customer String, status String, "
        "amount Float64, updated_at DateTime) ENGINE = MergeTree ORDER BY order_id"
    )
    insert_orders(ch, ORDERS)
    yield ch
    ch.close()


def insert_orders(ch: Client, rows: list[tuple[int, str, str, float, str]]) -> None:
    values = ", ".join(f"({i}, '{c}', '{s}', {a}, '{t}')" for i, c, s, a, t in rows)
    ch.command(f"INSERT INTO {RAW}.orders VALUES {values}")


@dataclass
class Dbt:
    """The dbt CLI in a subprocess, pointed at the test server and the conformance project."""

    env: dict[str, str]
    work: Path

    @property
    def target(self) -> Path:
        return self.work / "target"

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(DBT), *args, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
        return subprocess.run(
            command, env=self.env, cwd=self.work, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip

    def results(self) -> dict[str, dict[str, Any]]:
        """The last command's run_results.json, by node name."""
        data = json.loads((self.target / "run_results.json").read_text())
        return {r["unique_id"].split(".")[2]: r for r in data["results"]}


@pytest.fixture(scope="module")
def dbt(
    clickhouse: ClickHouseServer,
    client: Client,
    driver: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Dbt:
    work = tmp_path_factory.mktemp(f"dbt-{driver}")
    port = clickhouse.http_port if driver == "http" else clickhouse.native_port
    env = {
        **os.environ,
        "DBT_CLICKHOUSE_HOST": clickhouse.host,
        "DBT_CLICKHOUSE_DRIVER": driver,
        "DBT_CLICKHOUSE_PORT": str(port),
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    return Dbt(env, work)


@pytest.fixture(scope="module")
def built(dbt: Dbt) -> subprocess.CompletedProcess[str]:
    return dbt("build")


def test_dbt_debug_connects(dbt: Dbt) -> None:
    debug = dbt("debug")
    assert debug.returncode == 0, debug.stdout
    assert "Connection test: [OK connection ok]" in debug.stdout
    assert "All checks passed!" in debug.stdout


def test_dbt_build_seed_view_incremental_table_and_tests(
    dbt: Dbt, built: subprocess.CompletedProcess[str], client: Client
) -> None:
    assert built.returncode == 0, built.stdout
    statuses = {name: r["status"] for name, r in dbt.results().items()}
    assert statuses.pop("order_statuses") == "success"
    for model in ("stg_orders", "orders_current", "customer_totals"):
        assert statuses.pop(model) == "success"
    assert len(statuses) == 7  # the schema tests, every one of them passing
    assert set(statuses.values()) == {"pass"}

    engines = dict(
        client.query(
            f"SELECT name, engine FROM system.tables WHERE database = '{SCHEMA}'"
        ).result_rows
    )
    assert engines == {
        "order_statuses": "MergeTree",
        "stg_orders": "View",
        "orders_current": "MergeTree",
        "customer_totals": "MergeTree",
    }
    totals = client.query(
        f"SELECT customer, orders, total_amount, final_orders FROM {SCHEMA}.customer_totals "
        "ORDER BY customer"
    ).result_rows
    assert totals == [("alice", 2, Decimal("15.75"), 1), ("bob", 1, Decimal("20.00"), 0)]


def test_dbt_docs_generate_catalogs_every_model(
    dbt: Dbt, built: subprocess.CompletedProcess[str]
) -> None:
    docs = dbt("docs", "generate")
    assert docs.returncode == 0, docs.stdout
    catalog = json.loads((dbt.target / "catalog.json").read_text())
    assert not catalog.get("errors")
    nodes = catalog["nodes"]
    kinds = {key.split(".")[-1]: node["metadata"]["type"] for key, node in nodes.items()}
    assert kinds == {
        "order_statuses": "table",
        "stg_orders": "view",
        "orders_current": "table",
        "customer_totals": "table",
    }
    columns = nodes["model.dbt_conformance.orders_current"]["columns"]
    assert {name: column["type"] for name, column in columns.items()} == {
        "order_id": "UInt32",
        "customer": "String",
        "status": "String",
        "amount": "Decimal(18, 2)",
        "updated_at": "DateTime",
    }


def test_incremental_second_run_adds_new_rows_and_updates_without_duplicates(
    dbt: Dbt, built: subprocess.CompletedProcess[str], client: Client
) -> None:
    assert built.returncode == 0, built.stdout
    # Order 2 changes (a later version of it), order 4 is new, 1 and 3 are untouched.
    insert_orders(
        client,
        [
            (2, "bob", "delivered", 22.0, "2024-02-01 00:00:00"),
            (4, "carol", "placed", 7.0, "2024-02-02 00:00:00"),
        ],
    )
    run = dbt("run", "--select", "orders_current")
    assert run.returncode == 0, run.stdout
    assert dbt.results()["orders_current"]["status"] == "success"
    rows = client.query(
        f"SELECT order_id, customer, status, amount FROM {SCHEMA}.orders_current ORDER BY order_id"
    ).result_rows
    assert rows == [
        (1, "alice", "placed", Decimal("10.50")),
        (2, "bob", "delivered", Decimal("22.00")),
        (3, "alice", "delivered", Decimal("5.25")),
        (4, "carol", "placed", Decimal("7.00")),
    ]
    test = dbt("test", "--select", "orders_current")
    assert test.returncode == 0, test.stdout
    assert {r["status"] for r in dbt.results().values()} == {"pass"}


def test_dbt_test_reports_a_violated_schema_test(
    dbt: Dbt, built: subprocess.CompletedProcess[str], client: Client
) -> None:
    """The schema tests really look at the data: a status outside the accepted set fails one."""
    insert_orders(client, [(5, "dave", "lost", 1.0, "2024-03-01 00:00:00")])
    assert dbt("run", "--select", "orders_current").returncode == 0
    test = dbt("test", "--select", "orders_current")
    assert test.returncode == 1, test.stdout
    failed = {name: r for name, r in dbt.results().items() if r["status"] != "pass"}
    assert list(failed) == [
        "accepted_values_orders_current_status__placed__shipped__delivered__cancelled"
    ]
    assert failed[next(iter(failed))]["failures"] == 1
