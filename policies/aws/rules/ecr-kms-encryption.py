"""ECR repositories encrypt images with KMS.

Why: the default (AES256, an AWS-owned key) cannot be audited in CloudTrail or revoked; a KMS key
gives key-usage logs and a kill switch. ``KMS`` without ``kms_key`` (the AWS-managed ``aws/ecr`` key)
passes. Matches checkov CKV_AWS_136.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, as_list, get, known_input, rule_policy, undecidable
from shared.policy_typing import ReportViolation


@applies_to("aws:ecr/repository:Repository")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    configurations = known_input(args, "ECR repository", "encryptionConfigurations")
    encryption_type = get(as_list(configurations), 0, "encryptionType")
    if encryption_type is UNKNOWN:
        undecidable(args, f"ECR repository '{args.name}': encryptionConfigurations[0].encryptionType")
    if str(encryption_type or "AES256").upper() not in ("KMS", "KMS_DSSE"):
        report_violation(
            f"ECR repository '{args.name}' is encrypted with {encryption_type or 'AES256 (the default)'}; set "
            "encryption_configurations=[{'encryption_type': 'KMS', 'kms_key': <key arn>}]."
        )


POLICY = rule_policy(__file__, _validate)
