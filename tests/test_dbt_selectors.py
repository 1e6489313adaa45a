"""The named dbt selectors (transform/selectors.yml) that every build runs with.

Each tier builds `dbt build --selector tier_<name>` (stir/domain/tiers.py), the shared staging
layer `--selector shared_layer` and the daily holder `--selector data_quality`
(stir/tasks/shared_layer.py). Here dbt itself lists what each selector selects (`dbt ls
--selector`, on a parse of the project: no database), and the lists are compared with the
tags the models carry, which say who owns each model.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dbt.cli.main import dbtRunner
from dbt.contracts.graph.manifest import Manifest

from stir.domain.tiers import DATA_QUALITY, SHARED, TIERS, Tier, WindowRole
from stir.tasks.shared_layer import DAILY_SELECTOR, SELECTOR

PROJECT = Path(__file__).resolve().parent.parent / "transform"


class DbtLs:
    """`dbt ls` in this process, on one parse of the project (a selector's listing takes
    milliseconds instead of a parse each)."""

    def __init__(self, work: Path) -> None:
        self.common = [
            "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
            "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
            "--quiet", "--no-send-anonymous-usage-stats",
        ]  # fmt: skip
        parsed = dbtRunner().invoke(["parse", *self.common])
        assert parsed.success, parsed.exception
        self.manifest: Manifest = parsed.result
        self.runner = dbtRunner(manifest=self.manifest)
        self.nodes: dict[str, Any] = json.loads((work / "target" / "manifest.json").read_text())[
            "nodes"
        ]

    def __call__(self, *args: str, resource_type: str = "model") -> set[str]:
        listed = self.runner.invoke(
            ["ls", *args, "--resource-type", resource_type, "--output", "name", *self.common]
        )
        assert listed.success, listed.exception
        return set(listed.result)

    def selector(self, name: str, resource_type: str = "model") -> set[str]:
        return self(f"--selector={name}", resource_type=resource_type)

    def named(self, resource_type: str, tag: str | None = None) -> set[str]:
        """The names of the project's nodes of a type (with `tag`, those carrying it)."""
        return {
            node["name"]
            for node in self.nodes.values()
            if node["resource_type"] == resource_type
            and (tag is None or tag in node.get("tags", []))
        }


@pytest.fixture(scope="module")
def ls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbtLs]:
    # The profile reads STIR_CLICKHOUSE_* with defaults; `dbt ls` never connects.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        yield DbtLs(tmp_path_factory.mktemp("dbt-selectors"))


def test_selectors_yml_names_each_tier_the_shared_layer_and_the_daily_run() -> None:
    declared = yaml.safe_load((PROJECT / "selectors.yml").read_text())["selectors"]
    names = [selector["name"] for selector in declared]
    expected = [SELECTOR, DAILY_SELECTOR, *(tier.dbt_selector for tier in TIERS)]
    assert sorted(names) == sorted(expected)
    assert all(selector["description"] for selector in declared)


@pytest.mark.parametrize("tier", TIERS, ids=lambda tier: tier.name)
def test_a_tier_builds_with_its_selector_exactly_the_models_of_its_tag(
    ls: DbtLs, tier: Tier
) -> None:
    assert tier.dbt_build_args[:3] == ["build", "--selector", tier.dbt_selector]
    models = ls.selector(tier.dbt_selector)
    assert models  # every tier owns models
    assert models == ls.named("model", tier.name)


def test_every_model_is_built_by_exactly_one_tier_or_the_shared_layer(ls: DbtLs) -> None:
    selections = {tier.name: ls.selector(tier.dbt_selector) for tier in TIERS}
    selections[SHARED] = ls.selector(SELECTOR)
    assert selections[SHARED] == ls.named("model", SHARED) == ls("--select", "path:models/staging")
    times_built = Counter(model for models in selections.values() for model in models)
    assert {model for model, count in times_built.items() if count > 1} == set()
    assert ls.named("model") - set(times_built) == set()  # no model left to no one


@pytest.mark.parametrize("tier", TIERS, ids=lambda tier: tier.name)
def test_a_tier_runs_the_tests_that_read_only_its_models_but_no_full_history_test(
    ls: DbtLs, tier: Tier
) -> None:
    """The selector keeps the tier's former `--select tag:<tier> --indirect-selection
    cautious` semantics, less the daily data-quality tests."""
    tests = ls.selector(tier.dbt_selector, resource_type="test")
    cautious = ls("--select", f"tag:{tier.name}", "--indirect-selection", "cautious",
                  resource_type="test")  # fmt: skip
    assert tests == cautious - ls.named("test", DATA_QUALITY)
    owned = ls.named("model", tier.name)
    for node in ls.nodes.values():
        if node["name"] in tests and node["resource_type"] == "test":
            parents = {p.split(".")[-1] for p in node["depends_on"]["nodes"] if ".model." in p}
            assert parents <= owned, node["name"]


def test_full_history_tests_run_in_the_daily_holders_window_only(ls: DbtLs) -> None:
    """The full-history tests of the shared layer run in the holder's data-quality build; those
    that also read a tier's mart (the monitoring marts against the whole log) run after the
    holder's build, as its tests that read another owner's models, never in a fast tier."""
    full_history = ls.named("test", DATA_QUALITY)
    # the scrape log's key, and the reconciliations of the monitoring marts against the whole log
    reconciliations = {"assert_stale_profiles_match_log", "assert_scrape_health_matches_log"}
    assert {
        "stg_beat__scrape_requests_request_id_unique_over_the_whole_log"
    } | reconciliations <= full_history
    fast = [ls.selector(SELECTOR, "test")] + [ls.selector(t.dbt_selector, "test") for t in TIERS]
    assert all(not (tests & full_history) for tests in fast)
    daily = ls.selector(DAILY_SELECTOR, "test")
    manifest = {"nodes": ls.nodes}
    cross = {t.name: {uid.split(".")[2] for uid in t.cross_owner_tests(manifest)} for t in TIERS}
    holder = next(t.name for t in TIERS if t.window is WindowRole.HOLDER)
    assert daily - full_history == ls.selector(SELECTOR, "test")
    assert reconciliations <= cross[holder]
    assert full_history == (daily & full_history) | (cross[holder] & full_history)
    assert not daily & cross[holder]  # each runs once
    assert all(not tests & full_history for tier, tests in cross.items() if tier != holder)


def test_the_shared_layer_tests_of_the_scrape_log_read_its_last_day_only(ls: DbtLs) -> None:
    shared_tests = ls.selector(SELECTOR, "test")
    of_the_log = {
        node["name"]: node["config"].get("where") or ""
        for node in ls.nodes.values()
        if node["resource_type"] == "test"
        and node["name"] in shared_tests
        and any(p.startswith("model.stir.stg_beat__") for p in node["depends_on"]["nodes"])
    }
    assert len(of_the_log) >= 10
    unbounded = [name for name, where in of_the_log.items() if "__newest_started_at__" not in where]
    assert unbounded == []
