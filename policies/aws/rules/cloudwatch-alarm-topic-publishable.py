"""CloudWatch alarms can publish to the SNS topics of their own stack that they notify (stack rule).

For every ``aws:cloudwatch/metricAlarm:MetricAlarm`` and ``aws:cloudwatch/compositeAlarm:CompositeAlarm``
whose ``alarmActions``, ``okActions`` or ``insufficientDataActions`` name an ``aws:sns/topic:Topic`` of the
stack:

- a topic encrypted with the AWS managed key ``alias/aws/sns`` fails: its policy cannot be changed to let
  CloudWatch use it;
- a topic encrypted with a key of the stack needs a key policy statement that allows the
  ``cloudwatch.amazonaws.com`` service principal ``kms:Decrypt`` and ``kms:GenerateDataKey*`` (a key without
  a policy gets AWS's default one, which only the account's IAM principals can use). The key policy is the
  key's ``policy`` input, or that of an ``aws:kms/keyPolicy:KeyPolicy`` of the stack for the key, which
  replaces it;
- a topic with a policy, its own ``policy`` input or an ``aws:sns/topicPolicy:TopicPolicy`` of the stack
  (which replaces it), needs a statement that allows that principal ``sns:Publish``; a topic without one has
  SNS's default policy, which lets the account's services publish.

A statement conditioned on ``aws:SourceArn`` (``ArnLike``/``ArnEquals``/``StringLike``/``StringEquals``, the
confused-deputy guard) counts only if one of its ARNs matches the alarm's name: an ARN operator matches the
six colon-delimited parts one by one, a ``StringLike`` pattern the whole ARN, its ``*`` spanning colons.
Other conditions are accepted as written. A topic or key the alarm's action cannot be traced to in the
stack (another stack's, by stack reference) is not judged; an unknown policy, key reference or alarm name
makes the rule not applicable.

Why: CloudWatch publishes an alarm's notification as the service principal and encrypts it with the
topic's key itself (Amazon SNS developer guide, "Enable compatibility between event sources from AWS
services and encrypted topics"; AWS knowledge center, "Why didn't I receive an SNS notification for my
CloudWatch alarm trigger?"). A denied call is only a line in the alarm's history: the alarm changes state,
looks wired in every listing, and nobody is notified. A name pattern in the condition that no longer
matches the alarm names fails the same way. No cdk-nag or checkov equivalent.
"""

import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    CLOUDWATCH_ALARMS,
    KMS_KEY,
    KMS_KEY_IDENTITY,
    KMS_KEY_POLICY,
    Undecided,
    admits_arn,
    alarm_topics,
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
#: what CloudWatch calls on the topic's key (the SNS guide's key policy statement for AWS services)
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
_AWS_MANAGED_SNS_KEY = re.compile(r"(^|:)alias/aws/sns$")
_CLOUDWATCH = re.compile(r"cloudwatch\.amazonaws\.com.*")


def _admits_alarm(statement: dict[str, Any], alarm_name: str) -> bool:
    """Every ``aws:SourceArn`` condition names an ARN the alarm's matches (:func:`admits_arn`)."""
    return all(any(admits_arn(value, operator, "cloudwatch", f"alarm:{alarm_name}") for value in values)
               for values, operator in condition_values(statement, "aws:SourceArn"))


def _grants(document: Any, actions: tuple[str, ...], alarm_name: str) -> bool:
    """Whether the policy's Allow statements let CloudWatch, for this alarm, call every one of ``actions``."""
    usable = [s for _, s in allow_statements(document)
              if names_service(s, _CLOUDWATCH) and _admits_alarm(s, alarm_name)]
    return all(any(allows_action(s, action) for s in usable) for action in actions)


def _problems(alarm: PolicyResource, topic: PolicyResource, stack: dict[str, list[PolicyResource]]) -> Iterator[str]:
    name = resource_input(alarm, "name")
    if not isinstance(name, str):
        raise Undecided(f"alarm '{alarm.name}': name")
    key_id = resource_input(topic, "kmsMasterKeyId")
    if isinstance(key_id, str) and _AWS_MANAGED_SNS_KEY.search(key_id):
        yield (f"topic '{topic.name}': it is encrypted with the AWS managed key alias/aws/sns, which CloudWatch "
               "may not use; encrypt it with a customer managed key whose policy lets cloudwatch.amazonaws.com "
               "call kms:Decrypt and kms:GenerateDataKey*")
    elif key_id is not None:
        for key in targets_of(topic, "kmsMasterKeyId", stack[KMS_KEY], f"topic '{topic.name}'", KMS_KEY_IDENTITY):
            for where, document in key_policy_documents(key, stack[KMS_KEY_POLICY], stack[KMS_KEY]):
                if not _grants(document, KEY_ACTIONS, name):
                    yield (f"topic '{topic.name}': its KMS key '{key.name}'{where} does not let "
                           f"cloudwatch.amazonaws.com call kms:Decrypt and kms:GenerateDataKey* for alarm '{name}' "
                           "(an aws:SourceArn condition must match the alarm's ARN)")
    topic_policies = attached_policies(topic, stack[TOPIC_POLICY], "arn", stack[TOPIC], "topic policy", ("arn", "id"))
    for topic_policy in topic_policies:
        if not _grants(policy_input(topic_policy, "topic policy"), ("sns:Publish",), name):
            yield (f"topic '{topic.name}': its topic policy '{topic_policy.name}' does not let "
                   f"cloudwatch.amazonaws.com call sns:Publish for alarm '{name}'")
    own = None if topic_policies else policy_input(topic, "topic")
    if own is not None and not _grants(own, ("sns:Publish",), name):
        yield (f"topic '{topic.name}': its policy input does not let cloudwatch.amazonaws.com call sns:Publish "
               f"for alarm '{name}'")


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    alarms = stack_resources(args, *CLOUDWATCH_ALARMS, none_reason="the stack has no CloudWatch alarm")
    topics = stack_resources(args, TOPIC, none_reason="the stack has no SNS topic an alarm could notify")
    stack = {TOPIC: topics, **{kind: stack_resources(args, kind) for kind in (KMS_KEY, KMS_KEY_POLICY, TOPIC_POLICY)}}

    def problems_of(alarm: PolicyResource) -> Iterator[str]:
        notified = alarm_topics(alarm, topics)
        if notified is None:
            raise Undecided(f"alarm '{alarm.name}': alarmActions/okActions/insufficientDataActions")
        return (problem for topic in notified for problem in _problems(alarm, topic, stack))

    report_problems(args, alarms, problems_of, lambda alarm, problem: report_violation(
        f"alarm '{alarm.name}' cannot notify {problem}. CloudWatch's publish is denied and the notification is "
        "dropped silently (only the alarm's history says so).", alarm.urn))


POLICY = stack_rule_policy(__file__, _validate)
