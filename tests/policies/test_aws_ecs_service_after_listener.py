"""``ecs-service-after-listener`` through the real pack: an ECS service behind a target group of the stack is
created after a listener (or listener rule) forwarding to it -- compliant, non-compliant, unknown at preview,
and the platform's public gateway in every env."""

from __future__ import annotations

from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.layers.compute_helpers import ENVS, fresh
from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import LISTENER, LISTENER_RULE, SERVICE, TARGET_GROUP
from tests.synth_helpers import gateway_certificate

RULE = "ecs-service-after-listener"
TG_ARN = "arn:aws:elasticloadbalancing:eu-west-1:111111111111:targetgroup/web/50dc6c495c0c9188"
LB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:111111111111:loadbalancer/app/web/50dc6c495c0c9188"
CERTIFICATE = "arn:aws:acm:eu-west-1:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def target_group(name: str = "web") -> dict[str, Any]:
    return res(TARGET_GROUP, name, {"targetType": "ip", "protocol": "HTTP", "port": 8080, "vpcId": "vpc-1"})


def listener(group: dict[str, Any], name: str = "https", type_: str = LISTENER, **opts: Any) -> dict[str, Any]:
    key, inputs = ("actions", {"listenerArn": "arn:aws:elasticloadbalancing:x", "priority": 10,
                               "conditions": [{"pathPattern": {"values": ["/*"]}}]}) if type_ == LISTENER_RULE \
        else ("defaultActions", {"loadBalancerArn": LB_ARN, "port": 443, "protocol": "HTTPS",
                                 "certificateArn": CERTIFICATE})
    inputs[key] = [{"type": "forward", "targetGroupArn": TG_ARN}]
    return res(type_, name, inputs, dependencies=[group], property_dependencies={key: [group]}, **opts)


def service(group: dict[str, Any], name: str = "web", after: tuple[dict[str, Any], ...] = (),
            arn: str = TG_ARN) -> dict[str, Any]:
    return res(SERVICE, name, {
        "name": name, "cluster": "arn:aws:ecs:eu-west-1:111111111111:cluster/c", "launchType": "FARGATE",
        "loadBalancers": [{"targetGroupArn": arn, "containerName": name, "containerPort": 8080}]},
        dependencies=[group, *after], property_dependencies={"loadBalancers": [group]})


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def test_a_service_created_after_its_listener_passes(policy_findings: Any) -> None:
    group = target_group()
    https = listener(group)
    assert messages(policy_findings([group, https, service(group, after=(https,))])) == []


def test_a_service_after_a_listener_rule_or_through_another_resource_passes(policy_findings: Any) -> None:
    group = target_group()
    rule = listener(group, "route", type_=LISTENER_RULE)
    # e.g. a component or a wait resource that itself waits for the rule
    gate = res("aws:ecs/taskDefinition:TaskDefinition", "task", {"family": "web"}, dependencies=[rule])
    assert messages(policy_findings([group, rule, gate, service(group, after=(gate,))])) == []


def test_a_service_that_reads_only_the_target_groups_arn_fails(policy_findings: Any) -> None:
    group = target_group()
    (message,) = messages(policy_findings([group, listener(group), service(group)]))
    assert "ECS service 'web' registers tasks in target group(s) 'web'" in message
    assert "depends_on=[<listener>]" in message


def test_a_target_group_no_listener_forwards_to_fails(policy_findings: Any) -> None:
    group, other = target_group(), target_group("other")
    assert len(messages(policy_findings([group, other, listener(other), service(group)]))) == 1


def test_a_target_group_of_another_stack_is_not_applicable(policy_findings: Any, policy_not_applicable: Any) -> None:
    group = target_group()
    other_stack = res(SERVICE, "web", {"name": "web", "loadBalancers": [
        {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:111111111111:targetgroup/shared/1",
         "containerName": "web", "containerPort": 8080}]})
    resources = [group, listener(group), other_stack]
    assert messages(policy_findings(resources)) == []
    assert any(na["rule"] == RULE and "no ECS service registers" in na["reason"]
               for na in policy_not_applicable(resources))


def test_unknown_load_balancers_leave_the_rule_undecided(policy_findings: Any, policy_not_applicable: Any) -> None:
    # Two candidate target groups and a target group ARN unknown at preview, with no property dependency
    # recorded: which group the service joins cannot be told yet.
    group, other = target_group(), target_group("other")
    unknown = res(SERVICE, "web", {"name": "web", "loadBalancers": [
        {"targetGroupArn": UNKNOWN_STRING, "containerName": "web", "containerPort": 8080}]},
        dependencies=[group, other])
    resources = [group, other, listener(group), listener(other, "other"), unknown]
    assert messages(policy_findings(resources)) == []
    (reason,) = [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert "ECS service 'web': loadBalancers unknown until deployment" in reason


@pytest.mark.parametrize("env", ENVS)
def test_the_platforms_public_gateway_passes_in_every_env(edit_env: Any, policy_engine: PolicyEngine,
                                                          env: str) -> None:
    edit_env(env, lambda data: data["compute"].update(public_gateway=True, certificate_arn=gateway_certificate(env)))
    doc = fresh(env)["compute"]
    assert any(r["type"] == LISTENER for r in doc["resources"])
    result = evaluate_documents_result([doc], env_name=env, engine=policy_engine)
    assert [f.to_json() for f in result.findings if f.rule == RULE] == []
    assert not [na for na in result.not_applicable if na.rule == RULE]


def test_a_service_inside_a_component_that_waits_for_the_listener_passes(policy_findings: Any) -> None:
    """``Service("web", opts=ResourceOptions(depends_on=[listener]))`` creating its ECS service with ``parent=self``:
    the engine records the listener on the component only, yet the SDK registers a child only once its parent's URN
    resolves, after the parent's own dependencies exist (pulumi runtime/resource.py prepare_resource), and the
    engine's graph counts the parent (pkg/resource/graph/dependency_graph.go DependenciesOf)."""
    group = target_group()
    https = listener(group)
    component = res("acme:ml:Service", "web", {}, custom=False, dependencies=[https])
    inner = res("acme:ml:Tasks", "web", {}, custom=False, parent=component)
    svc = service(group)
    svc["parent"] = inner
    assert messages(policy_findings([group, https, component, inner, svc])) == []
    # a component without that dependency is no gate
    bare = res("acme:ml:Service", "web", {}, custom=False)
    svc = service(group)
    svc["parent"] = bare
    (message,) = messages(policy_findings([group, listener(group), bare, svc]))
    assert "ECS service 'web' registers tasks in target group(s) 'web'" in message
