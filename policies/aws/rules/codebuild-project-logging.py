"""CodeBuild projects keep a build log: CloudWatch Logs or S3 logging is on.

Checks ``logsConfig`` of ``aws:codebuild/project:Project``: CodeBuild sends build logs to CloudWatch Logs unless
``cloudwatchLogs.status`` is ``DISABLED`` (an unset ``logsConfig`` or status means ``ENABLED``) and to S3 only
when ``s3Logs.status`` is ``ENABLED`` (CodeBuild API, LogsConfig). The project fails when both are off. One log
known to be on decides (passes) at preview whatever the other will be; otherwise a status unknown at preview is
undecided (not applicable).

Why: the build log is the record of what a build (here: a deploy with the deploy role) did; without it an
incident cannot be traced. Matches Security Hub CodeBuild.4 (at least one log option enabled); no cdk-nag or
checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, get, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation


@applies_to("aws:codebuild/project:Project")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    logs = get(plain(args.props), "logsConfig")
    statuses = {kind: get(logs, kind, "status") for kind in ("cloudwatchLogs", "s3Logs")}
    # get() returns UNKNOWN for a status under an unknown logsConfig too
    unknown = [kind for kind, status in statuses.items() if status is UNKNOWN]
    cloudwatch = "cloudwatchLogs" not in unknown and str(statuses["cloudwatchLogs"] or "ENABLED").upper() == "ENABLED"
    s3 = "s3Logs" not in unknown and str(statuses["s3Logs"] or "DISABLED").upper() == "ENABLED"
    if cloudwatch or s3:
        return  # one log is on, whatever the other will be
    if unknown:
        undecidable(args, f"CodeBuild project '{args.name}': logsConfig.{unknown[0]}.status")
    report_violation(f"CodeBuild project '{args.name}' keeps no build log (CloudWatch Logs and S3 logs are both "
                     "disabled); set logs_config.cloudwatch_logs.status='ENABLED' with a group name.")


POLICY = rule_policy(__file__, _validate)
