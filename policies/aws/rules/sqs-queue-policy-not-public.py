"""SQS queue access policies do not let anyone (``*``) in without a condition.

Checks ``policy`` of ``aws:sqs/queuePolicy:QueuePolicy`` and the inline ``policy`` of ``aws:sqs/queue:Queue``: an
``Allow`` statement whose principal is ``*`` / ``{"AWS": "*"}`` (or that uses ``NotPrincipal``) lets every AWS account
send to the queue, read and delete its messages or change it, whatever the actions, unless its ``Condition`` names its
callers with fixed values (a caller key under a matching operator, values free of wildcards and policy variables: AWS
Config's sqs-queue-no-public-access, behind Security Hub SQS.3, "an SQS policy must grant access only to fixed
values"). A service principal (``events.amazonaws.com``) is not anyone. A queue without an inline policy has SQS's
default (its own account only) and passes.

Why: the platform's queues are the layers' dead-letter queues of undelivered events (shared.components.
undelivered_events): a public one lets anyone read what EventBridge could not deliver (task stops, retirement
notices) or fill it with false ones, whose alarm then pages on call. Matches Security Hub SQS.3; no cdk-nag
equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, plain, report_public_policy, rule_policy
from shared.policy_typing import ReportViolation

QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"


@applies_to(QUEUE, QUEUE_POLICY)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    what = f"SQS {'queue policy' if args.resource_type == QUEUE_POLICY else 'queue'} '{args.name}'"
    if args.resource_type == QUEUE and plain(args.props).get("policy") in (None, ""):
        args.not_applicable(f"{what} has no inline policy (SQS's default: its own account only)")
    report_public_policy(args, "policy", what, report_violation, "name the sending service or account, or add a "
                         "condition such as aws:SourceAccount or aws:SourceArn with fixed values.")


POLICY = rule_policy(__file__, _validate)
