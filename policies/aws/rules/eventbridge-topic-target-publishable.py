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
  a topic without one has SNS's default policy, which lets the account's services publish.

Other conditions are accepted as written. A topic or key the target cannot be traced to in the stack (another
stack's, by ARN) is not judged; an unknown policy, key reference or rule name makes the rule not applicable.

Why: EventBridge publishes to the topic as the service principal, and SNS encrypts the message with the topic's key
on its behalf (Amazon SNS developer guide, "Enable compatibility between event sources from AWS services and
encrypted topics"; EventBridge user guide, "Amazon SNS permissions"; AWS knowledge center, "Why isn't my Amazon SNS
topic receiving EventBridge notifications?"). A refused delivery is only a ``FailedInvocations`` data point of the
rule: the rule matches, looks wired in every listing, and nobody is notified. No cdk-nag or checkov equivalent.
"""

import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    KMS_KEY,
    KMS_KEY_IDENTITY,
    KMS_KEY_POLICY,
    Undecided,
    admits_arn,
    allow_statements,
    allows_action,
    attached_policies,
    condition_values,
    key_policy_documents,
    names_service,
    policy_input,
    report_problems,
    resource_input,
    stack_resources,
    stack_rule_policy,
    targets_of,
)
from shared.policy_typing import ReportViolation

TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
#: what SNS calls on the topic's key for EventBridge (the SNS guide's key policy statement for AWS services)
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
#: the condition keys the KMS call of an EventBridge delivery does not carry
_SOURCE_KEYS = re.compile(r"aws:source(arn|account|orgid)", re.IGNORECASE)
_AWS_MANAGED_SNS_KEY = re.compile(r"(^|:)alias/aws/sns$")
_EVENTS = re.compile(r"events\.amazonaws\.com.*")


def _source_conditioned(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition")
    return isinstance(condition, dict) and any(
        isinstance(clauses, dict) and any(_SOURCE_KEYS.fullmatch(str(key)) for key in clauses)
        for clauses in condition.values())


def _admits_rule(statement: dict[str, Any], rule_resource: str) -> bool:
    """Every ``aws:SourceArn`` condition names an ARN the rule's matches (:func:`admits_arn`)."""
    return all(any(admits_arn(value, operator, "events", rule_resource) for value in values)
               for values, operator in condition_values(statement, "aws:SourceArn"))


def _key_grants(document: Any) -> bool:
    usable = [s for _, s in allow_statements(document) if names_service(s, _EVENTS) and not _source_conditioned(s)]
    return all(any(allows_action(s, action) for s in usable) for action in KEY_ACTIONS)


def _topic_grants(document: Any, rule_resource: str) -> bool:
    return any(names_service(s, _EVENTS) and _admits_rule(s, rule_resource) and allows_action(s, "sns:Publish")
               for _, s in allow_statements(document))


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


def _problems(rule_resource: str, topic: PolicyResource, stack: dict[str, list[PolicyResource]]) -> Iterator[str]:
    key_id = resource_input(topic, "kmsMasterKeyId")
    if isinstance(key_id, str) and _AWS_MANAGED_SNS_KEY.search(key_id):
        yield (f"topic '{topic.name}': it is encrypted with the AWS managed key alias/aws/sns, which EventBridge may "
               "not use; encrypt it with a customer managed key whose policy lets events.amazonaws.com call "
               "kms:Decrypt and kms:GenerateDataKey*")
    elif key_id is not None:
        for key in targets_of(topic, "kmsMasterKeyId", stack[KMS_KEY], f"topic '{topic.name}'", KMS_KEY_IDENTITY):
            for where, document in key_policy_documents(key, stack[KMS_KEY_POLICY], stack[KMS_KEY]):
                if not _key_grants(document):
                    yield (f"topic '{topic.name}': its KMS key '{key.name}'{where} does not let events.amazonaws.com "
                           "call kms:Decrypt and kms:GenerateDataKey* (in a statement without an aws:SourceArn, "
                           "aws:SourceAccount or aws:SourceOrgID condition, keys EventBridge's call does not carry)")
    topic_policies = attached_policies(topic, stack[TOPIC_POLICY], "arn", stack[TOPIC], "topic policy", ("arn", "id"))
    for topic_policy in topic_policies:
        if not _topic_grants(policy_input(topic_policy, "topic policy"), rule_resource):
            yield (f"topic '{topic.name}': its topic policy '{topic_policy.name}' does not let events.amazonaws.com "
                   f"call sns:Publish for {rule_resource}")
    own = None if topic_policies else policy_input(topic, "topic")
    if own is not None and not _topic_grants(own, rule_resource):
        yield (f"topic '{topic.name}': its policy input does not let events.amazonaws.com call sns:Publish for "
               f"{rule_resource}")


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    event_targets = stack_resources(args, EVENT_TARGET, none_reason="the stack has no EventBridge target")
    topics = stack_resources(args, TOPIC, none_reason="the stack has no SNS topic an EventBridge rule could target")
    stack = {TOPIC: topics, **{kind: stack_resources(args, kind)
                               for kind in (KMS_KEY, KMS_KEY_POLICY, TOPIC_POLICY, EVENT_RULE)}}

    def problems_of(target: PolicyResource) -> Iterator[str]:
        targeted = targets_of(target, "arn", topics, f"event target '{target.name}'", ("arn", "id"))
        if not targeted:
            return iter(())
        rule_resource = _rule_resource(target, stack[EVENT_RULE])
        return (problem for topic in targeted for problem in _problems(rule_resource, topic, stack))

    report_problems(args, event_targets, problems_of, lambda target, problem: report_violation(
        f"event target '{target.name}' cannot publish to {problem}. EventBridge's delivery is refused and the event "
        "is dropped silently (only the rule's FailedInvocations metric says so).", target.urn))


POLICY = stack_rule_policy(__file__, _validate)
