"""``ecs-service-fargate-platform-version`` through the real pack: a pinned platform version is judged against
the OS family of the service's task definition when that task definition is in the stack (Linux 1.4.0,
Windows 1.0.0), and against either current version when it is not (or its family is unknown at preview)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.policies.resources import UNKNOWN_OBJECT, UNKNOWN_STRING, res
from tests.policies.tokens import SERVICE, TASK

RULE = "ecs-service-fargate-platform-version"
TASK_ARN = "arn:aws:ecs:eu-west-1:111111111111:task-definition/api:3"


def task(family: str | None, name: str = "api") -> dict[str, Any]:
    """A Fargate task definition; ``family`` is runtimePlatform.operatingSystemFamily (None: unset)."""
    inputs: dict[str, Any] = {
        "family": name, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "1024",
        "memory": "2048", "containerDefinitions": json.dumps([{"name": name, "image": "app@sha256:" + "a" * 64}])}
    if family == "unknown":
        inputs["runtimePlatform"] = UNKNOWN_OBJECT
    elif family is not None:
        inputs["runtimePlatform"] = {"operatingSystemFamily": family, "cpuArchitecture": "X86_64"}
    return res(TASK, name, inputs)


def service(version: str | None, definition: dict[str, Any] | None, *, link: str = "property") -> dict[str, Any]:
    """The judged service "r"; ``link`` is how its taskDefinition names ``definition``: the engine's property
    dependency, only the service's dependencies, or the value (the task definition's family)."""
    inputs: dict[str, Any] = {"name": "api", "cluster": "arn:aws:ecs:eu-west-1:111111111111:cluster/c",
                              "launchType": "FARGATE", "taskDefinition": TASK_ARN}
    if version is not None:
        inputs["platformVersion"] = version
    opts: dict[str, Any] = {}
    if definition is not None and link == "property":
        opts = {"dependencies": [definition], "property_dependencies": {"taskDefinition": [definition]}}
    elif definition is not None and link == "dependency":
        opts = {"dependencies": [definition]}
    elif definition is not None and link == "value":
        inputs["taskDefinition"] = definition["inputs"]["family"]
    return res(SERVICE, "r", inputs, **opts)


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


@pytest.mark.parametrize(("family", "version"), [
    (None, "1.4.0"), ("LINUX", "1.4.0"), ("WINDOWS_SERVER_2022_CORE", "1.0.0"),
    ("WINDOWS_SERVER_2019_FULL", "1.0.0"), ("LINUX", "LATEST"), ("WINDOWS_SERVER_2022_FULL", None),
])
def test_a_pin_to_the_current_version_of_the_tasks_family_passes(policy_findings: Any, family: str | None,
                                                                  version: str | None) -> None:
    definition = task(family)
    assert messages(policy_findings([definition, service(version, definition)], env="prod")) == []


@pytest.mark.parametrize("link", ["property", "dependency", "value"])
def test_a_linux_service_pinned_to_the_windows_version_fails(policy_findings: Any, link: str) -> None:
    """Windows' current 1.0.0 is Linux's retired first runtime: the rule accepted it for every service."""
    definition = task(None)
    found = messages(policy_findings([definition, service("1.0.0", definition, link=link)], env="prod"))
    assert len(found) == 1, found
    assert "runs Linux tasks (task definition 'api')" in found[0] and "pinned to Fargate platform version 1.0.0" \
        in found[0] and "Linux's current version is 1.4.0" in found[0], found


def test_a_windows_service_pinned_to_the_linux_version_fails(policy_findings: Any) -> None:
    definition = task("WINDOWS_SERVER_2022_CORE")
    found = messages(policy_findings([definition, service("1.4.0", definition)], env="prod"))
    assert len(found) == 1 and "Windows's current version is 1.0.0" in found[0], found


def test_an_old_pin_fails_whatever_the_family(policy_findings: Any) -> None:
    found = messages(policy_findings([service("1.3.0", None)], env="prod"))
    assert len(found) == 1 and "pinned to Fargate platform version 1.3.0" in found[0], found


@pytest.mark.parametrize("where", ["other-stack", "unknown-family"])
def test_without_the_tasks_family_either_current_version_passes(policy_findings: Any, where: str) -> None:
    """The task definition of another stack (its ARN as text), or one whose family is unknown at preview:
    the family cannot be told, so today's judgement (either current version) stays."""
    resources = [service("1.0.0", None)] if where == "other-stack" else \
        [definition := task("unknown"), service("1.0.0", definition)]
    assert messages(policy_findings(resources, env="prod")) == []
    resources = [service("1.4.0", None)] if where == "other-stack" else \
        [definition := task("unknown"), service("1.4.0", definition)]
    assert messages(policy_findings(resources, env="prod")) == []


def test_an_unknown_platform_version_leaves_the_rule_undecided(policy_result: Any) -> None:
    definition = task(None)
    result = policy_result([definition, service(UNKNOWN_STRING, definition)], env="prod")
    assert not [f for f in result.findings if f.rule == RULE]
    reasons = [na.reason for na in result.not_applicable if na.rule == RULE]
    assert reasons and "service 'r': platformVersion" in reasons[0], reasons


def test_services_not_on_fargate_are_not_applicable(policy_result: Any) -> None:
    ec2 = res(SERVICE, "r", {"name": "api", "launchType": "EC2", "platformVersion": "1.0.0"})
    result = policy_result([ec2], env="prod")
    assert not [f for f in result.findings if f.rule == RULE]
    assert any("runs on Fargate" in na.reason for na in result.not_applicable if na.rule == RULE)


def test_a_known_bad_pin_is_reported_beside_a_service_still_unknown(policy_findings: Any) -> None:
    definition = task("LINUX")
    other = res(SERVICE, "other", {"launchType": "FARGATE", "platformVersion": UNKNOWN_STRING})
    found = messages(policy_findings([definition, service("1.0.0", definition), other], env="prod"))
    assert len(found) == 1 and "service 'r' runs Linux tasks" in found[0], found
