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

from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    CLOUDWATCH_ALARMS,
    SNS_TOPIC,
    TopicPublisher,
    Undecided,
    admits_source_arn,
    alarm_topics,
    publishing_stack,
    report_topic_publishers,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation


def _notified(alarm: PolicyResource, topics: list[PolicyResource]) -> list[PolicyResource]:
    notified = alarm_topics(alarm, topics)
    if notified is None:
        raise Undecided(f"alarm '{alarm.name}': alarmActions/okActions/insufficientDataActions")
    return notified


def _publisher(alarm: PolicyResource) -> TopicPublisher:
    """CloudWatch publishing for this alarm: a statement's aws:SourceArn conditions must admit the alarm's ARN, in
    the key policy and the topic policy alike."""
    name = resource_input(alarm, "name")
    if not isinstance(name, str):
        raise Undecided(f"alarm '{alarm.name}': name")

    def admits(statement: dict[str, Any]) -> bool:
        return admits_source_arn(statement, "cloudwatch", f"alarm:{name}")

    return TopicPublisher(
        service="CloudWatch", principal="cloudwatch.amazonaws.com", caller=f"alarm '{name}'", key_admits=admits,
        topic_admits=admits,
        key_detail=f" for alarm '{name}' (an aws:SourceArn condition must match the alarm's ARN)")


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    alarms = stack_resources(args, *CLOUDWATCH_ALARMS, none_reason="the stack has no CloudWatch alarm")
    stack = publishing_stack(args, "the stack has no SNS topic an alarm could notify")
    report_topic_publishers(
        args, alarms, stack, lambda alarm: _notified(alarm, stack[SNS_TOPIC]), _publisher,
        lambda alarm, problem: report_violation(
            f"alarm '{alarm.name}' cannot notify {problem}. CloudWatch's publish is denied and the notification is "
            "dropped silently (only the alarm's history says so).", alarm.urn))


POLICY = stack_rule_policy(__file__, _validate)
