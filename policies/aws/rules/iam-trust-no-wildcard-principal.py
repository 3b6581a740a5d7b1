"""No IAM role trust policy lets anyone (``*``) assume the role without a condition.

Checks ``assumeRolePolicy`` of ``aws:iam/role:Role``: an ``Allow`` statement whose principal is ``*`` /
``{"AWS": "*"}`` (or that uses ``NotPrincipal``) and has no ``Condition`` lets every AWS account --
anyone with any credentials -- call ``sts:AssumeRole`` on it. A condition (``aws:PrincipalOrgID``,
``sts:ExternalId``, ``aws:SourceAccount``) narrows it and passes.

Why: the role's permissions become everyone's. Matches checkov CKV_AWS_60 (only specific services or
principals may assume) and CKV_AWS_61 (no assume-role across all principals); no cdk-nag equivalent.
"""

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from shared.policy_support import (
    UNKNOWN,
    applies_to,
    contains_unknown,
    is_public_statement,
    parse_json,
    plain,
    policy_statements,
    rule_description,
    rule_id,
    undecidable,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:iam/role:Role")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    raw = plain(args.props).get("assumeRolePolicy")
    if raw is UNKNOWN or contains_unknown(raw):
        undecidable(args, f"IAM role '{args.name}': assumeRolePolicy")
    try:
        document = parse_json(raw)
    except ValueError:
        report_violation(f"IAM role '{args.name}': assume_role_policy is not valid JSON; fix the trust policy.")
        return
    public = [f"statement {s.get('Sid') or i}" for i, s in enumerate(policy_statements(document))
              if is_public_statement(s)]
    if public:
        report_violation(f"IAM role '{args.name}': trust policy {', '.join(public)} lets any principal assume the "
                         "role; name the service or account principal, or add a condition such as "
                         "aws:PrincipalOrgID or sts:ExternalId.")


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
