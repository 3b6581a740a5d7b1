"""The IAM, Amazon MQ and CloudWatch Logs rules of the ``aws`` pack.

Every case goes through the real pack process (``policy_findings``) and asserts on one rule id for
one resource: present for the non-compliant resource, absent for the compliant one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.policies.resources import messages, res
from tests.policies.tokens import ATTACHMENT as ROLE_ATTACHMENT
from tests.policies.tokens import BROKER, LOG_GROUP, MANAGED_POLICY, POLICY_ATTACHMENT, ROLE, ROLE_POLICY, USER_POLICY
from tests.policies.tokens import DYNAMIC as ADOPTED

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "arn:aws:sqs:eu-west-1:111111111111:inference.work") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


# --- iam-no-wildcard-actions --------------------------------------------------------------------


@pytest.mark.parametrize(("statement", "violates"), [
    (allow(["sqs:ReceiveMessage", "sqs:DeleteMessage"]), False),
    (allow("s3:Get*"), False),  # a prefix wildcard names a family of actions, not the service
    ({"Effect": "Deny", "Action": "*", "Resource": "*"}, False),
    (allow("*", "*"), True),
    (allow(["sqs:SendMessage", "sqs:*"]), True),
    (allow("*:*", "*"), True),
    ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, True),
], ids=["named-actions", "prefix-wildcard", "deny-star", "star", "service-star", "star-colon-star",
        "allow-not-action"])
@pytest.mark.parametrize("type_", [ROLE_POLICY, MANAGED_POLICY, USER_POLICY])
def test_iam_policy_documents(policy_findings, type_, statement, violates):
    policy = res(type_, "inference-access", {"policy": document(statement), "role": "inference-task",
                                             "user": "ci"})
    found = messages(policy_findings([policy]), "iam-no-wildcard-actions", "inference-access")
    assert bool(found) is violates


def test_iam_role_inline_policy_with_service_wildcard_fails_and_names_the_policy(policy_findings):
    role = res(ROLE, "inference-task", {"assumeRolePolicy": TRUST, "inlinePolicies": [
        {"name": "queues", "policy": document(allow("sqs:ReceiveMessage"))},
        {"name": "everything-s3", "policy": document({"Sid": "S3", **allow("s3:*", "*")})},
    ]})
    (message,) = messages(policy_findings([role]), "iam-no-wildcard-actions", "inference-task")
    assert "inline policy 'everything-s3' statement S3 allows 's3:*'" in message
    assert "queues" not in message


def test_iam_role_with_scoped_inline_policies_passes(policy_findings):
    role = res(ROLE, "inference-task", {"assumeRolePolicy": TRUST, "inlinePolicies": [
        {"name": "queues", "policy": document(allow(["sqs:ReceiveMessage", "sqs:DeleteMessage"]))}]})
    assert not messages(policy_findings([role]), "iam-no-wildcard-actions", "inference-task")


# --- iam-no-admin-managed-policy ----------------------------------------------------------------


@pytest.mark.parametrize(("arn", "violates"), [
    ("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy", False),
    ("arn:aws:iam::111111111111:policy/AdministratorAccess", False),  # a customer policy of that name
    ("arn:aws:iam::aws:policy/AdministratorAccess", True),
    ("arn:aws:iam::aws:policy/PowerUserAccess", True),
    ("arn:aws:iam::aws:policy/IAMFullAccess", True),
    ("arn:aws-us-gov:iam::aws:policy/AdministratorAccess", True),
    ("arn:aws:iam::aws:policy/AmazonS3FullAccess", True),  # matched by pattern, not a fixed list
    ("arn:aws:iam::aws:policy/AWSLambda_FullAccess", True),
    ("arn:aws:iam::aws:policy/AdministratorAccess-Amplify", True),
    ("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", False),
], ids=["execution-policy", "customer-policy", "admin", "power-user", "iam-full", "gov-partition", "s3-full",
        "lambda-full", "admin-amplify", "s3-read-only"])
@pytest.mark.parametrize("type_", [ROLE_ATTACHMENT, POLICY_ATTACHMENT])
def test_iam_admin_attachments(policy_findings, type_, arn, violates):
    attachment = res(type_, "attach", {"role": "inference-task", "roles": ["inference-task"], "policyArn": arn})
    found = messages(policy_findings([attachment]), "iam-no-admin-managed-policy", "attach")
    assert bool(found) is violates
    if violates:
        assert arn.rsplit("/", 1)[1] in found[0]


def test_iam_role_managed_policy_arns(policy_findings):
    admin = res(ROLE, "admin", {"assumeRolePolicy": TRUST,
                                "managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]})
    scoped = res(ROLE, "scoped", {"assumeRolePolicy": TRUST,
                                  "managedPolicyArns": ["arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"]})
    findings = policy_findings([admin, scoped])
    assert messages(findings, "iam-no-admin-managed-policy", "admin")
    assert not messages(findings, "iam-no-admin-managed-policy", "scoped")


@pytest.mark.parametrize("type_", ["aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive",
                                   "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive"])
def test_exclusive_user_and_group_attachments_are_attachments_too(policy_findings, type_):
    # pulumi_aws iam.{User,Group}PolicyAttachmentsExclusive attach the listed policies (and detach the others)
    admin = res(type_, "admin", {"userName": "alice", "groupName": "ops",
                                 "policyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]})
    scoped = res(type_, "scoped", {"userName": "alice", "groupName": "ops",
                                   "policyArns": ["arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"]})
    findings = policy_findings([admin, scoped])
    assert messages(findings, "iam-no-admin-managed-policy", "admin")
    assert not messages(findings, "iam-no-admin-managed-policy", "scoped")


def test_exclusive_user_attachments_attach_policies_to_a_user(policy_findings):
    exclusive = "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive"
    attached = res(exclusive, "attached", {"userName": "alice", "policyArns": ["arn:aws:iam::111111111111:policy/p"]})
    emptied = res(exclusive, "emptied", {"userName": "alice", "policyArns": []})  # detaches every policy
    findings = policy_findings([attached, emptied])
    assert messages(findings, "iam-no-user-policies", "attached")
    assert not messages(findings, "iam-no-user-policies", "emptied")


# --- Amazon MQ ----------------------------------------------------------------------------------


def broker(**inputs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "brokerName": "platform", "engineType": "RabbitMQ", "engineVersion": "3.13", "hostInstanceType": "mq.m5.large",
        "deploymentMode": "CLUSTER_MULTI_AZ", "publiclyAccessible": False, "logs": {"general": True},
        "subnetIds": ["subnet-0a", "subnet-0b", "subnet-0c"], "securityGroups": ["sg-0mq"],
        "users": [{"username": "platform", "password": "from-secrets-manager"}],
    }
    base.update(inputs)
    return res(BROKER, "platform", {k: v for k, v in base.items() if v is not None}, secret_inputs=["users"])


def test_a_hardened_broker_passes_every_mq_rule(policy_findings):
    findings = policy_findings([broker()])
    for rule in ("mq-broker-not-public", "mq-broker-logging", "mq-broker-multi-az"):
        assert not messages(findings, rule, "platform"), rule


@pytest.mark.parametrize(("public", "violates"), [(False, False), (None, False), (True, True)])
def test_mq_broker_not_public(policy_findings, public, violates):
    found = messages(policy_findings([broker(publiclyAccessible=public)]), "mq-broker-not-public", "platform")
    assert bool(found) is violates


@pytest.mark.parametrize(("logs", "violates"), [
    ({"general": True}, False), ({"general": False}, True), (None, True), ({"audit": True}, True)])
def test_mq_broker_logging(policy_findings, logs, violates):
    found = messages(policy_findings([broker(logs=logs)]), "mq-broker-logging", "platform")
    assert bool(found) is violates


@pytest.mark.parametrize(("engine", "mode", "violates"), [
    ("RabbitMQ", "CLUSTER_MULTI_AZ", False),
    ("ActiveMQ", "ACTIVE_STANDBY_MULTI_AZ", False),  # not applicable to ActiveMQ
    ("ActiveMQ", "SINGLE_INSTANCE", False),
    ("RabbitMQ", "SINGLE_INSTANCE", True),
    ("RabbitMQ", None, True),  # the default is SINGLE_INSTANCE
], ids=["rabbit-cluster", "active-standby", "activemq-single", "rabbit-single", "rabbit-default"])
def test_mq_broker_multi_az(policy_findings, engine, mode, violates):
    found = messages(policy_findings([broker(engineType=engine, deploymentMode=mode)]), "mq-broker-multi-az",
                     "platform")
    assert bool(found) is violates
    if violates:
        assert "deployment_mode='CLUSTER_MULTI_AZ'" in found[0]


@pytest.mark.parametrize(("engine", "version", "instance", "mode", "found"), [
    ("RabbitMQ", "4.2", "mq.m7g.large", "CLUSTER_MULTI_AZ", None),
    ("RabbitMQ", "3.13", "mq.t3.micro", None, None),  # the default mode is SINGLE_INSTANCE
    ("RabbitMQ", "4.2", "mq.m5.large", "SINGLE_INSTANCE", "RabbitMQ 4.2 runs only on mq.m7g.*"),
    ("RabbitMQ", "3.13", "mq.t3.micro", "CLUSTER_MULTI_AZ", "mq.t3.micro is offered only as SINGLE_INSTANCE"),
    ("RabbitMQ", "3.8.6", "mq.m5.large", "SINGLE_INSTANCE", "offers engine versions 4.3, 4.2, 3.13"),
    ("ActiveMQ", "5.18", "mq.m5.large", "SINGLE_INSTANCE", None),  # not applicable to ActiveMQ
], ids=["4.2-m7g-cluster", "3.13-t3-default", "4.2-m5", "t3-cluster", "old-engine", "activemq"])
def test_mq_broker_engine_instance_supported(policy_findings, engine, version, instance, mode, found):
    messages_ = messages(policy_findings([broker(engineType=engine, engineVersion=version, hostInstanceType=instance,
                                                 deploymentMode=mode)]),
                         "mq-broker-engine-instance-supported", "platform")
    if found is None:
        assert messages_ == []
    else:
        assert len(messages_) == 1 and found in messages_[0]


# --- logs-retention-set -------------------------------------------------------------------------


@pytest.mark.parametrize(("retention", "expected"), [
    (14, None), (3653, None),
    (None, "keeps its logs forever"), (0, "keeps its logs forever"), (10, "retention_in_days=10, which CloudWatch"),
], ids=["14", "3653", "unset", "zero", "not-allowed"])
def test_logs_retention_set(policy_findings, retention, expected):
    inputs: dict[str, Any] = {"name": "/ml/inference"}
    if retention is not None:
        inputs["retentionInDays"] = retention
    found = messages(policy_findings([res(LOG_GROUP, "inference-logs", inputs)]), "logs-retention-set",
                     "inference-logs")
    if expected is None:
        assert not found
    else:
        assert len(found) == 1 and expected in found[0]


@pytest.mark.parametrize("inputs", [{}, {"retentionInDays": 1}])
def test_a_delivery_class_log_group_is_not_held_to_a_retention(policy_findings, policy_not_applicable, inputs):
    # CloudWatch Logs keeps the events of a DELIVERY-class log group one day whatever retention_in_days says
    # (botocore logs model, CreateLogGroup.logGroupClass; pulumi_aws LogGroup: "retention_in_days is forcibly
    # set to 2"): neither "keeps its logs forever" nor a floor can apply
    group = res(LOG_GROUP, "delivery", {"name": "/aws/lambda/export", "logGroupClass": "DELIVERY", **inputs})
    findings = policy_findings([group], env="prod")
    assert not messages(findings, "logs-retention-set", "delivery")
    assert not messages(findings, "logs-retention-floor", "delivery")
    reasons = [na["reason"] for na in policy_not_applicable([group], env="prod")
               if na["rule"] in ("logs-retention-set", "logs-retention-floor")]
    assert len(reasons) == 2 and all("DELIVERY" in reason for reason in reasons)
    standard = res(LOG_GROUP, "standard", {"name": "/ml/inference", "logGroupClass": "STANDARD", **inputs})
    assert messages(policy_findings([standard], env="prod"), "logs-retention-set", "standard") or messages(
        policy_findings([standard], env="prod"), "logs-retention-floor", "standard")


# --- the broker's adopted log group (a dynamic resource) is held to the same retention rules ------------------



def adopted_group(retention: Any) -> dict[str, Any]:
    """Amazon MQ's /aws/amazonmq/broker/<id>/general as shared.components.broker_logs creates or adopts it."""
    inputs: dict[str, Any] = {"log_group_name": "/aws/amazonmq/broker/b-1/general", "region": "eu-west-1",
                              "account_id": "111111111111", "kms_key_arn": None}
    if retention is not None:
        inputs["retention_in_days"] = retention
    return res(ADOPTED, "broker-logs", inputs)


