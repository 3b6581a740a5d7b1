"""AWS count limits the env file and the catalog decide (shared.aws_limits): the env loader refuses a hard one before
any layer runs (exit 2 naming the file and key), the account preflight compares an adjustable one with the quota."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.aws_limits import CLOUD_MAP_INSTANCES_PER_NAMESPACE_CODE
from shared.envs import load_env
from shared.errors import ConfigError, ConfigErrors


def problems_of(name: str) -> list[ConfigError]:
    try:
        load_env(name)
    except ConfigErrors as raised:
        return raised.problems
    except ConfigError as raised:
        return [raised]
    return []


def cloud_map_problems(name: str) -> list[str]:
    return [f"{p.file}: {p.key}: {p.reason}" for p in problems_of(name) if "Cloud Map" in p.reason]


def counts(max_count: int) -> dict[str, int]:
    return {"desired_count": 1, "min_count": 1, "max_count": max_count}


def test_500_tasks_of_a_service_fit_its_cloud_map_service(edit_env: Any, env_dir: Path) -> None:
    edit_env("staging", lambda data: data.setdefault("services", {}).update(inference=counts(500)))
    assert cloud_map_problems("staging") == []


def test_a_max_count_past_1000_cloud_map_instances_exits_2_naming_the_key(edit_env: Any, env_dir: Path) -> None:
    """501 tasks, 1002 during a rolling deployment (200 %): Cloud Map registers at most 1,000 instances per service,
    a limit AWS does not raise, so the loader refuses the env before any layer."""
    edit_env("staging", lambda data: data.setdefault("services", {}).update(inference=counts(501)))
    found = cloud_map_problems("staging")
    assert len(found) == 1, found
    assert "staging.yaml: services.inference.max_count: 501 tasks" in found[0]
    assert "1002 Cloud Map instances" in found[0] and "keep max_count at most 500" in found[0]


def test_canary_versions_share_their_services_cloud_map_service(edit_env: Any, env_dir: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["mesh"] = {"provider": "appmesh", "appmesh_end_of_support_acknowledged": True, "canaries": {
            "inference": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]}}
        data.setdefault("services", {})["inference"] = counts(251)

    edit_env("staging", change)
    found = cloud_map_problems("staging")
    assert len(found) == 1 and "for each of its 2 canary versions" in found[0] and "1004 Cloud Map" in found[0], found


def test_the_preflight_counts_the_envs_tasks_against_the_namespace_quota(
        edit_env: Any, env_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task registers in the env's one namespace: the preflight compares the desired tasks (and, as a note, the
    peak) with the account's 'Instances per namespace' (2,000 by default, adjustable)."""
    from shared.orchestrate.account import quota_needs

    edit_env("staging", lambda data: data.setdefault("services", {}).update(inference={
        "desired_count": 300, "min_count": 1, "max_count": 450}))
    env = load_env("staging")
    [need] = [n for n in quota_needs(env, ["compute"]) if n.quota_code == CLOUD_MAP_INSTANCES_PER_NAMESPACE_CODE]
    others = [env.services[name] for name in env.release.images if name != "inference"]  # staging's own counts
    assert need.service_code == "AWSCloudMap" and need.layer == "compute"
    assert need.need == 300 + sum(other.desired_count for other in others)
    assert need.peak == (450 + sum(other.max_count for other in others)) * 2  # a rolling deployment runs 200 %
