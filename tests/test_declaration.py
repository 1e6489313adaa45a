"""`meta.serve` is validated: unknown keys and wrong types fail naming model, key and the fix."""

from __future__ import annotations

import asyncio
import re

import pytest
import yaml
from typer.testing import CliRunner

from stir.domain.declaration import DeclarationError, Gates, ServedTable, served_tables

SERVE_KEYS = (
    "table, schema, keys, indexes, format, transfer, parts, rows_per_part, gates, enrich, diff"
)
GATE_KEYS = (
    "min_ratio, max_ratio, allow_empty, check_keys, allow_drop_columns, allow_retype_columns, "
    "max_changed_fraction"
)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """dbt's manifest of transform/ (a parse: no database)."""
    from stir.dbt_project import parse_manifest

    return asyncio.run(parse_manifest(target_path=tmp_path_factory.mktemp("parse") / "target"))


def declaration_error(serve: dict) -> str:
    with pytest.raises(DeclarationError) as caught:
        ServedTable.from_meta("mart_x", {"serve": {"table": "x", **serve}}, ["id", "v"])
    return str(caught.value)


@pytest.mark.parametrize(
    ("serve", "expected"),
    [
        (
            {"index": ["v"]},
            f"model mart_x: unknown meta.serve key `index` (did you mean `indexes`?); "
            f"allowed: {SERVE_KEYS}",
        ),
        (
            {"gate": {"min_ratio": 0.5}},
            "model mart_x: unknown meta.serve key `gate` (did you mean `gates`?); "
            f"allowed: {SERVE_KEYS}",
        ),
        (
            {"gates": {"min_ration": 0.5}},
            "model mart_x: unknown gate settings key `gates.min_ration` "
            f"(did you mean `min_ratio`?); allowed: {GATE_KEYS}",
        ),
        (
            {"enrich": [{"join": "app.users", "on": "users.id = id", "columns": ["name"],
                         "where": "active"}]},
            "model mart_x: unknown enrichment key `enrich[0].where`; allowed: join, on, columns",
        ),
        (
            {"indexes": ["v", {"columns": ["v"], "uniq": True}]},
            "model mart_x: unknown index key `indexes[1].uniq` (did you mean `unique`?); "
            "allowed: columns, unique, using",
        ),
    ],
)  # fmt: skip
def test_an_unknown_key_names_the_model_the_key_and_the_allowed_keys(
    serve: dict, expected: str
) -> None:
    assert declaration_error(serve) == expected


def test_an_unquoted_on_in_yaml_is_explained() -> None:
    # YAML 1.1 (PyYAML, so dbt) reads a bare `on` key as the boolean true.
    serve = yaml.safe_load("enrich: [{join: app.users, on: users.id = id, columns: [name]}]")
    message = declaration_error(serve)
    assert "enrich[0] needs `join`, `on` and `columns`" in message
    assert 'YAML reads an unquoted `on` as true: write "on"' in message


@pytest.mark.parametrize(
    ("serve", "expected"),
    [
        ({"gates": {"min_ratio": "half"}},
         "gates.min_ratio must be a number >= 0 (new rows >= min_ratio * live rows), not 'half'"),
        ({"gates": {"allow_empty": "no"}}, "gates.allow_empty must be true or false, not 'no'"),
        ({"keys": 5}, "keys must be a column name or a list of them, not 5"),
        ({"keys": ["id", 7]}, "keys[1] is 7; keys takes a column name or a list of them"),
        ({"parts": "4"}, "parts must be a whole number >= 0 (0: one part per rows_per_part rows), "
                         "not '4'"),
        ({"indexes": [3]}, "indexes[0] is 3; indexes takes a list of indexes, each a column, "
                           "a list of columns or {columns: [...], unique: true|false, "
                           "using: <method>}"),
        ({"enrich": {"join": "app.users", "on": "users.id = id", "columns": {"name": 1}}},
         "enrich[0].columns.name is 1; enrich[0].columns takes a non-empty mapping "
         "{new column: joined table's column} or a list of the joined table's columns"),
    ],
)  # fmt: skip
def test_a_wrong_type_names_the_model_the_key_and_what_it_accepts(
    serve: dict, expected: str
) -> None:
    assert declaration_error(serve) == f"model mart_x: {expected}"


def test_every_error_of_a_declaration_is_reported_at_once() -> None:
    message = declaration_error({"format": "parquet", "gates": {"max_ratio": -1}})
    assert message.startswith("model mart_x: format must be csv, tsv or json, not 'parquet'; ")
    assert message.endswith("gates.max_ratio must be a number >= 0 (new rows <= max_ratio * "
                            "live rows) or null, not -1")  # fmt: skip


def test_empty_values_and_shorthands_mean_the_defaults() -> None:
    decl = ServedTable.from_meta(
        "mart_x",
        {"serve": {"table": "x", "schema": "app", "keys": "id", "indexes": None, "gates": None,
                   "enrich": None}},
        ["id"],
    )  # fmt: skip
    assert (decl.ref, decl.keys, decl.indexes, decl.gates, decl.enrich) == (
        "app.x", ("id",), (), Gates(), (),
    )  # fmt: skip


def test_every_served_table_of_the_dbt_project_parses(manifest: dict) -> None:
    declaring = [
        node for node in manifest["nodes"].values()
        if node.get("resource_type") == "model" and "serve" in node["config"].get("meta", {})
    ]  # fmt: skip
    tables = served_tables(manifest)
    assert declaring, "no served marts in transform/"
    assert len(tables) == len(declaring)
    assert len({t.ref for t in tables}) == len(tables), "two marts serve the same table"


def test_stir_tables_reports_a_bad_declaration_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import stir.dbt_project
    from stir.cli import app

    async def parse_manifest_with_a_typo(*_: object) -> dict:
        serve = {"table": "x", "keys": ["id"], "index": ["id"]}
        node = {"resource_type": "model", "name": "mart_x", "tags": ["core"],
                "config": {"meta": {"serve": serve}}, "columns": {"id": {}}}  # fmt: skip
        return {"nodes": {"model.stir.mart_x": node}}

    monkeypatch.setattr(stir.dbt_project, "parse_manifest", parse_manifest_with_a_typo)
    result = CliRunner().invoke(app, ["tables"])
    assert result.exit_code == 2, result.output
    assert re.match(r"error: model mart_x: unknown meta.serve key `index`", result.stderr)
    assert "Traceback" not in result.output
