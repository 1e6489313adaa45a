"""The deployments derive from the tier definitions, and the tier flow behaves in the window."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SlackRecorder, window_held
from prefect.client.orchestration import get_client
from prefect.flows import load_flow_from_entrypoint

from stir.deployments.tiers import ONE_RUN_AT_A_TIME, render_prefect_yaml
from stir.domain.tiers import TIERS, TIME_ZONE, WindowRole
from stir.flows.tier import SKIPPED, TIER_FLOWS, flow_of
from stir.settings import PrefectSettings

WORK_POOL = PrefectSettings().work_pool

ROOT = Path(__file__).resolve().parent.parent
STIR = str(Path(sys.executable).parent / "stir")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """dbt's manifest of transform/ (a parse: no database)."""
    from stir.dbt_project import parse_manifest

    return asyncio.run(parse_manifest(target_path=tmp_path_factory.mktemp("parse") / "target"))


def prefect_yaml() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def tier_deployments() -> list[dict]:
    return [d for d in prefect_yaml()["deployments"] if "adhoc" not in d["tags"]]


def test_prefect_yaml_declares_exactly_the_tiers_in_order() -> None:
    names = [deployment["name"] for deployment in tier_deployments()]
    assert names == [t.name for t in TIERS]


def test_the_committed_prefect_yaml_is_generated_from_the_tier_definitions() -> None:
    """`prefect deploy --all` from a checkout registers what `stir deploy` registers."""
    assert (ROOT / "prefect.yaml").read_text() == render_prefect_yaml(), (
        "prefect.yaml is out of date: run `stir prefect-yaml > prefect.yaml`"
    )


def test_adhoc_deployments_have_no_schedule_and_load() -> None:
    adhoc = {d["name"]: d for d in prefect_yaml()["deployments"] if "adhoc" in d["tags"]}
    assert set(adhoc) == {"sync-table", "rollback-table"}
    for deployment in adhoc.values():
        assert "schedules" not in deployment
        assert load_flow_from_entrypoint(deployment["entrypoint"]).name == deployment["name"]


@pytest.mark.parametrize("spec", TIERS, ids=[t.name for t in TIERS])
def test_each_entrypoint_loads_its_tiers_flow_with_its_timeout_and_retries(spec) -> None:
    """What a worker loads carries the tier's definition: timeout, retries, a closed `tier`."""
    deployment = next(d for d in tier_deployments() if d["name"] == spec.name)
    loaded = load_flow_from_entrypoint(deployment["entrypoint"])  # a module of the package
    assert loaded.name == "tier"
    assert loaded.timeout_seconds == spec.timeout.total_seconds()
    assert loaded.retries == spec.retries
    schema = loaded.parameters.model_dump()
    tier_enum = schema["definitions"]["TierName"]["enum"]
    assert tier_enum == [t.name for t in TIERS]  # a dropdown of the seven tiers
    assert schema["properties"]["tier"]["default"] == spec.name


async def test_a_tier_flow_refuses_another_tiers_name() -> None:
    with pytest.raises(ValueError, match="does not run collections"):
        await TIER_FLOWS["core"].fn("collections")


def test_exactly_one_tier_holds_the_window() -> None:
    holders = [t.name for t in TIERS if t.window is WindowRole.HOLDER]
    assert holders == ["leaderboards"]


