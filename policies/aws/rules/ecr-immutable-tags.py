"""ECR repositories forbid overwriting an existing image tag.

Why: with mutable tags, ``inference:1.4.2`` can silently point at a different image tomorrow, so what
was scanned, reviewed and promoted is not what runs. ``IMMUTABLE_WITH_EXCLUSION`` still lets the
excluded tags be overwritten, so only ``IMMUTABLE`` passes. Matches checkov CKV_AWS_51.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, known_input, rule_policy
from shared.policy_typing import ReportViolation


@applies_to("aws:ecr/repository:Repository")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    mutability = known_input(args, "ECR repository", "imageTagMutability")
    setting = str(mutability or "MUTABLE").upper()  # the provider default is MUTABLE
    if setting == "IMMUTABLE":
        return
    if setting == "IMMUTABLE_WITH_EXCLUSION":
        report_violation(
            f"ECR repository '{args.name}' lets the tags of its exclusion filters be overwritten; "
            "set image_tag_mutability=IMMUTABLE and drop image_tag_mutability_exclusion_filters."
        )
        return
    report_violation(f"ECR repository '{args.name}' allows tag overwrites; set image_tag_mutability=IMMUTABLE.")


POLICY = rule_policy(__file__, _validate)
