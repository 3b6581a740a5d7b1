"""``ecs-service-autoscaled-count-ignored`` through the real pack: an ECS service that a scalable target scales
ignores its desiredCount -- compliant, non-compliant, unknown at preview, another stack's service, and every
shipped env's compute layer."""

from __future__ import annotations

from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.layers.compute_helpers import fresh
from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import SERVICE, TARGET

RULE = "ecs-service-autoscaled-count-ignored"


def service(name: str = "worker", ignored: tuple[str, ...] = ("desiredCount",)) -> dict[str, Any]:
    return res(SERVICE, name, {"name": name, "cluster": "arn:aws:ecs:eu-west-1:111111111111:cluster/c",
                               "launchType": "FARGATE", "desiredCount": 2}, ignore_changes=list(ignored))


def target(scaled: dict[str, Any] | None, resource_id: str = "service/c/worker",
           namespace: str = "ecs") -> dict[str, Any]:
    links: dict[str, Any] = {"dependencies": [scaled], "property_dependencies": {"resourceId": [scaled]}} \
        if scaled else {}
    return res(TARGET, "worker", {"resourceId": resource_id, "scalableDimension": "ecs:service:DesiredCount",
                                  "serviceNamespace": namespace, "minCapacity": 1, "maxCapacity": 4}, **links)


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def test_a_scaled_service_that_ignores_its_count_passes(policy_findings: Any, policy_not_applicable: Any) -> None:
    scaled = service()
    resources = [scaled, target(scaled)]
    assert messages(policy_findings(resources)) == []
    assert not [na for na in policy_not_applicable(resources) if na["rule"] == RULE], "decided"


def test_a_scaled_service_that_manages_its_count_fails(policy_findings: Any) -> None:
    scaled = service(ignored=())
    (message,) = messages(policy_findings([scaled, target(scaled)]))
    assert "ECS service 'worker' is scaled by Application Auto Scaling" in message
    assert 'ignore_changes=["desiredCount"]' in message
    # found by its resourceId alone too (no recorded dependency): service/<cluster>/<name>
    other = service(ignored=("tags",))
    assert len(messages(policy_findings([other, target(None)]))) == 1


def test_an_unknown_resource_id_leaves_the_rule_undecided(policy_findings: Any, policy_not_applicable: Any) -> None:
    resources = [service(ignored=()), target(None, resource_id=UNKNOWN_STRING)]
    assert messages(policy_findings(resources)) == []
    (reason,) = [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert "scalable target 'worker': resourceId unknown until deployment" in reason


def test_another_stacks_service_or_dimension_is_not_applicable(policy_findings: Any,
                                                                policy_not_applicable: Any) -> None:
    for resources in ([service("api", ignored=()), target(None)],  # scales service/c/worker, not in this stack
                      [service(ignored=()), target(None, namespace="dynamodb")]):
        assert messages(policy_findings(resources)) == []
        assert any(na["rule"] == RULE and "scales an ECS service of the stack" in na["reason"]
                   for na in policy_not_applicable(resources))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_platform_service_ignores_its_count(env: str, policy_engine: PolicyEngine) -> None:
    result = evaluate_documents_result([fresh(env)["compute"]], env_name=env, engine=policy_engine)
    assert [f.to_json() for f in result.findings if f.rule == RULE] == []
    assert not [na for na in result.not_applicable if na.rule == RULE], "decided: every service has a target"
