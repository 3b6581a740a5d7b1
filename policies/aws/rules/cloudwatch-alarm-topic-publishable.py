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
    UNKNOWN,
    alarm_topics,
    allow_statements,
    as_list,
    contains_unknown,
    iam_wildcard,
    parse_json,
    principal_values,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation

TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
#: what CloudWatch calls on the topic's key (the SNS guide's key policy statement for AWS services)
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
SOURCE_ARN_OPERATORS = ("arnlike", "arnequals", "stringlike", "stringequals")
_AWS_MANAGED_SNS_KEY = re.compile(r"(^|:)alias/aws/sns$")


class Undecided(Exception):
    """What the rule could not read (named in the not-applicable reason)."""


def _matches(pattern: str, value: str, wildcards: bool) -> bool:
    if not wildcards:
        return pattern == value
    return iam_wildcard(pattern).fullmatch(value) is not None


def _allows_action(statement: dict[str, Any], action: str) -> bool:
    return any(isinstance(granted, str) and _matches(granted.lower(), action.lower(), True)
               for granted in as_list(statement.get("Action")))


def _names_cloudwatch(statement: dict[str, Any]) -> bool:
    principals = principal_values(statement)
    return any(isinstance(p, str) and (p.strip() == "*" or p.startswith("cloudwatch.amazonaws.com"))
               for p in principals)


def _source_arn_patterns(statement: dict[str, Any]) -> Iterator[tuple[list[Any], str]]:
    """Each ``aws:SourceArn`` condition of the statement: its values and its operator (lower case)."""
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return
    for operator, clauses in condition.items():
        if not isinstance(clauses, dict) or str(operator).lower() not in SOURCE_ARN_OPERATORS:
            continue
        for key, values in clauses.items():
            if str(key).lower() == "aws:sourcearn":
                yield list(as_list(values)), str(operator).lower()


def _admits_alarm(statement: dict[str, Any], alarm_name: str) -> bool:
    """Every ``aws:SourceArn`` condition names an ARN the alarm's matches. The ARN operators match its six
    colon-delimited parts one by one, the last being ``alarm:<name>``; ``StringLike`` matches the whole string,
    a ``*`` spanning colons too (IAM user guide, "Amazon Resource Name (ARN) condition operators", "String
    condition operators"). Partition, region and account are taken as written: the rule cannot see them."""
    def admits(value: Any, operator: str) -> bool:
        if not isinstance(value, str):
            return False
        if operator == "stringlike":
            return any(_matches(value, arn, True) for arn in _candidate_arns(value, alarm_name))
        wildcards = operator.endswith("like")
        parts = value.split(":", 5)
        return (len(parts) == 6 and _matches(parts[2], "cloudwatch", wildcards)
                and _matches(parts[5], f"alarm:{alarm_name}", wildcards))

    return all(any(admits(value, operator) for value in values)
               for values, operator in _source_arn_patterns(statement))


def _candidate_arns(pattern: str, alarm_name: str) -> list[str]:
    """The alarm's ARN with the partition, region and account a ``StringLike`` pattern may mean: those it
    writes where it has six parts (a ``*`` there matches itself), else any that a ``*`` can stand for."""
    parts = pattern.split(":", 5)
    written = [f"arn:{parts[1]}:cloudwatch:{parts[3]}:{parts[4]}:alarm:{alarm_name}"] if len(parts) == 6 else []
    return [*written, f"arn:*:cloudwatch:*:*:alarm:{alarm_name}"]


def _grants(document: Any, actions: tuple[str, ...], alarm_name: str) -> bool:
    """Whether the policy's Allow statements let CloudWatch, for this alarm, call every one of ``actions``."""
    usable = [s for _, s in allow_statements(document) if _names_cloudwatch(s) and _admits_alarm(s, alarm_name)]
    return all(any(_allows_action(s, action) for s in usable) for action in actions)


