"""Names and declarations of the sync: identifier quoting, the 63-byte limit, `from_meta`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stir.domain.declaration import (
    DeclarationError,
    Enrichment,
    Gates,
    IndexSpec,
    ServedTable,
    served_tables,
)
from stir.serving.naming import (
    backup_name,
    fit,
    incoming_name,
    incoming_prefix,
    index_name,
    index_role,
    new_run_id,
    quote_ident,
    s3_run_prefix,
    s3_table_prefix,
)
from stir.serving.types import pg_type


def test_quote_ident_doubles_quotes_and_refuses_nul() -> None:
    assert quote_ident("plain") == '"plain"'
    assert quote_ident('we"ird; DROP TABLE x') == '"we""ird; DROP TABLE x"'
    with pytest.raises(ValueError, match="identifier"):
        quote_ident("a\x00b")


def test_generated_names_fit_postgres_limit_without_colliding() -> None:
    long_a, long_b = "a" * 60 + "_one", "a" * 60 + "_two"
    run_id = new_run_id()
    for table in (long_a, long_b, "short"):
        for name in (incoming_name(table, run_id), backup_name(table), index_name(table, "pkey")):
            assert len(name.encode()) <= 63
        assert incoming_name(table, run_id).startswith(incoming_prefix(table))
    assert incoming_name(long_a, run_id) != incoming_name(long_b, run_id)
    assert backup_name(long_a) != backup_name(long_b)
    assert fit("é" * 40) != fit("é" * 41)
    assert backup_name("t") == "t_old_bkp"
    assert index_name("t", index_role(["a", "b"])) == "t_a_b_idx"
    assert index_role(["a"], unique=True, method="gin") == "a_gin_key"
    assert s3_run_prefix("/stir/", "app", "t", run_id) == f"stir/app/t/{run_id}/"
    assert s3_table_prefix("", "app", "t") == "app/t/"
    for schema, table in (("a/b", "t"), ("app", "b/t"), ("", "t")):
        with pytest.raises(ValueError, match="for an S3 key"):
            s3_run_prefix("stir", schema, table, run_id)
    with pytest.raises(ValueError, match="run id"):
        incoming_name("t", "../x")


def test_served_table_from_dbt_meta() -> None:
    decl = ServedTable.from_meta(
        "account_metrics",
        {"serve": {"table": "app.account_metrics", "keys": ["account_id"],
                   "indexes": ["handle", ["platform", "followers"],
                               {"columns": "tags", "using": "GIN"}],
                   "format": "json", "gates": {"min_ratio": 0.8, "allow_drop_columns": True},
                   "enrich": {"join": "app.accounts", "on": "accounts.id = account_id",
                              "columns": {"account_name": "name"}}}},
        {"account_id": {"data_type": "UInt64"}, "handle": {}, "platform": {},
         "followers": {}, "tags": {}},
        database="marts",
    )  # fmt: skip
    assert decl.model == "marts.account_metrics"
    assert (decl.schema, decl.table, decl.keys, decl.format) == (
        "app", "account_metrics", ("account_id",), "json",
    )  # fmt: skip
    assert decl.columns == ("account_id", "handle", "platform", "followers", "tags")
    assert decl.indexes == (
        IndexSpec(("handle",)),
        IndexSpec(("platform", "followers")),
        IndexSpec(("tags",), using="gin"),
    )
    assert decl.gates == Gates(min_ratio=0.8, allow_drop_columns=True)
    assert decl.enrich == (
        Enrichment("app.accounts", "accounts.id = account_id", (("account_name", "name"),)),
    )


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"serve": {"keys": ["id"]}}, "needs at least `table`"),
        ({"serve": {"table": "t", "keys": ["nope"]}}, r"keys \['nope'\] are not columns"),
        ({"serve": {"table": "t", "gates": {"min_rows": 1}}}, "unknown gate settings"),
        ({"serve": {"table": "t", "format": "parquet"}}, "format must be csv, tsv or json"),
        ({"serve": {"table": "t", "enrich": [{"join": "x.y"}]}}, "needs `join`, `on`"),
        ({"serve": {"table": "t", "indexes": [{"columns": ["id"], "using": "x; --"}]}}, "method"),
    ],
)
def test_bad_declarations_name_the_model(meta: dict, message: str) -> None:
    with pytest.raises(DeclarationError, match=message):
        ServedTable.from_meta("m", meta, ["id"])


def test_served_tables_from_a_dbt_manifest() -> None:
    manifest = {
        "nodes": {
            "model.stir.mart_a": {
                "resource_type": "model", "name": "mart_a", "alias": "mart_a", "schema": "marts",
                "config": {"meta": {"serve": {"table": "a", "keys": ["id"]}}},
                "columns": {"id": {"data_type": "UInt64"}, "v": {"data_type": "String"}},
            },
            "model.stir.int_b": {"resource_type": "model", "name": "int_b", "config": {}},
            "test.stir.x": {"resource_type": "test", "name": "x", "meta": {"serve": {}}},
        }
    }  # fmt: skip
    (only,) = served_tables(manifest)
    assert (only.model, only.table, only.keys, only.columns) == (
        "marts.mart_a", "a", ("id",), ("id", "v"),
    )  # fmt: skip


def test_every_served_mart_in_the_dbt_project_is_a_valid_declaration() -> None:
    """Each `meta.serve` in transform/ parses, and every column type of it maps to PostgreSQL."""
    found = 0
    for path in sorted(Path(__file__).parents[1].glob("transform/models/**/*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            meta = (model.get("config") or {}).get("meta") or model.get("meta") or {}
            if "serve" not in meta:
                continue
            columns = {c["name"]: c for c in model.get("columns", [])}
            decl = ServedTable.from_meta(model["name"], meta, columns)
            found += 1
            for spec in decl.indexes:
                assert set(spec.columns) <= set(columns), f"{path}: {model['name']} {spec}"
            for column in columns.values():
                if column.get("data_type"):
                    pg_type(column["data_type"])  # raises UnsupportedType naming the type
            assert len(index_name(decl.table, "pkey").encode()) <= 63
    if not found:
        pytest.skip("no served marts declared yet")
