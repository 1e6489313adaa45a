"""The project's ClickHouse client (`stir.clickhouse.ClickHouse`) against real embedded servers.

Each test starts from settings only, as production code does: pointing the settings at another
server (here a second embedded one, on other ports, with a password) needs no code change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from conftest import ClickHouseServer, free_port, start_clickhouse, stop_process
from pydantic import SecretStr

from stir.clickhouse import ClickHouse, ClickHouseError
from stir.settings import ClickHouseSettings

PASSWORD = "s3cret-Pa55"


def settings_for(server: ClickHouseServer, **overrides: object) -> ClickHouseSettings:
    values: dict[str, object] = {
        "host": server.host,
        "native_port": server.native_port,
        "http_port": server.http_port,
        "password": SecretStr(server.password),
    }
    values.update(overrides)
    return ClickHouseSettings(**values)


@pytest.fixture(scope="module")
def second_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """A server of its own, with a password, so that the session server is not the only one."""
    server = start_clickhouse(tmp_path_factory.mktemp("second") / "data", password=PASSWORD)
    yield server
    stop_process(server.process)


@pytest.fixture
async def client(second_server: ClickHouseServer) -> AsyncIterator[ClickHouse]:
    async with ClickHouse(settings_for(second_server)) as ch:
        yield ch


async def test_ddl_insert_and_parameterised_read(client: ClickHouse) -> None:
    await client.execute("DROP TABLE IF EXISTS people")
    await client.execute(
        "CREATE TABLE people (id UInt64, name String, score Nullable(Float64)) "
        "ENGINE = MergeTree ORDER BY id"
    )
    tricky = "O'Brien; DROP TABLE people; --"
    inserted = await client.insert(
        "people", [(1, "Ada", 1.5), (2, tricky, None), (3, "Zoë", 3.0)], ["id", "name", "score"]
    )
    assert inserted == 3

    # The value travels as a server-side parameter: quotes and SQL inside it are just data.
    rows = await client.fetch(
        "SELECT id, score FROM people WHERE name = {name:String}", {"name": tricky}
    )
    assert rows == [(2, None)]
    assert await client.fetch_value("SELECT count() FROM people") == 3
    assert (
        await client.fetch_value("SELECT name FROM people WHERE id = {id:UInt64}", {"id": 3})
        == "Zoë"
    )


async def test_two_servers_from_settings_alone(
    clickhouse: ClickHouseServer, second_server: ClickHouseServer
) -> None:
    """The same code reaches whichever server the settings name."""
    async with (
        ClickHouse(settings_for(clickhouse)) as first,
        ClickHouse(settings_for(second_server)) as second,
    ):
        await first.execute("CREATE TABLE IF NOT EXISTS where_am_i (x UInt8) ENGINE = Memory")
        assert await first.fetch_value("EXISTS TABLE where_am_i") == 1
        assert await second.fetch_value("EXISTS TABLE where_am_i") == 0


async def test_wrong_password_is_a_clear_error(second_server: ClickHouseServer) -> None:
    async with ClickHouse(settings_for(second_server, password=SecretStr("nope"))) as ch:
        with pytest.raises(ClickHouseError) as caught:
            await ch.fetch("SELECT 1")
    assert caught.value.code == 516
    assert f"127.0.0.1:{second_server.native_port}" in str(caught.value)


async def test_server_error_names_server_code_and_statement(client: ClickHouse) -> None:
    with pytest.raises(ClickHouseError) as caught:
        await client.fetch("SELECT * FROM no_such_table")
    error = caught.value
    assert error.code == 60
    assert f"127.0.0.1:{client.settings.native_port}" in str(error)
    assert "SELECT * FROM no_such_table" in str(error)


async def test_secrets_never_appear_in_errors(second_server: ClickHouseServer) -> None:
    async with ClickHouse(settings_for(second_server), secrets=["extra-token-123"]) as ch:
        statement = (
            f"SELECT * FROM s3('http://127.0.0.1:{free_port()}/bucket/x.csv', "
            "'AKIDEXAMPLE', 'wJalrXUtnFEMIsecret', 'CSV') WHERE 'extra-token-123' != ''"
        )
        with pytest.raises(ClickHouseError) as caught:
            await ch.fetch(statement, settings={"s3_retry_attempts": 0})
    text = str(caught.value)
    assert "wJalrXUtnFEMIsecret" not in text
    assert "AKIDEXAMPLE" not in text
    assert "extra-token-123" not in text
    assert PASSWORD not in text
    assert "s3(" in text  # the statement is still named, with its credentials masked


async def test_unreachable_server_says_what_to_check() -> None:
    settings = ClickHouseSettings(native_port=free_port())
    async with ClickHouse(settings, read_retries=1, connect_timeout=1) as ch:
        with pytest.raises(ClickHouseError) as caught:
            await ch.fetch("SELECT 1")
    message = str(caught.value)
    assert "cannot reach ClickHouse" in message
    assert "STIR_CLICKHOUSE_NATIVE_PORT" in message


async def test_reads_survive_a_server_restart(tmp_path: Path) -> None:
    """A pooled connection broken by a restart is replaced; the read is retried and succeeds."""
    server = start_clickhouse(tmp_path / "data")
    try:
        async with ClickHouse(settings_for(server)) as ch:
            await ch.execute("CREATE TABLE kept (x UInt32) ENGINE = MergeTree ORDER BY x")
            await ch.execute("INSERT INTO kept SELECT number FROM numbers(10)")
            assert await ch.fetch_value("SELECT sum(x) FROM kept") == 45
            stop_process(server.process)
            server = start_clickhouse(
                tmp_path / "data", http_port=server.http_port, native_port=server.native_port
            )
            assert await ch.fetch_value("SELECT sum(x) FROM kept") == 45
    finally:
        stop_process(server.process)


async def test_iter_rows_streams_a_large_result(client: ClickHouse) -> None:
    total = count = 0
    async for (number,) in client.iter_rows(
        "SELECT number FROM numbers({n:UInt64})", {"n": 1_000_000}
    ):
        total += number
        count += 1
    assert count == 1_000_000
    assert total == 999_999 * 1_000_000 // 2


async def test_statements_run_concurrently_from_one_client(client: ClickHouse) -> None:
    results = await asyncio.gather(
        *(client.fetch_value("SELECT {i:UInt8} * 2", {"i": i}) for i in range(8))
    )
    assert results == [i * 2 for i in range(8)]


async def test_time_limit_stops_a_long_statement(second_server: ClickHouseServer) -> None:
    async with ClickHouse(settings_for(second_server), timeout_seconds=1) as ch:
        with pytest.raises(ClickHouseError) as caught:
            await ch.fetch("SELECT count() FROM numbers(100000000000) WHERE sleepEachRow(0) = 0")
    assert caught.value.code == 159  # TIMEOUT_EXCEEDED


async def test_long_statements_report_progress_in_the_log(
    second_server: ClickHouseServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="stir.clickhouse")
    async with ClickHouse(settings_for(second_server), progress_interval=0) as ch:
        total = await ch.fetch_value(
            "SELECT sum(number) FROM numbers({n:UInt64})",
            {"n": 200_000_000},
            settings={"max_block_size": 65_536},
        )
    assert total == 199_999_999 * 200_000_000 // 2
    reports = [r.getMessage() for r in caplog.records if "rows" in r.getMessage()]
    assert reports, "no progress was logged"
    assert "SELECT sum(number) FROM numbers" in reports[-1]
    assert PASSWORD not in " ".join(reports)
