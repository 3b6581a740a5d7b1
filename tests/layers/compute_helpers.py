"""Reading the synthesized compute layer (and the upstream layers it was fed) in tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from shared.catalog import Catalog
from shared.synth.engine import synth_env
from tests.iam_eval import as_list
from tests.synth_helpers import by_name, of_type

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
CLUSTER = "aws:ecs/cluster:Cluster"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KEY = "aws:kms/key:Key"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
ENVS = ["dev", "staging", "prod"]
#: the ``edit_catalog`` fixture (tests/layers/conftest.py): a change to the shipped catalog's data -> it, active
CatalogEditor = Callable[[Callable[[dict[str, Any]], None]], Catalog]


def ecs_rolls_back(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    """The mock provider answers as after an ECS circuit-breaker rollback whose wait ended steady: ``service``'s ECS
    service reads back the previous task definition revision, not the one the program registered."""
    from shared.synth.mocks import PlatformMocks

    original = PlatformMocks.new_resource

    def rolled_back(mocks: PlatformMocks, args: Any) -> Any:
        resource_id, state = original(mocks, args)
        if args.typ == SERVICE and args.name == service:
            state = {**state, "taskDefinition": f"{state['taskDefinition']}-previous"}
        return resource_id, state

    monkeypatch.setattr(PlatformMocks, "new_resource", rolled_back)


@cache
def platform(env: str) -> dict[str, dict[str, Any]]:
    """Every layer of ``env`` as committed (cached: the env files do not change during a run)."""
    return synth_env(env)


def fresh(env: str) -> dict[str, dict[str, Any]]:
    """Every layer of ``env`` from the env files in force now (PLATFORM_ENV_DIR), not cached."""
    return synth_env(env)


def containers(task_definition: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(task_definition["inputs"]["containerDefinitions"])


def container(task_definition: dict[str, Any], name: str) -> dict[str, Any]:
    (match,) = [c for c in containers(task_definition) if c["name"] == name]
    return match


def environment(container_definition: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container_definition.get("environment", [])}


def policy(resource: dict[str, Any], key: str = "policy") -> dict[str, Any]:
    return json.loads(resource["inputs"][key])


def statements(resource: dict[str, Any], key: str = "policy") -> list[dict[str, Any]]:
    return policy(resource, key)["Statement"]


def actions(resource: dict[str, Any]) -> set[str]:
    return {action for statement in statements(resource) for action in as_list(statement["Action"])}


def unit(doc: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """One ECS service's resources by kind (``name`` = service, or ``service-version`` for a canary)."""
    return {
        "task": by_name(doc, TASK, name),
        "service": by_name(doc, SERVICE, name),
        "log_group": by_name(doc, LOG_GROUP, name),
        "execution_role": by_name(doc, ROLE, f"{name}-execution"),
        "execution_policy": by_name(doc, ROLE_POLICY, f"{name}-execution"),
        "task_role": by_name(doc, ROLE, f"{name}-task"),
        "scaling_target": by_name(doc, SCALING_TARGET, name),
    }


def task_policy(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    matches = [r for r in of_type(doc, ROLE_POLICY) if r["name"] == f"{name}-task"]
    return matches[0] if matches else None
