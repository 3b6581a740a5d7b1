"""Secrets Manager secrets are encrypted with a customer-managed KMS key.

Checks ``kmsKeyId`` of ``aws:secretsmanager/secret:Secret``: unset (or the alias ``aws/secretsmanager``)
is the AWS-managed key.

Why: every principal of the account with ``secretsmanager:GetSecretValue`` can decrypt a secret under
the AWS-managed key, whose policy nobody can change; a customer-managed key adds a second gate
(``kms:Decrypt`` in the key policy), can be disabled in an incident and logs each use. Matches
checkov CKV_AWS_149, cdk-nag SecretsManagerUsingKMSKey (NIST/HIPAA packs).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, known_input, rule_policy
from shared.policy_typing import ReportViolation


@applies_to("aws:secretsmanager/secret:Secret")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    key = known_input(args, "secret", "kmsKeyId")
    if not key or str(key).strip().endswith("alias/aws/secretsmanager"):
        report_violation(f"secret '{args.name}' is encrypted with the AWS-managed key aws/secretsmanager; set "
                         "kms_key_id to a customer-managed key whose policy grants kms:Decrypt only to its readers.")


POLICY = rule_policy(__file__, _validate)
