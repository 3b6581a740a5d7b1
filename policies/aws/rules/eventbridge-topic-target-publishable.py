"""EventBridge rules can publish to the SNS topics of their own stack that they target (stack rule).

For every ``aws:cloudwatch/eventTarget:EventTarget`` whose ``arn`` names an ``aws:sns/topic:Topic`` of the stack:

- a topic encrypted with the AWS managed key ``alias/aws/sns`` fails: its policy cannot be changed to let
  EventBridge use it;
- a topic encrypted with a key of the stack needs a key policy statement that allows the ``events.amazonaws.com``
  service principal ``kms:Decrypt`` and ``kms:GenerateDataKey*`` with no condition on ``aws:SourceArn``,
  ``aws:SourceAccount`` or ``aws:SourceOrgID``: the KMS call EventBridge's delivery makes carries none of them, so
  such a statement never applies (the condition that holds CloudWatch's statement to the env's alarms, copied onto
  EventBridge's, drops every event). The key policy is the key's ``policy`` input, or that of an
  ``aws:kms/keyPolicy:KeyPolicy`` of the stack for the key, which replaces it;
- a topic with a policy, its own ``policy`` input or an ``aws:sns/topicPolicy:TopicPolicy`` of the stack (which
  replaces it), needs a statement that allows that principal ``sns:Publish``, each of its ``aws:SourceArn``
  conditions admitting the rule's ARN (``rule/<name>``, ``rule/<bus>/<name>`` on another bus than ``default``);
  a topic without one has SNS's default policy, whose one statement (any principal of the topic's account,
  ``AWS:SourceOwner``) does not admit EventBridge's service principal, and fails.

Other conditions are accepted as written. A topic or key the target cannot be traced to in the stack (another
stack's, by ARN) is not judged; an unknown policy, key reference or rule name makes the rule not applicable.

Why: EventBridge publishes to the topic as the service principal, and SNS encrypts the message with the topic's key
on its behalf (Amazon SNS developer guide, "Enable compatibility between event sources from AWS services and
encrypted topics"; EventBridge user guide, "Amazon SNS permissions"; AWS knowledge center, "Why isn't my Amazon SNS
topic receiving EventBridge notifications?"). A refused delivery is only a ``FailedInvocations`` data point of the
rule: the rule matches, looks wired in every listing, and nobody is notified. No cdk-nag or checkov equivalent.
"""

import re
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    SNS_TOPIC,
    TopicPublisher,
    Undecided,
    admits_source_arn,
    publishing_stack,
    report_topic_publishers,
    resource_input,
    stack_resources,
    stack_rule_policy,
    targets_of,
)
from shared.policy_typing import ReportViolation

EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
#: the condition keys the KMS call of an EventBridge delivery does not carry
_SOURCE_KEYS = re.compile(r"aws:source(arn|account|orgid)", re.IGNORECASE)


def _source_conditioned(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition")
    return isinstance(condition, dict) and any(
        isinstance(clauses, dict) and any(_SOURCE_KEYS.fullmatch(str(key)) for key in clauses)
        for clauses in condition.values())


def _rule_resource(target: PolicyResource, rules: list[PolicyResource]) -> str:
    """``rule/<name>``, or ``rule/<bus>/<name>`` on a bus other than ``default`` (the rule's ARN's resource)."""
    name = resource_input(target, "rule")
    if not isinstance(name, str):
        referenced = targets_of(target, "rule", rules, f"event target '{target.name}'", ("name", "id"))
        names = [resource_input(rule, "name") for rule in referenced]
        if len(names) != 1 or not isinstance(names[0], str):
            raise Undecided(f"event target '{target.name}': rule")
        name = names[0]
    bus = resource_input(target, "eventBusName")
    if bus is not None and not isinstance(bus, str):
        raise Undecided(f"event target '{target.name}': eventBusName")
    bus_name = bus.rsplit("/", 1)[-1] if bus else "default"
    return f"rule/{name}" if bus_name == "default" else f"rule/{bus_name}/{name}"


def _publisher(target: PolicyResource, rules: list[PolicyResource]) -> TopicPublisher:
    """EventBridge publishing for the target's rule: the key policy's statement must carry no aws:Source* condition,
    the topic policy's aws:SourceArn conditions must admit the rule's ARN."""
    rule_resource = _rule_resource(target, rules)
    return TopicPublisher(
        service="EventBridge", principal="events.amazonaws.com", caller=rule_resource,
        key_admits=lambda statement: not _source_conditioned(statement),
        topic_admits=lambda statement: admits_source_arn(statement, "events", rule_resource),
        key_detail=(" (in a statement without an aws:SourceArn, aws:SourceAccount or aws:SourceOrgID condition, "
                    "keys EventBridge's call does not carry)"),
        default_policy_admits=False)


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    event_targets = stack_resources(args, EVENT_TARGET, none_reason="the stack has no EventBridge target")
    stack = publishing_stack(args, "the stack has no SNS topic an EventBridge rule could target", EVENT_RULE)
    report_topic_publishers(
        args, event_targets, stack,
        lambda target: targets_of(target, "arn", stack[SNS_TOPIC], f"event target '{target.name}'", ("arn", "id")),
        lambda target: _publisher(target, stack[EVENT_RULE]),
        lambda target, problem: report_violation(
            f"event target '{target.name}' cannot publish to {problem}. EventBridge's delivery is refused and the "
            "event is dropped silently (only the rule's FailedInvocations metric says so).", target.urn))


POLICY = stack_rule_policy(__file__, _validate)
