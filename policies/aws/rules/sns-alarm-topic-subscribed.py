"""Every SNS topic of the stack that a CloudWatch alarm of the stack (metric or composite) notifies has a
subscription in the stack (stack rule).

Why: CloudWatch publishes an alarm's state change to its topic whether anyone listens or not; a topic
without a subscription swallows every ALARM and OK, so the alarm "works" and nobody is ever told. The
platform's topic takes its subscriptions from the env file (``alarms.email`` / ``alarms.subscriptions``),
where an empty list is easy to miss. Email and https subscriptions also need their recipient to
confirm them (Amazon SNS developer guide, "Subscribing to an Amazon SNS topic"); this rule can only see
that one is declared. Topics of other stacks (alarms that notify a StackReference output) are that
stack's business. No cdk-nag/checkov equivalent.
"""

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    CLOUDWATCH_ALARMS,
    alarm_topics,
    not_applicable,
    referenced_targets,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


def _subscribed(subscriptions: list[PolicyResource],
                topics: list[PolicyResource]) -> tuple[set[str], list[PolicyResource]]:
    """The URNs of the topics ``subscriptions`` belong to, and the subscriptions whose topic cannot be told."""
    found: set[str] = set()
    unknown: list[PolicyResource] = []
    for subscription in subscriptions:
        targets = referenced_targets(subscription, "topic", topics, identity_keys=("arn", "id", "name"))
        if targets is None:
            unknown.append(subscription)
        else:
            found.update(t.urn for t in targets)
    return found, unknown


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    topics = stack_resources(args, TOPIC, none_reason="the stack has no SNS topic")
    notified: set[str] = set()
    unknown_alarms: list[PolicyResource] = []
    for alarm in stack_resources(args, *CLOUDWATCH_ALARMS):  # metric and composite alarms alike
        targets = alarm_topics(alarm, topics)
        if targets is None:
            unknown_alarms.append(alarm)
        else:
            notified.update(t.urn for t in targets)
    subscribed, unknown_subscriptions = _subscribed(stack_resources(args, SUBSCRIPTION), topics)
    silent = [t for t in topics if t.urn in notified and t.urn not in subscribed]
    if not notified and not unknown_alarms:
        not_applicable(args, "no alarm of the stack notifies an SNS topic of the stack")
    if silent and unknown_subscriptions:
        names = ", ".join(f"'{s.name}'" for s in unknown_subscriptions)
        not_applicable(args, f"cannot tell which topic subscription(s) {names} belong to")
    for topic in silent:
        report_violation(
            f"SNS topic '{topic.name}' receives CloudWatch alarm notifications but has no subscription: every ALARM "
            "goes unheard. Subscribe the on-call (the env file's alarms.email or alarms.subscriptions: email, "
            "https, sqs, lambda, sms) and have the recipient confirm it.",
            topic.urn,
        )


POLICY = stack_rule_policy(__file__, _validate)
