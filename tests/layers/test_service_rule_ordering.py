"""Every ECS service starts after the security-group rules its tasks' traffic needs (failure review F2).

The network layer owns the tasks' security group; the compute layer adds rules of its own to it (AMQPS out to the
broker, `compute-tasks-to-broker`; with a public gateway, the ALB in to the public service). Without an explicit
dependency nothing orders a task's start after its rule: on a first `up` (or one that replaces the rule) a task
could try the broker before its group lets it out, and an app that exits on a failed first connect counts as a task
stop for the circuit breaker. The dependency also orders the delete: the ECS service (its tasks) goes first, the rule
after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.catalog import load_catalog
from shared.synth.engine import synth_env
from tests.synth_helpers import of_type, reachable, spec_document

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "aws:ecs/service:Service"
RULES = ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
         "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")


def _after(document: dict[str, Any], urn: str) -> set[str]:
    """Every resource ``urn`` depends on, directly or through its dependencies (the engine orders the create so, and
    the delete in reverse)."""
    return reachable({r["urn"]: set(r.get("dependencies") or ()) for r in document["resources"]}, urn)


def _rules_on(document: dict[str, Any], group: str, port: int) -> list[dict[str, Any]]:
    """The stack's own rules on ``group`` that concern a task listening on ``port``: every egress rule, and the ingress
    rules whose port range holds ``port`` (a public ALB's rule into another service's port is that service's)."""
    rules = []
    for type_ in RULES:
        for rule in of_type(document, type_):
            inputs = rule["inputs"]
            if inputs.get("securityGroupId") != group:
                continue
            if "Ingress" in type_ and not inputs.get("fromPort", 0) <= port <= inputs.get("toPort", 65535):
                continue
            rules.append(rule)
    return rules


def _check(document: dict[str, Any]) -> int:
    ports = {spec.name: spec.port for spec in load_catalog()}
    checked = 0
    for service in of_type(document, SERVICE):
        port = ports[service["name"]]  # the ECS service's resource name is its catalog service's (no canary here)
        after = _after(document, service["urn"])
        for group in service["inputs"]["networkConfiguration"]["securityGroups"]:
            for rule in _rules_on(document, group, port):
                assert rule["urn"] in after, (service["name"], rule["name"])
                checked += 1
    return checked


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_ecs_service_starts_after_every_rule_of_its_stack_on_its_security_group(env: str) -> None:
    document = spec_document(env, "compute")
    services = of_type(document, SERVICE)
    assert len(services) == 4
    # the shipped envs' one rule of compute on the tasks' group: AMQPS out to the broker
    (egress,) = of_type(document, RULES[0])
    assert egress["name"] == "compute-tasks-to-broker"
    assert _check(document) == len(services)
    for service in services:
        assert egress["urn"] in service["dependencies"], service["name"]


def test_a_public_service_starts_after_the_rule_admitting_its_alb(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["compute"].update(
        public_gateway=True, certificate_arn="arn:aws:acm:eu-west-1:111111111111:certificate/gateway"))
    document = synth_env("dev", ["compute"])["compute"]
    (ingress,) = of_type(document, RULES[1])
    assert ingress["name"] == "gateway-alb-to-tasks"
    (gateway,) = [s for s in of_type(document, SERVICE) if s["name"] == "gateway"]
    assert ingress["urn"] in _after(document, gateway["urn"])
    assert _check(document) == len(of_type(document, SERVICE)) + 1
