"""The lineage people browse: dbt's docs site of Stir's project, generated with Stir's settings
and served on loopback (`stir docs`), and the link from a served table to its model's page.

The site is dbt's own: `index.html`, `manifest.json` (every node, its SQL, the parent and child
maps: sources -> staging -> intermediate -> marts -> exposures) and `catalog.json` (the column
types ClickHouse reports for what exists). dbt generates it in a Stir workspace
(`dbt_workspace`: the profile written from the settings, a private target folder), so the catalog
comes from the configured ClickHouse. Offline (`empty_catalog`) it needs no server: the catalog is
empty and the SQL is not compiled (dbt's compile asks the database).

The server is the standard library's `ThreadingHTTPServer` in a thread of this process, bound to
127.0.0.1 and answering for the three files only, whatever else the folder holds. dbt's own
`docs serve` would `chdir` the process into the folder and serve all of it, and a subprocess
would need its own start, readiness and shutdown handling for no gain.

A served table's docs page is `<base>/#!/model/<unique_id>`; `model_docs_url` builds it from
STIR_DOCS_URL, where the team hosts the site (default: the local `stir docs` address).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from stir.dbt_project import DbtError, dbt_workspace
from stir.settings import EMBEDDED_S3_KEYS, Settings

HOST = "127.0.0.1"  # never another interface: the site shows every model's SQL
DEFAULT_PORT = 8580
PROJECT = "stir"  # dbt_project.yml's `name`: the middle part of every unique id
SITE_FILES = ("index.html", "manifest.json", "catalog.json")
# Vars of the docs' dbt run that must stay out of the site: compiled SQL inlines what the
# project's macros read (s3_drop inlines the S3 keys). Without them s3_drop compiles to a keyless
# s3() call, which documents the model as well.
_SECRET_VARS = ("access_key_id", "secret_access_key")
# What `docs generate` compiles and catalogs: the relations, not the ~1,100 data tests (with
# them it takes three times the CPU; their SQL stays as written). The manifest has every node.
_COMPILED = ["--select", "resource_type:model", "resource_type:source", "resource_type:seed"]
_COMPILED += ["resource_type:snapshot", "--indirect-selection", "empty"]


def local_docs_url(port: int = DEFAULT_PORT) -> str:
    """Where `stir docs` serves the site on this machine."""
    return f"http://{HOST}:{port}"


def model_unique_id(relation: str) -> str:
    """dbt's unique id (`model.stir.<name>`) of the model a served table comes from, by the
    relation its declaration names (`ServedTable.model`: `database.name` or `name`).

    The project gives no served model an alias (tests/test_lineage.py checks), so the
    relation's name is the model's.
    """
    return f"model.{PROJECT}.{relation.rpartition('.')[2]}"


def docs_page(base_url: str, unique_id: str) -> str:
    """The page of `unique_id` in the docs site at `base_url` (a folder, or its index.html)."""
    base = base_url if base_url.endswith(("/", ".html")) else base_url + "/"
    return f"{base}#!/model/{unique_id}"


def model_docs_url(settings: Settings, unique_id: str) -> str:
    """The page of a model in the team's docs site (STIR_DOCS_URL)."""
    return docs_page(settings.stack.docs_url, unique_id)


@dataclass(frozen=True)
class DocsSite:
    folder: Path
    manifest: dict[str, Any]
    catalog: dict[str, Any]
    seconds: float

    @property
    def catalogued(self) -> int:
        """Relations (models, sources, ...) whose columns the catalog holds."""
        return len(self.catalog.get("nodes", {})) + len(self.catalog.get("sources", {}))


def _first_error(events: list[str], limit: int = 400) -> str:
    """dbt's first error, its lines joined (dbt splits one message over several)."""
    text = " ".join(events[0].split()) if events else ""
    return text.removeprefix("Encountered an error:").strip()[:limit]


@contextlib.contextmanager
def _quiet_clients() -> Iterator[None]:
    """dbt reports a failed connection itself; the HTTP clients under dbt-clickhouse would log
    each of their retries on the console too. (urllib3's pool logger itself: clickhouse_connect
    sets the level of `urllib3` when dbt imports it.)"""
    names = ("urllib3.connectionpool", "clickhouse_connect")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _dbt(args: list[str], what: str) -> None:
    """Run one dbt command in this process; a failure raises DbtError with dbt's first error."""
    from dbt.cli.main import dbtRunner

    errors: list[str] = []

    def collect(event: Any) -> None:
        if event.info.level == "error" and event.info.msg:
            errors.append(str(event.info.msg))

    # dbt-clickhouse's catalog of a database without tables builds agate tables with no
    # columns, and agate warns about each missing column: noise, not a problem.
    with warnings.catch_warnings(), _quiet_clients():
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="agate")
        result = dbtRunner(callbacks=[collect]).invoke([*args, "--log-level", "none"])
    if not result.success:
        detail = _first_error(errors) or str(result.exception or "see dbt's log")
        raise DbtError(f"dbt {what} failed: {detail}")


