"""How images reach each env's registry (ECR replication, synthesized) and how long `up` waits for ECS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.envs import env_names, load_env
from shared.errors import ConfigError
from tests.layers.compute_helpers import ENVS, SERVICE, fresh, platform
from tests.synth_helpers import of_type

REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
REGISTRY_POLICY = "aws:ecr/registryPolicy:RegistryPolicy"


def compute(env: str) -> dict[str, Any]:
    return platform(env)["compute"]


# -- steady state -------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_every_ecs_service_waits_for_steady_state_within_the_env_timeout(env: str) -> None:
    minutes = load_env(env).compute.steady_state_timeout_minutes
    services = of_type(compute(env), SERVICE)
    assert services
    for service in services:
        assert service["inputs"]["waitForSteadyState"] is True, service["name"]
        assert service["custom_timeouts"] == {"create": f"{minutes}m", "update": f"{minutes}m",
                                              "delete": f"{minutes}m"}, service["name"]


def test_the_steady_state_timeout_follows_the_env_key(edit_env: Any) -> None:
    edit_env("staging", lambda data: data["compute"].update(steady_state_timeout_minutes=45))
    for service in of_type(fresh("staging")["compute"], SERVICE):
        assert service["custom_timeouts"] == {"create": "45m", "update": "45m", "delete": "45m"}


def test_a_timeout_outside_the_allowed_range_is_refused(edit_env: Any) -> None:
    path = edit_env("dev", lambda data: data["compute"].update(steady_state_timeout_minutes=1))
    with pytest.raises(ConfigError) as error:
        load_env("dev")
    assert error.value.key == "compute.steady_state_timeout_minutes" and error.value.file.endswith(path.name)


# -- replication --------------------------------------------------------------------------------------


def test_dev_replicates_the_platform_repositories_to_every_env_that_reads_from_it() -> None:
    (replication,) = of_type(compute("dev"), REPLICATION)
    (rule,) = replication["inputs"]["replicationConfiguration"]["rules"]
    assert rule["repositoryFilters"] == [{"filter": "ml-platform/", "filterType": "PREFIX_MATCH"}]
    readers = [env for env in env_names() if load_env(env).compute.image_source == "dev"]  # by name: prod, staging
    assert {"prod", "staging"} <= set(readers)
    expected = [{"region": load_env(env).region, "registryId": load_env(env).account_id} for env in readers]
    assert rule["destinations"] == expected
    assert not of_type(compute("dev"), REGISTRY_POLICY)  # dev receives nothing


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_a_replica_registry_lets_only_the_source_account_replicate_into_its_platform_repos(env: str) -> None:
    target = load_env(env)
    (policy,) = of_type(compute(env), REGISTRY_POLICY)
    (statement,) = json.loads(policy["inputs"]["policy"])["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{load_env('dev').account_id}:root"}
    # No ecr:CreateRepository: compute creates the repositories (KMS, immutable tags) before replication.
    assert statement["Action"] == ["ecr:ReplicateImage"]
    assert statement["Resource"] == f"arn:aws:ecr:{target.region}:{target.account_id}:repository/ml-platform/*"
    assert not of_type(compute(env), REPLICATION)  # only the source registry replicates


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_preflight_knows_the_registry_settings_compute_writes(env: str) -> None:
    # shared.images.registry_settings tells compute's statements and rules from someone else's: what the synth
    # writes must count as compute's (or the second `up` would be refused), in either JSON form ECR may hand back
    from shared.components.image_replication import Registry, is_platform_rule, is_platform_statement

    target = Registry.of(load_env(env))
    (policy,) = of_type(compute(env), REGISTRY_POLICY)
    (statement,) = json.loads(policy["inputs"]["policy"])["Statement"]
    assert is_platform_statement(statement, target)
    assert is_platform_statement({**statement, "Action": "ecr:ReplicateImage", "Resource": [statement["Resource"]]},
                                 target)
    assert not is_platform_statement({**statement, "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"]}, target)
    assert not is_platform_statement({**statement, "Resource": statement["Resource"].replace("ml-platform/*", "*")},
                                     target)
    assert not is_platform_statement({**statement, "Sid": "OrgReplication"}, target)
    (replication,) = of_type(compute("dev"), REPLICATION)
    (rule,) = replication["inputs"]["replicationConfiguration"]["rules"]
    assert is_platform_rule(rule)
    assert not is_platform_rule({**rule, "repositoryFilters": [{"filter": "team/", "filterType": "PREFIX_MATCH"}]})
    assert not is_platform_rule({"destinations": rule["destinations"]})  # every repository


def test_an_env_that_stops_reading_from_dev_leaves_dev_replication_and_loses_its_policy(edit_env: Any) -> None:
    edit_env("prod", lambda data: data["compute"].pop("image_source"))
    (replication,) = of_type(fresh("dev")["compute"], REPLICATION)
    destinations = replication["inputs"]["replicationConfiguration"]["rules"][0]["destinations"]
    assert [d["registryId"] for d in destinations] == [load_env("staging").account_id]
    assert not of_type(fresh("prod")["compute"], REGISTRY_POLICY)


def test_without_replicas_dev_has_no_replication_configuration(edit_env: Any) -> None:
    for env in ("staging", "prod"):
        edit_env(env, lambda data: data["compute"].pop("image_source"))
    assert not of_type(fresh("dev")["compute"], REPLICATION)


def test_cross_region_replication_in_one_account_needs_no_registry_policy(edit_env: Any) -> None:
    dev = load_env("dev")
    edit_env("staging", lambda data: data.update(account_id=dev.account_id, region="eu-central-1"))
    assert not of_type(fresh("staging")["compute"], REGISTRY_POLICY)
    (replication,) = of_type(fresh("dev")["compute"], REPLICATION)
    destinations = replication["inputs"]["replicationConfiguration"]["rules"][0]["destinations"]
    assert {"region": "eu-central-1", "registryId": dev.account_id} in destinations


@pytest.mark.parametrize("source, change, reason", [
    ("staging", None, "names this env itself"),
    ("qa", None, "unknown environment 'qa'"),
    ("prod", None, "prod itself receives its images from dev"),
    ("dev", "same-registry", "same ECR registry"),
])
def test_a_bad_image_source_is_refused_naming_the_key(source: str, change: str | None, reason: str,
                                                      edit_env: Any) -> None:
    if change == "same-registry":
        dev = load_env("dev")
        edit_env("staging", lambda data: data.update(account_id=dev.account_id, region=dev.region))
    path: Path = edit_env("staging", lambda data: data["compute"].update(image_source=source))
    with pytest.raises(ConfigError) as error:
        load_env("staging")
    assert error.value.key == "compute.image_source" and error.value.file.endswith(path.name)
    assert reason in error.value.reason
