"""Browsable lineage: `stir docs` serves dbt's docs of the project on loopback, every served table
is read by an exposure, and a tier's artifact links each served table to its model's page.

`stir docs` runs as a user runs it, a process of its own, against the session's embedded
ClickHouse holding the raw tables (the DDL `stir seed` applies; no data, no dbt build): the
catalog then has the sources' column types, which the DDL files tell independently.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ClickHouseServer, free_port, isolated_stir_env

from stir.dbt_project import parse_manifest
from stir.domain.declaration import ServedTable, served_tables
from stir.settings import get_settings
from stir.sources import sql

STIR = str(Path(sys.executable).parent / "stir")
DATABASE = "lineage_docs"  # the marts' database of this module (catalog schemas are its own)
# Keys of a "real" S3 in the settings of the docs run: the site must not carry them.
S3_KEY_ID, S3_SECRET = "AKIALINEAGETESTKEY01", "lineage-test-secret-not-for-docs"
# A served table of the core tier whose chain runs through a staging model of a raw source.
TABLE = "public.instagram_account_metrics"
EXPECTED_TYPES = {"followers": "UInt64", "is_verified": "Bool"}  # raw_instagram.sql's DDL


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """dbt's manifest of the project from `dbt parse`: no database."""
    work = tmp_path_factory.mktemp("lineage-parse")
    patch = isolated_stir_env(work, STIR_STATE_DIR=str(work / "state"))
    try:
        return asyncio.run(parse_manifest(get_settings(), target_path=work / "target"))
    finally:
        patch.undo()