def generate_site(settings: Settings, out: Path, *, empty_catalog: bool = False) -> DocsSite:
    """Generate dbt's docs site of Stir's project into `out` (created; the three site files
    replaced, nothing else touched)."""
    started = time.monotonic()
    with dbt_workspace(settings, name="docs") as workspace:
        target = workspace.target
        drops = workspace.vars.get("stir_s3") or {}
        keyless = {k: v for k, v in drops.items() if k not in _SECRET_VARS}
        docs_vars = {**workspace.vars, "stir_s3": keyless}
        common = ["--project-dir", str(workspace.project_dir)]
        common += ["--profiles-dir", str(workspace.profiles_dir), "--log-path", str(workspace.logs)]
        common += ["--target-path", str(target), "--vars", json.dumps(docs_vars)]
        if empty_catalog:
            # dbt's compile queries the database, and `docs generate` writes no manifest
            # without it: `parse` writes the manifest (raw SQL only), `docs generate` the rest.
            _dbt(["parse", *common], "parse")
            _dbt(["docs", "generate", "--no-compile", "--empty-catalog", *common], "docs generate")
        else:
            try:
                _dbt(["docs", "generate", *_COMPILED, *common], "docs generate")
            except DbtError as exc:
                raise DbtError(
                    f"{exc}; is ClickHouse up at {settings.clickhouse.http_url}? "
                    "(--empty-catalog needs none)"
                ) from None
        missing = [name for name in SITE_FILES if not (target / name).is_file()]
        if missing:
            raise DbtError(f"dbt docs generate wrote no {', '.join(missing)}")
        _refuse_secrets(settings, target)
        out.mkdir(parents=True, exist_ok=True)
        for name in SITE_FILES:
            shutil.copyfile(target / name, out / name)
    return DocsSite(
        folder=out,
        manifest=json.loads((out / "manifest.json").read_text()),
        catalog=json.loads((out / "catalog.json").read_text()),
        seconds=time.monotonic() - started,
    )


def _refuse_secrets(settings: Settings, target: Path) -> None:
    """A site that would carry a secret of the settings is not written: it is meant to be
    hosted for the team. The embedded S3 server's keys are no secret (they are in the source),
    and a value shorter than 8 characters would be found in any text."""
    s3, ch = settings.s3, settings.clickhouse
    secrets = {
        "STIR_CLICKHOUSE_PASSWORD": ch.password.get_secret_value(),
        "STIR_S3_ACCESS_KEY_ID": s3.access_key_id.get_secret_value() if s3.access_key_id else "",
        "STIR_S3_SECRET_ACCESS_KEY": (
            s3.secret_access_key.get_secret_value() if s3.secret_access_key else ""
        ),
    }
    for name in SITE_FILES:
        text = (target / name).read_text(errors="replace")
        for env, secret in secrets.items():
            if len(secret) >= 8 and secret not in EMBEDDED_S3_KEYS and secret in text:
                raise DbtError(
                    f"the docs site's {name} would carry the value of {env}; nothing was written"
                )


class _SiteHandler(SimpleHTTPRequestHandler):
    """The site's three files and nothing else of the folder; no request log on the console."""

    def send_head(self) -> Any:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path == "/":
            path = "/index.html"
        if path.lstrip("/") not in SITE_FILES:
            self.send_error(404, "not part of the docs site")
            return None
        self.path = path
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class PortUnavailable(OSError):
    """The port to serve on is taken (or not ours to take)."""


def site_server(folder: Path, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """A server of the docs site in `folder`, bound to 127.0.0.1:`port` now (before the site is
    generated: a taken port fails at once) and not serving yet (`serving`)."""
    handler = partial(_SiteHandler, directory=str(folder))
    try:
        server = ThreadingHTTPServer((HOST, port), handler)
    except OSError as exc:
        raise PortUnavailable(
            f"cannot listen on {HOST}:{port} ({exc.strerror or exc}); pick another --port"
        ) from None
    return server


@contextlib.contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[str]:
    """Serve from a thread; yields the site's URL, then stops and closes the socket."""
    thread = threading.Thread(target=server.serve_forever, name="stir-docs", daemon=True)
    thread.start()
    try:
        yield local_docs_url(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
