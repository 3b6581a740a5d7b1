"""``ecs-service-grace-covers-start-period`` through the real pack: a load-balanced ECS service's health check
grace period covers the startPeriod of the container it registers -- compliant, non-compliant, unknown at
preview, and the platform's public gateway (a slow starter included) in every env."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from shared.catalog import CATALOG_ENV_VAR
from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.layers.compute_helpers import ENVS, fresh
from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import SERVICE, TASK
from tests.policies.tokens import TARGET_GROUP as TG
from tests.spec_envs import SPEC_CATALOG
from tests.synth_helpers import gateway_certificate

RULE = "ecs-service-grace-covers-start-period"
#: the platform's public gateway's target group check (shared/components/gateway.py)
GATEWAY_CHECK = {"enabled": True, "path": "/healthz", "matcher": "200-399", "interval": 15, "timeout": 5,
                 "healthyThreshold": 2, "unhealthyThreshold": 3}
TG_ARN = "arn:aws:elasticloadbalancing:eu-west-1:111111111111:targetgroup/web/50dc6c495c0c9188"
CERTIFICATE = "arn:aws:acm:eu-west-1:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def task(start_period: int | None = 240, name: str = "web") -> dict[str, Any]:
    health: dict[str, Any] = {"command": ["CMD-SHELL", "curl -f http://127.0.0.1:8080/health || exit 1"],
                              "interval": 30, "timeout": 5, "retries": 3}
    if start_period is not None:
        health["startPeriod"] = start_period
    containers = [{"name": "web", "image": "repo@sha256:" + "a" * 64, "essential": True, "healthCheck": health}]
    return res(TASK, name, {"family": name, "containerDefinitions": json.dumps(containers)})


def service(definition: dict[str, Any], grace: Any = None, balanced: bool = True,
            target_group: dict[str, Any] | None = None) -> dict[str, Any]:
    inputs: dict[str, Any] = {"name": "web", "launchType": "FARGATE", "taskDefinition": UNKNOWN_STRING}
    if balanced:
        inputs["loadBalancers"] = [{"targetGroupArn": TG_ARN, "containerName": "web", "containerPort": 8080}]
    if grace is not None:
        inputs["healthCheckGracePeriodSeconds"] = grace
    groups = [] if target_group is None else [target_group]
    return res(SERVICE, "web", inputs, dependencies=[definition, *groups],
               property_dependencies={"taskDefinition": [definition], **({"loadBalancers": groups} if groups else {})})


def target_group(health_check: Any = None, protocol: str = "HTTP") -> dict[str, Any]:
    """A target group of the stack; ``health_check`` as the program gives it (None: the block left out)."""
    inputs: dict[str, Any] = {"targetType": "ip", "protocol": protocol, "port": 8080, "vpcId": "vpc-0123456789abcdef0"}
    if health_check is not None:
        inputs["healthCheck"] = health_check
    return res(TG, "web-tasks", inputs)


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def reasons(not_applicable: list[dict[str, Any]]) -> list[str]:
    return [na["reason"] for na in not_applicable if na["rule"] == RULE]


@pytest.mark.parametrize("grace", [240, 270])
def test_a_grace_period_covering_the_start_period_passes(policy_findings: Any, grace: int) -> None:
    definition = task(240)
    assert messages(policy_findings([definition, service(definition, grace)])) == []


@pytest.mark.parametrize(("grace", "said"), [(90, "for 90 s"), (None, "for 0 s")])
def test_a_grace_period_shorter_than_the_start_period_fails(policy_findings: Any, grace: int | None,
                                                             said: str) -> None:
    definition = task(240)
    (message,) = messages(policy_findings([definition, service(definition, grace)]))
    assert f"ECS service 'web' ignores its load balancer's health checks {said}" in message
    assert "container 'web''s health check startPeriod of 240 s" in message and "at least 240" in message


def test_a_service_without_load_balancer_or_start_period_is_not_applicable(
        policy_findings: Any, policy_not_applicable: Any) -> None:
    definition = task(240)
    for resources in ([definition, service(definition, balanced=False)], [task(None), service(task(None))]):
        assert messages(policy_findings(resources)) == []
        assert any("no load-balanced ECS service" in reason for reason in reasons(policy_not_applicable(resources)))


def test_an_unknown_grace_period_or_container_definitions_leave_the_rule_undecided(
        policy_findings: Any, policy_not_applicable: Any) -> None:
    definition = task(240)
    unknown_grace = [definition, service(definition, UNKNOWN_STRING)]
    assert messages(policy_findings(unknown_grace)) == []
    (reason,) = reasons(policy_not_applicable(unknown_grace))
    assert "ECS service 'web': healthCheckGracePeriodSeconds unknown until deployment" in reason
    pending = res(TASK, "web", {"family": "web", "containerDefinitions": UNKNOWN_STRING})
    unknown_containers = [pending, service(pending, 90)]
    assert messages(policy_findings(unknown_containers)) == []
    (reason,) = reasons(policy_not_applicable(unknown_containers))
    assert "task definition 'web': containerDefinitions unknown until deployment" in reason


@pytest.mark.parametrize("env", ENVS)
def test_the_platforms_public_gateway_passes_in_every_env_also_as_a_slow_starter(
        edit_env: Any, policy_engine: PolicyEngine, env: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    data["services"]["gateway"]["startup_seconds"] = 240  # a constant 90 s grace would stop it
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog))
    edit_env(env, lambda doc: doc["compute"].update(public_gateway=True, certificate_arn=gateway_certificate(env)))
    doc = fresh(env)["compute"]
    result = evaluate_documents_result([doc], env_name=env, engine=policy_engine)
    assert [f.to_json() for f in result.findings if f.rule == RULE] == []
    assert not [na for na in result.not_applicable if na.rule == RULE]


def test_a_short_grace_period_is_reported_even_when_another_service_is_undecided(
        policy_findings: Any, policy_not_applicable: Any) -> None:
    # One service's grace period is unknown at preview: the other's, known too short, is still a finding.
    definition, other = task(240), task(240, name="api")
    undecided = service(definition, UNKNOWN_STRING)
    short = res(SERVICE, "api", {**service(other, 90)["inputs"], "name": "api"}, dependencies=[other],
                property_dependencies={"taskDefinition": [other]})
    resources = [definition, other, undecided, short]
    (message,) = messages(policy_findings(resources))
    assert "ECS service 'api' ignores its load balancer's health checks for 90 s" in message
    assert reasons(policy_not_applicable(resources)) == []


@pytest.mark.parametrize(("check", "protocol", "needed"), [
    # 240 s start-up, then 2 passing checks 15 s apart, the second answered within 5 s
    (GATEWAY_CHECK, "HTTP", 240 + 2 * 15 + 5),
    # the block left out: the provider sends no threshold, so AWS's healthy threshold 5 (and interval 30 s, 6 s
    # timeout for HTTP) applies, not the provider's in-block default of 3
    (None, "HTTP", 240 + 5 * 30 + 6),
    # a block with the thresholds left out: the provider's 3 and 30 s
    ({"path": "/health"}, "HTTP", 240 + 3 * 30 + 6),
    ({"interval": 60, "healthyThreshold": 5, "unhealthyThreshold": 3}, "HTTPS", 240 + 5 * 60 + 10),
    # 240 s are 2 failed checks at most, fewer than its unhealthy threshold of 5: its first passing check counts
    ({"interval": 120, "timeout": 10, "healthyThreshold": 4, "unhealthyThreshold": 5}, "HTTP", 240 + 120 + 10),
])
def test_the_grace_period_also_covers_the_target_groups_checks_after_the_start_period(
        policy_findings: Any, check: Any, protocol: str, needed: int) -> None:
    definition, group = task(240), target_group(check, protocol)
    assert messages(policy_findings([definition, group, service(definition, needed, target_group=group)])) == []
    (message,) = messages(policy_findings([definition, group, service(definition, needed - 1, target_group=group)]))
    assert f"ECS service 'web' ignores its load balancer's health checks for {needed - 1} s" in message
    assert f"then {needed - 240} s until target group 'web-tasks' counts its target healthy" in message
    assert f"at least {needed}." in message


def test_the_former_grace_of_the_gateway_without_the_checks_timeout_fails(policy_findings: Any) -> None:
    # startup + healthy threshold x interval: the second passing check's answer may come up to 5 s later.
    definition, group = task(60), target_group(GATEWAY_CHECK)
    (message,) = messages(policy_findings([definition, group, service(definition, 90, target_group=group)]))
    assert "at least 95." in message


def test_an_unknown_target_group_check_leaves_the_rule_undecided(
        policy_findings: Any, policy_not_applicable: Any) -> None:
    definition, group = task(240), target_group({**GATEWAY_CHECK, "interval": UNKNOWN_STRING})
    resources = [definition, group, service(definition, 250, target_group=group)]
    assert messages(policy_findings(resources)) == []
    (reason,) = reasons(policy_not_applicable(resources))
    assert "ECS service 'web': its target group healthCheck unknown until deployment" in reason


def test_a_target_group_without_a_health_check_block_counts_aws_thresholds(policy_findings: Any) -> None:
    # No healthCheck block: the provider sends no threshold and AWS applies its own, unhealthy after 2 failed checks
    # and healthy again after 5 passing ones (botocore elbv2 CreateTargetGroup): a 60 s start-up fails 2 checks 30 s
    # apart, so the target needs 5 x 30 s and the last answer's 6 s, not the single check of a target still initial.
    definition, group = task(60), target_group(None)
    needed = 60 + 5 * 30 + 6
    assert messages(policy_findings([definition, group, service(definition, needed, target_group=group)])) == []
    (message,) = messages(policy_findings([definition, group, service(definition, 60 + 30 + 6, target_group=group)]))
    assert "then 156 s until target group 'web-tasks' counts its target healthy" in message
    assert "at least 216." in message