def _served_nodes(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The models with a `meta.serve` block, read straight from the manifest."""
    return {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and "serve" in (node["config"].get("meta") or {})
    }


def _ref(node: dict[str, Any]) -> str:
    """The PostgreSQL table a served model's `meta.serve` names (schema public by default)."""
    table = node["config"]["meta"]["serve"]["table"]
    return table if "." in table else f"public.{table}"


def test_every_served_table_is_read_by_an_exposure(manifest: dict[str, Any]) -> None:
    served = _served_nodes(manifest)
    assert len(served) >= 7  # one per tier at least
    exposures = manifest["exposures"]
    unread = [
        unique_id
        for unique_id in served
        if not any(unique_id in e["depends_on"]["nodes"] for e in exposures.values())
    ]
    assert not unread, (
        f"served models no exposure reads (add them to the app screen that reads them in "
        f"transform/models/marts/<domain>/_<domain>__exposures.yml): {unread}"
    )
    # The docs page of a served table is found by its declaration's model name: no served
    # model may carry an alias that would make the relation's name differ from the model's.
    aliased = [u for u, node in served.items() if node.get("alias") not in (None, node["name"])]
    assert not aliased, f"served models with an alias: {aliased}"
    assert len(served_tables(manifest)) == len(served)


def _ancestors(parent_map: dict[str, list[str]], node: str) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        for parent in parent_map.get(stack.pop(), []):
            if parent not in found:
                found.add(parent)
                stack.append(parent)
    return found


def _apply_raw_schema(clickhouse: ClickHouseServer) -> None:
    """The raw databases and tables, as `stir seed` creates them (idempotent), and the marts'
    database of this module."""
    with httpx.Client(base_url=clickhouse.http_url, timeout=60) as http:
        http.post("/", content=f"CREATE DATABASE IF NOT EXISTS {DATABASE}").raise_for_status()
        for path in sorted(sql.CLICKHOUSE_DDL.glob("*.sql")):
            for statement in sql.statements(path):
                http.post("/", content=statement).raise_for_status()


def _docs_env(clickhouse: ClickHouseServer, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("STIR_")}
    return {
        **env,
        "STIR_STATE_DIR": str(state),
        "STIR_CLICKHOUSE_HTTP_PORT": str(clickhouse.http_port),
        "STIR_CLICKHOUSE_NATIVE_PORT": str(clickhouse.native_port),
        "STIR_CLICKHOUSE_DATABASE": DATABASE,
        "STIR_S3_EMBEDDED": "false",
        "STIR_S3_ACCESS_KEY_ID": S3_KEY_ID,
        "STIR_S3_SECRET_ACCESS_KEY": S3_SECRET,
    }


@pytest.fixture
def docs_server(
    clickhouse: ClickHouseServer, tmp_path: Path
) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    """`stir docs --port <free>` running; yields its port, its site folder and the process."""
    _apply_raw_schema(clickhouse)
    site = tmp_path / "site"
    site.mkdir()
    (site / "notes.txt").write_text("not part of the site")  # the server must not hand it out
    port = free_port()
    log = tmp_path / "stir-docs.log"
    process = subprocess.Popen(
        [STIR, "docs", "--port", str(port), "--out", str(site)],
        cwd=tmp_path,
        env=_docs_env(clickhouse, tmp_path / "state"),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_serving(port, process, log, timeout=240)  # dbt parses and compiles first
        yield port, site, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_until_serving(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    """Until `stir docs` says it serves: it holds its port from the start, while dbt runs."""
    deadline = time.monotonic() + timeout
    while f"serving http://127.0.0.1:{port}" not in log.read_text():
        if process.poll() is not None:
            raise RuntimeError(f"stir docs exited with {process.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"stir docs not serving after {timeout} s:\n{log.read_text()}")
        time.sleep(0.2)


def _listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at `port`, from the kernel's table (Linux)."""
    addresses = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            addresses.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return addresses


def _outward_address() -> str | None:
    """This machine's address on its default route, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only
        except OSError:
            return None
        address = probe.getsockname()[0]
    ip = ipaddress.ip_address(address)
    return None if ip.is_loopback or ip.is_unspecified else address


def test_stir_docs_serves_the_lineage_on_loopback(
    docs_server: tuple[int, Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    port, site, process = docs_server
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        index = http.get("/")
        manifest_response = http.get("/manifest.json")
        catalog_response = http.get("/catalog.json")
        unlisted = http.get("/notes.txt")
    assert index.status_code == 200
    assert "<title>dbt Docs</title>" in index.text
    assert manifest_response.status_code == 200
    assert catalog_response.status_code == 200
    assert unlisted.status_code == 404, "the server hands out files that are no part of the site"
    manifest, catalog = manifest_response.json(), catalog_response.json()

    # The chain of the served table: source -> staging -> ... -> mart -> exposure.
    [mart] = [u for u, n in _served_nodes(manifest).items() if _ref(n) == TABLE]
    readers = [c for c in manifest["child_map"][mart] if c.startswith("exposure.")]
    assert readers, f"no exposure reads {mart}"
    assert manifest["exposures"][readers[0]]["depends_on"]["nodes"].count(mart) == 1
    parents = manifest["parent_map"]
    nodes = manifest["nodes"]
    staging = [
        a for a in _ancestors(parents, mart) if a in nodes and nodes[a]["fqn"][1] == "staging"
    ]
    raw = {p for s in staging for p in parents[s] if p.startswith("source.")}
    assert "source.stir.instagram.account_snapshots" in raw
    # Every served table reaches a source and is read by an exposure, as the site shows it.
    for unique_id in _served_nodes(manifest):
        assert any(a.startswith("source.") for a in _ancestors(parents, unique_id)), unique_id
        assert any(c.startswith("exposure.") for c in manifest["child_map"][unique_id]), unique_id

    # The catalog comes from the configured ClickHouse: the raw table's types as the DDL says.
    source = catalog["sources"]["source.stir.instagram.account_snapshots"]
    assert source["metadata"]["schema"] == "raw_instagram"
    types = {name: source["columns"][name]["type"] for name in EXPECTED_TYPES}
    assert types == EXPECTED_TYPES
    # Compiled with Stir's settings (the marts' database), but without the S3 keys.
    compiled = manifest["nodes"][mart]["compiled_code"]
    assert f"`{DATABASE}_intermediate`." in compiled or f"`{DATABASE}_staging`." in compiled
    drops = manifest["nodes"]["model.stir.stg_drops__categories"]["compiled_code"]
    assert "s3(" in drops
    served_text = manifest_response.text + catalog_response.text + index.text
    assert S3_SECRET not in served_text
    assert S3_KEY_ID not in served_text

    # Loopback only: the listening socket is 127.0.0.1's, and another address of the machine
    # (if it has one) refuses the connection.
    if Path("/proc/net/tcp").exists():
        assert _listening_addresses(port) == {"127.0.0.1"}
    outward = _outward_address()
    if outward is not None:
        with pytest.raises((ConnectionRefusedError, TimeoutError)):
            socket.create_connection((outward, port), timeout=3).close()

    # It printed the site's URL and the served table's page; Ctrl-C stops it, exit 0.
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    output = (tmp_path / "stir-docs.log").read_text()
    assert f"serving http://127.0.0.1:{port}" in output
    page = f"http://127.0.0.1:{port}/#!/model/{mart}"
    assert f"{TABLE}  core  {page}" in output
    assert sorted(p.name for p in site.iterdir()) == [
        "catalog.json",
        "index.html",
        "manifest.json",
        "notes.txt",
    ]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=3).close()


def test_a_taken_port_fails_before_dbt_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("STIR_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [STIR, "docs", "--port", str(port), "--out", str(tmp_path / "site")],
            cwd=tmp_path, env={**env, "STIR_STATE_DIR": str(tmp_path / "state")},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "site").exists()  # the port is checked first: nothing generated


def test_the_tier_artifact_links_each_served_table_to_its_docs_page(
    manifest: dict[str, Any], tmp_path: Path
) -> None:
    from stir.dbt_project import DbtBuildResult
    from stir.flows.tier import _summary_markdown
    from stir.serving.gates import GateReport
    from stir.serving.sync import SyncSummary

    docs_url = "https://docs.example.com/stir"
    patch = isolated_stir_env(tmp_path, STIR_DOCS_URL=docs_url)
    try:
        settings = get_settings()
    finally:
        patch.undo()
    nodes = _served_nodes(manifest)
    by_ref = {_ref(node): unique_id for unique_id, node in nodes.items()}
    swapped, failed, blocked = sorted(served_tables(manifest), key=lambda d: d.ref)[:3]
    summary = SyncSummary(
        ref=swapped.ref, run_id="20261128T200000Z", rows=1234, bytes=56789,
        reused_export=False, phases=(), gates=GateReport(1234, 1200, ("row_count",)),
        backup=f"{swapped.table}_old_bkp", views=(), pruned_runs=(), seconds=1.5,
    )  # fmt: skip
    build = DbtBuildResult(command="build --selector tier_core", seconds=9.0, statuses={})
    synced: list[tuple[ServedTable, Any]] = [(swapped, summary), (failed, RuntimeError("boom"))]
    markdown = _summary_markdown("core", [build], synced, [blocked], settings=settings)

    rows = {line.split(" | ")[0] for line in markdown.splitlines() if line.startswith("| [")}
    # The unique ids come from the manifest's nodes, not from the code under test.
    expected = {
        f"| [{decl.ref}]({docs_url}/#!/model/{by_ref[decl.ref]})"
        for decl in (swapped, failed, blocked)
    }
    assert rows == expected
    assert f"swapped (run {summary.run_id})" in markdown


def test_a_site_carrying_a_secret_of_the_settings_is_refused(tmp_path: Path) -> None:
    from stir.dbt_project import DbtError
    from stir.lineage import SITE_FILES, _refuse_secrets

    patch = isolated_stir_env(
        tmp_path, STIR_S3_EMBEDDED="false", STIR_S3_ACCESS_KEY_ID=S3_KEY_ID,
        STIR_S3_SECRET_ACCESS_KEY=S3_SECRET,
    )  # fmt: skip
    try:
        settings = get_settings()
    finally:
        patch.undo()
    for name in SITE_FILES:
        (tmp_path / name).write_text("{}")
    _refuse_secrets(settings, tmp_path)  # nothing secret: no error
    (tmp_path / "manifest.json").write_text(f"s3('http://x', '{S3_KEY_ID}', '{S3_SECRET}')")
    with pytest.raises(DbtError, match="STIR_S3_ACCESS_KEY_ID") as refused:
        _refuse_secrets(settings, tmp_path)
    assert S3_SECRET not in str(refused.value)
    assert S3_KEY_ID not in str(refused.value)
