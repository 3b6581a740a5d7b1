"""Given an env (either mesh provider), a second `up` with no change leaves every task definition alone:
the container definitions compute sends are equivalent, by the AWS provider's own comparison, to what ECS
returns for them.

``container_definitions`` forces a replacement (a new revision, and every ECS service rolls its tasks)
whenever the provider finds the state it read back from ``DescribeTaskDefinition`` different from the
program's JSON. The provider first reduces both sides (terraform-provider-aws,
``internal/service/ecs/container_definitions.go``, ``containerDefinitionsAreEquivalent``): containers,
environment and secrets sorted by name, ``essential`` defaulting to true, health-check interval, retries
and timeout defaulted, ``protocol: tcp`` dropped, ``hostPort`` set to ``containerPort`` in awsvpc mode, and
the container's top-level empty lists (``mountPoints``, ``volumesFrom``, ``portMappings``, ...) dropped.
Nothing else: nested values must already match what ECS returns. ECS returns a container's
``linuxParameters.capabilities`` with both of KernelCapabilities' lists, ``add: []`` included when only
``drop`` was sent (the read-back reported in braintrustdata/terraform-aws-braintrust-data-plane#335, where a
definition without ``add`` was replaced on every plan, and by a live RegisterTaskDefinition with
``initProcessEnabled`` and ``drop: [ALL]`` that came back with ``add: []`` added).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.layers.compute_helpers import ENVS, TASK, containers, fresh, platform
from tests.synth_helpers import of_type

#: Container fields the provider's reduce sets to nil when empty (its "Set all empty slices to nil").
EMPTY_TO_NIL = ("command", "credentialSpecs", "dependsOn", "dnsSearchDomains", "dnsServers", "dockerSecurityOptions",
                "entryPoint", "environment", "environmentFiles", "extraHosts", "links", "mountPoints", "portMappings",
                "resourceRequirements", "secrets", "systemControls", "ulimits", "volumesFrom")
#: Top-level list fields ECS returns (empty) for a container that sent none.
RETURNED_EMPTY = ("environment", "mountPoints", "portMappings", "systemControls", "volumesFrom")


def described(definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The container definitions as DescribeTaskDefinition returns them for a RegisterTaskDefinition of
    ``definitions`` in awsvpc mode: API defaults filled in, nothing the caller sent changed."""
    result = copy.deepcopy(definitions)
    for container in result:
        container.setdefault("cpu", 0)
        for key in RETURNED_EMPTY:
            container.setdefault(key, [])
        for mapping in container["portMappings"]:
            mapping.setdefault("hostPort", mapping["containerPort"])
            mapping.setdefault("protocol", "tcp")
        capabilities = container.get("linuxParameters", {}).get("capabilities")
        if capabilities is not None:
            capabilities.setdefault("add", [])
            capabilities.setdefault("drop", [])
    return result


def reduced(definitions: list[dict[str, Any]]) -> str:
    """The provider's reduce, then its canonical JSON (a missing field and a nil one encode alike)."""
    result = []
    for original in sorted(definitions, key=lambda c: c["name"]):
        container = copy.deepcopy(original)
        for key in ("environment", "secrets"):
            if key in container:
                container[key] = sorted(container[key], key=lambda item: item["name"])
        container.setdefault("essential", True)
        if "healthCheck" in container:
            for key, default in (("interval", 30), ("retries", 3), ("timeout", 5)):
                container["healthCheck"].setdefault(key, default)
        for mapping in container.get("portMappings", []):
            if mapping.get("protocol") == "tcp":
                del mapping["protocol"]
            if not mapping.get("hostPort"):
                mapping.pop("hostPort", None)
            mapping.setdefault("hostPort", mapping["containerPort"])  # awsvpc
        for key in EMPTY_TO_NIL:
            if container.get(key) == []:
                del container[key]
        if not container.get("cpu"):  # an int32 in the SDK's ContainerDefinition: 0 and absent are one value
            container.pop("cpu", None)
        result.append(container)
    return json.dumps(result, sort_keys=True)


def assert_stable(doc: dict[str, Any]) -> None:
    tasks = of_type(doc, TASK)
    assert tasks
    for task in tasks:
        sent = containers(task)
        assert reduced(described(sent)) == reduced(sent), task["name"]


@pytest.mark.parametrize("env", ENVS)
def test_a_second_up_finds_the_service_connect_task_definitions_unchanged(env: str) -> None:
    assert_stable(platform(env)["compute"])


def test_a_second_up_finds_the_app_mesh_task_definitions_unchanged(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    doc = fresh("dev")["compute"]
    assert any(c["name"] == "envoy" for task in of_type(doc, TASK) for c in containers(task))
    assert_stable(doc)


def test_the_comparison_sees_a_real_change() -> None:
    def definition(added: list[str]) -> list[dict[str, Any]]:
        return [{"name": "app", "image": "repo@sha256:" + "a" * 64, "linuxParameters": {
            "capabilities": {"add": added, "drop": ["ALL"]}}}]
    sent, changed = definition([]), definition(["SYS_PTRACE"])
    assert reduced(described(sent)) == reduced(sent)
    assert reduced(described(changed)) != reduced(sent)
