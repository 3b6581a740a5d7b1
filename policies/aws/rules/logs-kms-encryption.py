"""CloudWatch log groups are encrypted with a customer-managed KMS key.

Checks ``kmsKeyId`` of ``aws:cloudwatch/logGroup:LogGroup`` (unset: CloudWatch's own service key).

Why: logs carry request data, identifiers and sometimes what a service should never have logged;
with a customer-managed key, reading them also needs ``kms:Decrypt`` on a key whose policy the
platform owns, and the key can be disabled. Matches checkov CKV_AWS_158, cdk-nag
CloudWatchLogGroupEncrypted (NIST/HIPAA packs).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, known_input, rule_policy
from shared.policy_typing import ReportViolation


@applies_to("aws:cloudwatch/logGroup:LogGroup")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    key = known_input(args, "log group", "kmsKeyId")
    if not key:
        report_violation(f"log group '{args.name}' is not encrypted with a customer-managed key; set kms_key_id to "
                         "a key whose policy lets logs.<region>.amazonaws.com use it for this log group.")


POLICY = rule_policy(__file__, _validate)