@pytest.fixture
def pg_env(postgres, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tier takes its lock in PostgreSQL before anything else: point Stir at the test one."""
    monkeypatch.setenv("STIR_POSTGRES_DSN", postgres.dsn)


@pytest.mark.usefixtures("prefect_api", "pg_env")
async def test_a_fast_tier_inside_the_window_ends_skipped_not_failed(slack: SlackRecorder) -> None:
    async with window_held():
        state = await flow_of("core")("core", return_state=True)
    assert slack.messages == []  # a skip is not an incident
    assert state.is_completed()
    assert state.name == SKIPPED
    assert "batch window" in state.message


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


async def _stir(*args: str) -> tuple[int, str]:
    env = {**os.environ, "STIR_PREFECT_API_URL": _api_url(), "PREFECT_API_URL": _api_url()}
    process = await asyncio.create_subprocess_exec(
        STIR, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, output.decode()


@pytest.mark.usefixtures("prefect_api", "pg_env")
async def test_stir_run_of_a_skipped_tier_exits_zero_and_says_why() -> None:
    async with window_held():
        code, output = await _stir("run", "collections")
        verbose_code, verbose_output = await _stir("run", "collections", "--verbose")
    assert code == 0, output
    assert "tier collections: Skipped" in output
    assert "batch window" in output
    # The flow's own log lines went to the file named first, not to the terminal...
    first, *_ = output.splitlines()
    assert first.startswith("logs: "), output
    assert "Finished in state Skipped" not in output
    logged = await asyncio.to_thread(Path(first[6:]).read_text)
    assert "Finished in state Skipped" in logged
    # ...unless asked for.
    assert verbose_code == 0, verbose_output
    assert "logs: " not in verbose_output
    assert "Finished in state Skipped" in verbose_output


@pytest.mark.usefixtures("prefect_api")
async def test_stir_serve_registers_the_seven_scheduled_deployments() -> None:
    env = {**os.environ, "STIR_PREFECT_API_URL": _api_url()}
    process = await asyncio.create_subprocess_exec(
        STIR, "serve", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        deployments: dict[str, object] = {}
        async with get_client() as client:
            for _ in range(120):
                deployments = {d.name: d for d in await client.read_deployments()}
                if all(t.name in deployments for t in TIERS):
                    break
                await asyncio.sleep(0.5)
        for spec in TIERS:
            deployment = deployments[spec.name]
            assert deployment.parameters == {"tier": spec.name}
            assert [s.schedule.cron for s in deployment.schedules] == [spec.cron]
            assert deployment.schedules[0].schedule.timezone == TIME_ZONE
            assert deployment.global_concurrency_limit.limit == 1
            assert deployment.work_pool_name is None
        # `stir deploy` would turn them into work-pool deployments under serve's feet: refused.
        code, output = await _stir("deploy")
        assert code == 1, output
        assert "already registered by `stir serve`" in output
        assert "prefect deployment delete 'tier/core'" in output
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        async with get_client() as client:
            for deployment in await client.read_deployments():
                await client.delete_deployment(deployment.id)


@pytest.mark.usefixtures("prefect_api")
async def test_stir_deploy_registers_prefect_yaml_with_the_work_pool() -> None:
    code, output = await _stir("deploy")
    assert code == 0, output
    async with get_client() as client:
        deployments = {d.name: d for d in await client.read_deployments()}
        pool = await client.read_work_pool(WORK_POOL)
    assert pool.type == "process"
    for spec in TIERS:
        deployment = deployments[spec.name]
        assert deployment.work_pool_name == WORK_POOL
        assert [s.schedule.cron for s in deployment.schedules] == [spec.cron]
        assert deployment.schedules[0].schedule.timezone == TIME_ZONE
        assert deployment.entrypoint == spec.entrypoint
        assert deployment.description == spec.description
        assert deployment.parameters == {"tier": spec.name}
        assert deployment.tags == spec.tags
        # At most one run at a time; a collision drops the newcomer, never queues.
        assert deployment.global_concurrency_limit.limit == 1
        assert deployment.concurrency_options.collision_strategy == "CANCEL_NEW"
        assert deployment.pull_steps in (None, [])  # the worker runs its installed Stir
    # The tier is a closed choice: a run of another value is refused when it is created.
    async with get_client() as client:
        with pytest.raises(Exception, match="nope"):
            await client.create_flow_run_from_deployment(
                deployments["core"].id, parameters={"tier": "nope"}
            )
    # `stir serve` on the same server would re-register them without the pool: refused.
    code, output = await _stir("serve")
    assert code == 1, output
    assert "already registered by `stir deploy`" in output


@pytest.mark.usefixtures("prefect_api")
async def test_stir_deploy_to_a_docker_pool_gives_each_run_the_image_and_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A docker pool's runs get the worker image and the deploying environment's settings as job
    variables; secrets stay out of the deployment (they come from blocks)."""
    image = "registry.example/stir:1.2.3"
    monkeypatch.setenv("STIR_PREFECT_WORK_POOL", "stir-docker")
    monkeypatch.setenv("STIR_S3_BUCKET", "prod-bucket")
    monkeypatch.setenv("STIR_POSTGRES_DSN", "postgresql://app:hunter2-secret@db.internal/app")
    monkeypatch.setenv("STIR_POSTGRES_DSN_BLOCK", "stir-postgres-dsn")
    code, output = await _stir("deploy", "--pool-type", "docker", "--image", image)
    assert code == 0, output
    async with get_client() as client:
        pool = await client.read_work_pool("stir-docker")
        deployments = {d.name: d for d in await client.read_deployments()}
    assert pool.type == "docker"
    for spec in TIERS:
        deployment = deployments[spec.name]
        assert deployment.work_pool_name == "stir-docker"
        variables = deployment.job_variables
        assert variables["image"] == image
        assert variables["env"]["STIR_S3_BUCKET"] == "prod-bucket"
        assert variables["env"]["STIR_POSTGRES_DSN_BLOCK"] == "stir-postgres-dsn"
        assert "hunter2" not in deployment.model_dump_json()
    # Without an image there is nothing to run: a usage error, nothing registered.
    code, output = await _stir("deploy", "--pool-type", "docker")
    assert code == 2, output
    assert "--image" in output


@pytest.mark.usefixtures("prefect_api")
async def test_a_deployment_never_runs_two_flow_runs_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three runs of one deployment come due together: one runs, the others are cancelled."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.runner import Runner

    monkeypatch.setenv("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    slow = load_flow_from_entrypoint(f"{ROOT / 'tests/flows/slow_flow.py'}:slow_tier")
    runner = Runner(name="one-run-at-a-time", query_seconds=1)
    deployment_id = await runner.aadd_flow(
        slow, name="slow", parameters={"tier": "core"}, concurrency_limit=ONE_RUN_AT_A_TIME
    )
    serving = asyncio.create_task(runner.start())
    try:
        async with get_client() as client:
            runs = [await client.create_flow_run_from_deployment(deployment_id) for _ in range(3)]
            for _ in range(120):
                found = await client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
                )
                if len(found) == 3 and all(r.state and r.state.is_final() for r in found):
                    break
                await asyncio.sleep(0.5)
    finally:
        await runner.astop()
        serving.cancel()
    states = sorted(r.state.type.value for r in found)
    assert {r.id for r in found} == {r.id for r in runs}
    assert states == ["CANCELLED", "CANCELLED", "COMPLETED"], states
    cancelled = [r.state.message for r in found if r.state.is_cancelled()]
    assert cancelled == ["Deployment concurrency limit reached."] * 2


def test_a_tier_reads_only_its_own_and_earlier_tiers_models(manifest: dict) -> None:
    """TIERS is the dependency order `stir pipeline` runs them in: on a fresh platform every
    tier must find what it reads already built, so no model reads a later tier's model."""
    order = {spec.name: index for index, spec in enumerate(TIERS)}
    nodes = manifest["nodes"]

    def tier_of(node: dict) -> int | None:
        tiers = [order[tag] for tag in node.get("tags", []) if tag in order]
        return tiers[0] if tiers else None

    def upstream_tiers(unique_id: str, seen: set[str]) -> set[int]:
        found = set()
        for parent in nodes[unique_id]["depends_on"]["nodes"]:
            if parent in seen or parent not in nodes:
                continue
            seen.add(parent)
            tier = tier_of(nodes[parent])
            found |= {tier} if tier is not None else upstream_tiers(parent, seen)
        return found

    late = []
    for unique_id, node in nodes.items():
        own = tier_of(node)
        if node["resource_type"] == "model" and own is not None:
            later = {t for t in upstream_tiers(unique_id, set()) if t > own}
            late += [(node["name"], TIERS[own].name, TIERS[t].name) for t in later]
    assert late == []


def test_the_readme_lists_exactly_the_served_tables(manifest: dict) -> None:
    """The README's served-table list is what `stir tables --markdown` prints from the project."""
    from stir.cli import served_tables_markdown

    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- served-tables:start -->\n", "<!-- served-tables:end -->"
    listed = readme[readme.index(start) + len(start) : readme.index(end)]
    assert listed == served_tables_markdown(manifest), "update it: stir tables --markdown"
