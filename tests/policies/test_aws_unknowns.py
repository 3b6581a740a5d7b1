"""Values unknown during preview make an ``aws`` rule not applicable: never a crash, never a silent pass.

The engine sends unknowns the way the CLI does, as pulumi's sentinel strings; each case checks that the
rule neither reports a finding nor stays silent -- it records not-applicable for that resource, with
a reason naming what was unknown -- and that a decidable part of the same resource is still judged.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.policies.resources import UNKNOWN_ARRAY, UNKNOWN_BOOL, UNKNOWN_NUMBER, UNKNOWN_OBJECT, UNKNOWN_STRING, res


def reasons(records: list[dict[str, Any]], rule: str, name: str) -> list[str]:
    return [r["reason"] for r in records if r["rule"] == rule and (r["urn"] or "").endswith(f"::{name}")]


def rules_fired(findings: list[dict[str, Any]], name: str) -> set[str]:
    return {f["rule"] for f in findings if f["urn"].endswith(f"::{name}")}


CASES = [
    ("ecr-scan-on-push", res("aws:ecr/repository:Repository", "r", {"imageScanningConfiguration":
                                                                    {"scanOnPush": UNKNOWN_BOOL}}), "scanOnPush"),
    ("ecr-immutable-tags", res("aws:ecr/repository:Repository", "r", {"imageTagMutability": UNKNOWN_STRING}),
     "imageTagMutability"),
    ("ecr-kms-encryption", res("aws:ecr/repository:Repository", "r", {"encryptionConfigurations": UNKNOWN_ARRAY}),
     "encryptionConfigurations"),
    ("subnet-no-public-ip-on-launch", res("aws:ec2/subnet:Subnet", "r", {"mapPublicIpOnLaunch": UNKNOWN_BOOL}),
     "mapPublicIpOnLaunch"),
    ("subnet-no-public-ip-on-launch", res("aws:ec2/subnet:Subnet", "r", {"mapPublicIpOnLaunch": True,
                                                                          "tags": UNKNOWN_OBJECT}), "tags"),
    ("security-group-no-open-ingress", res("aws:ec2/securityGroup:SecurityGroup", "r", {"ingress": [
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": UNKNOWN_ARRAY}]}), "ingress[0]"),
    ("security-group-no-open-ingress", res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "r", {
        "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": UNKNOWN_STRING}), "cidrIpv4"),
    ("security-group-described", res("aws:ec2/securityGroup:SecurityGroup", "r", {"description": UNKNOWN_STRING}),
     "description"),
    ("security-group-description-valid", res("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "r", {
        "ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "10.0.0.0/8",
        "description": UNKNOWN_STRING}), "description"),
    ("cloudmap-service-health-check", res("aws:servicediscovery/service:Service", "r",
                                          {"healthCheckCustomConfig": UNKNOWN_OBJECT}), "health check"),
    ("appmesh-egress-filter-drop-all", res("aws:appmesh/mesh:Mesh", "r", {"spec": {"egressFilter": {
        "type": UNKNOWN_STRING}}}), "egressFilter"),
    ("appmesh-virtual-node-health-check", res("aws:appmesh/virtualNode:VirtualNode", "r", {"spec": {
        "listeners": UNKNOWN_ARRAY}}), "listeners"),
    ("ecs-cluster-container-insights", res("aws:ecs/cluster:Cluster", "r", {"settings": [
        {"name": "containerInsights", "value": UNKNOWN_STRING}]}), "containerInsights"),
    ("ecs-task-awsvpc", res("aws:ecs/taskDefinition:TaskDefinition", "r", {"networkMode": UNKNOWN_STRING}),
     "networkMode"),
    ("ecs-task-fargate-size-valid", res("aws:ecs/taskDefinition:TaskDefinition", "r", {
        "requiresCompatibilities": ["FARGATE"], "cpu": UNKNOWN_STRING, "memory": "1024"}), "cpu"),
    ("ecs-service-no-public-ip", res("aws:ecs/service:Service", "r", {"networkConfiguration": {
        "assignPublicIp": UNKNOWN_BOOL}}), "assignPublicIp"),
    ("ecs-service-circuit-breaker", res("aws:ecs/service:Service", "r", {"deploymentCircuitBreaker": {
        "enable": UNKNOWN_BOOL, "rollback": True}}), "deploymentCircuitBreaker"),
    ("ecs-service-steady-state", res("aws:ecs/service:Service", "r", {"waitForSteadyState": UNKNOWN_BOOL}),
     "waitForSteadyState"),
    ("iam-no-wildcard-actions", res("aws:iam/rolePolicy:RolePolicy", "r", {"policy": UNKNOWN_STRING}), "policy"),
    ("iam-no-admin-managed-policy", res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "r", {
        "policyArn": UNKNOWN_STRING}), "policyArn"),
    ("mq-broker-not-public", res("aws:mq/broker:Broker", "r", {"publiclyAccessible": UNKNOWN_BOOL}),
     "publiclyAccessible"),
    ("mq-broker-logging", res("aws:mq/broker:Broker", "r", {"logs": UNKNOWN_OBJECT}), "logs"),
    ("mq-broker-multi-az", res("aws:mq/broker:Broker", "r", {"engineType": "RabbitMQ",
                                                             "deploymentMode": UNKNOWN_STRING}), "deploymentMode"),
    ("mq-broker-engine-instance-supported", res("aws:mq/broker:Broker", "r", {
        "engineType": "RabbitMQ", "engineVersion": "4.2", "hostInstanceType": UNKNOWN_STRING}), "hostInstanceType"),
    ("logs-retention-set", res("aws:cloudwatch/logGroup:LogGroup", "r", {"retentionInDays": UNKNOWN_NUMBER}),
     "retentionInDays"),
]


@pytest.mark.parametrize(("rule", "resource", "what"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_an_unknown_deciding_value_is_not_applicable(policy_result, rule, resource, what):
    result = policy_result([resource])
    findings = [f.to_json() for f in result.findings]
    records = [{"rule": na.rule, "urn": na.urn, "reason": na.reason} for na in result.not_applicable]
    assert rule not in rules_fired(findings, "r")
    (reason,) = reasons(records, rule, "r")
    assert what in reason


@pytest.mark.parametrize("rule", [
    "ecs-task-no-privileged", "ecs-task-read-only-root-fs", "ecs-task-non-root-user", "ecs-task-logging",
    "ecs-task-no-plaintext-secrets", "ecs-task-definition-valid", "ecs-task-image-pinned", "ecs-task-awslogs-options",
    "ecs-task-definition-size",
])
def test_unknown_container_definitions_make_every_container_rule_not_applicable(policy_not_applicable, rule):
    definition = res("aws:ecs/taskDefinition:TaskDefinition", "r", {
        "containerDefinitions": UNKNOWN_STRING, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512"})
    (reason,) = reasons(policy_not_applicable([definition]), rule, "r")
    assert "containerDefinitions" in reason


@pytest.mark.parametrize("mode", ["pidMode", "ipcMode"])
def test_an_unknown_pid_or_ipc_mode_leaves_the_privilege_rule_undecided(policy_not_applicable, mode):
    # a namespace mode taken from another resource's output: the preview cannot tell a task sharing the host's
    containers = json.dumps([{"name": "app", "image": "x@sha256:" + "a" * 64, "essential": True}])
    definition = res("aws:ecs/taskDefinition:TaskDefinition", "r", {
        "containerDefinitions": containers, "networkMode": "awsvpc", mode: UNKNOWN_STRING})
    (reason,) = reasons(policy_not_applicable([definition]), "ecs-task-no-privileged", "r")
    assert mode in reason


def test_a_decidable_violation_is_reported_next_to_an_undecidable_part(policy_findings, policy_not_applicable):
    group = res("aws:ec2/securityGroup:SecurityGroup", "r", {"description": "mixed rules for a test", "ingress": [
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]},
        {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": UNKNOWN_ARRAY},
    ]})
    assert "security-group-no-open-ingress" in rules_fired(policy_findings([group]), "r")
    assert reasons(policy_not_applicable([group]), "security-group-no-open-ingress", "r")


def test_invalid_container_json_is_one_finding_and_not_applicable_elsewhere(policy_findings, policy_not_applicable):
    definition = res("aws:ecs/taskDefinition:TaskDefinition", "r", {
        "containerDefinitions": "[{", "networkMode": "awsvpc", "taskRoleArn": "arn:aws:iam::1:role/t",
        "executionRoleArn": "arn:aws:iam::1:role/e"})
    fired = rules_fired(policy_findings([definition]), "r")
    assert "ecs-task-definition-valid" in fired
    assert fired.isdisjoint({"ecs-task-logging", "ecs-task-non-root-user", "ecs-task-image-pinned"})
    assert reasons(policy_not_applicable([definition]), "ecs-task-logging", "r")


@pytest.mark.parametrize(("rule", "resources"), [
    ("vpc-flow-logs-enabled", [res("aws:ecr/repository:Repository", "r", {})]),
    ("ecr-lifecycle-policy", [res("aws:ec2/vpc:Vpc", "r", {"cidrBlock": "10.0.0.0/16"})]),
])
def test_stack_rules_without_their_resources_are_not_applicable(policy_not_applicable, rule, resources):
    assert any(r["rule"] == rule for r in policy_not_applicable(resources))


def test_an_unattributable_flow_log_makes_the_vpc_rule_not_applicable(policy_findings, policy_not_applicable):
    # Two VPCs, one flow log whose vpcId is unknown and which depends on both: nobody can tell which
    # VPC it covers, so neither VPC is failed -- the rule says why it cannot decide.
    first = res("aws:ec2/vpc:Vpc", "first", {"cidrBlock": "10.0.0.0/16"})
    second = res("aws:ec2/vpc:Vpc", "second", {"cidrBlock": "10.1.0.0/16"})
    log = res("aws:ec2/flowLog:FlowLog", "log", {"vpcId": UNKNOWN_STRING, "trafficType": "ALL"},
              dependencies=[first, second])
    resources = [first, second, log]
    assert not [f for f in policy_findings(resources) if f["rule"] == "vpc-flow-logs-enabled"]
    assert any(r["rule"] == "vpc-flow-logs-enabled" and "'log'" in r["reason"]
               for r in policy_not_applicable(resources))


def test_container_definitions_given_as_objects_are_accepted(policy_findings):
    # Some programs pass the list itself instead of a JSON string; numbers then travel as floats.
    container = {"name": "app", "image": "repo@sha256:" + "a" * 64, "essential": True, "memory": 512,
                 "portMappings": [{"containerPort": 8080}]}
    definition = res("aws:ecs/taskDefinition:TaskDefinition", "r", {"containerDefinitions": [container]})
    assert "ecs-task-definition-valid" not in rules_fired(policy_findings([definition]), "r")