@pytest.mark.parametrize(("env", "retention", "rule", "expected"), [
    ("prod", 365, "logs-retention-floor", None),
    ("prod", 30, "logs-retention-floor", "keeps its logs 30 day(s); this env requires at least 365"),
    ("staging", 14, "logs-retention-floor", "requires at least 30"),
    ("dev", 30, "logs-retention-set", None),
    ("dev", 10, "logs-retention-set", "retention_in_days=10, which CloudWatch"),
    ("dev", None, "logs-retention-set", "keeps its logs forever"),
])
def test_the_brokers_adopted_log_group_is_held_to_the_retention_rules(policy_findings, env, retention, rule,
                                                                       expected):
    # messaging.broker_log_retention_days reaches the group through PutRetentionPolicy of the dynamic resource, not an
    # aws.cloudwatch.LogGroup: without this a prod env dropping its 365 kept the broker's logs 30 days unreported
    found = messages(policy_findings([adopted_group(retention)], env=env), rule, "broker-logs")
    if expected is None:
        assert not found
    else:
        assert len(found) == 1 and expected in found[0], found


def test_a_dynamic_resource_without_a_log_group_is_not_judged(policy_not_applicable):
    other = res(ADOPTED, "other", {"anything": 1})
    reasons = [na["reason"] for na in policy_not_applicable([other], env="prod")
               if na["rule"] in ("logs-retention-set", "logs-retention-floor")]
    assert len(reasons) == 2 and all("no log group" in reason for reason in reasons), reasons
