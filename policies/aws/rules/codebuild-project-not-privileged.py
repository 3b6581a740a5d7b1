"""CodeBuild projects do not run in privileged mode.

Checks ``environment.privilegedMode`` of ``aws:codebuild/project:Project``: ``true`` fails; unset or ``false`` (the
default: pulumi_aws codebuild ProjectEnvironment ``privileged_mode``, "Defaults to false") passes. The value unknown
at preview leaves the rule undecided (not applicable).

Why: privileged mode gives the build container every device of its host and runs a Docker daemon in it, for
builds that build images; a build that only runs tools, as the platform's deploy runner (the Pulumi CLI with the
deploy role) does, gains nothing but a wider escape from its container. Matches Security Hub CodeBuild.5; no
cdk-nag or checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, get, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation


@applies_to("aws:codebuild/project:Project")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    privileged = get(plain(args.props), "environment", "privilegedMode")
    if privileged is UNKNOWN:
        undecidable(args, f"CodeBuild project '{args.name}': environment.privilegedMode")
    if privileged is True:
        report_violation(f"CodeBuild project '{args.name}' runs in privileged mode; leave "
                         "environment.privileged_mode unset (false) unless the build builds container images.")


POLICY = rule_policy(__file__, _validate)
