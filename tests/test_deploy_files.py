"""What an operator copies (Dockerfile, deploy/) agrees with the code it runs.

The Dockerfile cannot be built on these machines; tests/test_installed_wheel.py takes its steps.
These checks keep the two, and the host files of deploy/, from drifting apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from test_installed_wheel import BUILD_FILES

from stir.settings import SECTIONS

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENV_TEMPLATE = (ROOT / "deploy" / "stir.env.example").read_text()
UNIT = (ROOT / "deploy" / "stir-worker.service").read_text()


def _instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.startswith(name)]


def _settings() -> set[str]:
    return {cls.env_name(field) for cls in SECTIONS.values() for field in cls.model_fields}


def test_the_env_template_lists_every_setting_and_no_other() -> None:
    named = set(re.findall(r"^#? ?(STIR_[A-Z0-9_]+)=", ENV_TEMPLATE, flags=re.MULTILINE))
    assert named == _settings(), (
        f"missing from deploy/stir.env.example: {sorted(_settings() - named)}; "
        f"not settings of Stir: {sorted(named - _settings())}"
    )


def test_the_worker_unit_runs_the_installed_prefect_with_the_template_settings() -> None:
    assert "EnvironmentFile=/etc/stir/stir.env" in UNIT
    [start] = [line for line in UNIT.splitlines() if line.startswith("ExecStart=")]
    assert start.startswith("ExecStart=/opt/stir/venv/bin/prefect worker start")
    assert "--pool ${STIR_PREFECT_WORK_POOL}" in start
    # The variable the unit expands is set (not commented out) in the template.
    assert re.search(r"^STIR_PREFECT_WORK_POOL=\S+", ENV_TEMPLATE, flags=re.MULTILINE)
    assert "User=stir" in UNIT


def test_the_image_builds_from_the_files_the_wheel_test_builds_from() -> None:
    copied = set()
    for args in _instructions("COPY"):
        if args.startswith("--from"):
            continue
        *sources, _ = args.split()
        copied.update(s.rstrip("/") for s in sources if not s.startswith("requirements/"))
    assert copied == set(BUILD_FILES)


def test_the_image_runs_the_work_pool_command_unchanged_as_a_non_root_user() -> None:
    assert not _instructions("ENTRYPOINT"), (
        "a work pool's `prefect flow-run execute` must run as is"
    )
    [user] = _instructions("USER")
    assert user.strip() not in ("root", "0")
    installs = " ".join(_instructions("RUN"))
    assert "--require-hashes -r /tmp/worker.txt" in installs
    assert "requirements/dev.txt" not in DOCKERFILE  # no test or embedded-stack packages
    assert "pip install --no-deps" in installs
