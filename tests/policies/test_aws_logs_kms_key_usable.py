"""``logs-kms-key-usable`` through the real aws pack: a log group encrypted with a key of its stack passes only
where the key's policy lets CloudWatch Logs use it for that group; a key of another stack is not judged; an
unknown policy or group name leaves the rule undecided."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.policy.engine import evaluate_documents_result
from tests.policies.resources import UNKNOWN_STRING, res
from tests.synth_helpers import spec_document

RULE = "logs-kms-key-usable"
ACCOUNT, GROUP_NAME = "111111111111", "/platform/dev/compute/training"
CONTEXT = "kms:EncryptionContext:aws:logs:arn"
GROUP, KEY, KEY_POLICY_TYPE = "aws:cloudwatch/logGroup:LogGroup", "aws:kms/key:Key", "aws:kms/keyPolicy:KeyPolicy"
ADMIN = {"Sid": "AccountAdministersThroughIam", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": ["kms:Decrypt", "kms:Encrypt"],
         "Resource": "*"}
LAYER = {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                     f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/platform/dev/compute/*"}}
#: the platform's statement (shared.components.compute_iam LOGS_KEY_ACTIONS)
ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey",
           "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]


def logs(actions: list[str] | str = ACTIONS, condition: dict[str, Any] | None = LAYER,
         principal: str = "logs.eu-west-1.amazonaws.com") -> dict[str, Any]:
    statement = {"Sid": "CloudWatchLogs", "Effect": "Allow", "Principal": {"Service": principal},
                 "Action": actions, "Resource": "*"}
    if condition:
        statement["Condition"] = condition
    return statement


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def stack(key_policy: str | None = policy(ADMIN, logs()), *, group_name: str = GROUP_NAME,
          key_id: str | None = None, key_policy_resource: str | None = None) -> list[dict[str, Any]]:
    """A log group encrypted with a key of the stack (compute's shape); ``key_id`` replaces the reference to the
    stack's key by a value; ``key_policy_resource`` adds an aws.kms.KeyPolicy for the key."""
    key = res(KEY, "compute-logs", {"policy": key_policy} if key_policy is not None else {})
    group = res(GROUP, "training", {"name": group_name, "retentionInDays": 30, "kmsKeyId": key_id or UNKNOWN_STRING},
                dependencies=[] if key_id else [key], property_dependencies={} if key_id else {"kmsKeyId": [key]})
    resources = [key, group]
    if key_policy_resource is not None:
        resources.append(res(KEY_POLICY_TYPE, "compute-logs-policy",
                             {"keyId": UNKNOWN_STRING, "policy": key_policy_resource},
                             dependencies=[key], property_dependencies={"keyId": [key]}))
    return resources


def judged(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


@pytest.mark.parametrize("resources", [
    stack(),
    stack(key_policy=policy(ADMIN, logs(["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                                         "kms:Describe*"], condition={"ArnEquals": {
                                             "kms:EncryptionContext:aws:logs:arn":
                                             f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:{GROUP_NAME}"}}))),
    stack(key_policy=policy(ADMIN, logs("kms:*", condition=None))),
    # the broker's key: every Amazon MQ broker group of the account
    stack(group_name="/aws/amazonmq/broker/b-1234/general", key_policy=policy(ADMIN, logs(condition={"ArnLike": {
        CONTEXT: f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/amazonmq/broker/b-*/general"}}))),
    # ArnEquals takes wildcards like ArnLike (IAM user guide, "Amazon Resource Name (ARN) condition operators")
    stack(key_policy=policy(ADMIN, logs(condition={"ArnEquals": {
        CONTEXT: f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/platform/dev/compute/*"}}))),
    # StringLike: a * spans colons
    stack(key_policy=policy(ADMIN, logs(condition={"StringLike": {
        "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*:log-group:/platform/dev/*"}}))),
    stack(key_policy=None, key_policy_resource=policy(ADMIN, logs())),
    stack(key_policy=policy(ADMIN, logs(principal="logs.cn-north-1.amazonaws.com.cn"))),
    # a key of another stack (by ARN) cannot be read: not judged
    stack(key_policy=None, key_id=f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"),
], ids=["platform", "guide-statement", "unconditioned", "broker-groups", "arn-equals-wildcard", "string-like",
        "key-policy-resource", "china", "other-stack-key"])
def test_log_groups_whose_key_lets_cloudwatch_logs_in_pass(policy_findings, resources):
    assert judged(policy_findings(resources)) == []


def test_a_log_group_without_a_key_is_not_judged(policy_findings):
    resources = [res(KEY, "other", {"policy": policy(ADMIN)}),
                 res(GROUP, "plain", {"name": GROUP_NAME, "retentionInDays": 30})]
    assert judged(policy_findings(resources)) == []


@pytest.mark.parametrize(("resources", "says"), [
    (stack(key_policy=policy(ADMIN)), "its KMS key 'compute-logs' does not let logs.<region>.amazonaws.com"),
    (stack(key_policy=None), "its KMS key 'compute-logs' does not let"),  # AWS's default key policy: IAM only
    (stack(key_policy=policy(ADMIN, logs(["kms:Decrypt", "kms:GenerateDataKey"]))), "kms:Encrypt"),
    # a group outside the pattern: a new service's group named elsewhere
    (stack(group_name="/platform/dev/training"), "log-group:/platform/dev/training"),
    # another layer's groups only
    (stack(key_policy=policy(ADMIN, logs(condition={"ArnLike": {
        CONTEXT: f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/platform/dev/network/*"}}))),
     "does not let"),
    # another service's ARN
    (stack(key_policy=policy(ADMIN, logs(condition={"ArnLike": {
        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:events:eu-west-1:{ACCOUNT}:log-group:/platform/dev/*"}}))),
     "does not let"),
    (stack(key_policy=policy(ADMIN, logs(principal="logs.amazonaws.com"))), "does not let"),
    # StringEquals takes no wildcard: the * is a literal character
    (stack(key_policy=policy(ADMIN, logs(condition={"StringEquals": {
        CONTEXT: f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/platform/dev/compute/*"}}))), "does not let"),
    (stack(key_policy_resource=policy(ADMIN)), "its KMS key 'compute-logs' (key policy 'compute-logs-policy')"),
], ids=["no-logs-statement", "default-key-policy", "no-encrypt", "group-outside-pattern", "other-layer",
        "other-service",
        "global-principal", "string-equals-literal-star", "key-policy-resource-without-logs"])
def test_log_groups_whose_key_keeps_cloudwatch_logs_out_are_reported(policy_findings, resources, says):
    found = judged(policy_findings(resources))
    assert found and all(message.startswith("log group 'training': ") for message in found), found
    assert any(says in message for message in found), found


@pytest.mark.parametrize(("resources", "reason"), [
    (stack(key_policy=UNKNOWN_STRING), "KMS key 'compute-logs': policy"),
    (stack(group_name=UNKNOWN_STRING), "log group 'training': name"),
    (stack(key_policy_resource=UNKNOWN_STRING), "key policy 'compute-logs-policy': policy"),
])
def test_unknown_policies_or_names_leave_the_rule_undecided(policy_findings, policy_not_applicable, resources, reason):
    assert judged(policy_findings(resources)) == []
    [record] = [na for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert reason in record["reason"]


@pytest.mark.parametrize("layer", ["network", "broker", "messaging", "compute"])
def test_the_platforms_log_groups_are_judged_and_pass_and_a_renamed_group_fails(policy_engine, layer):
    """Over the shipped dev env's synth (its snapshot): the rule decides every layer with an encrypted log group
    and passes it; the same group renamed out of its key's pattern (a new group named elsewhere) is reported."""
    doc = spec_document("dev", layer)
    result = evaluate_documents_result([doc], env_name="dev", engine=policy_engine)
    assert [f.message for f in result.findings if f.rule == RULE] == []
    assert [na.reason for na in result.not_applicable if na.rule == RULE] == []
    group = next(r for r in doc["resources"] if r["type"] == GROUP and "kmsKeyId" in r["inputs"])
    group["inputs"]["name"] = "/elsewhere/" + group["inputs"]["name"].rsplit("/", 1)[-1]
    result = evaluate_documents_result([doc], env_name="dev", engine=policy_engine)
    assert [f.rule for f in result.findings if f.rule == RULE] == [RULE]


def test_the_brokers_adopted_group_is_judged_too(policy_engine):
    """Amazon MQ's own group (/aws/amazonmq/broker/<id>/general) is created or adopted by a dynamic resource
    (shared.components.broker_logs), not an aws.cloudwatch.LogGroup: the rule reads its ``log_group_name`` and
    ``kms_key_arn`` the same way. The shipped one passes; the same group under a name outside its key's pattern is
    reported."""
    doc = spec_document("dev", "broker")
    adopted = next(r for r in doc["resources"] if r["type"] == "pulumi-python:dynamic:Resource"
                   and "log_group_name" in r["inputs"] and r["inputs"].get("kms_key_arn"))
    result = evaluate_documents_result([doc], env_name="dev", engine=policy_engine)
    assert [f.message for f in result.findings if f.rule == RULE] == []
    adopted["inputs"]["log_group_name"] = "/aws/amazonmq/broker-elsewhere/b-1/general"
    result = evaluate_documents_result([doc], env_name="dev", engine=policy_engine)
    found = [f.message for f in result.findings if f.rule == RULE]
    assert len(found) == 1 and found[0].startswith(f"log group '{adopted['name']}': "), found
    assert "log-group:/aws/amazonmq/broker-elsewhere/b-1/general" in found[0]
