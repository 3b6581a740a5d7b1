"""``ecs-service-connect-callees-first`` through the real pack: an ECS service that calls another ECS service of the
stack by its Service Connect client alias is created after it -- compliant, non-compliant, unknown at preview, and
the platform's compute layer in every env."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.layers.compute_helpers import ENVS, platform
from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import SERVICE, TASK

RULE = "ecs-service-connect-callees-first"
NAMESPACE = "arn:aws:servicediscovery:eu-west-1:111111111111:namespace/ns-abc"


def task(name: str, environment: dict[str, str] | None = None, definitions: Any = None) -> dict[str, Any]:
    containers = definitions if definitions is not None else json.dumps([{
        "name": name, "image": "repo@sha256:" + "a" * 64, "essential": True,
        "environment": [{"name": key, "value": value} for key, value in (environment or {}).items()]}])
    return res(TASK, name, {"family": name, "containerDefinitions": containers})


def service(name: str, definition: dict[str, Any], port: int, after: tuple[dict[str, Any], ...] = (),
            connect: Any = None) -> dict[str, Any]:
    configuration = connect if connect is not None else {
        "enabled": True, "namespace": NAMESPACE,
        "services": [{"portName": f"{name}-http", "discoveryName": name,
                      "clientAlias": [{"dnsName": f"{name}.dev.ml.internal", "port": port}]}]}
    return res(SERVICE, name, {"name": name, "launchType": "FARGATE", "taskDefinition": f"{name}-task-arn",
                               "serviceConnectConfiguration": configuration},
               dependencies=[definition, *after], property_dependencies={"taskDefinition": [definition]})


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def pair(after: bool, url: str = "http://inference.dev.ml.internal:8082") -> list[dict[str, Any]]:
    callee_task = task("inference")
    callee = service("inference", callee_task, 8082)
    caller_task = task("preprocess", {"INFERENCE_URL": url})
    caller = service("preprocess", caller_task, 8081, after=(callee,) if after else ())
    return [callee_task, callee, caller_task, caller]


def test_a_caller_created_after_its_callee_passes(policy_findings: Any) -> None:
    assert messages(policy_findings(pair(after=True))) == []


def test_a_caller_created_alongside_its_callee_fails(policy_findings: Any) -> None:
    (message,) = messages(policy_findings(pair(after=False)))
    assert "ECS service 'preprocess' calls 'inference'" in message
    assert "preprocess: INFERENCE_URL" in message and "depends_on" in message


def test_a_url_on_the_schemes_port_is_the_alias_on_that_port(policy_findings: Any) -> None:
    callee_task = task("web")
    callee = service("web", callee_task, 80)
    caller_task = task("ui", {"API": "see http://web.dev.ml.internal/v1"})
    resources = [callee_task, callee, caller_task, service("ui", caller_task, 8080)]
    assert len(messages(policy_findings(resources))) == 1


def test_a_url_of_another_port_or_host_is_no_call(policy_findings: Any, policy_not_applicable: Any) -> None:
    resources = pair(after=False, url="http://inference.dev.ml.internal:9999")
    assert messages(policy_findings(resources)) == []
    assert any(na["rule"] == RULE and "calls another one's Service Connect client alias" in na["reason"]
               for na in policy_not_applicable(resources))


def test_without_service_connect_the_rule_is_not_applicable(policy_findings: Any, policy_not_applicable: Any) -> None:
    callee_task = task("inference")
    callee = service("inference", callee_task, 8082, connect={"enabled": False})
    caller_task = task("preprocess", {"INFERENCE_URL": "http://inference.dev.ml.internal:8082"})
    resources = [callee_task, callee, caller_task, service("preprocess", caller_task, 8081, connect={"enabled": False})]
    assert messages(policy_findings(resources)) == []
    assert any(na["rule"] == RULE and "serves a Service Connect client alias" in na["reason"]
               for na in policy_not_applicable(resources))


@pytest.mark.parametrize("connect", [
    {"enabled": False},
    # a client of another namespace: client aliases are per namespace, its proxy never learns this one's
    {"enabled": True, "namespace": NAMESPACE.replace("ns-abc", "ns-other")},
], ids=["no-service-connect", "other-namespace"])
def test_a_caller_that_is_no_client_of_the_aliases_namespace_is_not_judged(
        policy_findings: Any, policy_not_applicable: Any, connect: dict[str, Any]) -> None:
    callee_task = task("inference")
    callee = service("inference", callee_task, 8082)
    caller_task = task("preprocess", {"INFERENCE_URL": "http://inference.dev.ml.internal:8082"})
    resources = [callee_task, callee, caller_task, service("preprocess", caller_task, 8081, connect=connect)]
    assert messages(policy_findings(resources)) == []
    assert any(na["rule"] == RULE and "calls another one's Service Connect client alias" in na["reason"]
               for na in policy_not_applicable(resources))


@pytest.mark.parametrize("connect", [
    {"enabled": True},  # the cluster's default namespace: possibly the callee's
    {"enabled": True, "namespace": NAMESPACE, "services": []},  # a client only
], ids=["default-namespace", "client-only"])
def test_a_client_of_the_same_or_the_default_namespace_is_judged(policy_findings: Any,
                                                                 connect: dict[str, Any]) -> None:
    callee_task = task("inference")
    callee = service("inference", callee_task, 8082)
    caller_task = task("preprocess", {"INFERENCE_URL": "http://inference.dev.ml.internal:8082"})
    resources = [callee_task, callee, caller_task, service("preprocess", caller_task, 8081, connect=connect)]
    assert len(messages(policy_findings(resources))) == 1


def test_unknown_container_definitions_leave_the_rule_undecided(policy_findings: Any,
                                                                policy_not_applicable: Any) -> None:
    callee_task = task("inference")
    callee = service("inference", callee_task, 8082)
    caller_task = task("preprocess", definitions=UNKNOWN_STRING)
    resources = [callee_task, callee, caller_task, service("preprocess", caller_task, 8081)]
    assert messages(policy_findings(resources)) == []
    (reason,) = [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert "ECS service 'preprocess': taskDefinition containerDefinitions unknown until deployment" in reason


@pytest.mark.parametrize("env", ENVS)
def test_the_platforms_callers_pass_in_every_env(policy_engine: PolicyEngine, env: str) -> None:
    doc = platform(env)["compute"]
    result = evaluate_documents_result([doc], env_name=env, engine=policy_engine)
    assert [f.to_json() for f in result.findings if f.rule == RULE] == []
    # judged, not skipped: gateway and preprocess call inference (and gateway preprocess) by their aliases
    assert not [na for na in result.not_applicable if na.rule == RULE]


def test_a_caller_inside_a_component_that_waits_for_its_callee_passes(policy_findings: Any) -> None:
    """``Service("preprocess", opts=ResourceOptions(depends_on=[inference]))`` creating its ECS service with
    ``parent=self``: the SDK registers a child only once its parent's URN resolves, after the parent's own
    dependencies exist (pulumi runtime/resource.py prepare_resource), and the engine's graph counts the parent
    (pkg/resource/graph/dependency_graph.go DependenciesOf)."""
    callee_task, callee, caller_task, caller = pair(after=False)
    component = res("acme:ml:Service", "preprocess", {}, custom=False, dependencies=[callee])
    caller["parent"] = component
    assert messages(policy_findings([callee_task, callee, component, caller_task, caller])) == []
    # a component without that dependency is no gate
    callee_task, callee, caller_task, caller = pair(after=False)
    bare = res("acme:ml:Service", "preprocess", {}, custom=False)
    caller["parent"] = bare
    (message,) = messages(policy_findings([callee_task, callee, bare, caller_task, caller]))
    assert "ECS service 'preprocess' calls 'inference'" in message