def _document(resource: PolicyResource, what: str) -> Any:
    raw = resource_input(resource, "policy")
    if raw is UNKNOWN or contains_unknown(raw):
        raise Undecided(f"{what} '{resource.name}': policy")
    if raw is None or raw == "":
        return None
    try:
        return parse_json(raw)
    except ValueError:
        return None


def _targets(resource: PolicyResource, prop: str, candidates: list[PolicyResource], what: str,
             identity_keys: tuple[str, ...]) -> list[PolicyResource]:
    targets = referenced_targets(resource, prop, candidates, identity_keys=identity_keys)
    if targets is None:
        raise Undecided(f"{what} '{resource.name}': {prop}")
    return targets


def _attached(target: PolicyResource, attached: list[PolicyResource], prop: str, candidates: list[PolicyResource],
              what: str, identity_keys: tuple[str, ...]) -> list[PolicyResource]:
    """The policy resources of the stack (``aws.sns.TopicPolicy``, ``aws.kms.KeyPolicy``) whose ``prop`` refers
    to ``target``: each replaces the target's own ``policy`` input."""
    return [policy for policy in attached
            if target.urn in {t.urn for t in _targets(policy, prop, candidates, what, identity_keys)}]


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
        for key in _targets(topic, "kmsMasterKeyId", stack[KEY], f"topic '{topic.name}'", ("arn", "id", "keyId")):
            key_policies = _attached(key, stack[KEY_POLICY], "keyId", stack[KEY], "key policy", ("arn", "id", "keyId"))
            for policy in key_policies or [key]:
                if not _grants(_document(policy, "key policy" if key_policies else "KMS key"), KEY_ACTIONS, name):
                    where = f" (key policy '{policy.name}')" if key_policies else ""
                    yield (f"topic '{topic.name}': its KMS key '{key.name}'{where} does not let "
                           f"cloudwatch.amazonaws.com call kms:Decrypt and kms:GenerateDataKey* for alarm '{name}' "
                           "(an aws:SourceArn condition must match the alarm's ARN)")
    topic_policies = _attached(topic, stack[TOPIC_POLICY], "arn", stack[TOPIC], "topic policy", ("arn", "id"))
    for topic_policy in topic_policies:
        if not _grants(_document(topic_policy, "topic policy"), ("sns:Publish",), name):
            yield (f"topic '{topic.name}': its topic policy '{topic_policy.name}' does not let "
                   f"cloudwatch.amazonaws.com call sns:Publish for alarm '{name}'")
    own = None if topic_policies else _document(topic, "topic")
    if own is not None and not _grants(own, ("sns:Publish",), name):
        yield (f"topic '{topic.name}': its policy input does not let cloudwatch.amazonaws.com call sns:Publish "
               f"for alarm '{name}'")


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    alarms = stack_resources(args, *CLOUDWATCH_ALARMS, none_reason="the stack has no CloudWatch alarm")
    topics = stack_resources(args, TOPIC, none_reason="the stack has no SNS topic an alarm could notify")
    stack = {TOPIC: topics, **{kind: stack_resources(args, kind) for kind in (KEY, KEY_POLICY, TOPIC_POLICY)}}
    undecided: list[str] = []
    for alarm in alarms:
        try:
            notified = alarm_topics(alarm, topics)
            if notified is None:
                raise Undecided(f"alarm '{alarm.name}': alarmActions/okActions/insufficientDataActions")
            problems = [problem for topic in notified
                        for problem in _problems(alarm, topic, stack)]
        except Undecided as reason:
            undecided.append(str(reason))
            continue
        for problem in problems:
            report_violation(f"alarm '{alarm.name}' cannot notify {problem}. CloudWatch's publish is denied and "
                             "the notification is dropped silently (only the alarm's history says so).", alarm.urn)
    if undecided:
        undecidable(args, ", ".join(undecided))


POLICY = stack_rule_policy(__file__, _validate)
