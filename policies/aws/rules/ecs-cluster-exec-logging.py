"""ECS clusters do not switch off the logging of ECS Exec sessions.

Checks ``configuration.executeCommandConfiguration`` of ``aws:ecs/cluster:Cluster``: ``logging: NONE``
fails; ``OVERRIDE`` must name a destination (``logConfiguration.cloudWatchLogGroupName`` or
``s3BucketName``, as the ECS API requires). Unset is ``DEFAULT`` (the output goes to the task's
``awslogs`` configuration), which passes. Whether a service turns exec on (``enableExecuteCommand``)
is a service's setting; the cluster's logging applies to all of them.

Why: ECS Exec is an interactive shell inside a production task; without its log nobody can tell
afterwards what was run. Matches checkov CKV_AWS_223 (ECS Exec logging); related: CKV_AWS_224 (also
asks a customer-managed key for the session). No cdk-nag equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, contains_unknown, get, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation


@applies_to("aws:ecs/cluster:Cluster")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    config = get(plain(args.props), "configuration", "executeCommandConfiguration")
    if contains_unknown(config):
        undecidable(args, f"cluster '{args.name}': configuration.executeCommandConfiguration")
    logging = str(get(config, "logging") or "DEFAULT").upper()
    destination = get(config, "logConfiguration")
    if logging == "NONE":
        report_violation(f"cluster '{args.name}' does not log ECS Exec sessions (logging='NONE'); set logging to "
                         "'DEFAULT' (the task's awslogs) or 'OVERRIDE' with a log_configuration.")
    elif logging == "OVERRIDE" and not (get(destination, "cloudWatchLogGroupName") or get(destination, "s3BucketName")):
        report_violation(f"cluster '{args.name}' overrides ECS Exec logging without a destination; set "
                         "log_configuration={'cloud_watch_log_group_name': ...} (or an S3 bucket).")


POLICY = rule_policy(__file__, _validate)
