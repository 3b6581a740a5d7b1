"""``eventbridge-topic-target-publishable`` through the real aws pack: an EventBridge target on an encrypted topic of
its stack passes only where the topic's key lets EventBridge in without aws:Source* conditions (its KMS call carries
none) and the topic policy lets it publish for the rule; a target elsewhere is not judged; an unknown policy or rule
leaves the rule undecided."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import ACCOUNT, UNKNOWN_STRING, encrypted_topic_stack, res, service_statement
from tests.policies.resources import TOPIC_KEY_ADMIN as ADMIN
from tests.policies.resources import policy_document as policy

RULE = "eventbridge-topic-target-publishable"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
TOPIC = "aws:sns/topic:Topic"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
RULE_NAME = "dev-ml-admin-rotation-failed"
SOURCE = {"StringEquals": {"aws:SourceAccount": ACCOUNT},
          "ArnLike": {"aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/dev-ml-*"}}


def events(actions: list[str] | str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return service_statement("EventBridgeRulesPublish", "events.amazonaws.com", actions, condition)


KEY_POLICY = policy(ADMIN, events(["kms:Decrypt", "kms:GenerateDataKey*"]))
TOPIC_DOC = policy(events("sns:Publish", SOURCE))


def stack(key_policy: str | None = KEY_POLICY, topic_policy: str | None = TOPIC_DOC, *, rule_name: str = RULE_NAME,
          key_id: str | None = None, key_policy_resource: str | None = None, own_topic_policy: str | None = None,
          bus: str | None = None, target_rule: str | None = None) -> list[dict[str, Any]]:
    """A rule whose target is a topic of the stack, encrypted with a key of the stack, with a topic policy
    (:func:`encrypted_topic_stack`, which takes ``key_id``, ``key_policy_resource`` and ``own_topic_policy``);
    ``target_rule`` is the target's ``rule`` input (default: the rule's name, known)."""

    def rule_and_target(topic: dict[str, Any]) -> list[dict[str, Any]]:
        rule = res(EVENT_RULE, "rule", {"name": rule_name, "eventPattern": "{}"})
        target = res(EVENT_TARGET, "target", {"rule": target_rule if target_rule is not None else rule_name,
                                              "arn": UNKNOWN_STRING, **({"eventBusName": bus} if bus else {})},
                     dependencies=[rule, topic], property_dependencies={"rule": [rule], "arn": [topic]})
        return [rule, target]

    return encrypted_topic_stack(rule_and_target, key_policy, topic_policy, key_id=key_id,
                                 key_policy_resource=key_policy_resource, own_topic_policy=own_topic_policy)


def judged(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


@pytest.mark.parametrize("resources", [
    stack(),
    stack(topic_policy=None),  # SNS's default topic policy lets the account's services publish
    stack(topic_policy=policy(events("sns:Publish"))),
    stack(key_policy=policy(ADMIN, events("kms:*"))),
    stack(topic_policy=policy(events("sns:Publish", {"ArnEquals": {
        "aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/{RULE_NAME}"}}))),
    stack(bus="ml-bus", topic_policy=policy(events("sns:Publish", {"ArnLike": {
        "aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/ml-bus/dev-ml-*"}}))),
    # a key of another stack (by ARN) cannot be read: not judged
    stack(key_policy=None, key_id=f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"),
    stack(key_policy=None, key_policy_resource=KEY_POLICY),
    stack(topic_policy=None, own_topic_policy=TOPIC_DOC),
    stack(target_rule=UNKNOWN_STRING),  # the rule's name read from the rule it references
], ids=["platform", "default-topic-policy", "unconditioned-topic", "kms-star", "exact-arn", "other-bus",
        "other-stack-key", "key-policy-resource", "own-topic-policy", "rule-by-reference"])
def test_targets_that_can_publish_pass(policy_findings, resources):
    assert judged(policy_findings(resources)) == []


@pytest.mark.parametrize(("resources", "says"), [
    (stack(key_policy=policy(ADMIN)), "its KMS key 'alarms-key' does not let events.amazonaws.com"),
    (stack(key_policy=None), "its KMS key 'alarms-key' does not let"),  # AWS's default key policy: IAM only
    (stack(key_policy=policy(ADMIN, events(["kms:Decrypt"]))), "kms:GenerateDataKey*"),
    # CloudWatch's confused-deputy condition copied onto EventBridge's statement: KMS never sees those keys
    (stack(key_policy=policy(ADMIN, events(["kms:Decrypt", "kms:GenerateDataKey*"], SOURCE))),
     "without an aws:SourceArn, aws:SourceAccount or aws:SourceOrgID condition"),
    (stack(key_policy=policy(ADMIN, events(["kms:Decrypt", "kms:GenerateDataKey*"],
                                           {"StringEquals": {"aws:SourceOrgID": "o-abc"}}))), "aws:SourceOrgID"),
    (stack(rule_name="staging-ml-admin-rotation-failed"),
     "does not let events.amazonaws.com call sns:Publish for rule/staging-ml-admin-rotation-failed"),
    (stack(bus="ml-bus"), "for rule/ml-bus/dev-ml-admin-rotation-failed"),
    (stack(topic_policy=policy({"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": "sns:Publish", "Resource": "*"})),
     "its topic policy 'alarms-topic' does not let events.amazonaws.com call sns:Publish"),
    (stack(key_policy=None, key_id="alias/aws/sns"), "the AWS managed key alias/aws/sns"),
    (stack(key_policy_resource=policy(ADMIN)),
     "its KMS key 'alarms-key' (key policy 'alarms-key-policy') does not let"),
    (stack(topic_policy=None, own_topic_policy=policy({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sns:Publish",
        "Resource": "*"})), "its policy input does not let events.amazonaws.com call sns:Publish"),
], ids=["no-events", "default-key-policy", "decrypt-only", "source-conditioned-key", "org-conditioned-key",
        "pattern-misses", "other-bus-misses", "topic-policy-cloudwatch-only", "aws-managed-key",
        "key-policy-resource-without-events", "own-topic-policy-account-only"])
def test_targets_that_cannot_publish_are_reported(policy_findings, resources, says):
    found = judged(policy_findings(resources))
    assert any(says in message for message in found), found
    assert all(message.startswith("event target 'target' cannot publish to topic 'alarms-topic': ")
               for message in found), found


def test_a_target_that_is_no_topic_of_the_stack_is_not_judged(policy_findings, policy_not_applicable):
    # the compute layer's task-stops rule writes to a log group; another stack's topic is named by its ARN
    group = res(LOG_GROUP, "task-stops", {"name": "/platform/dev/compute/ecs/task-stops"})
    topic = res(TOPIC, "local", {"name": "local", "kmsMasterKeyId": "alias/aws/sns"})
    resources = [group, topic,
                 res(EVENT_TARGET, "to-logs", {"rule": "dev-ml-ecs-task-stops",
                                               "arn": "arn:aws:logs:eu-west-1:111111111111:log-group:x"},
                     dependencies=[group]),
                 res(EVENT_TARGET, "to-other-stack", {"rule": RULE_NAME,
                                                      "arn": f"arn:aws:sns:eu-west-1:{ACCOUNT}:dev-ml-alarms"})]
    assert judged(policy_findings(resources)) == []
    assert not [na for na in policy_not_applicable(resources) if na["rule"] == RULE]


@pytest.mark.parametrize(("resources", "reason"), [
    (stack(key_policy=UNKNOWN_STRING), "KMS key 'alarms-key': policy"),
    (stack(topic_policy=UNKNOWN_STRING), "topic policy 'alarms-topic': policy"),
    (stack(rule_name=UNKNOWN_STRING, target_rule=UNKNOWN_STRING), "event target 'target': rule"),
    (stack(bus=UNKNOWN_STRING), "event target 'target': eventBusName"),
])
def test_unknown_policies_or_names_leave_the_rule_undecided(policy_findings, policy_not_applicable, resources, reason):
    assert judged(policy_findings(resources)) == []
    [record] = [na for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert reason in record["reason"]
