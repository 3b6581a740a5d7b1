"""CloudWatch log groups set a retention period CloudWatch accepts.

Unset (or 0) means "never expire". The value must be one of CloudWatch's allowed periods (1, 3, 5, 7,
14, 30, 60, 90, ... 3653 days); anything else is rejected by the API at deploy time. A ``DELIVERY``-class
log group is not applicable: AWS keeps its events one day whatever its retention says. A group an AWS service
creates on its own that the program adopts with a dynamic resource (Amazon MQ's broker log group,
``shared.components.broker_logs``: its ``log_group_name`` and ``retention_in_days``) is judged the same way.

Why: logs kept forever cost money every month and keep personal data longer than any policy allows;
a deliberate retention is both a cost and a compliance decision. Matches checkov CKV_AWS_66 / cdk-nag
CloudWatchLogGroupRetentionPeriod (NIST 800-53 packs).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import ADOPTED_LOG_GROUP, applies_to, as_int, log_group_retention, rule_policy
from shared.policy_typing import ReportViolation

ALLOWED_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


@applies_to("aws:cloudwatch/logGroup:LogGroup", ADOPTED_LOG_GROUP)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    retention = log_group_retention(args)
    days = as_int(retention)
    if not days:
        report_violation(
            f"log group '{args.name}' keeps its logs forever; set retention_in_days (e.g. 14 in dev, 90 in prod)."
        )
    elif days not in ALLOWED_DAYS:
        report_violation(
            f"log group '{args.name}' has retention_in_days={days}, which CloudWatch rejects; "
            f"use one of {', '.join(map(str, ALLOWED_DAYS))}."
        )


POLICY = rule_policy(__file__, _validate)
