"""The layers of the package stay layers: each imports only what is below it.

    stir.cli, stir.console        the command line and its progress display, on top of everything
    stir.deployments              Prefect deployments of the tiers (work pool, serve, alerts)
    stir.flows                    Prefect flows: a tier run, the batch window, ad-hoc flows
    stir.tasks                    Prefect tasks, each wrapping one thing of the layers below
    stir.serving, stir.dbt_project, stir.stack, stir.sources
                                  the sync, the dbt project, the local stack, the data generator:
                                  plain Python, no Prefect
    stir.settings, stir.clickhouse, stir.connections, stir.locks, stir.errors, stir.progress
                                  settings and clients, progress reports
    stir.domain                   tiers and served-table declarations: data and rules, no I/O

Read from the source with `ast` (imports inside functions count too), so a violation fails
before anything runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "stir"

# Layer of each module prefix; a module may import only its own layer or lower ones.
LAYERS: dict[str, int] = {
    "stir.domain": 0,
    "stir.settings": 1,
    "stir.errors": 1,
    "stir.clickhouse": 1,
    "stir.connections": 1,
    "stir.locks": 1,
    "stir.progress": 1,
    "stir.serving": 2,
    "stir.dbt_project": 2,
    "stir.lineage": 2,
    "stir.stack": 2,
    "stir.sources": 2,
    "stir.tasks": 3,
    "stir.flows": 4,
    "stir.deployments": 5,
    "stir.cli": 6,
    "stir.console": 6,
}
PREFECT_FREE = 2  # this layer and those below never import Prefect
# The domain is plain data and rules: the standard library and pydantic, nothing that does I/O.
DOMAIN_MAY_IMPORT = ("pydantic", "stir.domain")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int | None:
    matches = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    missing = [_module_name(p) for p in MODULES if _layer(_module_name(p)) is None]
    missing = [m for m in missing if m != "stir"]
    assert not missing, f"add these modules to a layer in {__file__}: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_a_module_imports_only_its_layer_and_those_below(path: Path) -> None:
    module = _module_name(path)
    layer = _layer(module)
    if layer is None:
        return
    problems = []
    for imported in _imports(path):
        top = imported.split(".")[0]
        if top == "stir":
            other = _layer(imported)
            if other is not None and other > layer:
                problems.append(f"{imported} (a higher layer)")
        elif (top == "prefect" or top.startswith("prefect_")) and layer <= PREFECT_FREE:
            problems.append(f"{imported} (Prefect, in a layer that must run without it)")
        outside_domain = top != "stir" and not imported.startswith(DOMAIN_MAY_IMPORT)
        if layer == 0 and outside_domain and top not in _stdlib():
            problems.append(f"{imported} (the domain uses the standard library and pydantic)")
    assert not problems, f"{module} imports " + "; ".join(problems)


def _stdlib() -> frozenset[str]:
    import sys

    return frozenset(sys.stdlib_module_names) | {"__future__"}


def test_no_top_level_packages_but_stir_are_installed() -> None:
    """Stir installs under its own name only: no `flows`, `tasks` or `deployments` in
    site-packages beside other projects'."""
    import tomllib

    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    # transform/ is not a package: it goes in as stir/project/transform (see `sources`).
    assert wheel["only-include"] == ["stir", "transform"]
    assert wheel["sources"] == {"transform": "stir/project/transform"}
