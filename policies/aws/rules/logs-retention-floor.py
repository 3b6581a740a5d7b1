"""CloudWatch log groups keep their logs at least the env's floor of days.

Checks ``retentionInDays`` of ``aws:cloudwatch/logGroup:LogGroup`` against the rule's ``minimumDays``
parameter, per baseline in ``policies/catalog.yaml`` (sent with the rule's level; a real CLI run
without ``--policy-pack-config`` uses the prod value). Unset or 0 is "never expire", which keeps
them: that is ``logs-retention-set``'s finding, not this rule's. A ``DELIVERY``-class log group is not
applicable: AWS keeps its events one day, for delivery to S3 or Firehose, whatever its retention says. The
broker's log group, adopted by a dynamic resource (``retention_in_days``, from
``messaging.broker_log_retention_days``), is judged too.

Why: a 1-day retention satisfies "a retention is set" and leaves nothing for an incident that is
noticed a week later; audit and incident response need a minimum. Matches checkov CKV_AWS_338 (at
least one year, the prod floor); no cdk-nag equivalent.
"""

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from shared.policy_support import (
    ADOPTED_LOG_GROUP,
    applies_to,
    as_int,
    log_group_retention,
    not_applicable,
    rule_parameter,
    rule_policy,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:cloudwatch/logGroup:LogGroup", ADOPTED_LOG_GROUP)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    retention = log_group_retention(args)
    days = as_int(retention)
    if not days:
        not_applicable(args, f"log group '{args.name}' never expires its logs (see logs-retention-set)")
    minimum = int(rule_parameter(args, __file__, "minimumDays"))
    if days < minimum:
        report_violation(f"log group '{args.name}' keeps its logs {days} day(s); this env requires at least "
                         f"{minimum}: set retention_in_days={minimum} or more.")


POLICY = rule_policy(
    __file__, _validate,
    config_schema=PolicyConfigSchema(properties={"minimumDays": {"type": "integer", "minimum": 1}}),
)
