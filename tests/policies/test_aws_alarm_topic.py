"""``cloudwatch-alarm-topic-publishable`` through the real aws pack: an alarm notifying an encrypted topic of its
stack passes only where the topic's key (and topic policy) let CloudWatch in for that alarm; a topic of another
stack is not judged; an unknown policy leaves the rule undecided."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import ACCOUNT, UNKNOWN_STRING, TopicPublishing, res, source_condition
from tests.policies.resources import TOPIC_KEY_ADMIN as ADMIN
from tests.policies.resources import policy_document as policy
from tests.policies.tokens import ALARM, COMPOSITE, TOPIC

RULE = "cloudwatch-alarm-topic-publishable"
ALARM_NAME = "dev-ml-broker-memory"
SOURCE = source_condition("cloudwatch", "alarm:dev-ml-*")
CLOUDWATCH = TopicPublishing(RULE, "CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com", key_condition=SOURCE,
                             topic_condition=SOURCE)


def cloudwatch(actions: list[str] | str, condition: dict[str, Any] | None = SOURCE) -> dict[str, Any]:
    return CLOUDWATCH.statement(actions, condition)


def stack(*, alarm_name: str = ALARM_NAME, alarm_type: str = ALARM, **topic: str | None) -> list[dict[str, Any]]:
    """An alarm notifying (ALARM and OK) a topic of the stack, encrypted with a key of the stack, with a topic
    policy (:meth:`TopicPublishing.stack`, which takes the ``topic`` keywords)."""

    def alarm(topic: dict[str, Any]) -> list[dict[str, Any]]:
        actions = {"alarmActions": [UNKNOWN_STRING], "okActions": [UNKNOWN_STRING]}
        return [res(alarm_type, "alarm", {"name": alarm_name, **actions}, dependencies=[topic],
                    property_dependencies={"alarmActions": [topic], "okActions": [topic]})]

    return CLOUDWATCH.stack(alarm, **topic)


@pytest.mark.parametrize("resources", [
    *CLOUDWATCH.passing(stack),
    pytest.param(stack(alarm_type=COMPOSITE), id="composite"),
    pytest.param(stack(key_policy=policy(ADMIN, cloudwatch("kms:*", condition=None))), id="unconditioned"),
    pytest.param(stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey"], condition={
        "ArnEquals": {"aws:SourceArn": [f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:other",
                                        f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{ALARM_NAME}"]}}))),
                 id="exact-arns"),
    pytest.param(stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey*"], condition={
        "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:*:*"}}))), id="any-alarm"),
    # StringLike matches the whole ARN: its * spans the region and account (IAM, string condition operators)
    pytest.param(stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey*"], condition={
        "StringLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:alarm:dev-ml-*"}}))), id="string-like-spanning-colons"),
    pytest.param(stack(topic_policy=policy(cloudwatch("sns:Publish", condition={
        "StringLike": {"aws:SourceArn": f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:*"}}))),
                 id="string-like-topic"),
])
def test_alarms_that_can_publish_pass(policy_findings, resources):
    assert CLOUDWATCH.judged(policy_findings(resources)) == []


@pytest.mark.parametrize(("resources", "says"), [
    *CLOUDWATCH.refused(stack),
    pytest.param(stack(alarm_name="staging-ml-broker-memory"),
                 "for alarm 'staging-ml-broker-memory' (an aws:SourceArn", id="pattern-misses"),
    pytest.param(stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey*"], condition={
        "ArnLike": {"aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/dev-ml-*"}}))), "does not let",
                 id="other-service-arn"),
    pytest.param(stack(topic_policy=policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                            "Action": "sns:Publish", "Resource": "*"})),
                 "its topic policy 'alarms-topic' does not let cloudwatch.amazonaws.com call sns:Publish",
                 id="topic-policy-account-only"),
    pytest.param(stack(key_policy=policy(ADMIN, cloudwatch(["kms:Decrypt", "kms:GenerateDataKey*"], condition={
        "StringLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:alarm:prod-*"}}))), "does not let",
                 id="string-like-misses"),
])
def test_alarms_that_cannot_publish_are_reported(policy_findings, resources, says):
    found = CLOUDWATCH.judged(policy_findings(resources))
    # one finding per policy that keeps CloudWatch out (a name the patterns miss: the key's and the topic's)
    assert any(says in message for message in found), found
    assert all(message.startswith("alarm 'alarm' cannot notify topic 'alarms-topic': ") for message in found), found


def test_an_alarm_notifying_another_stacks_topic_is_not_judged(policy_findings, policy_not_applicable):
    # compute and messaging notify the broker layer's topic by its ARN from a stack reference
    resources = [res(TOPIC, "local", {"name": "local", "kmsMasterKeyId": "alias/aws/sns"}),
                 res(ALARM, "alarm", {"name": ALARM_NAME,
                                      "alarmActions": [f"arn:aws:sns:eu-west-1:{ACCOUNT}:dev-ml-alarms"]})]
    assert CLOUDWATCH.judged(policy_findings(resources)) == []
    assert not CLOUDWATCH.not_applicable(policy_not_applicable(resources))


@pytest.mark.parametrize(("resources", "reason"), [
    *CLOUDWATCH.undecided(stack),
    pytest.param(stack(alarm_name=UNKNOWN_STRING), "alarm 'alarm': name", id="alarm-name"),
])
def test_unknown_policies_or_names_leave_the_rule_undecided(policy_findings, policy_not_applicable, resources, reason):
    assert CLOUDWATCH.judged(policy_findings(resources)) == []
    [record] = CLOUDWATCH.not_applicable(policy_not_applicable(resources))
    assert reason in record["reason"]
