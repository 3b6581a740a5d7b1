"""No IAM role trust policy lets anyone (``*``) assume the role unless a condition names the callers.

Checks ``assumeRolePolicy`` of ``aws:iam/role:Role``: an ``Allow`` statement whose principal is ``*`` /
``{"AWS": "*"}`` (or that uses ``NotPrincipal``) lets every AWS account -- anyone with any credentials --
call ``sts:AssumeRole`` on it unless its ``Condition`` names the callers with fixed values:
``aws:PrincipalOrgID``, ``aws:PrincipalAccount``, ``aws:PrincipalArn``... under a matching operator, without
wildcards or policy variables (:func:`shared.policy_support.is_public_statement`). ``sts:ExternalId`` alone
does not: it is a value shared with a third party, not a caller, and anyone who learns it passes; an
``aws:PrincipalOrgID`` of ``o-*`` is every organization.

Why: the role's permissions become everyone's. Matches checkov CKV_AWS_60 (only specific services or
principals may assume) and CKV_AWS_61 (no assume-role across all principals); no cdk-nag equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, public_statements, rule_policy
from shared.policy_typing import ReportViolation


@applies_to("aws:iam/role:Role")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    public = public_statements(args, "assumeRolePolicy", f"IAM role '{args.name}': assumeRolePolicy",
                               report_violation, f"IAM role '{args.name}': assume_role_policy is not valid JSON; "
                                                 "fix the trust policy.")
    if public:
        report_violation(f"IAM role '{args.name}': trust policy {', '.join(public)} lets any principal assume the "
                         "role; name the service or account principal, or add a condition such as "
                         "aws:PrincipalOrgID or aws:PrincipalAccount with fixed values.")


POLICY = rule_policy(__file__, _validate)
