"""SNS topic access policies do not let anyone (``*``) in without a condition.

Checks ``policy`` of ``aws:sns/topicPolicy:TopicPolicy`` and the inline ``policy`` of ``aws:sns/topic:Topic``:
an ``Allow`` statement whose principal is ``*`` / ``{"AWS": "*"}`` (or that uses ``NotPrincipal``) and has no
``Condition`` lets every AWS account publish to the topic, subscribe endpoints to it or change it, whatever the
actions. A condition (``aws:SourceArn`` of the alarms that publish, ``aws:SourceAccount``,
``aws:PrincipalOrgID``) narrows it and passes; a service principal (``cloudwatch.amazonaws.com``) is not anyone.
A topic without an inline policy has SNS's default one (its own account only) and passes.

Why: a public topic accepts messages injected by anyone (false alarms, or alarms drowned in noise) and hands
its notifications to any subscriber. Matches Security Hub SNS.4 (any condition with fixed values passes it) and
checkov CKV_AWS_169; no cdk-nag equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, plain, report_public_policy, rule_policy
from shared.policy_typing import ReportViolation

TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"


@applies_to(TOPIC, TOPIC_POLICY)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    what = f"SNS {'topic policy' if args.resource_type == TOPIC_POLICY else 'topic'} '{args.name}'"
    if args.resource_type == TOPIC and plain(args.props).get("policy") in (None, ""):
        args.not_applicable(f"{what} has no inline policy (SNS's default: its own account only)")
    report_public_policy(args, "policy", what, report_violation, "name the publishing service or account, or add "
                         "a condition such as aws:SourceArn or aws:SourceAccount.")


POLICY = rule_policy(__file__, _validate)
