"""ECR repositories scan every image on push.

Why: an image with a known CVE should be flagged the moment it lands in the registry, before any task
runs it; scan-on-push is off by default. Matches checkov CKV_AWS_163 (no cdk-nag equivalent).
A registry-wide ``aws.ecr.RegistryScanningConfiguration`` is not seen by this per-repository rule.
"""

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from shared.policy_support import (
    applies_to,
    is_true,
    known_input,
    rule_description,
    rule_id,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:ecr/repository:Repository")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    scan_on_push = known_input(args, "ECR repository", "imageScanningConfiguration.scanOnPush")
    if not is_true(scan_on_push):
        report_violation(
            f"ECR repository '{args.name}' does not scan images on push; "
            "set image_scanning_configuration={'scan_on_push': True}."
        )


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
