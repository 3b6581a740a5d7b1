"""Every statement that lets an AWS service act carries the confused-deputy guard AWS documents for that service,
and none carries one the service's call lacks.

A service principal acts for whichever account asks it (the "confused deputy"): AWS's guides tell, per service and
policy kind, to hold it to the env's account and resource with aws:SourceAccount and aws:SourceArn. But a guard on a
call that does not carry the key drops every delivery silently (EventBridge's and Budgets' KMS use through an
encrypted topic). So each (policy kind, service principal) of the synthesized envs has one decision here, with its
source; a new pair fails until someone writes its decision down.
"""

from __future__ import annotations

import json

import pytest

from shared.mesh_names import task_role_resource_name
from tests.synth_helpers import spec_documents

#: aws:Source* keys (lower case)
SOURCE_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid", "aws:sourceorgpaths"})
BOTH = frozenset({"aws:sourceaccount", "aws:sourcearn"})
LOGS_CONTEXT = "kms:encryptioncontext:aws:logs:arn"

#: policy kind -> service principal ("logs.*": CloudWatch Logs of any region) -> what its statements must carry:
#: "both" aws:SourceAccount and aws:SourceArn, "arn" aws:SourceArn, "none" no aws:Source* key (the call carries
#: none), "any" nothing documented either way, "logs-context" the log group encryption context
DECISIONS: dict[str, dict[str, str]] = {
    "trust": {
        "vpc-flow-logs.amazonaws.com": "both",  # VPC user guide, "IAM role for publishing flow logs": confused deputy
        "codebuild.amazonaws.com": "both",  # CodeBuild user guide, "Cross-service confused deputy prevention"
        "ecs-tasks.amazonaws.com": "task-role",  # ECS guide, "Task IAM role": both on task roles (below)
        "lambda.amazonaws.com": "any",  # an execution role: passed with iam:PassRole, in the account only
    },
    "sns": {
        "cloudwatch.amazonaws.com": "both",  # CloudWatch user guide, alarms to an SNS topic: confused deputy
        "events.amazonaws.com": "both",  # EventBridge user guide, "Cross-service confused deputy prevention"
        "budgets.amazonaws.com": "both",  # Cost Management user guide, "Creating an Amazon SNS topic for budgets"
    },
    "kms": {
        "cloudwatch.amazonaws.com": "both",
        "events.amazonaws.com": "none",  # SNS's KMS call for EventBridge's delivery carries none (alarms.py)
        "budgets.amazonaws.com": "none",  # undocumented either way: kept without, or notifications may drop
        "logs.*": "logs-context",  # CloudWatch Logs user guide, "Encrypt log data ... using AWS KMS"
    },
    "s3": {"logging.s3.amazonaws.com": "both"},  # S3 user guide, server access logging: bucket policy
    # EventBridge's example for a CloudWatch Logs target has no condition (EventBridge user guide, "Using
    # resource-based policies", CloudWatch Logs permissions); whether CreateLogStream carries SourceArn is unsettled
    "logs": {"events.amazonaws.com": "any", "delivery.logs.amazonaws.com": "any"},
    # Lambda developer guide, AddPermission: SourceArn for a service principal (a rule, topic, secret names the account)
    "lambda": {"events.amazonaws.com": "arn", "secretsmanager.amazonaws.com": "arn", "sns.amazonaws.com": "arn"},
    # EventBridge user guide, "Granting permissions to the dead-letter queue": the rule's ARN as aws:SourceArn (its
    # examples carry no aws:SourceAccount; a key its SendMessage lacked would drop every undelivered event)
    "sqs": {"events.amazonaws.com": "arn"},
}

#: resource type -> (policy kind, input holding the policy document)
POLICIES = {
    "aws:iam/role:Role": ("trust", "assumeRolePolicy"),
    "aws:sns/topicPolicy:TopicPolicy": ("sns", "policy"),
    "aws:kms/key:Key": ("kms", "policy"),
    "aws:s3/bucketPolicy:BucketPolicy": ("s3", "policy"),
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": ("logs", "policyDocument"),
    "aws:sqs/queuePolicy:QueuePolicy": ("sqs", "policy"),
}


def statements(env: str) -> list[tuple[str, str, str, bool, frozenset[str]]]:
    """(where, policy kind, service principal, whether the resource is a task role, condition keys) of each Allow
    that names a service principal, and of each Lambda permission."""
    found = []
    for layer, document in sorted(spec_documents(env).items()):
        for resource in document["resources"]:
            inputs = resource.get("inputs") or {}
            where = f"{env}/{layer}: {resource['name']}"
            if resource["type"] == "aws:lambda/permission:Permission":
                keys = frozenset(key for key, field in (("aws:sourcearn", "sourceArn"),
                                                        ("aws:sourceaccount", "sourceAccount")) if inputs.get(field))
                found.append((where, "lambda", str(inputs["principal"]), False, keys))
                continue
            kind, field = POLICIES.get(resource["type"], (None, ""))
            if kind is None or field not in inputs:
                continue
            policy = json.loads(inputs[field]) if isinstance(inputs[field], str) else inputs[field]
            task_role = resource["type"] == "aws:iam/role:Role" and resource["name"].endswith(
                task_role_resource_name(""))  # "<unit>-task", beside "<unit>-execution"
            for statement in policy.get("Statement", []):
                principal = statement.get("Principal")
                if statement.get("Effect") != "Allow" or not isinstance(principal, dict):
                    continue
                keys = frozenset(str(key).lower() for entries in (statement.get("Condition") or {}).values()
                                 for key in entries)
                services = principal.get("Service", [])
                for service in services if isinstance(services, list) else [services]:
                    found.append((where, kind, str(service), task_role, keys))
    return found


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_each_service_principal_carries_the_guard_aws_documents_and_no_other(env: str) -> None:
    problems = []
    found = statements(env)
    for where, kind, service, task_role, keys in found:
        generic = "logs.*" if service.startswith("logs.") else service
        decision = DECISIONS[kind].get(generic)
        if decision == "task-role":
            decision = "both" if task_role else "any"
        if decision is None:
            problems.append(f"{where}: no decision for {service} in a {kind} policy: cite AWS and add one")
        elif decision == "both" and not BOTH <= keys:
            problems.append(f"{where}: {service} needs aws:SourceAccount and aws:SourceArn")
        elif decision == "arn" and "aws:sourcearn" not in keys:
            problems.append(f"{where}: {service} needs aws:SourceArn")
        elif decision == "none" and keys & SOURCE_KEYS:
            problems.append(f"{where}: {service}'s call carries no aws:Source* key: every delivery would drop")
        elif decision == "logs-context" and LOGS_CONTEXT not in keys:
            problems.append(f"{where}: {service} needs the log group encryption context")
    assert problems == []
    assert len(found) > 20 and {kind for _, kind, *_ in found} == set(DECISIONS)
    assert sum(task_role for *_, task_role, _ in found) >= 4  # the services' task roles were told apart
