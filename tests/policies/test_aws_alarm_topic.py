"""``cloudwatch-alarm-topic-publishable`` through the real aws pack: an alarm notifying an encrypted topic of its
stack passes only where the topic's key (and topic policy) let CloudWatch in for that alarm; a topic of another
stack is not judged; an unknown policy leaves the rule undecided."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import ACCOUNT, UNKNOWN_STRING, encrypted_topic_stack, res, service_statement
from tests.policies.resources import TOPIC_KEY_ADMIN as ADMIN
from tests.policies.resources import policy_document as policy

RULE = "cloudwatch-alarm-topic-publishable"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
TOPIC = "aws:sns/topic:Topic"
ALARM_NAME = "dev-ml-broker-memory"
SOURCE = {"StringEquals": {"aws:SourceAccount": ACCOUNT},
          "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:dev-ml-*"}}


def cloudwatch(actions: list[str] | str, condition: dict[str, Any] | None = SOURCE) -> dict[str, Any]:
    return service_statement("CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com", actions, condition)


KEY_POLICY = policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey*"]))
TOPIC_DOC = policy(cloudwatch("sns:Publish"))


def stack(key_policy: str | None = KEY_POLICY, topic_policy: str | None = TOPIC_DOC, *, alarm_name: str = ALARM_NAME,
          key_id: str | None = None, alarm_type: str = ALARM, key_policy_resource: str | None = None,
          own_topic_policy: str | None = None) -> list[dict[str, Any]]:
    """An alarm notifying (ALARM and OK) a topic of the stack, encrypted with a key of the stack, with a topic
    policy (:func:`encrypted_topic_stack`, which takes ``key_id``, ``key_policy_resource`` and
    ``own_topic_policy``)."""

    def alarm(topic: dict[str, Any]) -> list[dict[str, Any]]:
        actions = {"alarmActions": [UNKNOWN_STRING], "okActions": [UNKNOWN_STRING]}
        return [res(alarm_type, "alarm", {"name": alarm_name, **actions}, dependencies=[topic],
                    property_dependencies={"alarmActions": [topic], "okActions": [topic]})]

    return encrypted_topic_stack(alarm, key_policy, topic_policy, key_id=key_id,
                                 key_policy_resource=key_policy_resource, own_topic_policy=own_topic_policy)


def judged(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


@pytest.mark.parametrize("resources", [
    stack(),
    stack(alarm_type=COMPOSITE),
    stack(topic_policy=None),  # SNS's default topic policy lets the account's services publish
    stack(key_policy=policy(ADMIN, cloudwatch("kms:*", condition=None))),
    stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey"], condition={
        "ArnEquals": {"aws:SourceArn": [f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:other",
                                        f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{ALARM_NAME}"]}}))),
    stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey*"], condition={
        "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:*:*"}}))),
    # a key of another stack (by ARN) cannot be read: not judged
    stack(key_policy=None, key_id=f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"),
    # StringLike matches the whole ARN: its * spans the region and account (IAM, string condition operators)
    stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey*"], condition={
        "StringLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:alarm:dev-ml-*"}}))),
    stack(topic_policy=policy(cloudwatch("sns:Publish", condition={
        "StringLike": {"aws:SourceArn": f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:*"}}))),
    # the key's policy written through aws.kms.KeyPolicy, the key's own input left unset
    stack(key_policy=None, key_policy_resource=KEY_POLICY),
    # the topic's policy written as its own input rather than an aws.sns.TopicPolicy
    stack(topic_policy=None, own_topic_policy=TOPIC_DOC),
], ids=["platform", "composite", "default-topic-policy", "unconditioned", "exact-arns", "any-alarm", "other-stack-key",
        "string-like-spanning-colons", "string-like-topic", "key-policy-resource", "own-topic-policy"])
def test_alarms_that_can_publish_pass(policy_findings, resources):
    assert judged(policy_findings(resources)) == []


@pytest.mark.parametrize(("resources", "says"), [
    (stack(key_policy=policy(ADMIN)), "its KMS key 'alarms-key' does not let cloudwatch.amazonaws.com"),
    (stack(key_policy=None), "its KMS key 'alarms-key' does not let"),  # AWS's default key policy: IAM only
    (stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt"]))), "kms:GenerateDataKey*"),
    (stack(alarm_name="staging-ml-broker-memory"), "for alarm 'staging-ml-broker-memory' (an aws:SourceArn"),
    (stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey*"], condition={
        "ArnLike": {"aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/dev-ml-*"}}))), "does not let"),
    (stack(topic_policy=policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                "Action": "sns:Publish", "Resource": "*"})),
     "its topic policy 'alarms-topic' does not let cloudwatch.amazonaws.com call sns:Publish"),
    (stack(key_policy=None, key_id="alias/aws/sns"), "the AWS managed key alias/aws/sns"),
    (stack(key_policy=None, key_id=f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/aws/sns"), "alias/aws/sns"),
    (stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey*"], condition={
        "StringLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:alarm:prod-*"}}))), "does not let"),
    # an aws.kms.KeyPolicy replaces the key's own policy input
    (stack(key_policy_resource=policy(ADMIN)),
     "its KMS key 'alarms-key' (key policy 'alarms-key-policy') does not let"),
    (stack(topic_policy=None, own_topic_policy=policy({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sns:Publish",
        "Resource": "*"})), "its policy input does not let cloudwatch.amazonaws.com call sns:Publish"),
], ids=["no-cloudwatch", "default-key-policy", "decrypt-only", "pattern-misses", "other-service-arn",
        "topic-policy-account-only", "aws-managed-key", "aws-managed-key-arn", "string-like-misses",
        "key-policy-resource-without-cloudwatch", "own-topic-policy-account-only"])
def test_alarms_that_cannot_publish_are_reported(policy_findings, resources, says):
    found = judged(policy_findings(resources))
    # one finding per policy that keeps CloudWatch out (a name the patterns miss: the key's and the topic's)
    assert any(says in message for message in found), found
    assert all(message.startswith("alarm 'alarm' cannot notify topic 'alarms-topic': ") for message in found), found


def test_an_alarm_notifying_another_stacks_topic_is_not_judged(policy_findings, policy_not_applicable):
    # compute and messaging notify the broker layer's topic by its ARN from a stack reference
    resources = [res(TOPIC, "local", {"name": "local", "kmsMasterKeyId": "alias/aws/sns"}),
                 res(ALARM, "alarm", {"name": ALARM_NAME,
                                      "alarmActions": [f"arn:aws:sns:eu-west-1:{ACCOUNT}:dev-ml-alarms"]})]
    assert judged(policy_findings(resources)) == []
    assert not [na for na in policy_not_applicable(resources) if na["rule"] == RULE]


@pytest.mark.parametrize(("resources", "reason"), [
    (stack(key_policy=UNKNOWN_STRING), "KMS key 'alarms-key': policy"),
    (stack(topic_policy=UNKNOWN_STRING), "topic policy 'alarms-topic': policy"),
    (stack(alarm_name=UNKNOWN_STRING), "alarm 'alarm': name"),
    (stack(key_policy_resource=UNKNOWN_STRING), "key policy 'alarms-key-policy': policy"),
    (stack(topic_policy=None, own_topic_policy=UNKNOWN_STRING), "topic 'alarms-topic': policy"),
])
def test_unknown_policies_or_names_leave_the_rule_undecided(policy_findings, policy_not_applicable, resources, reason):
    assert judged(policy_findings(resources)) == []
    [record] = [na for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert reason in record["reason"]
