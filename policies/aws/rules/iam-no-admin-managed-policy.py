"""No attachment of an AWS managed policy that grants full or administrator access.

Matched by name pattern, not a fixed list: ``AdministratorAccess`` (and its variants such as
``AdministratorAccess-Amplify``), ``PowerUserAccess``, any ``...FullAccess`` (``IAMFullAccess``,
``AmazonS3FullAccess``, ``AWSLambda_FullAccess``...) and any ``...AdminAccess``.

Checks ``policyArn`` of ``aws:iam/rolePolicyAttachment``, ``userPolicyAttachment``,
``groupPolicyAttachment`` and ``policyAttachment``, ``policyArns`` of
``aws:iam/{role,user,group}PolicyAttachmentsExclusive`` (which attach what they list) and
``managedPolicyArns`` of ``aws:iam/role``, in every
partition (``arn:aws``, ``arn:aws-cn``, ``arn:aws-us-gov``...).

Why: each is account- or service-wide control (IAMFullAccess can grant itself the rest; a service's
FullAccess includes deleting all of it); no workload role needs them, and a human needs them only
through a break-glass path, not a stack. Matches checkov CKV_AWS_274 (AdministratorAccess only);
related to cdk-nag AwsSolutions-IAM4 (any AWS managed policy).
"""

import re

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, as_list, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation

SINGLE_ARN = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
}
ARN_LISTS = {
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "policyArns",
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": "policyArns",
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": "policyArns",
    "aws:iam/role:Role": "managedPolicyArns",
}
ADMIN_POLICY = re.compile(
    r"^arn:aws[a-z-]*:iam::aws:policy/(?:[\w+=,.@-]+/)*"
    r"(AdministratorAccess[\w+=,.@-]*|PowerUserAccess|[\w+=,.@-]*FullAccess[\w+=,.@-]*|[\w+=,.@-]*AdminAccess)$"
)


@applies_to(*SINGLE_ARN, *ARN_LISTS)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    prop = SINGLE_ARN.get(args.resource_type) or ARN_LISTS[args.resource_type]
    value = plain(args.props).get(prop)
    if value is UNKNOWN:
        undecidable(args, f"{args.resource_type.split(':')[-1]} '{args.name}': {prop}")
    arns = as_list(value)
    admin = sorted({m.group(1) for arn in arns if isinstance(arn, str) and (m := ADMIN_POLICY.match(arn.strip()))})
    if admin:
        report_violation(
            f"{args.resource_type.split(':')[-1]} '{args.name}' attaches {', '.join(admin)}; attach a policy that "
            "grants only the actions and resources the workload uses."
        )
    if UNKNOWN in arns:
        undecidable(args, f"{args.resource_type.split(':')[-1]} '{args.name}': an entry of {prop}")


POLICY = rule_policy(__file__, _validate)
