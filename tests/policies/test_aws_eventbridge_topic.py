"""``eventbridge-topic-target-publishable`` through the real aws pack: an EventBridge target on an encrypted topic of
its stack passes only where the topic's key lets EventBridge in without aws:Source* conditions (its KMS call carries
none) and the topic policy lets it publish for the rule; a target elsewhere is not judged; an unknown policy or rule
leaves the rule undecided."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import ACCOUNT, UNKNOWN_STRING, TopicPublishing, res, source_condition
from tests.policies.resources import TOPIC_KEY_ADMIN as ADMIN
from tests.policies.resources import policy_document as policy
from tests.policies.tokens import EVENT_RULE, EVENT_TARGET, LOG_GROUP, TOPIC

RULE = "eventbridge-topic-target-publishable"
RULE_NAME = "dev-ml-admin-rotation-failed"
SOURCE = source_condition("events", "rule/dev-ml-*")
#: EventBridge's KMS call carries no aws:Source* key: its key policy statement has no condition
EVENTS = TopicPublishing(RULE, "EventBridgeRulesPublish", "events.amazonaws.com", key_condition=None,
                         topic_condition=SOURCE, default_policy_admits=False)
events = EVENTS.statement


def stack(*, rule_name: str = RULE_NAME, bus: str | None = None, target_rule: str | None = None,
          **topic: str | None) -> list[dict[str, Any]]:
    """A rule whose target is a topic of the stack, encrypted with a key of the stack, with a topic policy
    (:meth:`TopicPublishing.stack`, which takes the ``topic`` keywords); ``target_rule`` is the target's ``rule`` input
    (default: the rule's name, known)."""

    def rule_and_target(topic: dict[str, Any]) -> list[dict[str, Any]]:
        rule = res(EVENT_RULE, "rule", {"name": rule_name, "eventPattern": "{}"})
        target = res(EVENT_TARGET, "target", {"rule": target_rule if target_rule is not None else rule_name,
                                              "arn": UNKNOWN_STRING, **({"eventBusName": bus} if bus else {})},
                     dependencies=[rule, topic], property_dependencies={"rule": [rule], "arn": [topic]})
        return [rule, target]

    return EVENTS.stack(rule_and_target, **topic)


@pytest.mark.parametrize("resources", [
    *EVENTS.passing(stack),
    pytest.param(stack(topic_policy=policy(events("sns:Publish"))), id="unconditioned-topic"),
    pytest.param(stack(key_policy=policy(ADMIN, events("kms:*"))), id="kms-star"),
    pytest.param(stack(topic_policy=policy(events("sns:Publish", {"ArnEquals": {
        "aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/{RULE_NAME}"}}))), id="exact-arn"),
    pytest.param(stack(bus="ml-bus", topic_policy=policy(events("sns:Publish", {"ArnLike": {
        "aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/ml-bus/dev-ml-*"}}))), id="other-bus"),
    # the rule's name read from the rule it references
    pytest.param(stack(target_rule=UNKNOWN_STRING), id="rule-by-reference"),
])
def test_targets_that_can_publish_pass(policy_findings, resources):
    assert EVENTS.judged(policy_findings(resources)) == []


@pytest.mark.parametrize(("resources", "says"), [
    *EVENTS.refused(stack),
    # CloudWatch's confused-deputy condition copied onto EventBridge's statement: KMS never sees those keys
    pytest.param(stack(key_policy=policy(ADMIN, events(["kms:Decrypt", "kms:GenerateDataKey*"], SOURCE))),
                 "without an aws:SourceArn, aws:SourceAccount or aws:SourceOrgID condition",
                 id="source-conditioned-key"),
    pytest.param(stack(key_policy=policy(ADMIN, events(["kms:Decrypt", "kms:GenerateDataKey*"],
                                                       {"StringEquals": {"aws:SourceOrgID": "o-abc"}}))),
                 "aws:SourceOrgID", id="org-conditioned-key"),
    pytest.param(stack(rule_name="staging-ml-admin-rotation-failed"),
                 "does not let events.amazonaws.com call sns:Publish for rule/staging-ml-admin-rotation-failed",
                 id="pattern-misses"),
    pytest.param(stack(bus="ml-bus"), "for rule/ml-bus/dev-ml-admin-rotation-failed", id="other-bus-misses"),
    pytest.param(stack(topic_policy=policy({"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                            "Action": "sns:Publish", "Resource": "*"})),
                 "its topic policy 'alarms-topic' does not let events.amazonaws.com call sns:Publish",
                 id="topic-policy-cloudwatch-only"),
])
def test_targets_that_cannot_publish_are_reported(policy_findings, resources, says):
    found = EVENTS.judged(policy_findings(resources))
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
    assert EVENTS.judged(policy_findings(resources)) == []
    assert not EVENTS.not_applicable(policy_not_applicable(resources))


@pytest.mark.parametrize(("resources", "reason"), [
    *EVENTS.undecided(stack),
    pytest.param(stack(rule_name=UNKNOWN_STRING, target_rule=UNKNOWN_STRING), "event target 'target': rule",
                 id="rule-name"),
    pytest.param(stack(bus=UNKNOWN_STRING), "event target 'target': eventBusName", id="bus"),
])
def test_unknown_policies_or_names_leave_the_rule_undecided(policy_findings, policy_not_applicable, resources, reason):
    assert EVENTS.judged(policy_findings(resources)) == []
    [record] = EVENTS.not_applicable(policy_not_applicable(resources))
    assert reason in record["reason"]
